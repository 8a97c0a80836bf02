package iptables

import (
	"net/netip"
	"slices"

	"github.com/proxykit/proxykit/internal/cidr"
	"github.com/proxykit/proxykit/servicemap"
)

// frontendKey is what a dispatch rule matches: an address (none for a
// NodePort), a protocol and a port. Two service ports claiming one key
// make a partial sync inexact (the first one in Render's order wins).
type frontendKey struct {
	addr  netip.Addr
	port  uint16
	proto byte
}

// extChain fills the EXT chain of an externally accessible port
// (SEMANTICS §2, §7). External policy Cluster: mark for masquerade, then
// the Cluster set. Local: local pods and the node itself are treated as
// internal traffic to the Cluster set (the node's masqueraded), everyone
// else gets the Local set with its source kept.
func (b *builder) extChain(pc *portCtx) {
	w := b.natRules.cur
	start := func(w []byte) []byte { return b.cmt(b.startRule(w, kindEXT, &pc.h), pc) }
	toSVC := func(w []byte) []byte {
		w = append(w, "-g "...)
		w = b.chain(w, kindSVC, &pc.h)
		return append(w, '\n')
	}
	mark := func(w []byte) []byte {
		w = append(w, "-j "...)
		w = b.fixed(w, chainMarkMasq)
		return append(w, '\n')
	}
	if pc.ps.Port.ExternalTrafficPolicy != servicemap.Local {
		w = mark(start(w))
		w = toSVC(start(w))
		b.natRules.cur = w
		return
	}
	srcRule := func(w []byte, p netip.Prefix) []byte {
		w = b.startRule(w, kindEXT, &pc.h)
		w = append(w, "-s "...)
		w = append(w, p.String()...)
		w = append(w, ' ')
		return b.cmt(w, pc)
	}
	if b.cfg.MasqueradeAll {
		for _, p := range b.localPods {
			w = mark(srcRule(w, p))
		}
	}
	for _, p := range b.localPods {
		w = toSVC(srcRule(w, p))
	}
	w = mark(append(start(w), "-m addrtype --src-type LOCAL "...))
	w = toSVC(append(start(w), "-m addrtype --src-type LOCAL "...))
	w = append(start(w), "-g "...)
	w = b.chain(w, kindSVL, &pc.h)
	b.natRules.cur = append(w, '\n')
}

// firewallChains fills the FWL chains of a port with source ranges
// (SEMANTICS §6). In nat, allowed sources go on to the EXT chain and the
// others fall through, not DNATed. In filter, reached from P-FIREWALL by
// packets still addressed to the LB IP, allowed sources return (to meet
// the no-endpoint checks) and the others are dropped.
func (b *builder) firewallChains(pc *portCtx) {
	ranges := cidr.Minimal(pc.ps.SourceRanges)
	nodeOK := slices.ContainsFunc(pc.ps.SourceRanges, func(p netip.Prefix) bool {
		return slices.ContainsFunc(b.node.Addresses, p.Contains)
	})
	n, f := b.natRules.cur, b.filRules
	for _, p := range ranges {
		n = b.startRule(n, kindFW, &pc.h)
		f = b.startRule(f, kindFW, &pc.h)
		n = append(n, "-s "...)
		f = append(f, "-s "...)
		n = append(n, p.String()...)
		f = append(f, p.String()...)
		n = append(n, ' ')
		f = append(f, ' ')
		n = b.cmt(n, pc)
		f = b.cmt(f, pc)
		n = append(n, "-g "...)
		n = b.chain(n, kindEXT, &pc.h)
		n = append(n, '\n')
		f = append(f, "-j RETURN\n"...)
	}
	if nodeOK {
		n = b.cmt(b.startRule(n, kindFW, &pc.h), pc)
		f = b.cmt(b.startRule(f, kindFW, &pc.h), pc)
		n = append(n, "-m addrtype --src-type LOCAL -g "...)
		n = b.chain(n, kindEXT, &pc.h)
		n = append(n, '\n')
		f = append(f, "-m addrtype --src-type LOCAL -j RETURN\n"...)
	}
	f = b.cmt(b.startRule(f, kindFW, &pc.h), pc)
	f = append(f, "-j DROP\n"...)
	b.natRules.cur, b.filRules = n, f
}

// frontends adds the port's dispatch rules: nat P-SERVICES and
// P-NODEPORTS jump (goto: the first match decides, SEMANTICS' order of
// frontend kinds) to its chains; filter rules reject or drop what has no
// endpoints (§5) and check source ranges (§6).
func (b *builder) frontends(pc *portCtx, internalKind string, fw bool) {
	ps := pc.ps
	sp := ps.Port
	proto := sp.Protocol.OrTCP()[0]
	dispatch := func(dst []byte, chain string, a netip.Addr) []byte {
		dst = append(dst, "-A "...)
		dst = b.fixed(dst, chain)
		dst = append(dst, ' ')
		if a.IsValid() {
			dst = append(dst, "-d "...)
			dst = b.addr(dst, a)
			dst = append(dst, ' ')
			return b.l4(dst, pc, sp.Port, true)
		}
		return b.l4(dst, pc, sp.NodePort, true)
	}
	to := func(dst []byte, verb, kind string) []byte {
		dst = append(dst, verb...)
		dst = b.chain(dst, kind, &pc.h)
		return append(dst, '\n')
	}
	noEndpoint := func(dst []byte, drop bool) []byte {
		if drop {
			dst = append(dst, "-j "...)
			dst = b.fixed(dst, chainExternalDrop)
			return append(dst, '\n')
		}
		dst = append(dst, b.rej...)
		return append(dst, '\n')
	}
	b.natSvc[0] = to(dispatch(b.natSvc[0], chainServices, ps.ClusterIP), "-g ", internalKind)
	b.keys = append(b.keys, frontendKey{ps.ClusterIP, sp.Port, proto})
	// Whatever is still addressed to the ClusterIP in filter was not
	// DNATed: its port has no endpoints (§5) or the service lacks the
	// port, which is rejected too, as SEMANTICS §5 allows.
	w := append(b.filSvc, "-A "...)
	w = b.fixed(w, chainServices)
	w = append(w, " -d "...)
	w = b.addr(w, ps.ClusterIP)
	w = append(w, ' ')
	w = b.always(w, pc)
	b.filSvc = noEndpoint(w, false)
	if !sp.ExternallyAccessible() {
		return
	}
	extSet, drop := ps.Endpoints.Cluster, false
	if sp.ExternalTrafficPolicy == servicemap.Local {
		extSet, drop = ps.Endpoints.Local, true
	}
	for _, a := range ps.ExternalIPs {
		b.natSvc[1] = to(dispatch(b.natSvc[1], chainServices, a), "-g ", kindEXT)
		b.keys = append(b.keys, frontendKey{a, sp.Port, proto})
		if len(extSet) == 0 {
			b.filSvc = noEndpoint(dispatch(b.filSvc, chainServices, a), drop)
		}
	}
	lbKind := kindEXT
	if fw {
		lbKind = kindFW
	}
	for _, a := range ps.LoadBalancerIPs {
		b.natSvc[2] = to(dispatch(b.natSvc[2], chainServices, a), "-g ", lbKind)
		b.keys = append(b.keys, frontendKey{a, sp.Port, proto})
		if fw {
			b.filFW = to(dispatch(b.filFW, chainFirewall, a), "-j ", kindFW)
		}
		if len(extSet) == 0 {
			b.filSvc = noEndpoint(dispatch(b.filSvc, chainServices, a), drop)
		}
	}
	if sp.NodePort != 0 {
		b.natNP = to(dispatch(b.natNP, chainNodePorts, netip.Addr{}), "-g ", kindEXT)
		b.keys = append(b.keys, frontendKey{netip.Addr{}, sp.NodePort, proto})
		if len(extSet) == 0 {
			b.filNP = noEndpoint(dispatch(b.filNP, chainNodePorts, netip.Addr{}), drop)
		}
	}
}
