package ipvs

import (
	"maps"
	"net/netip"
	"reflect"
	"slices"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/nftables"
	"github.com/proxykit/proxykit/servicemap"
)

// ruleClaims count, per family, how many claims each key of the
// companion maps has (the first claim's element is the one in the map),
// and how many endpoints of the node's ports put each address into the
// hairpin set: a partial sync moves the claims of the changed ports, and
// an element leaves the kernel only when its last claim does.
type ruleClaims struct {
	fam [2]familyClaims
}

type familyClaims struct {
	maps    [numMaps]map[mapKey]int
	hairpin map[netip.Addr]int
}

// The companion maps whose elements the ports claim, in the order of
// ruleBuilder.maps.
const numMaps = 7

var mapNames = [numMaps]string{mapServiceIPs, mapServiceNPs, mapShortCircuit, mapShortCircuitNPs,
	mapNoEndpointIPs, mapNoEndpointNPs, mapFirewallIPs}

func (rb *ruleBuilder) maps() [numMaps]*elements {
	return [numMaps]*elements{&rb.serviceIPs, &rb.serviceNPs, &rb.shortCircuit, &rb.shortCircuitNPs,
		&rb.noEndpointIPs, &rb.noEndpointNPs, &rb.fwIPs}
}

// claims returns the claims of the builder's ports. They take over the
// builder's counts.
func (rb *ruleBuilder) claims() familyClaims {
	var c familyClaims
	for i, es := range rb.maps() {
		c.maps[i] = es.seen
		if c.maps[i] == nil {
			c.maps[i] = map[mapKey]int{}
		}
	}
	c.hairpin = make(map[netip.Addr]int, len(rb.hairpin))
	for _, a := range rb.hairpin {
		c.hairpin[a]++
	}
	return c
}

// buildPorts renders the named ports of one family of snap, without the
// table around them.
func buildPorts(snap *proxykit.Snapshot, cfg Config, f proxykit.Family, names []servicemap.PortName) *ruleBuilder {
	rb := newRuleBuilder(cfg, snap.Node(), f)
	fs := snap.Family(f)
	for _, n := range names {
		if ps, ok := fs.Get(n); ok {
			rb.port(ps)
		}
	}
	return rb
}

// partialRuleOps returns the operations that move the companion tables
// from prev's rules to snap's when only snap.Changed() ports changed, and
// moves cl to snap's claims. It reports false, leaving cl as it is, when
// a partial sync cannot be exact: a changed port's map key is also
// claimed by a port that did not change (the first claim wins, and a
// partial sync would have to re-decide which), or the claims are out of
// step. Then the caller replaces the tables.
func partialRuleOps(prev, snap *proxykit.Snapshot, cfg Config, cl *ruleClaims) ([]nftables.Op, bool) {
	names := snap.Changed()
	var olds, curs [2]*ruleBuilder
	for i, f := range proxykit.Families {
		olds[i], curs[i] = buildPorts(prev, cfg, f, names), buildPorts(snap, cfg, f, names)
		fc := &cl.fam[i]
		om, cm := olds[i].maps(), curs[i].maps()
		for m := range numMaps {
			for k, n := range om[m].seen {
				if fc.maps[m][k] != n {
					return nil, false
				}
			}
			for k := range cm[m].seen {
				if fc.maps[m][k] != om[m].seen[k] {
					return nil, false
				}
			}
		}
		for _, a := range olds[i].hairpin {
			if fc.hairpin[a] == 0 {
				return nil, false
			}
		}
	}
	var chainAdds, flushes, elemDels, elemAdds, ruleAdds, chainDels []nftables.Op
	for i := range proxykit.Families {
		old, cur, fc := olds[i], curs[i], &cl.fam[i]
		op := func(k nftables.OpKind, name string) nftables.Op {
			return nftables.Op{Kind: k, Family: cur.fam, Table: cfg.Table, Name: name}
		}
		elems := func(set string, del, add []nftables.Element) {
			if len(del) > 0 {
				o := op(nftables.DeleteElements, set)
				o.Elements = del
				elemDels = append(elemDels, o)
			}
			if len(add) > 0 {
				o := op(nftables.AddElements, set)
				o.Elements = add
				elemAdds = append(elemAdds, o)
			}
		}
		// The firewall chains of the changed ports.
		oldChains := make(map[string]*nftables.Chain, len(old.chains))
		for _, c := range old.chains {
			oldChains[c.Name] = c
		}
		for _, c := range cur.chains {
			was, had := oldChains[c.Name]
			delete(oldChains, c.Name)
			if had && reflect.DeepEqual(was.Rules, c.Rules) {
				continue
			}
			o := op(nftables.AddChain, c.Name)
			o.Chain = c
			chainAdds = append(chainAdds, o)
			if had {
				flushes = append(flushes, op(nftables.FlushChain, c.Name))
			}
			for _, r := range c.Rules {
				o := op(nftables.AddRule, c.Name)
				o.Rule = r
				ruleAdds = append(ruleAdds, o)
			}
		}
		for _, c := range old.chains {
			if _, gone := oldChains[c.Name]; gone {
				chainDels = append(chainDels, op(nftables.FlushChain, c.Name), op(nftables.DeleteChain, c.Name))
			}
		}
		// The maps: the changed ports hold every claim on their keys.
		om, cm := old.maps(), cur.maps()
		for m := range numMaps {
			was := make(map[mapKey]nftables.Element, len(om[m].list))
			for _, e := range om[m].list {
				was[mapKey{e.Addr, e.Proto, e.Port}] = e
			}
			var del, add []nftables.Element
			for _, e := range cm[m].list {
				k := mapKey{e.Addr, e.Proto, e.Port}
				if p, ok := was[k]; ok && keyOf(p) == keyOf(e) {
					delete(was, k)
					continue
				}
				add = append(add, e)
			}
			for _, e := range om[m].list {
				if _, left := was[mapKey{e.Addr, e.Proto, e.Port}]; left {
					del = append(del, e) // gone, or back with other data
				}
			}
			elems(mapNames[m], del, add)
			for k := range om[m].seen {
				delete(fc.maps[m], k)
			}
			for k, n := range cm[m].seen {
				fc.maps[m][k] = n
			}
		}
		// The hairpin set: an address goes with its last claim.
		delta := map[netip.Addr]int{}
		for _, a := range old.hairpin {
			delta[a]--
		}
		for _, a := range cur.hairpin {
			delta[a]++
		}
		var del, add []nftables.Element
		for _, a := range slices.SortedFunc(maps.Keys(delta), netip.Addr.Compare) {
			before := fc.hairpin[a]
			after := before + delta[a]
			if after <= 0 {
				delete(fc.hairpin, a)
			} else {
				fc.hairpin[a] = after
			}
			switch {
			case before == 0 && after > 0:
				add = append(add, nftables.Element{Addr: a, Addr2: a})
			case before > 0 && after <= 0:
				del = append(del, nftables.Element{Addr: a, Addr2: a})
			}
		}
		elems(setHairpin, del, add)
	}
	return slices.Concat(chainAdds, flushes, elemDels, elemAdds, ruleAdds, chainDels), true
}
