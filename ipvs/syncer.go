package ipvs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
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
	// prev is the snapshot the kernel was last brought to, nil when the
	// next sync must be full; prevNode is its node. claims and ifaceRefs
	// are those of its plan (State.claims, State.ifaceRefs), kept up to
	// date by partial syncs.
	prev      *proxykit.Snapshot
	prevNode  proxykit.Node
	claims    map[Key]int
	ifaceRefs map[netip.Addr]int
	// rules are the claims of the companion rules last applied, nil when
	// they must be applied whole again.
	rules *ruleClaims
	// quiesced holds, per virtual server, the real servers at weight 0
	// that wait for their connections to end, with the time they were
	// quiesced (or first seen quiesced, after a restart).
	quiesced map[Key]map[netip.AddrPort]time.Time
	// partials counts the syncs of IPVS done partially, for tests.
	partials int
}

var _ proxykit.Syncer = (*Syncer)(nil)

// NewSyncer returns a Syncer for cfg, or cfg's validation error.
func NewSyncer(cfg Config, opts ...Option) (*Syncer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Syncer{cfg: cfg.withDefaults(), log: slog.New(slog.DiscardHandler), now: time.Now, quiesced: map[Key]map[netip.AddrPort]time.Time{}}
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
// difference. A partial sync plans only snap.Changed() ports, in the
// previous snapshot and in snap, reads back only the virtual servers
// whose desired state differs between the two, and checks the quiesced
// real servers of the others: its cost follows the change, not the
// number of services. When a changed port shares a virtual server's key
// with a port that did not change, the sync is full. An error part-way
// leaves the rest applied; the next sync, full, repairs it. Virtual
// servers on addresses the backend does not own are never touched.
func (s *Syncer) Sync(ctx context.Context, snap *proxykit.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	full := snap.Full() || s.prev == nil || !snap.Node().Equal(s.prevNode)
	var errs errList
	services := 0 // planned: all on a full sync, none counted on a partial one
	if !full {
		ok, err := s.partialSync(ctx, snap, &errs)
		if err != nil {
			return err
		}
		full = !ok
		if ok {
			s.partials++
		}
	}
	if full {
		st, err := plan(snap, s.cfg)
		if err != nil {
			return err
		}
		s.fullSync(ctx, snap.Node(), st, &errs)
		s.claims, s.ifaceRefs = st.claims, st.ifaceRefs
		services = len(st.Services)
	}
	s.syncRules(ctx, snap, full, &errs)
	if err := errs.err(); err != nil {
		s.prev = nil
		return err
	}
	s.prev, s.prevNode = snap, snap.Node()
	s.log.Debug("ipvs: synced", "generation", snap.Generation(), "full", full,
		"services", services, "changed", len(snap.Changed()), "quiesced", len(s.quiesced))
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
	for k := range s.quiesced {
		if !seen[k] {
			delete(s.quiesced, k)
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

// partialSync brings the kernel from s.prev to snap when only
// snap.Changed() ports changed: it plans those ports in both snapshots,
// reconciles the virtual servers whose plan differs (reading back only
// them), checks the quiesced real servers of the other virtual servers,
// and adds and deletes the interface's addresses whose count of virtual
// servers starts or ends. It reports false, having changed nothing, when
// a partial sync cannot be exact: a changed port's key is also claimed
// by a port that did not change, whose claim order it would have to
// re-decide. The error is snap's plan error.
func (s *Syncer) partialSync(ctx context.Context, snap *proxykit.Snapshot, errs *errList) (bool, error) {
	names := snap.Changed()
	cur, err := planPorts(snap, s.cfg, names, false)
	if err != nil {
		return false, err
	}
	old, err := planPorts(s.prev, s.cfg, names, false)
	if err != nil {
		return false, nil
	}
	for k, n := range old.claims {
		if s.claims[k] != n {
			return false, nil
		}
	}
	for k := range cur.claims {
		if s.claims[k] != old.claims[k] {
			return false, nil
		}
	}
	ifaceDelta := make(map[netip.Addr]int, len(old.ifaceRefs)+len(cur.ifaceRefs))
	for a, n := range old.ifaceRefs {
		ifaceDelta[a] -= n
	}
	for a, n := range cur.ifaceRefs {
		ifaceDelta[a] += n
	}
	for a, d := range ifaceDelta {
		if s.ifaceRefs[a]+d < 0 {
			return false, nil // out of step: only a full sync recounts
		}
	}
	// Exact: move the counts to snap's.
	for k := range old.claims {
		delete(s.claims, k)
	}
	maps.Copy(s.claims, cur.claims)
	var addAddrs, delAddrs []netip.Addr
	for a, d := range ifaceDelta {
		before := s.ifaceRefs[a]
		after := before + d
		if after == 0 {
			delete(s.ifaceRefs, a)
		} else {
			s.ifaceRefs[a] = after
		}
		switch {
		case before == 0 && after > 0:
			addAddrs = append(addAddrs, a)
		case before > 0 && after == 0:
			delAddrs = append(delAddrs, a)
		}
	}

	touched := map[Key]bool{}
	for _, v := range old.Services {
		if w, ok := cur.Get(v.Key); !ok || !w.sameConfig(v) || !slices.Equal(w.Reals, v.Reals) {
			touched[v.Key] = true
		}
	}
	for _, w := range cur.Services {
		if _, ok := old.Get(w.Key); !ok {
			touched[w.Key] = true
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(touched), Key.Compare) {
		var have *VirtualServer
		switch v, err := s.h.Service(ctx, k); {
		case err == nil:
			have = &v
		case !errors.Is(err, ErrNotFound):
			errs.add(err)
			continue
		}
		want, _ := cur.Get(k)
		s.reconcileService(ctx, k, want, have, errs)
	}
	// The quiesced real servers of the virtual servers left alone.
	var waiting []Key
	for k := range s.quiesced {
		if !touched[k] {
			waiting = append(waiting, k)
		}
	}
	slices.SortFunc(waiting, Key.Compare)
	for _, k := range waiting {
		s.checkQuiesced(ctx, k, errs)
	}
	slices.SortFunc(addAddrs, netip.Addr.Compare)
	slices.SortFunc(delAddrs, netip.Addr.Compare)
	s.changeAddresses(ctx, addAddrs, delAddrs, errs)
	return true, nil
}

// Pending returns the number of quiesced real servers that wait for their
// connections to end: the syncs that follow will delete them.
func (s *Syncer) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, qs := range s.quiesced {
		n += len(qs)
	}
	return n
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
	s.prev, s.rules, s.quiesced = nil, nil, map[Key]map[netip.AddrPort]time.Time{}
	if err := errs.err(); err != nil {
		return fmt.Errorf("ipvs: cleanup: %w", err)
	}
	return nil
}
