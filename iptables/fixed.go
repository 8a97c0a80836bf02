package iptables

import (
	"net/netip"
	"slices"
	"strconv"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/internal/cidr"
)

// line appends one rule of a fixed chain: "-A <prefix>-<chain> <spec>".
func (b *builder) line(dst []byte, chain, spec string) []byte {
	dst = append(dst, "-A "...)
	dst = b.fixed(dst, chain)
	dst = append(dst, ' ')
	dst = append(dst, spec...)
	return append(dst, '\n')
}

// jump returns "-j <prefix>-<chain>".
func (b *builder) jump(chain string) string { return "-j " + b.pfx + chain }

func (b *builder) hex(m uint32) string { return "0x" + strconv.FormatUint(uint64(m), 16) }

// declsOf declares the fixed chains, sorted by name, then the per-port
// ones in the order of the snapshot's ports.
func (b *builder) declsOf(fixed []string, perPort [][]byte) [][]byte {
	slices.Sort(fixed)
	out := make([]byte, 0, len(fixed)*40)
	for _, c := range fixed {
		out = append(out, ':')
		out = b.fixed(out, c)
		out = append(out, " - [0:0]\n"...)
	}
	return append([][]byte{out}, perPort...)
}

// natTable assembles the nat table: fixed chains, dispatch, per-port
// chains.
func (b *builder) natTable() *Table {
	fixed := []string{chainServices, chainNodePorts, chainPostrouting, chainMarkMasq, chainCanary}
	nonPod := !b.cfg.MasqueradeAll && len(b.clusterCIDRs) > 1
	if nonPod {
		fixed = append(fixed, chainNonPodMasq)
	}
	m := b.hex(b.cfg.MasqueradeMark)
	w := make([]byte, 0, 1024)
	w = b.line(w, chainCanary, "-j RETURN")
	w = b.line(w, chainMarkMasq, "-j MARK --set-xmark "+m+"/"+m)
	if nonPod {
		for _, p := range b.clusterCIDRs {
			w = b.line(w, chainNonPodMasq, "-s "+p.String()+" -j RETURN")
		}
		w = b.line(w, chainNonPodMasq, b.jump(chainMarkMasq))
	}
	w = b.line(w, chainPostrouting, "-m mark ! --mark "+m+"/"+m+" -j RETURN")
	w = b.line(w, chainPostrouting, "-j MARK --set-xmark "+m+"/0x0")
	w = b.line(w, chainPostrouting, "-j MASQUERADE --random-fully")
	rules := [][]byte{w, b.natSvc[0], b.natSvc[1], b.natSvc[2], b.nodePortJumps(nil), b.natNP}
	return &Table{Family: b.fam, Name: tableNAT, decls: b.declsOf(fixed, b.natDecl.chunks()), rules: append(rules, b.natRules.chunks()...)}
}

// filterTable assembles the filter table.
func (b *builder) filterTable() *Table {
	fixed := []string{chainFirewall, chainServices, chainNodePorts, chainExternalDrop, chainCanary}
	w := make([]byte, 0, len(b.filRules)+len(b.filFW)+len(b.filSvc)+len(b.filNP)+1024)
	w = b.line(w, chainCanary, "-j RETURN")
	for _, p := range b.localPods {
		w = b.line(w, chainExternalDrop, "-s "+p.String()+" "+b.rej)
	}
	w = b.line(w, chainExternalDrop, "-m addrtype --src-type LOCAL "+b.rej)
	w = b.line(w, chainExternalDrop, "-j DROP")
	w = append(w, b.filFW...)
	w = append(w, b.filSvc...)
	w = b.nodePortJumps(w)
	w = append(w, b.filNP...)
	w = append(w, b.filRules...)
	return &Table{Family: b.fam, Name: tableFilter, decls: b.declsOf(fixed, [][]byte{b.filDecl}), rules: [][]byte{w}}
}

// nodePortJumps appends the last rules of P-SERVICES: loopback
// destinations return (unless LocalhostNodePorts, IPv4), then local
// destinations, or those in NodePortAddresses, go to P-NODEPORTS
// (SEMANTICS §8).
func (b *builder) nodePortJumps(w []byte) []byte {
	if b.fam == proxykit.IPv6 {
		w = b.line(w, chainServices, "-d ::1/128 -j RETURN")
	} else if !b.cfg.LocalhostNodePorts {
		w = b.line(w, chainServices, "-d 127.0.0.0/8 -j RETURN")
	}
	jump := "-m addrtype --dst-type LOCAL " + b.jump(chainNodePorts)
	if len(b.cfg.NodePortAddresses) == 0 {
		return b.line(w, chainServices, jump)
	}
	for _, p := range cidr.Minimal(cidr.OfFamily(b.cfg.NodePortAddresses, b.fam)) {
		w = b.line(w, chainServices, "-d "+prefixText(p)+" "+jump)
	}
	return w
}

// prefixText prints a prefix as iptables-save does.
func prefixText(p netip.Prefix) string { return p.String() }

// jumpRule is a rule in a built-in chain that sends packets into ours;
// NewSyncer's Runner ensures them with go-iptables.
type jumpRule struct {
	table, chain string
	pos          int
	spec         []string
}

// jumpRules returns the jumps from the built-in chains, for prefix.
func jumpRules(prefix string) []jumpRule {
	pfx := prefix + "-"
	newOnly := func(chain, to string, pos int) jumpRule {
		return jumpRule{tableFilter, chain, pos, []string{"-m", "conntrack", "--ctstate", "NEW",
			"-m", "comment", "--comment", "proxykit " + to, "-j", pfx + to}}
	}
	plain := func(chain, to string) jumpRule {
		return jumpRule{tableNAT, chain, 1, []string{"-m", "comment", "--comment", "proxykit " + to, "-j", pfx + to}}
	}
	var out []jumpRule
	for _, c := range []string{"PREROUTING", "OUTPUT"} {
		out = append(out, plain(c, chainServices))
	}
	out = append(out, plain("POSTROUTING", chainPostrouting))
	for _, c := range []string{"INPUT", "FORWARD", "OUTPUT"} {
		out = append(out, newOnly(c, chainFirewall, 1), newOnly(c, chainServices, 2))
	}
	return out
}
