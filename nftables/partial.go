package nftables

import (
	"maps"
	"slices"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/servicemap"
)

// claims counts, per shared set and key, how many service ports put the
// element there: a key leaves the kernel only when its last port lets go
// of it (two services can share an endpoint, and so a hairpin element).
type claims map[string]map[elementKey]int

// contributions returns the elements the builder's ports put into the
// shared sets and maps, before deduplication.
func (tb *tableBuilder) contributions() map[string][]Element {
	hairpin := make([]Element, len(tb.hairpin))
	for i, a := range tb.hairpin {
		hairpin[i] = Element{Addr: a, Addr2: a}
	}
	return map[string][]Element{
		mapServiceIPs:       slices.Concat(tb.serviceIPs[0], tb.serviceIPs[1], tb.serviceIPs[2]),
		mapServiceNodePorts: tb.nodePorts,
		mapNoEndpointIPs:    tb.noEndpointIPs,
		mapNoEndpointNPs:    tb.noEndpoint,
		mapFirewallIPs:      tb.firewallIPs,
		setClusterIPs:       tb.clusterIPs,
		setHairpin:          hairpin,
	}
}

// claimsOf counts the contributions of a full render.
func claimsOf(contrib map[string][]Element) claims {
	c := claims{}
	for set, es := range contrib {
		m := make(map[elementKey]int, len(es))
		for _, e := range es {
			m[e.key()]++
		}
		c[set] = m
	}
	return c
}

// renderPorts renders only the named ports of one family of snap.
func renderPorts(snap *proxykit.Snapshot, cfg Config, f proxykit.Family, names []servicemap.PortName) *tableBuilder {
	tb := newTableBuilder(cfg, snap.Node(), f, len(names))
	fs := snap.Family(f)
	for _, n := range names {
		if ps, ok := fs.Get(n); ok {
			tb.port(ps)
		}
	}
	return tb
}

// partialOps returns the operations that move one family's table from
// prev to snap when only snap.Changed() ports changed: their chains and
// affinity sets, and the shared elements whose claims start or end. It
// updates c in place, and reports false when a partial sync cannot be
// exact (a key claimed twice, whose winner it would have to re-decide):
// then the caller does a full sync and rebuilds the claims.
func partialOps(prev, snap *proxykit.Snapshot, cfg Config, f proxykit.Family, c claims) ([]Op, bool) {
	names := snap.Changed()
	old := renderPorts(prev, cfg, f, names)
	cur := renderPorts(snap, cfg, f, names)
	t := &Table{Family: cur.fam, Name: cfg.Table}
	op := func(k OpKind, name string) Op { return Op{Kind: k, Family: t.Family, Table: t.Name, Name: name} }

	var adds, flushes, rules, dels []Op
	curChains := map[string]bool{}
	for _, ch := range cur.chains {
		curChains[ch.Name] = true
		o := op(AddChain, ch.Name)
		o.Chain = ch
		adds = append(adds, o)
		flushes = append(flushes, op(FlushChain, ch.Name))
		for _, r := range ch.Rules {
			o := op(AddRule, ch.Name)
			o.Rule = r
			rules = append(rules, o)
		}
	}
	for _, s := range cur.sets {
		o := op(AddSet, s.Name)
		o.Set = s
		adds = append(adds, o)
	}
	for _, ch := range old.chains {
		if !curChains[ch.Name] {
			flushes = append(flushes, op(FlushChain, ch.Name))
			dels = append(dels, op(DeleteChain, ch.Name))
		}
	}
	curSets := map[string]bool{}
	for _, s := range cur.sets {
		curSets[s.Name] = true
	}
	for _, s := range old.sets {
		if !curSets[s.Name] {
			dels = append(dels, op(DeleteSet, s.Name))
		}
	}
	elemDels, elemAdds, ok := elementDeltas(t, old.contributions(), cur.contributions(), c)
	if !ok {
		return nil, false
	}
	ops := append(adds, flushes...)
	ops = append(ops, elemDels...)
	ops = append(ops, elemAdds...)
	ops = append(ops, rules...)
	return append(ops, dels...), true
}

// elementDeltas moves the claims of the changed ports from old to cur and
// returns the element deletions and additions that follow.
func elementDeltas(t *Table, old, cur map[string][]Element, c claims) (dels, adds []Op, ok bool) {
	for _, set := range []string{mapServiceIPs, mapServiceNodePorts, mapNoEndpointIPs, mapNoEndpointNPs,
		mapFirewallIPs, setClusterIPs, setHairpin} {
		counts := c[set]
		was := map[elementKey]Element{}
		for _, e := range old[set] {
			if counts[e.key()] > 1 {
				return nil, nil, false
			}
			counts[e.key()]--
			was[e.key()] = e
		}
		var del, add []Element
		for _, e := range cur[set] {
			k := e.key()
			if counts[k] > 0 {
				return nil, nil, false // claimed by an unchanged port too
			}
			counts[k]++
			if prev, had := was[k]; had && prev.String() == e.String() {
				delete(was, k) // unchanged element
				continue
			}
			add = append(add, e)
		}
		// What is left of the old elements is gone, or comes back with
		// another value (deleted here, added above).
		for k, e := range was {
			del = append(del, e)
			if counts[k] == 0 {
				delete(counts, k)
			}
		}
		slices.SortFunc(del, compareElements) // from a map: a deterministic batch
		if len(del) > 0 {
			dels = append(dels, Op{Kind: DeleteElements, Family: t.Family, Table: t.Name, Name: set, Elements: del})
		}
		if len(add) > 0 {
			adds = append(adds, Op{Kind: AddElements, Family: t.Family, Table: t.Name, Name: set, Elements: add})
		}
	}
	return dels, adds, true
}

func (c claims) clone() claims {
	out := make(claims, len(c))
	for set, m := range c {
		out[set] = maps.Clone(m)
	}
	return out
}
