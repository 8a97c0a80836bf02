package iptables

import (
	"errors"
	"math"
	"net/netip"
	"slices"
	"strconv"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/internal/cidr"
	"github.com/proxykit/proxykit/servicemap"
)

// Render returns the ruleset that programs snap: the iptables-restore
// input of the nat and filter tables of each family. It is pure and
// deterministic: the same snapshot and config give a byte-identical
// String.
func Render(snap *proxykit.Snapshot, cfg Config) (*Ruleset, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if snap == nil {
		return nil, errors.New("iptables: Render: nil snapshot")
	}
	cfg = cfg.withDefaults()
	rs, _ := render(snap, cfg, isLarge(snap, cfg))
	return rs, nil
}

// render is Render with a valid, defaulted config; it also returns each
// family's frontend keys, for the partial syncs' claims.
func render(snap *proxykit.Snapshot, cfg Config, large bool) (*Ruleset, [2][]frontendKey) {
	var keys [2][]frontendKey
	rs := &Ruleset{Tables: make([]*Table, 0, 4)}
	for i, f := range proxykit.Families {
		b := newBuilder(cfg, snap.Node(), f, large, snap.Family(f).Len())
		for ps := range snap.Family(f).Ports() {
			b.port(ps)
		}
		rs.Tables = append(rs.Tables, b.natTable(), b.filterTable())
		keys[i] = b.keys
	}
	return rs, keys
}

// isLarge reports whether snap has more endpoints than the large-cluster
// threshold: then per-endpoint rules carry no comment.
func isLarge(snap *proxykit.Snapshot, cfg Config) bool {
	if cfg.LargeClusterEndpoints < 0 {
		return false
	}
	n := 0
	for _, f := range proxykit.Families {
		for ps := range snap.Family(f).Ports() {
			n += len(ps.Endpoints.All)
		}
	}
	return n > cfg.LargeClusterEndpoints
}

// builder renders the per-port chains and dispatch rules of one family,
// straight into byte buffers: 30k services × 10 endpoints are about a
// million lines, which must not cost an allocation each.
type builder struct {
	cfg   Config
	fam   proxykit.Family
	node  proxykit.Node
	large bool
	hl    int    // hash length
	pfx   string // cfg.Prefix + "-"
	host  string // "/32" or "/128"
	mask  string // the recent match's full mask
	rej   string // the REJECT target
	id    []byte // scratch: identities to hash
	eph   []hashName

	natDecl, natRules chunkBuf
	natSvc            [3][]byte // P-SERVICES rules by frontend kind: ClusterIP, ExternalIP, LB IP
	natNP             []byte    // P-NODEPORTS rules
	filDecl, filRules []byte
	filFW, filSvc     []byte // P-FIREWALL, P-SERVICES rules
	filNP             []byte // P-NODEPORTS rules
	keys              []frontendKey

	clusterCIDRs, localPods []netip.Prefix // of this family
}

func newBuilder(cfg Config, node proxykit.Node, f proxykit.Family, large bool, ports int) *builder {
	b := &builder{cfg: cfg, fam: f, node: node, large: large, hl: hashLen(cfg.Prefix), pfx: cfg.Prefix + "-",
		host: "/32", mask: "255.255.255.255", rej: "-j REJECT --reject-with icmp-port-unreachable",
		id: make([]byte, 0, 128)}
	if f == proxykit.IPv6 {
		b.host, b.mask, b.rej = "/128", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "-j REJECT --reject-with icmp6-port-unreachable"
	}
	b.clusterCIDRs = cidr.Minimal(cidr.OfFamily(cfg.ClusterCIDRs, f))
	b.localPods = cidr.Minimal(cidr.OfFamily(cfg.LocalPodCIDRs, f))
	if ports > 0 {
		b.natRules.cur = make([]byte, 0, chunkSize)
		b.natDecl.cur = make([]byte, 0, min(chunkSize, ports*400))
		b.natSvc[0] = make([]byte, 0, ports*150)
		b.keys = make([]frontendKey, 0, ports)
	}
	return b
}

// portCtx is what the rules of one service port share.
type portCtx struct {
	ps    *proxykit.PortState
	h     hashName
	cmt   string // the quoted comment
	proto string // "tcp", "udp", "sctp"
}

// chain appends the name of a per-port chain.
func (b *builder) chain(dst []byte, kind string, h *hashName) []byte {
	dst = append(dst, b.pfx...)
	dst = append(dst, kind...)
	dst = append(dst, '-')
	return append(dst, h.b[:h.n]...)
}

// fixed appends the name of a fixed chain.
func (b *builder) fixed(dst []byte, name string) []byte {
	dst = append(dst, b.pfx...)
	return append(dst, name...)
}

func (b *builder) decl(dst []byte, kind string, h *hashName) []byte {
	dst = append(dst, ':')
	dst = b.chain(dst, kind, h)
	return append(dst, " - [0:0]\n"...)
}

// startRule appends "-A <chain> ".
func (b *builder) startRule(dst []byte, kind string, h *hashName) []byte {
	dst = append(dst, "-A "...)
	dst = b.chain(dst, kind, h)
	return append(dst, ' ')
}

// cmt appends the port's comment match in per-endpoint rules, unless the
// cluster is large.
func (b *builder) cmt(dst []byte, pc *portCtx) []byte {
	if b.large {
		return dst
	}
	return b.always(dst, pc)
}

func (b *builder) always(dst []byte, pc *portCtx) []byte {
	dst = append(dst, "-m comment --comment "...)
	dst = append(dst, pc.cmt...)
	return append(dst, ' ')
}

// addr appends "a/32" or "a/128".
func (b *builder) addr(dst []byte, a netip.Addr) []byte {
	dst = a.AppendTo(dst)
	return append(dst, b.host...)
}

// l4 appends "-p tcp [comment] -m tcp --dport N ": the match of one port.
func (b *builder) l4(dst []byte, pc *portCtx, port uint16, withComment bool) []byte {
	dst = append(dst, "-p "...)
	dst = append(dst, pc.proto...)
	dst = append(dst, ' ')
	if withComment {
		dst = b.always(dst, pc)
	}
	dst = append(dst, "-m "...)
	dst = append(dst, pc.proto...)
	dst = append(dst, " --dport "...)
	dst = strconv.AppendUint(dst, uint64(port), 10)
	return append(dst, ' ')
}

func protoName(p servicemap.Protocol) string {
	switch p {
	case servicemap.UDP:
		return "udp"
	case servicemap.SCTP:
		return "sctp"
	}
	return "tcp"
}

// port adds the chains and dispatch rules of one service port
// (SEMANTICS §2–§7).
func (b *builder) port(ps *proxykit.PortState) {
	sp := ps.Port
	b.id = appendPortID(b.id[:0], ps.Name)
	pc := &portCtx{ps: ps, h: hashOf(b.id, b.hl), cmt: quoteComment(slices.Clone(b.id)), proto: protoName(sp.Protocol)}
	idLen := len(b.id)
	all := ps.Endpoints.All
	b.eph = b.eph[:0]
	for i := range all {
		b.id = appendEndpointID(b.id[:idLen], all[i].AddrPort())
		b.eph = append(b.eph, hashOf(b.id, b.hl))
	}
	usesC, usesL, ext := sp.UsesClusterEndpoints(), sp.UsesLocalEndpoints(), sp.ExternallyAccessible()
	fw := ext && ps.Firewalled && len(ps.LoadBalancerIPs) > 0
	internalKind := kindSVC
	if sp.InternalTrafficPolicy == servicemap.Local {
		internalKind = kindSVL
	}
	if usesC {
		b.natDecl.cur = b.decl(b.natDecl.cur, kindSVC, &pc.h)
		b.dispatchChain(pc, kindSVC, ps.Endpoints.Cluster, internalKind == kindSVC)
	}
	if usesL {
		b.natDecl.cur = b.decl(b.natDecl.cur, kindSVL, &pc.h)
		b.dispatchChain(pc, kindSVL, ps.Endpoints.Local, internalKind == kindSVL)
	}
	if ext {
		b.natDecl.cur = b.decl(b.natDecl.cur, kindEXT, &pc.h)
		b.extChain(pc)
	}
	if fw {
		b.natDecl.cur = b.decl(b.natDecl.cur, kindFW, &pc.h)
		b.filDecl = b.decl(b.filDecl, kindFW, &pc.h)
		b.firewallChains(pc)
	}
	for i := range all {
		b.natDecl.cur = b.decl(b.natDecl.cur, kindSEP, &b.eph[i])
		b.endpointChain(pc, &all[i], &b.eph[i])
	}
	b.frontends(pc, internalKind, fw)
	b.natRules.rotate()
	b.natDecl.rotate()
}

// masqueradeInternal appends the rule that marks ClusterIP traffic from
// outside the cluster CIDRs, or all of it with MasqueradeAll (SEMANTICS
// §7). It matches the ClusterIP, so that external traffic passing through
// the same chain is not affected.
func (b *builder) masqueradeInternal(dst []byte, pc *portCtx, kind string) []byte {
	dst = b.startRule(dst, kind, &pc.h)
	target := chainMarkMasq
	if !b.cfg.MasqueradeAll {
		switch len(b.clusterCIDRs) {
		case 0:
		case 1:
			dst = append(dst, "! -s "...)
			dst = append(dst, b.clusterCIDRs[0].String()...)
			dst = append(dst, ' ')
		default:
			target = chainNonPodMasq
		}
	}
	dst = append(dst, "-d "...)
	dst = b.addr(dst, pc.ps.ClusterIP)
	dst = append(dst, ' ')
	dst = b.l4(dst, pc, pc.ps.Port.Port, !b.large)
	dst = append(dst, "-j "...)
	dst = b.fixed(dst, target)
	return append(dst, '\n')
}

// dispatchChain fills the SVC or SVL chain: the internal masquerade
// rule when it is the ClusterIP's chain, then the weighted choice among
// eps (SEMANTICS §3): rule i matches with probability w_i/(w_i+…+w_n),
// the last always; with ClientIP affinity, recent-list checks first
// (§4). No endpoints, no rules: the filter table rejects or drops.
func (b *builder) dispatchChain(pc *portCtx, kind string, eps []endpoints.Endpoint, internal bool) {
	if len(eps) == 0 {
		return
	}
	w := b.natRules.cur
	if internal {
		w = b.masqueradeInternal(w, pc, kind)
	}
	all := pc.ps.Endpoints.All
	aff := pc.ps.Port.Affinity.ClientIP
	if aff {
		j := 0
		for i := range eps {
			j = indexFrom(all, j, &eps[i])
			w = b.startRule(w, kind, &pc.h)
			w = b.cmt(w, pc)
			w = append(w, "-m recent --rcheck --seconds "...)
			w = strconv.AppendInt(w, int64(pc.ps.Port.Affinity.EffectiveTimeout().Seconds()), 10)
			w = append(w, " --reap --name "...)
			w = b.chain(w, kindSEP, &b.eph[j])
			w = append(w, " --mask "...)
			w = append(w, b.mask...)
			w = append(w, " --rsource -j "...)
			w = b.chain(w, kindSEP, &b.eph[j])
			w = append(w, '\n')
		}
	}
	var rest uint64
	for i := range eps {
		rest += uint64(eps[i].EffectiveWeight())
	}
	j := 0
	for i := range eps {
		j = indexFrom(all, j, &eps[i])
		wt := uint64(eps[i].EffectiveWeight())
		w = b.startRule(w, kind, &pc.h)
		w = b.cmt(w, pc)
		if i < len(eps)-1 {
			w = append(w, "-m statistic --mode random --probability "...)
			w = appendProbability(w, wt, rest)
			w = append(w, ' ')
		}
		w = append(w, "-j "...)
		w = b.chain(w, kindSEP, &b.eph[j])
		w = append(w, '\n')
		rest -= wt
	}
	b.natRules.cur = w
}

// indexFrom returns the index of e in all at or after j: the sets of a
// topology.Result are subsequences of All, in its order.
func indexFrom(all []endpoints.Endpoint, j int, e *endpoints.Endpoint) int {
	for k := j; k < len(all); k++ {
		if all[k].Addr == e.Addr && all[k].Port == e.Port {
			return k
		}
	}
	for k := range all { // not expected: a set out of All's order
		if all[k].Addr == e.Addr && all[k].Port == e.Port {
			return k
		}
	}
	return j
}

// appendProbability appends w/rest as the kernel keeps it: the statistic
// match stores round(p·2³¹) and iptables-save prints that back with 11
// decimals, so Render prints the same (read-back compares bytes). A
// non-zero weight never rounds to 0: the least is 1/2³¹ (SEMANTICS §3).
func appendProbability(dst []byte, w, rest uint64) []byte {
	q := math.Round(float64(w) / float64(rest) * (1 << 31))
	q = max(q, 1)
	return strconv.AppendFloat(dst, q/(1<<31), 'f', 11, 64)
}

// endpointChain fills an endpoint's SEP chain: hairpin masquerade (§7),
// the affinity record (§4), DNAT.
func (b *builder) endpointChain(pc *portCtx, e *endpoints.Endpoint, h *hashName) {
	w := b.startRule(b.natRules.cur, kindSEP, h)
	w = append(w, "-s "...)
	w = b.addr(w, e.Addr)
	w = append(w, ' ')
	w = b.cmt(w, pc)
	w = append(w, "-j "...)
	w = b.fixed(w, chainMarkMasq)
	w = append(w, '\n')
	if pc.ps.Port.Affinity.ClientIP {
		w = b.startRule(w, kindSEP, h)
		w = b.cmt(w, pc)
		w = append(w, "-m recent --set --name "...)
		w = b.chain(w, kindSEP, h)
		w = append(w, " --mask "...)
		w = append(w, b.mask...)
		w = append(w, " --rsource\n"...)
	}
	w = b.startRule(w, kindSEP, h)
	w = append(w, "-p "...)
	w = append(w, pc.proto...)
	w = append(w, ' ')
	w = b.cmt(w, pc)
	w = append(w, "-j DNAT --to-destination "...)
	w = e.AddrPort().AppendTo(w)
	b.natRules.cur = append(w, '\n')
}
