package ipvs

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"net/netip"
	"slices"
	"strings"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/internal/cidr"
	"github.com/proxykit/proxykit/nftables"
	"github.com/proxykit/proxykit/servicemap"
)

// Names in the companion table.
const (
	chainNatPrerouting  = "nat-prerouting"
	chainNatOutput      = "nat-output"
	chainNatPostrouting = "nat-postrouting"
	chainFilterPre      = "filter-prerouting"
	chainFilterOutFW    = "filter-output-firewall"
	chainFilterInput    = "filter-input"
	chainFilterOutput   = "filter-output"
	chainServices       = "services"
	chainMarkInternal   = "mark-internal"
	chainMarkExternal   = "mark-external"
	chainExtLocal       = "external-local"
	chainExtLocalNP     = "external-local-nodeport"
	chainMasquerading   = "masquerading"
	chainFirewallCheck  = "firewall-check"
	chainEndpointsCheck = "endpoints-check"
	chainReject         = "reject-chain"
	chainExternalDrop   = "external-drop"
	mapServiceIPs       = "service-ips"
	mapServiceNPs       = "service-nodeports"
	mapShortCircuit     = "short-circuit"
	mapShortCircuitNPs  = "short-circuit-nodeports"
	mapNoEndpointIPs    = "no-endpoint-services"
	mapNoEndpointNPs    = "no-endpoint-nodeports"
	mapFirewallIPs      = "firewall-ips"
	setClusterCIDRs     = "cluster-cidrs"
	setLocalPods        = "local-pods"
	setNodePortAddrs    = "nodeport-addresses"
	setHairpin          = "hairpin"
)

// Rules returns the companion nftables rules of snap: one table per
// family, named Config.Table. IPVS does the DNAT; these rules mark for
// masquerade and masquerade (SEMANTICS §7), drop by source range (§6),
// reject or drop for no endpoints (§5), and send traffic from local pods
// and the node to an external frontend with external policy Local to the
// ClusterIP instead (§2). Pure and deterministic.
func Rules(snap *proxykit.Snapshot, cfg Config) (*nftables.Ruleset, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if snap == nil {
		return nil, errors.New("ipvs: Rules: nil snapshot")
	}
	return rules(snap, cfg.withDefaults()), nil
}

func rules(snap *proxykit.Snapshot, cfg Config) *nftables.Ruleset {
	rs, _ := rulesAndClaims(snap, cfg)
	return rs
}

// rulesAndClaims returns the companion rules of snap and their claims.
func rulesAndClaims(snap *proxykit.Snapshot, cfg Config) (*nftables.Ruleset, *ruleClaims) {
	rs := &nftables.Ruleset{}
	cl := &ruleClaims{}
	for i, f := range proxykit.Families {
		rb := newRuleBuilder(cfg, snap.Node(), f)
		for ps := range snap.Family(f).Ports() {
			rb.port(ps)
		}
		rs.Tables = append(rs.Tables, rb.table())
		cl.fam[i] = rb.claims()
	}
	return rs, cl
}

// ruleBuilder collects one family's companion table.
type ruleBuilder struct {
	cfg                                 Config
	node                                proxykit.Node
	pf                                  proxykit.Family
	fam                                 nftables.Family
	addrType                            string
	serviceIPs, serviceNPs              elements
	shortCircuit, shortCircuitNPs       elements
	noEndpointIPs, noEndpointNPs, fwIPs elements
	hairpin                             []netip.Addr
	chains                              []*nftables.Chain
}

// elements keeps the first element of each key, as the first claim of a
// frontend wins in Plan, and counts the claims of each key.
type elements struct {
	list []nftables.Element
	seen map[mapKey]int
}

// mapKey is the key of a map element: address (none for NodePorts),
// protocol and port.
type mapKey struct {
	addr  netip.Addr
	proto servicemap.Protocol
	port  uint16
}

func (es *elements) add(e nftables.Element) {
	if es.seen == nil {
		es.seen = map[mapKey]int{}
	}
	k := mapKey{e.Addr, e.Proto, e.Port}
	es.seen[k]++
	if es.seen[k] == 1 {
		es.list = append(es.list, e)
	}
}

func newRuleBuilder(cfg Config, node proxykit.Node, f proxykit.Family) *ruleBuilder {
	rb := &ruleBuilder{cfg: cfg, node: node, pf: f, fam: nftables.IPv4, addrType: "ipv4_addr"}
	if f == proxykit.IPv6 {
		rb.fam, rb.addrType = nftables.IPv6, "ipv6_addr"
	}
	return rb
}

func goTo(chain string) *nftables.Verdict {
	v := nftables.Goto(chain)
	return &v
}

// port adds the elements of one service port.
func (rb *ruleBuilder) port(ps *proxykit.PortState) {
	sp := ps.Port
	internal := ps.Endpoints.Cluster
	if sp.InternalTrafficPolicy == servicemap.Local {
		internal = ps.Endpoints.Local
	}
	key := nftables.Element{Addr: ps.ClusterIP, Proto: sp.Protocol, Port: sp.Port}
	rb.serviceIPs.add(withVerdict(key, chainMarkInternal))
	if len(internal) == 0 {
		rb.noEndpointIPs.add(withVerdict(key, chainReject))
	}
	if sp.ExternallyAccessible() {
		rb.external(ps)
	}
	for _, e := range ps.Endpoints.All {
		if e.NodeName != "" && e.NodeName == rb.node.Name {
			rb.hairpin = append(rb.hairpin, e.Addr)
		}
	}
}

func withVerdict(e nftables.Element, chain string) nftables.Element {
	e.Verdict = goTo(chain)
	return e
}

// external adds the elements of a port's external frontends.
func (rb *ruleBuilder) external(ps *proxykit.PortState) {
	sp := ps.Port
	local := sp.ExternalTrafficPolicy == servicemap.Local
	set, mark, markNP, noEP := ps.Endpoints.Cluster, chainMarkExternal, chainMarkExternal, chainReject
	if local {
		set, mark, markNP, noEP = ps.Endpoints.Local, chainExtLocal, chainExtLocalNP, chainExternalDrop
	}
	// The short circuit goes to the ClusterIP's virtual server, which
	// balances over the internal set.
	to := netip.AddrPortFrom(ps.ClusterIP, sp.Port)
	addIP := func(a netip.Addr) {
		key := nftables.Element{Addr: a, Proto: sp.Protocol, Port: sp.Port}
		rb.serviceIPs.add(withVerdict(key, mark))
		if len(set) == 0 {
			rb.noEndpointIPs.add(withVerdict(key, noEP))
		}
		if local && len(ps.Endpoints.Cluster) > 0 {
			sc := key
			sc.Slotted, sc.To = true, to
			rb.shortCircuit.add(sc)
		}
	}
	for _, a := range ps.ExternalIPs {
		addIP(a)
	}
	for _, a := range ps.LoadBalancerIPs {
		addIP(a)
	}
	if ps.Firewalled && len(ps.LoadBalancerIPs) > 0 {
		rb.firewall(ps)
	}
	if sp.NodePort != 0 {
		key := nftables.Element{Proto: sp.Protocol, Port: sp.NodePort}
		rb.serviceNPs.add(withVerdict(key, markNP))
		if len(set) == 0 {
			rb.noEndpointNPs.add(withVerdict(key, noEP))
		}
		if local && len(ps.Endpoints.Cluster) > 0 {
			sc := key
			sc.Slotted, sc.To = true, to
			rb.shortCircuitNPs.add(sc)
		}
	}
}

// firewall adds a port's source-range chain (SEMANTICS §6).
func (rb *ruleBuilder) firewall(ps *proxykit.PortState) {
	name := "fw-" + portHash(ps.Name)
	var rs []nftables.Rule
	if slices.ContainsFunc(ps.SourceRanges, func(p netip.Prefix) bool {
		return slices.ContainsFunc(rb.node.Addresses, p.Contains)
	}) {
		rs = append(rs, nftables.Rule{nftables.FibLocal{}, nftables.Return})
	}
	if len(ps.SourceRanges) > 0 {
		rs = append(rs, nftables.Rule{nftables.SaddrPrefixes{Prefixes: cidr.Minimal(ps.SourceRanges), Negate: true}, nftables.Drop})
	} else {
		rs = append(rs, nftables.Rule{nftables.Drop}) // ranges only of the other family
	}
	rb.chains = append(rb.chains, &nftables.Chain{Name: name, Rules: rs})
	for _, a := range ps.LoadBalancerIPs {
		key := nftables.Element{Addr: a, Proto: ps.Port.Protocol, Port: ps.Port.Port}
		v := nftables.Jump(name)
		key.Verdict = &v
		rb.fwIPs.add(key)
	}
}

// portHash is a stable name part for a service port: 16 base32
// characters of its SHA-256, safe in any nft name.
func portHash(n servicemap.PortName) string {
	sum := sha256.Sum256([]byte(n.String()))
	return strings.ToLower(base32.StdEncoding.EncodeToString(sum[:10]))
}

// syncRules applies the companion rules: on a full sync by replacing
// the tables; on a partial one by rendering only snap.Changed() ports of
// the previous snapshot and of snap, and sending their firewall chains
// and the map and set elements whose claims start, end or change, so
// that a sync's cost follows the change. A key that a changed port
// shares with one that did not change makes the rules' sync full.
func (s *Syncer) syncRules(ctx context.Context, snap *proxykit.Snapshot, full bool, errs *errList) {
	prev := s.rules
	s.rules = nil
	if !full && prev != nil {
		if ops, ok := partialRuleOps(s.prev, snap, s.cfg, prev); ok {
			if len(ops) > 0 {
				if err := s.nft.Run(ctx, ops); err != nil {
					errs.add(&OpError{Op: "apply companion rules in table", Object: s.cfg.Table, Err: err})
					return
				}
			}
			s.rules = prev
			return
		}
	}
	rs, cl := rulesAndClaims(snap, s.cfg)
	var ops []nftables.Op
	for _, t := range rs.Tables {
		have, err := s.nft.List(ctx, t.Family, t.Name)
		if err != nil {
			errs.add(&OpError{Op: "list table", Object: string(t.Family) + " " + t.Name, Err: err})
			return
		}
		ops = append(ops, replaceOps(t, have.Exists)...)
	}
	if err := s.nft.Run(ctx, ops); err != nil {
		errs.add(&OpError{Op: "apply companion rules in table", Object: s.cfg.Table, Err: err})
		return
	}
	s.rules = cl
}

// elemKey is an element, key and data, as a comparable value.
type elemKey struct {
	addr, addr2     netip.Addr
	proto           servicemap.Protocol
	port            uint16
	bits            uint8
	prefix, slotted bool
	slot            uint32
	verdict, chain  string
	to              netip.AddrPort
}

func keyOf(e nftables.Element) elemKey {
	k := elemKey{addr: e.Addr, addr2: e.Addr2, proto: e.Proto, port: e.Port, bits: e.Bits,
		prefix: e.IsPrefix, slotted: e.Slotted, slot: e.Slot, to: e.To}
	if e.Verdict != nil {
		k.verdict, k.chain = e.Verdict.Kind, e.Verdict.Chain
	}
	return k
}

// replaceOps replaces the table with t in one transaction. The table has
// no dynamic sets and no state of its own, so replacing it loses nothing
// (conntrack keeps the NAT of established connections).
func replaceOps(t *nftables.Table, exists bool) []nftables.Op {
	op := func(k nftables.OpKind, name string) nftables.Op {
		return nftables.Op{Kind: k, Family: t.Family, Table: t.Name, Name: name}
	}
	var ops []nftables.Op
	if exists {
		ops = append(ops, op(nftables.DeleteTable, ""))
	}
	ops = append(ops, op(nftables.AddTable, ""))
	for _, set := range t.Sets {
		o := op(nftables.AddSet, set.Name)
		o.Set = set
		ops = append(ops, o)
	}
	for _, c := range t.Chains {
		o := op(nftables.AddChain, c.Name)
		o.Chain = c
		ops = append(ops, o)
	}
	for _, set := range t.Sets {
		if len(set.Elements) > 0 {
			o := op(nftables.AddElements, set.Name)
			o.Elements = set.Elements
			ops = append(ops, o)
		}
	}
	for _, c := range t.Chains {
		for _, r := range c.Rules {
			o := op(nftables.AddRule, c.Name)
			o.Rule = r
			ops = append(ops, o)
		}
	}
	return ops
}

// cleanupRules deletes the companion tables.
func (s *Syncer) cleanupRules(ctx context.Context) error {
	var ops []nftables.Op
	for _, fam := range []nftables.Family{nftables.IPv4, nftables.IPv6} {
		have, err := s.nft.List(ctx, fam, s.cfg.Table)
		if err != nil {
			return &OpError{Op: "list table", Object: string(fam) + " " + s.cfg.Table, Err: err}
		}
		if have.Exists {
			ops = append(ops, nftables.Op{Kind: nftables.DeleteTable, Family: fam, Table: s.cfg.Table})
		}
	}
	if len(ops) == 0 {
		return nil
	}
	return s.nft.Run(ctx, ops)
}
