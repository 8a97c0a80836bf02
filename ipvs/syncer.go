package ipvs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/nftables"
)

// Option configures a Syncer.
type Option func(*Syncer)

// WithHandle sets the IPVS and interface access, e.g. a Fake in tests.
// By default the Syncer uses NewHandle in the network namespace of
// WithNetNSFd, or the current one.
func WithHandle(h Handle) Option { return func(s *Syncer) { s.h = h } }

// WithNFTConn sets the nftables access for the companion rules, e.g. an
// nftables.Fake. By default nftables.NewConn in the same namespace.
func WithNFTConn(c nftables.Conn) Option { return func(s *Syncer) { s.nft = c } }

// WithNetNSFd makes the default Handle and nftables Conn work in the
// network namespace of fd instead of the current one.
func WithNetNSFd(fd int) Option { return func(s *Syncer) { s.netnsFd = fd } }

// WithLogger sets the logger. By default nothing is logged.
func WithLogger(l *slog.Logger) Option { return func(s *Syncer) { s.log = l } }

// WithClock sets the clock that times the grace period; tests use it.
func WithClock(now func() time.Time) Option { return func(s *Syncer) { s.now = now } }

// Syncer programs snapshots into IPVS: a proxykit.Syncer.
type Syncer struct {
	cfg     Config
	h       Handle
	nft     nftables.Conn
	netnsFd int
	log     *slog.Logger
	now     func() time.Time

	mu sync.Mutex
	// prev is the state the kernel was last brought to, nil when the next
	// sync must read everything back; prevNode is its node.
	prev     *State
	prevNode proxykit.Node
	// rules are the companion rules last applied, nil when they must be
	// applied whole again.
	rules *applied
	// quiesced holds the real servers at weight 0 that wait for their
	// connections to end, with the time they were quiesced (or first
	// seen quiesced, after a restart).
	quiesced map[realKey]time.Time
}

var _ proxykit.Syncer = (*Syncer)(nil)

// NewSyncer returns a Syncer for cfg, or cfg's validation error.
func NewSyncer(cfg Config, opts ...Option) (*Syncer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Syncer{cfg: cfg.withDefaults(), log: slog.New(slog.DiscardHandler), now: time.Now, quiesced: map[realKey]time.Time{}}
	for _, o := range opts {
		o(s)
	}
	if s.h == nil {
		h, err := NewHandle(s.netnsFd)
		if err != nil {
			return nil, err
		}
		s.h = h
	}
	if s.nft == nil {
		c, err := nftables.NewConn(s.netnsFd)
		if err != nil {
			return nil, err
		}
		s.nft = c
	}
	return s, nil
}

// Sysctls are set in the node's namespace by every full sync: conntrack
// for IPVS connections (the companion rules masquerade through it), and
// the expiry of connections whose real server or template is gone.
var Sysctls = [][2]string{
	{"net/ipv4/vs/conntrack", "1"},
	{"net/ipv4/vs/expire_nodest_conn", "1"},
	{"net/ipv4/vs/expire_quiescent_template", "1"},
}

// Sync makes IPVS, the dummy interface and the companion rules match
// snap. IPVS has no transactions: a full sync (snap.Full(), the first
// sync, any sync after an error) reads the kernel back and applies the
// difference; a partial sync reads back only the virtual servers whose
// desired state changed and those with quiesced real servers. An error
// part-way leaves the rest applied; the next sync, full, repairs it.
// Virtual servers on addresses the backend does not own are never
// touched.
func (s *Syncer) Sync(ctx context.Context, snap *proxykit.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := plan(snap, s.cfg)
	if err != nil {
		return err
	}
	full := snap.Full() || s.prev == nil || !snap.Node().Equal(s.prevNode)
	var errs errList
	if full {
		s.fullSync(ctx, snap.Node(), st, &errs)
	} else {
		s.partialSync(ctx, st, &errs)
	}
	s.syncRules(ctx, snap, full, &errs)
	if err := errs.err(); err != nil {
		s.prev = nil
		return err
	}
	s.prev, s.prevNode = st, snap.Node()
	s.log.Debug("ipvs: synced", "generation", snap.Generation(), "full", full,
		"services", len(st.Services), "quiesced", len(s.quiesced))
	return nil
}

// fullSync reads back every virtual server and reconciles each.
func (s *Syncer) fullSync(ctx context.Context, node proxykit.Node, st *State, errs *errList) {
	errs.add(s.h.EnsureInterface(ctx, s.cfg.Interface))
	for _, kv := range Sysctls {
		errs.add(s.h.SetSysctl(ctx, kv[0], kv[1]))
	}
	haveAddrs, err := s.h.Addresses(ctx, s.cfg.Interface)
	if err != nil {
		errs.add(err)
		return
	}
	have, err := s.h.Services(ctx)
	if err != nil {
		errs.add(err)
		return
	}
	owns := s.owner(node, haveAddrs, st.Addresses)
	seen := make(map[Key]bool, len(have))
	for i := range have {
		h := &have[i]
		if !owns(h.Key) {
			continue
		}
		seen[h.Key] = true
		want, _ := st.Get(h.Key)
		s.reconcileService(ctx, h.Key, want, h, errs)
	}
	for _, want := range st.Services {
		if !seen[want.Key] {
			s.reconcileService(ctx, want.Key, want, nil, errs)
		}
	}
	// Quiesced servers of virtual servers that are gone.
	for rk := range s.quiesced {
		if !seen[rk.vs] {
			delete(s.quiesced, rk)
		}
	}
	s.reconcileAddresses(ctx, st.Addresses, haveAddrs, errs)
}

// owner returns whether the backend owns a virtual server (SEMANTICS
// §11): its address is on the dummy interface or wanted there, or it is
// one of the node's addresses and its port lies in the NodePort range.
func (s *Syncer) owner(node proxykit.Node, ifaceAddrs, wantAddrs []netip.Addr) func(Key) bool {
	mine := make(map[netip.Addr]bool, len(ifaceAddrs)+len(wantAddrs))
	for _, a := range slices.Concat(ifaceAddrs, wantAddrs) {
		mine[a] = true
	}
	return func(k Key) bool {
		if mine[k.Addr] {
			return true
		}
		return node.HasAddress(k.Addr) && k.Port >= s.cfg.NodePortMin && k.Port <= s.cfg.NodePortMax
	}
}

// partialSync reconciles the virtual servers whose desired state changed
// since the last sync, and those with quiesced real servers.
func (s *Syncer) partialSync(ctx context.Context, st *State, errs *errList) {
	touched := map[Key]bool{}
	for _, v := range st.Services {
		if pv, ok := s.prev.Get(v.Key); !ok || !pv.sameConfig(v) || !slices.Equal(pv.Reals, v.Reals) {
			touched[v.Key] = true
		}
	}
	for _, pv := range s.prev.Services {
		if _, ok := st.Get(pv.Key); !ok {
			touched[pv.Key] = true
		}
	}
	for rk := range s.quiesced {
		touched[rk.vs] = true
	}
	keys := make([]Key, 0, len(touched))
	for k := range touched {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, Key.Compare)
	for _, k := range keys {
		var have *VirtualServer
		switch v, err := s.h.Service(ctx, k); {
		case err == nil:
			have = &v
		case !errors.Is(err, ErrNotFound):
			errs.add(err)
			continue
		}
		want, _ := st.Get(k)
		s.reconcileService(ctx, k, want, have, errs)
	}
	s.reconcileAddresses(ctx, st.Addresses, s.prev.Addresses, errs)
}

// Pending returns the number of quiesced real servers that wait for their
// connections to end: the syncs that follow will delete them.
func (s *Syncer) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.quiesced)
}

// Cleanup deletes what the backend owns: the virtual servers on the dummy
// interface's addresses (and, after a sync, on the node's addresses in
// the NodePort range), the interface, and the companion rules' tables.
func (s *Syncer) Cleanup(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs errList
	addrs, err := s.h.Addresses(ctx, s.cfg.Interface)
	errs.add(err)
	have, err := s.h.Services(ctx)
	errs.add(err)
	owns := s.owner(s.prevNode, addrs, nil)
	for _, v := range have {
		if owns(v.Key) {
			errs.add(ignore(s.h.DeleteService(ctx, v.Key), ErrNotFound))
		}
	}
	errs.add(s.h.DeleteInterface(ctx, s.cfg.Interface))
	errs.add(s.cleanupRules(ctx))
	s.prev, s.rules, s.quiesced = nil, nil, map[realKey]time.Time{}
	if err := errs.err(); err != nil {
		return fmt.Errorf("ipvs: cleanup: %w", err)
	}
	return nil
}
