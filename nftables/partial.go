package nftables

import (
	"net/netip"
	"slices"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/servicemap"
)

// claims counts, per shared set and key, how many service ports put the
// element there, and per pick chain how many frontends go to it: a key
// leaves the kernel only when its last port lets go of it (two services
// can share an endpoint, and so a hairpin element), a pick chain when its
// last frontend does.
type claims struct {
	elems map[string]map[elementKey]int
	picks map[pick]int
}

// sharedSets are the sets and maps that several ports can put one key
// in. The backends maps are not: their keys extend the frontends of
// service-ips and service-nodeports, whose claims stand for them.
var sharedSets = []string{mapServiceIPs, mapServiceNodePorts,
	mapNoEndpointIPs, mapNoEndpointNPs, mapFirewallIPs, setClusterIPs, setHairpin}

// contributions returns the elements the builder's ports put into the
// shared sets and maps, before deduplication; slots gives the backends
// maps'.
func (tb *tableBuilder) contributions() map[string][]Element {
	hairpin := make([]Element, len(tb.hairpin))
	for i, a := range tb.hairpin {
		hairpin[i] = Element{Addr: a, Addr2: a}
	}
	return map[string][]Element{
		mapServiceIPs:       slices.Concat(tb.serviceIPs[0].keys, tb.serviceIPs[1].keys, tb.serviceIPs[2].keys),
		mapServiceNodePorts: tb.nodePorts.keys,
		mapNoEndpointIPs:    tb.noEndpointIPs,
		mapNoEndpointNPs:    tb.noEndpoint,
		mapFirewallIPs:      tb.firewallIPs,
		setClusterIPs:       tb.clusterIPs,
		setHairpin:          hairpin,
	}
}

// slots returns the elements the builder's ports put into a backends map.
func (tb *tableBuilder) slots(set string) []Element {
	if set == mapNodePortBackends {
		return tb.nodePorts.slots
	}
	return slices.Concat(tb.serviceIPs[0].slots, tb.serviceIPs[1].slots, tb.serviceIPs[2].slots)
}

// claimsOf counts the contributions of a full render.
func claimsOf(tb *tableBuilder) claims {
	c := claims{elems: map[string]map[elementKey]int{}, picks: map[pick]int{}}
	contrib := tb.contributions()
	for _, set := range sharedSets {
		es := contrib[set]
		m := make(map[elementKey]int, len(es))
		for _, e := range es {
			m[e.key()]++
		}
		c.elems[set] = m
	}
	for _, p := range tb.picks {
		c.picks[p]++
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
	oldC, curC := old.contributions(), cur.contributions()
	elemDels, elemAdds, ok := elementDeltas(t, oldC, curC, c)
	if !ok {
		return nil, false
	}
	for _, set := range []string{mapBackends, mapNodePortBackends} {
		del, add := slotDeltas(old.slots(set), cur.slots(set))
		if len(del) > 0 {
			elemDels = append(elemDels, Op{Kind: DeleteElements, Family: t.Family, Table: t.Name, Name: set, Elements: del})
		}
		if len(add) > 0 {
			elemAdds = append(elemAdds, Op{Kind: AddElements, Family: t.Family, Table: t.Name, Name: set, Elements: add})
		}
	}
	for _, pc := range pickDeltas(cur, old.picks, c) {
		if pc.add {
			o := op(AddChain, pc.chain.Name)
			o.Chain = pc.chain
			adds = append(adds, o)
			for _, r := range pc.chain.Rules {
				o := op(AddRule, pc.chain.Name)
				o.Rule = r
				rules = append(rules, o)
			}
			continue
		}
		dels = append(dels, op(FlushChain, pc.chain.Name), op(DeleteChain, pc.chain.Name))
	}
	ops := append(adds, flushes...)
	ops = append(ops, elemDels...)
	ops = append(ops, elemAdds...)
	ops = append(ops, rules...)
	return append(ops, dels...), true
}

// pickChange is a pick chain that a partial sync adds or deletes.
type pickChange struct {
	chain *Chain
	add   bool
}

// pickDeltas moves the claims on pick chains from the old ports' to
// cur's, and returns the pick chains that come into use or go out of it,
// by name.
func pickDeltas(cur *tableBuilder, old []pick, c claims) []pickChange {
	before := map[pick]int{}
	touch := func(p pick, by int) {
		if _, ok := before[p]; !ok {
			before[p] = c.picks[p]
		}
		c.picks[p] += by
	}
	for _, p := range old {
		touch(p, -1)
	}
	for _, p := range cur.picks {
		touch(p, +1)
	}
	var out []pickChange
	for p, was := range before {
		now := c.picks[p]
		if now == 0 {
			delete(c.picks, p)
		}
		if (was == 0) != (now == 0) {
			out = append(out, pickChange{chain: cur.pickChain(p), add: now > 0})
		}
	}
	slices.SortFunc(out, func(a, b pickChange) int { return compareNames(a.chain.Name, b.chain.Name) })
	return out
}

// elementDeltas moves the claims of the changed ports from old to cur and
// returns the element deletions and additions that follow.
func elementDeltas(t *Table, old, cur map[string][]Element, c claims) (dels, adds []Op, ok bool) {
	for _, set := range sharedSets {
		counts := c.elems[set]
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

// slotDeltas returns the backends elements to delete and to add to move
// from old to cur: those whose key went away or whose endpoint changed,
// and those that are new or changed. The frontends' claims ensure that no
// other port holds these keys.
func slotDeltas(old, cur []Element) (del, add []Element) {
	was := make(map[elementKey]netip.AddrPort, len(old))
	for _, e := range old {
		was[e.key()] = e.To
	}
	for _, e := range cur {
		to, had := was[e.key()]
		delete(was, e.key())
		if had && to == e.To {
			continue
		}
		if had {
			del = append(del, e)
		}
		add = append(add, e)
	}
	for _, e := range old {
		if _, gone := was[e.key()]; gone {
			del = append(del, e)
		}
	}
	return del, add
}
