package ipvs

import (
	"net/netip"
	"slices"
	"strconv"

	"github.com/proxykit/proxykit/internal/cidr"
	"github.com/proxykit/proxykit/nftables"
)

func itoa(n int) string { return strconv.Itoa(n) }

// table assembles the collected elements with the fixed sets and chains.
func (rb *ruleBuilder) table() *nftables.Table {
	t := &nftables.Table{Family: rb.fam, Name: rb.cfg.Table}
	t.Sets = rb.sets()
	t.Chains = append(rb.fixedChains(), rb.chains...)
	return t
}

func (rb *ruleBuilder) sets() []*nftables.Set {
	vmap := func(name, typ string, es elements) *nftables.Set {
		return &nftables.Set{Name: name, Type: typ, Data: "verdict", Elements: es.list}
	}
	fam := string(rb.fam)
	addrProtoPort := rb.addrType + " . inet_proto . inet_service"
	local := slices.Clone(rb.hairpin)
	slices.SortFunc(local, netip.Addr.Compare)
	local = slices.Compact(local)
	hairpin := make([]nftables.Element, len(local))
	for i, a := range local {
		hairpin[i] = nftables.Element{Addr: a, Addr2: a}
	}
	sets := []*nftables.Set{
		vmap(mapServiceIPs, addrProtoPort, rb.serviceIPs),
		vmap(mapServiceNPs, "inet_proto . inet_service", rb.serviceNPs),
		{Name: mapShortCircuit, Typeof: true, Elements: rb.shortCircuit.list,
			Type: fam + " daddr . meta l4proto . th dport . numgen random mod 1", Data: fam + " daddr . th dport"},
		{Name: mapShortCircuitNPs, Typeof: true, Elements: rb.shortCircuitNPs.list,
			Type: "meta l4proto . th dport . numgen random mod 1", Data: fam + " daddr . th dport"},
		vmap(mapNoEndpointIPs, addrProtoPort, rb.noEndpointIPs),
		vmap(mapNoEndpointNPs, "inet_proto . inet_service", rb.noEndpointNPs),
		vmap(mapFirewallIPs, addrProtoPort, rb.fwIPs),
		{Name: setHairpin, Type: rb.addrType + " . " + rb.addrType, Elements: hairpin},
		rb.prefixSet(setClusterCIDRs, rb.cfg.ClusterCIDRs),
		rb.prefixSet(setLocalPods, rb.cfg.LocalPodCIDRs),
	}
	if len(rb.cfg.NodePortAddresses) > 0 {
		sets = append(sets, rb.prefixSet(setNodePortAddrs, rb.cfg.NodePortAddresses))
	}
	return sets
}

// prefixSet is an interval set of the prefixes of this family.
func (rb *ruleBuilder) prefixSet(name string, ps []netip.Prefix) *nftables.Set {
	s := &nftables.Set{Name: name, Type: rb.addrType, Interval: true}
	var mine []netip.Prefix
	for _, p := range ps {
		if rb.pf.Contains(p.Addr()) {
			mine = append(mine, p)
		}
	}
	for _, p := range cidr.Minimal(mine) {
		s.Elements = append(s.Elements, nftables.PrefixElement(p))
	}
	return s
}

// fixedChains are the base chains and the shared chains. Priorities
// around IPVS's hooks: IPVS schedules and DNATs in LOCAL_IN at priority
// 98-99 and in LOCAL_OUT at -98; the nat chains (-100) and the filter
// chains run before it, filter-output (-99) after nat-output so that it
// sees the short circuit's DNAT.
func (rb *ruleBuilder) fixedChains() []*nftables.Chain {
	base := func(name, typ, hook, prio string, rules ...nftables.Rule) *nftables.Chain {
		return &nftables.Chain{Name: name, Hook: &nftables.Hook{Type: typ, Hook: hook, Priority: prio}, Rules: rules}
	}
	newOnly := func(to string) nftables.Rule { return nftables.Rule{nftables.CtStateNew{}, nftables.Jump(to)} }
	mark := nftables.MarkOr{Mark: rb.cfg.MasqueradeMark}
	markInternal := nftables.Rule{nftables.SaddrInSet{Set: setClusterCIDRs, Negate: true}, mark}
	if rb.cfg.MasqueradeAll {
		markInternal = nftables.Rule{mark}
	}
	return []*nftables.Chain{
		base(chainNatPrerouting, "nat", "prerouting", "dstnat", nftables.Rule{nftables.Jump(chainServices)}),
		base(chainNatOutput, "nat", "output", "-100", nftables.Rule{nftables.Jump(chainServices)}),
		base(chainNatPostrouting, "nat", "postrouting", "srcnat", nftables.Rule{nftables.Jump(chainMasquerading)}),
		base(chainFilterPre, "filter", "prerouting", "dstnat - 10", newOnly(chainFirewallCheck)),
		base(chainFilterOutFW, "filter", "output", "-110", newOnly(chainFirewallCheck)),
		base(chainFilterInput, "filter", "input", "filter - 10", newOnly(chainEndpointsCheck)),
		base(chainFilterOutput, "filter", "output", "-99", newOnly(chainEndpointsCheck)),
		{Name: chainServices, Rules: []nftables.Rule{
			{nftables.VmapDaddrProtoPort{Map: mapServiceIPs}},
			append(rb.nodePortMatch(), nftables.VmapProtoPort{Map: mapServiceNPs}),
		}},
		{Name: chainMarkInternal, Rules: []nftables.Rule{markInternal}},
		{Name: chainMarkExternal, Rules: []nftables.Rule{{mark}}},
		{Name: chainExtLocal, Rules: rb.shortCircuitRules(mark, false)},
		{Name: chainExtLocalNP, Rules: rb.shortCircuitRules(mark, true)},
		{Name: chainMasquerading, Rules: []nftables.Rule{
			{nftables.SaddrDaddrInSet{Set: setHairpin}, nftables.Masquerade{}},
			{nftables.MarkUnset{Mark: rb.cfg.MasqueradeMark}, nftables.Return},
			{nftables.MarkXor{Mark: rb.cfg.MasqueradeMark}},
			{nftables.Masquerade{}},
		}},
		{Name: chainFirewallCheck, Rules: []nftables.Rule{{nftables.VmapDaddrProtoPort{Map: mapFirewallIPs}}}},
		{Name: chainEndpointsCheck, Rules: []nftables.Rule{
			{nftables.VmapDaddrProtoPort{Map: mapNoEndpointIPs}},
			append(rb.nodePortMatch(), nftables.VmapProtoPort{Map: mapNoEndpointNPs}),
		}},
		{Name: chainReject, Rules: []nftables.Rule{{nftables.Reject{}}}},
		{Name: chainExternalDrop, Rules: []nftables.Rule{
			{nftables.SaddrInSet{Set: setLocalPods}, nftables.Goto(chainReject)},
			{nftables.FibLocal{}, nftables.Goto(chainReject)},
			{nftables.Drop},
		}},
	}
}

// shortCircuitRules send traffic from local pods and from the node to an
// external frontend with external policy Local to the ClusterIP, whose
// virtual server balances over the Cluster set (SEMANTICS §2); the node's
// traffic is masqueraded, and local pods' with MasqueradeAll (§7). Other
// traffic goes on unmarked to the frontend's own virtual server.
func (rb *ruleBuilder) shortCircuitRules(mark nftables.MarkOr, nodePort bool) []nftables.Rule {
	dnat := nftables.DnatMap{Map: mapShortCircuit, Slots: 1}
	if nodePort {
		dnat = nftables.DnatMap{Map: mapShortCircuitNPs, Slots: 1, NodePort: true}
	}
	var rs []nftables.Rule
	if rb.cfg.MasqueradeAll {
		rs = append(rs, nftables.Rule{nftables.SaddrInSet{Set: setLocalPods}, mark})
	}
	return append(rs,
		nftables.Rule{nftables.SaddrInSet{Set: setLocalPods}, dnat},
		nftables.Rule{nftables.FibLocal{}, mark},
		nftables.Rule{nftables.FibLocal{}, dnat},
	)
}

// nodePortMatch matches the destinations that serve NodePorts (SEMANTICS
// §8).
func (rb *ruleBuilder) nodePortMatch() nftables.Rule {
	if len(rb.cfg.NodePortAddresses) > 0 {
		return nftables.Rule{nftables.FibLocal{Daddr: true}, nftables.DaddrInSet{Set: setNodePortAddrs}}
	}
	return nftables.Rule{nftables.FibLocal{Daddr: true}, nftables.DaddrNotLoopback{}}
}
