package iptables

import (
	"bytes"
	"context"
	"maps"
	"slices"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/servicemap"
)

// claimsOf counts the frontend keys of a full render.
func claimsOf(keys []frontendKey) map[frontendKey]int {
	c := make(map[frontendKey]int, len(keys))
	for _, k := range keys {
		c[k]++
	}
	return c
}

// renderPorts renders only the named ports of one family of snap.
func renderPorts(snap *proxykit.Snapshot, cfg Config, f proxykit.Family, large bool, names []servicemap.PortName) *builder {
	b := newBuilder(cfg, snap.Node(), f, large, 0)
	fs := snap.Family(f)
	for _, n := range names {
		if ps, ok := fs.Get(n); ok {
			b.port(ps)
		}
	}
	return b
}

// moveClaims moves the changed ports' keys from old to cur in c. It
// reports false when a key is, or would be, claimed twice: which port
// wins then depends on the order of all rules, so only a full sync is
// exact.
func moveClaims(c map[frontendKey]int, old, cur []frontendKey) bool {
	for _, k := range old {
		if c[k] != 1 {
			return false
		}
		delete(c, k)
	}
	for _, k := range cur {
		if c[k] > 0 {
			return false
		}
		c[k]++
	}
	return true
}

// tablePatch is the partial restore of one table.
type tablePatch struct {
	fam    proxykit.Family
	table  string
	body   []byte   // everything between the canary check and COMMIT
	added  []string // chains created
	stale  []string // chains deleted
	silent bool     // nothing to change
}

// partialSync applies the changed ports only. It returns false (and no
// error) when the change needs a full sync.
func (s *Syncer) partialSync(ctx context.Context, snap *proxykit.Snapshot) (bool, error) {
	names := snap.Changed()
	var claims [2]map[frontendKey]int
	var patches []tablePatch
	for i, f := range proxykit.Families {
		old := renderPorts(s.prev, s.cfg, f, s.large, names)
		cur := renderPorts(snap, s.cfg, f, s.large, names)
		claims[i] = maps.Clone(s.claims[i])
		if !moveClaims(claims[i], old.keys, cur.keys) {
			return false, nil
		}
		patches = append(patches,
			patchOf(f, tableNAT, s.cfg.Prefix, old.natDecl.bytes(), cur.natDecl.bytes(),
				[][2][]byte{{bytes.Join(old.natSvc[:], nil), bytes.Join(cur.natSvc[:], nil)}, {old.natNP, cur.natNP}}, cur.natRules.bytes()),
			patchOf(f, tableFilter, s.cfg.Prefix, old.filDecl, cur.filDecl,
				[][2][]byte{{old.filFW, cur.filFW}, {old.filSvc, cur.filSvc}, {old.filNP, cur.filNP}}, cur.filRules))
	}
	for i, p := range patches {
		if err := s.applyPatch(ctx, p); err != nil {
			return false, err
		}
		set := s.installed[i]
		for _, c := range p.stale {
			delete(set, c)
		}
		for _, c := range p.added {
			set[c] = struct{}{}
		}
	}
	s.prev, s.claims = snap, claims
	s.log.Debug("iptables: partial sync", "generation", snap.Generation(), "ports", len(names))
	return true, nil
}

// applyPatch restores one table's patch, led by the canary check; a
// table without changes has its canary checked with go-iptables.
func (s *Syncer) applyPatch(ctx context.Context, p tablePatch) error {
	canary := s.cfg.Prefix + "-" + chainCanary
	if p.silent {
		ok, err := s.run.RuleExists(ctx, p.fam, p.table, canary, []string{"-j", "RETURN"})
		if err != nil {
			return err
		}
		if !ok {
			return &RestoreError{Family: p.fam, Table: p.table, Err: ErrCanaryMissing}
		}
		return nil
	}
	head := "*" + p.table + "\n-D " + canary + " -j RETURN\n-A " + canary + " -j RETURN\n"
	return s.run.Restore(ctx, p.fam, p.table, [][]byte{[]byte(head), p.body, []byte("COMMIT\n")})
}

// patchOf builds the partial restore of one table: the changed ports'
// chains declared (created or flushed) and refilled, their dispatch
// rules edited in place (-D the old, -I or -A the new), and chains they
// no longer need flushed and deleted.
func patchOf(fam proxykit.Family, table, prefix string, oldDecl, curDecl []byte, dispatch [][2][]byte, rules []byte) tablePatch {
	p := tablePatch{fam: fam, table: table}
	cur := chainsOf(curDecl)
	curSet := make(map[string]bool, len(cur))
	for _, c := range cur {
		curSet[c] = true
	}
	for _, c := range chainsOf(oldDecl) {
		if !curSet[c] {
			p.stale = append(p.stale, c)
		}
	}
	slices.Sort(p.stale)
	p.added = cur
	var w []byte
	w = append(w, curDecl...)
	for _, c := range p.stale {
		w = append(w, ":"+c+" - [0:0]\n"...)
	}
	edits := 0
	services := "-A " + prefix + "-" + chainServices + " "
	for _, d := range dispatch {
		was, is := lineSet(d[0]), lineSet(d[1])
		for _, l := range linesOf(d[0]) {
			if !is[l] {
				w = append(w, "-D"+l[2:]+"\n"...)
				edits++
			}
		}
		for _, l := range linesOf(d[1]) {
			if was[l] {
				continue
			}
			edits++
			if rest, ok := bytes.CutPrefix([]byte(l), []byte(services)); ok {
				// Before the NodePort jumps, which must stay last.
				w = append(w, "-I "+prefix+"-"+chainServices+" 1 "...)
				w = append(w, rest...)
				w = append(w, '\n')
				continue
			}
			w = append(w, l+"\n"...)
		}
	}
	w = append(w, rules...)
	for _, c := range p.stale {
		w = append(w, "-X "+c+"\n"...)
	}
	p.body = w
	p.silent = len(cur) == 0 && len(p.stale) == 0 && edits == 0
	return p
}

func linesOf(b []byte) []string {
	var out []string
	for l := range bytes.Lines(b) {
		out = append(out, string(bytes.TrimSuffix(l, []byte{'\n'})))
	}
	return out
}

func lineSet(b []byte) map[string]bool {
	m := map[string]bool{}
	for _, l := range linesOf(b) {
		m[l] = true
	}
	return m
}
