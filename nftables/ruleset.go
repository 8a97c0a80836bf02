package nftables

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/proxykit/proxykit/servicemap"
)

// Family is an nftables table family.
type Family string

// The families proxykit programs: one table each.
const (
	IPv4 Family = "ip"
	IPv6 Family = "ip6"
)

// Ruleset is the desired state of the tables the backend owns. Its String
// is canonical nft syntax, byte-identical for the same snapshot and
// config, and close to what `nft list table` prints back.
type Ruleset struct {
	Tables []*Table
}

func (r *Ruleset) String() string {
	var b strings.Builder
	for i, t := range r.Tables {
		if i > 0 {
			b.WriteByte('\n')
		}
		t.write(&b)
	}
	return b.String()
}

// Table is one owned table: its sets and maps, then its chains, each
// sorted by name.
type Table struct {
	Family  Family
	Name    string
	Comment string
	Sets    []*Set
	Chains  []*Chain
}

func (t *Table) write(b *strings.Builder) {
	fmt.Fprintf(b, "table %s %s {\n", t.Family, t.Name)
	if t.Comment != "" {
		fmt.Fprintf(b, "\tcomment %q\n", t.Comment)
	}
	first := true
	sep := func() {
		if !first {
			b.WriteByte('\n')
		}
		first = false
	}
	for _, s := range t.Sets {
		sep()
		s.write(b, t.Family)
	}
	for _, c := range t.Chains {
		sep()
		c.write(b, t.Family)
	}
	b.WriteString("}\n")
}

// Set is a named set, or a map when Data is set.
type Set struct {
	Name string
	// Type is the key type, e.g. "ipv4_addr . inet_proto . inet_service",
	// or with Typeof the expressions of the key, e.g. "ip daddr . th dport".
	Type string
	// Data is a map's value type ("verdict"), or with Typeof its
	// expressions; empty for a set.
	Data string
	// Typeof declares Type and Data by expressions, as nft's typeof.
	Typeof   bool
	Interval bool
	// Dynamic sets are filled by the ruleset itself (affinity), with
	// Timeout and Size.
	Dynamic  bool
	Timeout  time.Duration
	Size     int
	Elements []Element
}

// IsMap reports whether the set is a map.
func (s *Set) IsMap() bool { return s.Data != "" }

func (s *Set) write(b *strings.Builder, fam Family) {
	kind := "set"
	typ := s.Type
	if s.IsMap() {
		kind = "map"
		typ += " : " + s.Data
	}
	decl := "type"
	if s.Typeof {
		decl = "typeof"
	}
	fmt.Fprintf(b, "\t%s %s {\n\t\t%s %s\n", kind, s.Name, decl, typ)
	if s.Size > 0 {
		fmt.Fprintf(b, "\t\tsize %d\n", s.Size)
	}
	var flags []string
	if s.Interval {
		flags = append(flags, "interval")
	}
	if s.Dynamic {
		flags = append(flags, "dynamic", "timeout")
	}
	if len(flags) > 0 {
		fmt.Fprintf(b, "\t\tflags %s\n", strings.Join(flags, ","))
	}
	if s.Timeout > 0 {
		fmt.Fprintf(b, "\t\ttimeout %s\n", nftDuration(s.Timeout))
	}
	if len(s.Elements) > 0 {
		b.WriteString("\t\telements = { ")
		for i, e := range s.Elements {
			if i > 0 {
				b.WriteString(",\n\t\t\t     ")
			}
			b.WriteString(e.String())
		}
		b.WriteString(" }\n")
	}
	b.WriteString("\t}\n")
}

// Element is one element of a set or map: a key made of the parts that
// are set, in the order address(es) or prefix, protocol, port, slot, and
// for a map a verdict or an address and port (To).
type Element struct {
	Addr  netip.Addr
	Addr2 netip.Addr // the second address of a pair key (hairpin)
	Proto servicemap.Protocol
	Port  uint16
	// IsPrefix makes the key the prefix Addr/Bits: an interval set's
	// (see PrefixElement).
	Bits     uint8
	IsPrefix bool
	// Slot, when Slotted, ends the key: a value of `numgen random mod n`.
	Slotted bool
	Slot    uint32
	Verdict *Verdict
	To      netip.AddrPort // the data of a DNAT map's element
}

// PrefixElement is the element of an interval set that holds p.
func PrefixElement(p netip.Prefix) Element {
	return Element{Addr: p.Addr(), Bits: uint8(p.Bits()), IsPrefix: true}
}

// prefix returns the prefix of an element that IsPrefix.
func (e Element) prefix() netip.Prefix { return netip.PrefixFrom(e.Addr, int(e.Bits)) }

func (e Element) String() string {
	var parts []string
	if e.IsPrefix {
		parts = append(parts, prefixText(e.prefix()))
	} else if e.Addr.IsValid() {
		parts = append(parts, e.Addr.String())
	}
	if e.Addr2.IsValid() {
		parts = append(parts, e.Addr2.String())
	}
	if e.Proto != "" {
		parts = append(parts, protoName(e.Proto))
	}
	if e.Port != 0 {
		parts = append(parts, strconv.Itoa(int(e.Port)))
	}
	if e.Slotted {
		parts = append(parts, strconv.FormatUint(uint64(e.Slot), 10))
	}
	s := strings.Join(parts, " . ")
	if e.Verdict != nil {
		s += " : " + e.Verdict.String()
	}
	if e.To.IsValid() {
		s += " : " + e.To.Addr().String() + " . " + strconv.Itoa(int(e.To.Port()))
	}
	return s
}

// Hook makes a chain a base chain.
type Hook struct {
	Type     string // "nat" or "filter"
	Hook     string // "prerouting", "input", "forward", "output", "postrouting"
	Priority string // as nft prints it, e.g. "dstnat", "filter - 10"
}

// Chain is a chain and its rules.
type Chain struct {
	Name  string
	Hook  *Hook
	Rules []Rule
}

func (c *Chain) write(b *strings.Builder, fam Family) {
	fmt.Fprintf(b, "\tchain %s {\n", c.Name)
	if h := c.Hook; h != nil {
		fmt.Fprintf(b, "\t\ttype %s hook %s priority %s; policy accept;\n", h.Type, h.Hook, h.Priority)
	}
	for _, r := range c.Rules {
		fmt.Fprintf(b, "\t\t%s\n", r.text(fam))
	}
	b.WriteString("\t}\n")
}

// Rule is a sequence of statements: matches, then at most one action.
type Rule []Stmt

func (r Rule) text(fam Family) string {
	parts := make([]string, len(r))
	for i, s := range r {
		parts[i] = s.text(fam)
	}
	return strings.Join(parts, " ")
}

// Stmt is one statement of a rule. The set of statements is closed: each
// has its nft text here and its netlink expressions in the apply code.
type Stmt interface {
	text(fam Family) string
}

// nftDuration prints d as nft does: "3h", "1d2h3m4s".
func nftDuration(d time.Duration) string {
	var b strings.Builder
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.d; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.d
		}
	}
	if b.Len() == 0 {
		return "0s"
	}
	return b.String()
}

// protoName is the nft name of a protocol.
func protoName(p servicemap.Protocol) string {
	return strings.ToLower(string(p))
}

// prefixText prints a prefix as nft does: a host prefix as a bare address.
func prefixText(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}
