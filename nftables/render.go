package nftables

import (
	"cmp"
	"errors"
	"net/netip"
	"slices"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/internal/cidr"
	"github.com/proxykit/proxykit/servicemap"
)

// Render returns the ruleset that programs snap: one table per family.
// It is pure and deterministic: the same snapshot and config give a
// byte-identical String.
func Render(snap *proxykit.Snapshot, cfg Config) (*Ruleset, error) {
	rs, _, err := render(snap, cfg)
	return rs, err
}

// render is Render, also returning each family's builder.
func render(snap *proxykit.Snapshot, cfg Config) (*Ruleset, [2]*tableBuilder, error) {
	var tbs [2]*tableBuilder
	if err := cfg.Validate(); err != nil {
		return nil, tbs, err
	}
	if snap == nil {
		return nil, tbs, errors.New("nftables: Render: nil snapshot")
	}
	cfg = cfg.withDefaults()
	rs := &Ruleset{}
	for i, f := range proxykit.Families {
		tb := newTableBuilder(cfg, snap.Node(), f, snap.Family(f).Len())
		// Room for a slot per endpoint of each ClusterIP: weights of 1 and
		// no topology filter, the common case, need exactly that.
		eps := 0
		for ps := range snap.Family(f).Ports() {
			eps += len(ps.Endpoints.All)
		}
		tb.serviceIPs[0].slots = make([]Element, 0, eps)
		for ps := range snap.Family(f).Ports() {
			tb.port(ps)
		}
		tbs[i] = tb
		rs.Tables = append(rs.Tables, tb.table())
	}
	return rs, tbs, nil
}

// tableBuilder collects the objects of one family's table.
type tableBuilder struct {
	fam      Family
	addrType string
	cfg      Config
	node     proxykit.Node
	pf       proxykit.Family

	// serviceIPs by frontend kind: ClusterIPs, ExternalIPs, LB IPs. When
	// two ports claim one key, the first kind wins, then the first port,
	// as in proxykit.Explain.
	serviceIPs                [3]frontends
	nodePorts                 frontends
	noEndpointIPs, noEndpoint []Element // by address, by node port
	firewallIPs, clusterIPs   []Element
	hairpin                   []netip.Addr // local endpoints, may repeat
	picks                     []pick       // the pick chains used, may repeat
	chains                    []*Chain
	sets                      []*Set
}

func newTableBuilder(cfg Config, node proxykit.Node, f proxykit.Family, ports int) *tableBuilder {
	tb := &tableBuilder{fam: IPv4, addrType: "ipv4_addr", cfg: cfg, node: node, pf: f}
	// One ClusterIP frontend per port.
	tb.serviceIPs[0].keys = make([]Element, 0, ports)
	tb.serviceIPs[0].spans = make([]span, 0, ports)
	tb.clusterIPs = make([]Element, 0, ports)
	tb.picks = make([]pick, 0, ports)
	if f == proxykit.IPv6 {
		tb.fam, tb.addrType = IPv6, "ipv6_addr"
	}
	return tb
}

func (tb *tableBuilder) addChain(name string, rules ...Rule) {
	tb.chains = append(tb.chains, &Chain{Name: name, Rules: rules})
}

// port adds the objects of one service port (SEMANTICS §2–§7), in map
// mode when it can (see mapped.go), else with chains of its own.
func (tb *tableBuilder) port(ps *proxykit.PortState) {
	sp := ps.Port
	internal := ps.Endpoints.Cluster
	if sp.InternalTrafficPolicy == servicemap.Local {
		internal = ps.Endpoints.Local
	}
	key := Element{Addr: ps.ClusterIP, Proto: sp.Protocol, Port: sp.Port}
	isMapped := mapped(ps, internal)
	var n portNames // the names of the port's own chains, if it has any
	if !isMapped || ps.Firewalled {
		n = namesOf(ps.Name)
	}
	switch {
	case isMapped && len(internal) > 0:
		tb.addMapped(&tb.serviceIPs[0], key, pickInternal, internal)
	case !isMapped:
		svc := n.chain("svc")
		tb.addChain(svc, append([]Rule{tb.masqueradeInternal()}, tb.dispatch(n, sp, internal)...)...)
		tb.serviceIPs[0].add(withVerdict(key, Goto(svc)))
	}
	tb.clusterIPs = append(tb.clusterIPs, Element{Addr: ps.ClusterIP})
	if len(internal) == 0 {
		tb.noEndpointIPs = append(tb.noEndpointIPs, withVerdict(key, Goto(chainReject)))
	}
	if sp.ExternallyAccessible() {
		tb.external(ps, n, isMapped)
	}
	if sp.Affinity.ClientIP {
		tb.endpointChains(ps, n)
	}
	for _, e := range ps.Endpoints.All {
		if e.NodeName != "" && e.NodeName == tb.node.Name {
			tb.hairpin = append(tb.hairpin, e.Addr)
		}
	}
}

func withVerdict(e Element, v Verdict) Element {
	e.Verdict = &v
	return e
}

// markMasq sets the masquerade bit inline. A jump to a marking chain
// would do the same, but every transaction that adds a jump makes the
// kernel re-validate the whole chain graph: O(all rules) for a one-port
// change.
func (tb *tableBuilder) markMasq() MarkOr { return MarkOr{Mark: tb.cfg.MasqueradeMark} }

// masqueradeInternal marks internal traffic from outside the cluster
// CIDRs, or all of it with MasqueradeAll (SEMANTICS §7).
func (tb *tableBuilder) masqueradeInternal() Rule {
	if tb.cfg.MasqueradeAll {
		return Rule{tb.markMasq()}
	}
	return Rule{SaddrInSet{Set: setClusterCIDRs, Negate: true}, tb.markMasq()}
}

// external adds the external frontends of a port, and in chain mode its
// ext chain (SEMANTICS §2, §5, §6, §7).
func (tb *tableBuilder) external(ps *proxykit.PortState, n portNames, isMapped bool) {
	sp := ps.Port
	set := ps.Endpoints.Cluster
	noEndpoint := Goto(chainReject)
	if sp.ExternalTrafficPolicy == servicemap.Local {
		set, noEndpoint = ps.Endpoints.Local, Goto(chainExternalDrop)
	}
	// to adds key to fs, if there is anything to DNAT to.
	var to func(fs *frontends, key Element, kind string)
	if isMapped {
		to = func(fs *frontends, key Element, kind string) {
			if len(set) > 0 {
				tb.addMapped(fs, key, kind, set)
			}
		}
	} else {
		ext := n.chain("ext")
		var rules []Rule
		if sp.ExternalTrafficPolicy == servicemap.Local {
			rules = tb.shortCircuit(ps, n)
		} else {
			rules = []Rule{{tb.markMasq()}}
		}
		tb.addChain(ext, append(rules, tb.dispatch(n, sp, set)...)...)
		to = func(fs *frontends, key Element, _ string) { fs.add(withVerdict(key, Goto(ext))) }
	}
	add := func(kind int, addr netip.Addr) {
		key := Element{Addr: addr, Proto: sp.Protocol, Port: sp.Port}
		to(&tb.serviceIPs[kind], key, pickExternal)
		if len(set) == 0 {
			tb.noEndpointIPs = append(tb.noEndpointIPs, withVerdict(key, noEndpoint))
		}
	}
	for _, a := range ps.ExternalIPs {
		add(1, a)
	}
	for _, a := range ps.LoadBalancerIPs {
		add(2, a)
	}
	if ps.Firewalled && len(ps.LoadBalancerIPs) > 0 {
		tb.firewall(ps, n)
	}
	if sp.NodePort != 0 {
		key := Element{Proto: sp.Protocol, Port: sp.NodePort}
		to(&tb.nodePorts, key, pickNodePort)
		if len(set) == 0 {
			tb.noEndpoint = append(tb.noEndpoint, withVerdict(key, noEndpoint))
		}
	}
}

// shortCircuit sends traffic from local pods and from the node itself to
// the Cluster set, as internal traffic (SEMANTICS §2); the node's is
// masqueraded (§7).
func (tb *tableBuilder) shortCircuit(ps *proxykit.PortState, n portNames) []Rule {
	if len(ps.Endpoints.Cluster) == 0 {
		return nil // nothing to reach: the filter rejects it
	}
	clu := n.chain("clu")
	tb.addChain(clu, tb.dispatch(n, ps.Port, ps.Endpoints.Cluster)...)
	var rules []Rule
	if tb.cfg.MasqueradeAll {
		rules = append(rules, Rule{SaddrInSet{Set: setLocalPods}, tb.markMasq()})
	}
	return append(rules,
		Rule{SaddrInSet{Set: setLocalPods}, Goto(clu)},
		Rule{FibLocal{}, tb.markMasq()},
		Rule{FibLocal{}, Goto(clu)},
	)
}

// firewall adds a port's source-range chain (SEMANTICS §6).
func (tb *tableBuilder) firewall(ps *proxykit.PortState, n portNames) {
	fw := n.chain("fw")
	var rules []Rule
	if slices.ContainsFunc(ps.SourceRanges, func(p netip.Prefix) bool {
		return slices.ContainsFunc(tb.node.Addresses, p.Contains)
	}) {
		rules = append(rules, Rule{FibLocal{}, Return})
	}
	if len(ps.SourceRanges) > 0 {
		rules = append(rules, Rule{SaddrPrefixes{Prefixes: cidr.Minimal(ps.SourceRanges), Negate: true}, Drop})
	} else {
		rules = append(rules, Rule{Drop}) // ranges only of the other family
	}
	tb.addChain(fw, rules...)
	for _, a := range ps.LoadBalancerIPs {
		key := Element{Addr: a, Proto: ps.Port.Protocol, Port: ps.Port.Port}
		tb.firewallIPs = append(tb.firewallIPs, withVerdict(key, Jump(fw)))
	}
}

// dispatch returns the rules that pick an endpoint of eps, weighted
// (SEMANTICS §3: rule i matches with probability w_i / (w_i+…+w_n), the
// last one always), honouring ClientIP affinity (§4). No endpoints, no
// rules: the packet goes on unchanged and the filter rejects or drops it.
func (tb *tableBuilder) dispatch(n portNames, sp *servicemap.ServicePort, eps []endpoints.Endpoint) []Rule {
	if len(eps) == 0 {
		return nil
	}
	aff := sp.Affinity.ClientIP
	n2 := len(eps)
	if aff {
		n2 *= 2 // the affinity checks come first
	}
	rules := make([]Rule, 0, n2)
	if aff {
		for i := range eps {
			chain, set := n.endpoint(eps[i].AddrPort())
			rules = append(rules, Rule{SaddrInSet{Set: set}, Goto(chain)})
		}
	}
	var rest uint32
	for i := range eps {
		rest += eps[i].EffectiveWeight()
	}
	// One backing array for every statement of these rules: a rule per
	// endpoint, 30k services × 10 endpoints, must not cost an allocation
	// per rule.
	stmts := make([]Stmt, 0, 3*len(eps))
	dnats := make([]Dnat, len(eps)) // *Dnat statements point here: no box each
	proto := l4ProtoStmt(sp.Protocol)
	for i := range eps {
		w := eps[i].EffectiveWeight()
		start := len(stmts)
		if !aff {
			stmts = append(stmts, proto)
		}
		if i < len(eps)-1 {
			stmts = append(stmts, NumgenLess{Mod: rest, Less: w})
		}
		if aff {
			chain, _ := n.endpoint(eps[i].AddrPort())
			stmts = append(stmts, Goto(chain))
		} else {
			dnats[i] = Dnat{eps[i].AddrPort()}
			stmts = append(stmts, &dnats[i])
		}
		rules = append(rules, Rule(stmts[start:len(stmts):len(stmts)]))
		rest -= w
	}
	return rules
}

// The L4Proto statements, boxed once.
var l4ProtoStmts = map[servicemap.Protocol]Stmt{
	servicemap.TCP: L4Proto{servicemap.TCP}, servicemap.UDP: L4Proto{servicemap.UDP}, servicemap.SCTP: L4Proto{servicemap.SCTP},
}

func l4ProtoStmt(p servicemap.Protocol) Stmt {
	if s, ok := l4ProtoStmts[p]; ok {
		return s
	}
	return L4Proto{p}
}

// endpointChains adds, for a ClientIP service, each endpoint's chain and
// affinity set: the chain records the client and DNATs (SEMANTICS §4).
func (tb *tableBuilder) endpointChains(ps *proxykit.PortState, n portNames) {
	for i := range ps.Endpoints.All {
		e := &ps.Endpoints.All[i]
		chain, set := n.endpoint(e.AddrPort())
		tb.addChain(chain, Rule{UpdateSaddr{Set: set}}, Rule{L4Proto{ps.Port.Protocol}, Dnat{e.AddrPort()}})
		tb.sets = append(tb.sets, &Set{
			Name: set, Type: tb.addrType, Dynamic: true, Size: 65535,
			Timeout: ps.Port.Affinity.EffectiveTimeout(),
		})
	}
}

// compareElements orders elements by their key parts.
func compareElements(a, b Element) int {
	return cmp.Or(
		a.Addr.Compare(b.Addr), cmp.Compare(a.Bits, b.Bits), a.Addr2.Compare(b.Addr2),
		cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Port, b.Port), cmp.Compare(a.Slot, b.Slot),
	)
}

// elementKey is the key of a map element, compact, for deduplication.
type elementKey struct {
	addr, addr2 netip.Addr
	port        uint16
	proto       byte
	slotted     bool
	bits        uint8
	slot        uint32
}

func (e Element) key() elementKey {
	k := elementKey{addr: e.Addr, addr2: e.Addr2, port: e.Port, slotted: e.Slotted, slot: e.Slot, bits: e.Bits}
	if e.Proto != "" {
		k.proto = e.Proto[0] // T, U or S
	}
	return k
}
