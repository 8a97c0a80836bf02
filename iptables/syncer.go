package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/proxykit/proxykit"
)

// Option configures a Syncer.
type Option func(*Syncer)

// WithRunner sets the kernel access, e.g. a Fake in tests, or an
// ExecRunner in another network namespace. By default the Syncer runs the
// tools of Config.Variant in the caller's network namespace.
func WithRunner(r Runner) Option { return func(s *Syncer) { s.run = r } }

// WithLogger sets the logger. By default nothing is logged.
func WithLogger(l *slog.Logger) Option { return func(s *Syncer) { s.log = l } }

// Syncer programs snapshots with iptables-restore: a proxykit.Syncer.
type Syncer struct {
	cfg Config
	run Runner
	log *slog.Logger

	mu sync.Mutex
	// prev is the last snapshot applied, nil when the next sync must be
	// full; large is the comment mode it was rendered in.
	prev  *proxykit.Snapshot
	large bool
	// claims count the frontend keys of prev's ports, per family.
	claims [2]map[frontendKey]int
	// installed are the owned chains of each table (IPv4 nat, IPv4
	// filter, IPv6 nat, IPv6 filter) after the last sync; nil: unknown,
	// read them back with iptables-save.
	installed [4]map[string]struct{}
}

var _ proxykit.Syncer = (*Syncer)(nil)

// NewSyncer returns a Syncer for cfg, or cfg's validation error, or the
// error of finding the tools.
func NewSyncer(cfg Config, opts ...Option) (*Syncer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Syncer{cfg: cfg.withDefaults(), log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(s)
	}
	if s.run == nil {
		r, err := NewRunner(cfg.Variant, 0)
		if err != nil {
			return nil, err
		}
		s.run = r
	}
	return s, nil
}

// Sync makes the kernel hold exactly the ruleset of snap, with one
// iptables-restore per table and family that has anything to change.
//
// A full sync (snap.Full(), the first sync, any sync after an error, and
// when a partial sync finds the canary gone) adopts the chains of an
// earlier run, rewrites every owned chain, deletes stale ones and
// ensures the jumps from the built-in chains. A partial sync rewrites
// only the chains of snap.Changed() ports and edits their dispatch rules
// in place: its size does not depend on the number of services. Every
// sync checks the canary rule of each table.
func (s *Syncer) Sync(ctx context.Context, snap *proxykit.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	large := isLarge(snap, s.cfg)
	if !snap.Full() && s.prev != nil && large == s.large && snap.Node().Equal(s.prev.Node()) {
		done, err := s.partialSync(ctx, snap)
		switch {
		case errors.Is(err, ErrCanaryMissing):
			s.log.Info("iptables: canary missing, our rules were flushed: full sync", "error", err)
			s.forget()
		case err != nil:
			s.forget()
			return err
		case done:
			return nil
		}
	}
	return s.fullSync(ctx, snap, large)
}

// forget makes the next sync full and read the kernel's chains.
func (s *Syncer) forget() {
	s.prev = nil
	s.installed = [4]map[string]struct{}{}
}

func (s *Syncer) fullSync(ctx context.Context, snap *proxykit.Snapshot, large bool) error {
	rs, keys := render(snap, s.cfg, large)
	if err := s.fullRestore(ctx, rs); err != nil {
		s.forget()
		return err
	}
	s.large, s.prev = large, snap
	for i := range keys {
		s.claims[i] = claimsOf(keys[i])
	}
	s.log.Debug("iptables: full sync", "generation", snap.Generation())
	return nil
}

// fullRestore restores every table of rs, deleting stale chains. When
// the owned chains are unknown (the first sync, after an error or a
// flush) it reads them with iptables-save, and adds the jumps that
// are missing first, while the tables are small.
func (s *Syncer) fullRestore(ctx context.Context, rs *Ruleset) error {
	var next [4]map[string]struct{}
	for i, t := range rs.Tables {
		want, err := chainSet(t)
		if err != nil {
			return err
		}
		have := s.installed[i]
		if have == nil {
			out, err := s.run.Save(ctx, t.Family, t.Name)
			if err != nil {
				return err
			}
			have = s.ownedOf(out)
			if err := s.ensureJumps(ctx, t.Family, t.Name, out, have); err != nil {
				return err
			}
		}
		var stale []string
		for c := range have {
			if _, ok := want[c]; !ok {
				stale = append(stale, c)
			}
		}
		slices.Sort(stale)
		var decls, dels []byte
		for _, c := range stale {
			decls = append(decls, ":"+c+" - [0:0]\n"...)
			dels = append(dels, "-X "+c+"\n"...)
		}
		if err := s.run.Restore(ctx, t.Family, t.Name, t.parts(decls, dels)); err != nil {
			return err
		}
		next[i] = want
	}
	s.installed = next
	return nil
}

// chainSet returns the chains a table declares; two equal names (a hash
// collision) are an error.
func chainSet(t *Table) (map[string]struct{}, error) {
	names := t.Chains()
	set := make(map[string]struct{}, len(names))
	for _, c := range names {
		if _, dup := set[c]; dup {
			return nil, fmt.Errorf("iptables: %s %s: chain %s is declared twice (a hash collision between two service ports' identities)", t.Family, t.Name, c)
		}
		set[c] = struct{}{}
	}
	return set, nil
}

// ownedChains reads the chains with our prefix from the kernel.
func (s *Syncer) ownedChains(ctx context.Context, fam proxykit.Family, table string) (map[string]struct{}, error) {
	out, err := s.run.Save(ctx, fam, table)
	if err != nil {
		return nil, err
	}
	return s.ownedOf(out), nil
}

// ownedOf returns the chains with our prefix in iptables-save output.
func (s *Syncer) ownedOf(save []byte) map[string]struct{} {
	set := map[string]struct{}{}
	pfx := []byte(":" + s.cfg.Prefix + "-")
	for line := range bytes.Lines(save) {
		if bytes.HasPrefix(line, pfx) {
			if sp := bytes.IndexByte(line, ' '); sp > 0 {
				set[string(line[1:sp])] = struct{}{}
			}
		}
	}
	return set
}

// ensureJumps inserts, with go-iptables, the jumps from the built-in
// chains of one table that save lacks (SEMANTICS §11: the only rules
// outside our chains). Their targets are created first if missing.
func (s *Syncer) ensureJumps(ctx context.Context, fam proxykit.Family, table string, save []byte, have map[string]struct{}) error {
	var missing []jumpRule
	for _, j := range jumpRules(s.cfg.Prefix) {
		if j.table == table && !bytes.Contains(save, []byte("\n-A "+j.chain+" "+specText(j.spec)+"\n")) {
			missing = append(missing, j)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	var decls []byte
	for _, j := range missing {
		target := j.spec[len(j.spec)-1]
		if _, ok := have[target]; !ok && !bytes.Contains(decls, []byte(":"+target+" ")) {
			decls = append(decls, ":"+target+" - [0:0]\n"...)
		}
	}
	if len(decls) > 0 {
		parts := [][]byte{[]byte("*" + table + "\n"), decls, []byte("COMMIT\n")}
		if err := s.run.Restore(ctx, fam, table, parts); err != nil {
			return err
		}
	}
	for _, j := range missing {
		if err := s.run.InsertRule(ctx, fam, table, j.chain, j.pos, j.spec); err != nil {
			return err
		}
	}
	return nil
}

// Cleanup removes the jumps and every chain with the prefix, in both
// families. Absent chains are not an error.
func (s *Syncer) Cleanup(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forget()
	for _, fam := range proxykit.Families {
		for _, j := range jumpRules(s.cfg.Prefix) {
			if err := s.run.DeleteRule(ctx, fam, j.table, j.chain, j.spec); err != nil {
				return err
			}
		}
		for _, table := range []string{tableNAT, tableFilter} {
			have, err := s.ownedChains(ctx, fam, table)
			if err != nil {
				return err
			}
			if len(have) == 0 {
				continue
			}
			var decls, dels []byte
			for c := range have {
				decls = append(decls, ":"+c+" - [0:0]\n"...)
				dels = append(dels, "-X "+c+"\n"...)
			}
			parts := [][]byte{[]byte("*" + table + "\n"), decls, dels, []byte("COMMIT\n")}
			if err := s.run.Restore(ctx, fam, table, parts); err != nil {
				return err
			}
		}
	}
	return nil
}
