package nftables

import (
	"net/netip"
	"slices"

	"github.com/proxykit/proxykit/internal/cidr"
)

// table assembles the collected objects with the fixed chains and sets.
func (tb *tableBuilder) table() *Table {
	// No table comment: google/nftables cannot set a table's userdata.
	t := &Table{Family: tb.fam, Name: tb.cfg.Table}
	// Fixed objects first, sorted by name; then the per-port ones in the
	// order of the snapshot's ports. Deterministic without sorting 30k
	// names.
	t.Sets = tb.fixedSets()
	slices.SortFunc(t.Sets, func(a, b *Set) int { return compareNames(a.Name, b.Name) })
	t.Sets = append(t.Sets, tb.sets...)
	t.Chains = append(tb.fixedChains(), tb.pickChains()...)
	slices.SortFunc(t.Chains, func(a, b *Chain) int { return compareNames(a.Name, b.Name) })
	t.Chains = append(t.Chains, tb.chains...)
	return t
}

func compareNames(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (tb *tableBuilder) fixedSets() []*Set {
	verdictMap := func(name, typ string, elems []Element) *Set {
		return &Set{Name: name, Type: typ, Data: "verdict", Elements: elems}
	}
	addrProtoPort := tb.addrType + " . inet_proto . inet_service"
	// A sorted copy: tb.hairpin keeps its repeats, which count as claims.
	local := slices.Clone(tb.hairpin)
	slices.SortFunc(local, netip.Addr.Compare)
	local = slices.Compact(local)
	hairpin := make([]Element, len(local))
	for i, a := range local {
		hairpin[i] = Element{Addr: a, Addr2: a}
	}
	// ClusterIPs first, then ExternalIPs, then LB IPs: the first of equal
	// keys wins, as in proxykit.Explain.
	serviceIPs, backends := winners(&tb.serviceIPs[0], &tb.serviceIPs[1], &tb.serviceIPs[2])
	nodePorts, npBackends := winners(&tb.nodePorts)
	fam := string(tb.fam)
	sets := []*Set{
		verdictMap(mapServiceIPs, addrProtoPort, serviceIPs),
		verdictMap(mapServiceNodePorts, "inet_proto . inet_service", nodePorts),
		{Name: mapBackends, Typeof: true, Elements: backends,
			Type: fam + " daddr . meta l4proto . th dport . numgen random mod 1", Data: fam + " daddr . th dport"},
		{Name: mapNodePortBackends, Typeof: true, Elements: npBackends,
			Type: "meta l4proto . th dport . numgen random mod 1", Data: fam + " daddr . th dport"},
		verdictMap(mapNoEndpointIPs, addrProtoPort, unique(tb.noEndpointIPs)),
		verdictMap(mapNoEndpointNPs, "inet_proto . inet_service", unique(tb.noEndpoint)),
		verdictMap(mapFirewallIPs, addrProtoPort, unique(tb.firewallIPs)),
		{Name: setClusterIPs, Type: tb.addrType, Elements: unique(tb.clusterIPs)},
		{Name: setHairpin, Type: tb.addrType + " . " + tb.addrType, Elements: hairpin},
		tb.prefixSet(setClusterCIDRs, tb.cfg.ClusterCIDRs),
		tb.prefixSet(setLocalPods, tb.cfg.LocalPodCIDRs),
	}
	if len(tb.cfg.NodePortAddresses) > 0 {
		sets = append(sets, tb.prefixSet(setNodePortAddresses, tb.cfg.NodePortAddresses))
	}
	return sets
}

// prefixSet is an interval set of the prefixes of this family.
func (tb *tableBuilder) prefixSet(name string, ps []netip.Prefix) *Set {
	s := &Set{Name: name, Type: tb.addrType, Interval: true}
	for _, p := range cidr.Minimal(cidr.OfFamily(ps, tb.pf)) {
		s.Elements = append(s.Elements, PrefixElement(p))
	}
	return s
}

// unique keeps the first element of each key, in order. Two service ports
// can claim one key (an ExternalIP that is another service's ClusterIP);
// a set must not hold it twice.
func unique(es []Element) []Element {
	if len(es) < 2 {
		return es
	}
	seen := make(map[elementKey]struct{}, len(es))
	out := make([]Element, 0, len(es))
	for _, e := range es {
		k := e.key()
		if _, dup := seen[k]; !dup {
			seen[k] = struct{}{}
			out = append(out, e)
		}
	}
	return out
}

// pickChains returns the pick chains in use, once each.
func (tb *tableBuilder) pickChains() []*Chain {
	seen := map[pick]bool{}
	var out []*Chain
	for _, p := range tb.picks {
		if !seen[p] {
			seen[p] = true
			out = append(out, tb.pickChain(p))
		}
	}
	return out
}

func (tb *tableBuilder) fixedChains() []*Chain {
	base := func(name, typ, hook, prio string, rules ...Rule) *Chain {
		return &Chain{Name: name, Hook: &Hook{Type: typ, Hook: hook, Priority: prio}, Rules: rules}
	}
	newOnly := func(to string) Rule { return Rule{CtStateNew{}, Jump(to)} }
	mark := tb.cfg.MasqueradeMark
	return []*Chain{
		base(chainNatPrerouting, "nat", "prerouting", "dstnat", Rule{Jump(chainServices)}),
		base(chainNatOutput, "nat", "output", "-100", Rule{Jump(chainServices)}),
		base(chainNatPostrouting, "nat", "postrouting", "srcnat", Rule{Jump(chainMasquerading)}),
		base(chainFilterPre, "filter", "prerouting", "dstnat - 10", newOnly(chainFirewallCheck)),
		base(chainFilterOutputFW, "filter", "output", "-110", newOnly(chainFirewallCheck)),
		base(chainFilterInput, "filter", "input", "filter - 10", newOnly(chainEndpointsCheck)),
		base(chainFilterForward, "filter", "forward", "filter - 10", newOnly(chainEndpointsCheck)),
		base(chainFilterOutput, "filter", "output", "filter - 10", newOnly(chainEndpointsCheck)),
		{Name: chainServices, Rules: []Rule{
			{VmapDaddrProtoPort{Map: mapServiceIPs}},
			append(tb.nodePortMatch(), VmapProtoPort{Map: mapServiceNodePorts}),
		}},
		{Name: chainMasquerading, Rules: []Rule{
			{CtStatusDnat{}, SaddrDaddrInSet{Set: setHairpin}, Masquerade{}},
			{MarkUnset{Mark: mark}, Return},
			{MarkXor{Mark: mark}},
			{Masquerade{}},
		}},
		{Name: chainFirewallCheck, Rules: []Rule{{VmapDaddrProtoPort{Map: mapFirewallIPs}}}},
		{Name: chainEndpointsCheck, Rules: []Rule{
			{VmapDaddrProtoPort{Map: mapNoEndpointIPs}},
			append(tb.nodePortMatch(), VmapProtoPort{Map: mapNoEndpointNPs}),
			{DaddrInSet{Set: setClusterIPs}, Goto(chainReject)},
		}},
		{Name: chainReject, Rules: []Rule{{Reject{}}}},
		{Name: chainExternalDrop, Rules: []Rule{
			{SaddrInSet{Set: setLocalPods}, Goto(chainReject)},
			{FibLocal{}, Goto(chainReject)},
			{Drop},
		}},
	}
}

// nodePortMatch matches the destinations that serve NodePorts: local
// addresses except loopback, or those in NodePortAddresses (SEMANTICS §8).
func (tb *tableBuilder) nodePortMatch() Rule {
	if len(tb.cfg.NodePortAddresses) > 0 {
		return Rule{FibLocal{Daddr: true}, DaddrInSet{Set: setNodePortAddresses}}
	}
	return Rule{FibLocal{Daddr: true}, DaddrNotLoopback{}}
}
