package nftables

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/proxykit/proxykit/servicemap"
)

// probeTable is the scratch table Supported creates and deletes again.
const probeTable = "proxykit-probe"

// feature is one kernel capability the backend needs, and a transaction
// that uses it.
type feature struct {
	name   string // what the kernel lacks, in words
	module string // the kernel module that provides it
	ops    func(fam Family) []Op
}

// features are probed one transaction each, so that a failure names one.
var features = []feature{
	{"nf_tables nat chains", "nft_chain_nat", func(f Family) []Op {
		return probeChain(f, &Hook{Type: "nat", Hook: "prerouting", Priority: "dstnat"}, Rule{Dnat{probeEndpoint(f)}})
	}},
	{"concatenated verdict maps", "nf_tables", func(f Family) []Op {
		m := &Set{Name: "m", Type: addrType(f) + " . inet_proto . inet_service", Data: "verdict"}
		return withSet(probeChain(f, nil, Rule{VmapDaddrProtoPort{Map: "m"}}), m)
	}},
	{"DNAT to an address and port from a map keyed on numgen (Linux 5.8)", "nft_nat", func(f Family) []Op {
		m := &Set{Name: "m", Typeof: true, Type: string(f) + " daddr . meta l4proto . th dport . numgen random mod 1",
			Data: string(f) + " daddr . th dport"}
		return withSet(probeChain(f, &Hook{Type: "nat", Hook: "prerouting", Priority: "dstnat"},
			Rule{DnatMap{Map: "m", Slots: 2}}), m)
	}},
	{"dynamic sets with timeout", "nft_dynset", func(f Family) []Op {
		d := &Set{Name: "s", Type: addrType(f), Dynamic: true, Size: 65535, Timeout: time.Hour}
		return withSet(probeChain(f, nil, Rule{UpdateSaddr{Set: "s"}}), d)
	}},
	{"fib", "nft_fib_inet", func(f Family) []Op { return probeChain(f, nil, Rule{FibLocal{Daddr: true}, Accept}) }},
	{"numgen", "nft_numgen", func(f Family) []Op { return probeChain(f, nil, Rule{NumgenLess{Mod: 2, Less: 1}, Accept}) }},
	{"conntrack matches", "nft_ct", func(f Family) []Op {
		return probeChain(f, nil, Rule{CtStateNew{}, CtStatusDnat{}, Accept})
	}},
	{"masquerade", "nft_masq", func(f Family) []Op {
		return probeChain(f, &Hook{Type: "nat", Hook: "postrouting", Priority: "srcnat"}, Rule{Masquerade{}})
	}},
	{"reject", "nft_reject_inet", func(f Family) []Op {
		return probeChain(f, &Hook{Type: "filter", Hook: "input", Priority: "filter - 10"}, Rule{Reject{}})
	}},
}

func addrType(f Family) string {
	if f == IPv6 {
		return "ipv6_addr"
	}
	return "ipv4_addr"
}

func probeEndpoint(f Family) netip.AddrPort {
	if f == IPv6 {
		return netip.MustParseAddrPort("[fd00::1]:80")
	}
	return netip.MustParseAddrPort("10.0.0.1:80")
}

// probeChain is a transaction that creates the probe table with a chain
// holding rule, and deletes the table again.
func probeChain(f Family, hook *Hook, rule Rule) []Op {
	return []Op{
		{Kind: AddTable, Family: f, Table: probeTable},
		{Kind: AddChain, Family: f, Table: probeTable, Name: "c", Chain: &Chain{Name: "c", Hook: hook}},
		{Kind: AddRule, Family: f, Table: probeTable, Name: "c", Rule: append(Rule{L4Proto{servicemap.TCP}}, rule...)},
		{Kind: DeleteTable, Family: f, Table: probeTable},
	}
}

// Supported checks that the kernel has everything the backend needs, in
// both families, by running probe transactions in a scratch table that
// each delete it again. The error names what is missing and the module
// that provides it.
func (s *Syncer) Supported(ctx context.Context) error {
	for _, fam := range []Family{IPv4, IPv6} {
		for _, ft := range features {
			if err := s.conn.Run(ctx, ft.ops(fam)); err != nil {
				// A failed probe leaves nothing behind: the batch is atomic.
				return fmt.Errorf("nftables: the kernel lacks %s for %s (module %s): %w", ft.name, fam, ft.module, err)
			}
		}
	}
	return nil
}

// withSet adds set to a probe transaction, before its rule.
func withSet(ops []Op, set *Set) []Op {
	add := Op{Kind: AddSet, Family: ops[0].Family, Table: probeTable, Name: set.Name, Set: set}
	return append(ops[:2:2], append([]Op{add}, ops[2:]...)...)
}
