package nftables

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/proxykit/proxykit"
)

// Option configures a Syncer.
type Option func(*Syncer)

// WithConn sets the kernel access, e.g. a Fake in tests. By default the
// Syncer talks netlink in the current network namespace.
func WithConn(c Conn) Option { return func(s *Syncer) { s.conn = c } }

// WithLogger sets the logger. By default nothing is logged.
func WithLogger(l *slog.Logger) Option { return func(s *Syncer) { s.log = l } }

// Syncer programs snapshots into the kernel: a proxykit.Syncer.
type Syncer struct {
	cfg  Config
	conn Conn
	log  *slog.Logger

	mu sync.Mutex
	// prev is the last snapshot applied, nil when the next sync must be
	// full; claims count its shared elements, per family.
	prev   *proxykit.Snapshot
	claims [2]claims
}

var _ proxykit.Syncer = (*Syncer)(nil)

// NewSyncer returns a Syncer for cfg, or cfg's validation error.
func NewSyncer(cfg Config, opts ...Option) (*Syncer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Syncer{cfg: cfg.withDefaults(), log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(s)
	}
	if s.conn == nil {
		c, err := NewConn(0)
		if err != nil {
			return nil, err
		}
		s.conn = c
	}
	return s, nil
}

// Sync makes the kernel hold exactly the ruleset of snap, in one
// transaction; on error nothing is changed.
//
// A full sync (snap.Full(), the first sync, and any sync after an error)
// adopts the tables of an earlier run (established connections keep their
// conntrack state and survive), replaces every owned chain's rules and
// every static set's elements, and deletes owned objects the snapshot no
// longer needs. A partial sync renders only snap.Changed() ports and sends
// their chains and the map elements that changed: its size does not depend
// on the number of services.
func (s *Syncer) Sync(ctx context.Context, snap *proxykit.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !snap.Full() && s.prev != nil {
		if ops, next, ok := s.partial(snap); ok {
			return s.run(ctx, snap, ops, next)
		}
		s.prev = nil // the claims moved part-way: only a full sync recounts them
	}
	rs, tbs, err := render(snap, s.cfg)
	if err != nil {
		return err
	}
	var ops []Op
	var cl [2]claims
	for i, t := range rs.Tables {
		have, err := s.conn.List(ctx, t.Family, t.Name)
		if err != nil {
			s.prev = nil
			return fmt.Errorf("nftables: list table %s %s: %w", t.Family, t.Name, err)
		}
		ops = append(ops, fullSyncOps(t, have)...)
		cl[i] = claimsOf(tbs[i])
	}
	return s.run(ctx, snap, ops, cl)
}

// partial returns the ops of a partial sync and the claims after it, or
// false when a partial sync would not be exact. It moves the Syncer's
// claims in place, without a copy (they count every element of the
// ruleset): when the partial sync is not exact, or fails, the next sync
// is full and counts them afresh.
func (s *Syncer) partial(snap *proxykit.Snapshot) ([]Op, [2]claims, bool) {
	var next [2]claims
	if !snap.Node().Equal(s.prev.Node()) {
		return nil, next, false
	}
	var ops []Op
	for i, f := range proxykit.Families {
		next[i] = s.claims[i]
		fops, ok := partialOps(s.prev, snap, s.cfg, f, next[i])
		if !ok {
			return nil, next, false
		}
		ops = append(ops, fops...)
	}
	return ops, next, true
}

// run applies ops; on success snap and its claims become the state the
// next partial sync starts from, on error the next sync is full.
func (s *Syncer) run(ctx context.Context, snap *proxykit.Snapshot, ops []Op, cl [2]claims) error {
	if len(ops) > 0 {
		if err := s.conn.Run(ctx, ops); err != nil {
			s.prev = nil
			return err
		}
	}
	s.prev, s.claims = snap, cl
	s.log.Debug("nftables: synced", "generation", snap.Generation(), "full", snap.Full(), "ops", len(ops))
	return nil
}

// fullSyncOps returns the operations that turn a table holding have into
// t. The order is what the kernel needs: objects exist before anything
// refers to them, and references are gone before objects are deleted.
func fullSyncOps(t *Table, have Listing) []Op {
	op := func(k OpKind, name string) Op { return Op{Kind: k, Family: t.Family, Table: t.Name, Name: name} }
	ops := []Op{{Kind: AddTable, Family: t.Family, Table: t.Name, Comment: t.Comment}}
	wantChains := make(map[string]bool, len(t.Chains))
	wantSets := make(map[string]bool, len(t.Sets))
	for _, set := range t.Sets {
		wantSets[set.Name] = true
		o := op(AddSet, set.Name)
		o.Set = set
		ops = append(ops, o)
	}
	for _, c := range t.Chains {
		wantChains[c.Name] = true
		o := op(AddChain, c.Name)
		o.Chain = c
		ops = append(ops, o)
	}
	// Drop every reference: flush all chains (ours and stale) and static
	// sets. Dynamic sets keep their elements: the affinity records.
	for _, name := range have.Chains {
		if !wantChains[name] {
			ops = append(ops, op(FlushChain, name))
		}
	}
	for _, c := range t.Chains {
		ops = append(ops, op(FlushChain, c.Name))
	}
	for _, set := range t.Sets {
		if !set.Dynamic {
			ops = append(ops, op(FlushSet, set.Name))
		}
	}
	for _, set := range t.Sets {
		if len(set.Elements) > 0 {
			o := op(AddElements, set.Name)
			o.Elements = set.Elements
			ops = append(ops, o)
		}
	}
	for _, c := range t.Chains {
		for _, r := range c.Rules {
			o := op(AddRule, c.Name)
			o.Rule = r
			ops = append(ops, o)
		}
	}
	for _, name := range have.Chains {
		if !wantChains[name] {
			ops = append(ops, op(DeleteChain, name))
		}
	}
	for _, name := range have.Sets {
		if !wantSets[name] {
			ops = append(ops, op(DeleteSet, name))
		}
	}
	return ops
}

// Cleanup deletes the tables the backend owns, in both families, in one
// transaction. Absent tables are not an error.
func (s *Syncer) Cleanup(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ops []Op
	for _, fam := range []Family{IPv4, IPv6} {
		have, err := s.conn.List(ctx, fam, s.cfg.Table)
		if err != nil {
			return fmt.Errorf("nftables: list table %s %s: %w", fam, s.cfg.Table, err)
		}
		if have.Exists {
			ops = append(ops, Op{Kind: DeleteTable, Family: fam, Table: s.cfg.Table})
		}
	}
	if len(ops) == 0 {
		return nil
	}
	return s.conn.Run(ctx, ops)
}
