package nftables

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/proxykit/proxykit/servicemap"
)

// The statements proxykit's rules are made of. Each prints the way
// `nft list` prints it back.

// Verdict ends a rule: accept, drop, return, or jump/goto a chain.
type Verdict struct {
	Kind  string // "accept", "drop", "return", "jump", "goto"
	Chain string // for jump and goto
}

// The verdicts.
var (
	Accept = Verdict{Kind: "accept"}
	Drop   = Verdict{Kind: "drop"}
	Return = Verdict{Kind: "return"}
)

// Jump returns a jump to chain.
func Jump(chain string) Verdict { return Verdict{Kind: "jump", Chain: chain} }

// Goto returns a goto to chain.
func Goto(chain string) Verdict { return Verdict{Kind: "goto", Chain: chain} }

func (v Verdict) String() string {
	if v.Chain != "" {
		return v.Kind + " " + v.Chain
	}
	return v.Kind
}

func (v Verdict) text(Family) string { return v.String() }

// addr returns "ip" or "ip6", the payload protocol of the family.
func (f Family) addr() string { return string(f) }

// CtStateNew matches the first packet of a connection.
type CtStateNew struct{}

func (CtStateNew) text(Family) string { return "ct state new" }

// CtStatusDnat matches connections that were destination-NATed.
type CtStatusDnat struct{}

func (CtStatusDnat) text(Family) string { return "ct status dnat" }

// SaddrPrefixes matches (or with Negate, excludes) source addresses in
// any of Prefixes.
type SaddrPrefixes struct {
	Prefixes []netip.Prefix
	Negate   bool
}

func (s SaddrPrefixes) text(f Family) string {
	op := " "
	if s.Negate {
		op = " != "
	}
	return f.addr() + " saddr" + op + anonSet(s.Prefixes)
}

// anonSet prints prefixes as nft does: one bare, several in braces.
func anonSet(ps []netip.Prefix) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = prefixText(p)
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}

// SaddrInSet matches source addresses in a named set.
type SaddrInSet struct {
	Set    string
	Negate bool
}

func (s SaddrInSet) text(f Family) string {
	if s.Negate {
		return f.addr() + " saddr != @" + s.Set
	}
	return f.addr() + " saddr @" + s.Set
}

// DaddrInSet matches destination addresses in a named set.
type DaddrInSet struct{ Set string }

func (s DaddrInSet) text(f Family) string { return f.addr() + " daddr @" + s.Set }

// SaddrDaddrInSet matches (source, destination) pairs in a named set.
type SaddrDaddrInSet struct{ Set string }

func (s SaddrDaddrInSet) text(f Family) string {
	return f.addr() + " saddr . " + f.addr() + " daddr @" + s.Set
}

// FibLocal matches packets whose source or destination address is local
// to the node.
type FibLocal struct {
	Daddr bool // destination rather than source
}

func (s FibLocal) text(Family) string {
	if s.Daddr {
		return "fib daddr type local"
	}
	return "fib saddr type local"
}

// DaddrNotLoopback excludes loopback destinations.
type DaddrNotLoopback struct{}

func (DaddrNotLoopback) text(f Family) string {
	if f == IPv6 {
		return "ip6 daddr != ::1"
	}
	return "ip daddr != 127.0.0.0/8"
}

// L4Proto matches a transport protocol.
type L4Proto struct{ Proto servicemap.Protocol }

func (s L4Proto) text(Family) string { return "meta l4proto " + protoName(s.Proto) }

// MarkUnset matches packets without the masquerade bit.
type MarkUnset struct{ Mark uint32 }

func (s MarkUnset) text(Family) string {
	return fmt.Sprintf("meta mark & 0x%08x == 0x00000000", s.Mark)
}

// VmapDaddrProtoPort dispatches on destination address, protocol and port
// through a verdict map.
type VmapDaddrProtoPort struct{ Map string }

func (s VmapDaddrProtoPort) text(f Family) string {
	return f.addr() + " daddr . meta l4proto . th dport vmap @" + s.Map
}

// VmapProtoPort dispatches on protocol and port through a verdict map.
type VmapProtoPort struct{ Map string }

func (s VmapProtoPort) text(Family) string { return "meta l4proto . th dport vmap @" + s.Map }

// NumgenLess matches with probability Less/Mod: a fresh random number in
// [0, Mod) is below Less. Rules chained with Mod = w_i+…+w_n and Less = w_i,
// the last one unconditional, pick endpoint i with probability
// w_i / (w_1+…+w_n) (SEMANTICS §3), and need no set: per-rule anonymous
// sets cost the kernel quadratic time in a large transaction.
type NumgenLess struct{ Mod, Less uint32 }

func (s NumgenLess) text(Family) string {
	return fmt.Sprintf("numgen random mod %d < %d", s.Mod, s.Less)
}

// Dnat destination-NATs to one endpoint. Render uses *Dnat, pointing into
// one array per service, to spare an allocation per endpoint.
type Dnat struct{ To netip.AddrPort }

func (s Dnat) text(Family) string { return "dnat to " + s.To.String() }

// UpdateSaddr adds the source address to a dynamic set, or refreshes its
// timeout: the affinity record.
type UpdateSaddr struct{ Set string }

func (s UpdateSaddr) text(f Family) string {
	return "update @" + s.Set + " { " + f.addr() + " saddr }"
}

// MarkOr sets the masquerade bit; MarkXor clears it (after MarkUnset
// failed, it is known to be set).
type (
	MarkOr  struct{ Mark uint32 }
	MarkXor struct{ Mark uint32 }
)

func (s MarkOr) text(Family) string  { return fmt.Sprintf("meta mark set meta mark | 0x%08x", s.Mark) }
func (s MarkXor) text(Family) string { return fmt.Sprintf("meta mark set meta mark ^ 0x%08x", s.Mark) }

// Masquerade source-NATs to the outgoing interface's address.
type Masquerade struct{}

func (Masquerade) text(Family) string { return "masquerade fully-random" }

// Reject answers with ICMP port unreachable (a TCP connect gets
// ECONNREFUSED).
type Reject struct{}

func (Reject) text(Family) string { return "reject" }

// DnatMap destination-NATs to the endpoint that a map gives for the
// packet's destination address (none for a NodePort), protocol, port and
// a random slot in [0, Slots): `dnat ip to ip daddr . meta l4proto . th
// dport . numgen random mod 3 map @backends`. An endpoint of weight w
// holds w slots (SEMANTICS §3).
type DnatMap struct {
	Map      string
	Slots    uint32
	NodePort bool // the key has no address
}

func (s DnatMap) text(f Family) string {
	key := f.addr() + " daddr . "
	if s.NodePort {
		key = ""
	}
	return fmt.Sprintf("dnat %s to %smeta l4proto . th dport . numgen random mod %d map @%s", f.addr(), key, s.Slots, s.Map)
}
