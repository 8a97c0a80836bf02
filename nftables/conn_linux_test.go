//go:build linux

package nftables

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/proxykit/proxykit/internal/golden"
)

// program runs the full ops of rs in ns.
func (ns *testNS) program(t *testing.T, rs *Ruleset) {
	t.Helper()
	if err := ns.conn.Run(testContext(t), fullOps(rs)); err != nil {
		t.Fatal(err)
	}
}

// checkTable compares the kernel's table with tb, as TestReadback does.
func (ns *testNS) checkTable(t *testing.T, tb *Table) {
	t.Helper()
	var b strings.Builder
	tb.write(&b)
	want := normalizeNft(b.String())
	if got := normalizeNft(ns.list(t, tb.Family, tb.Name)); got != want {
		t.Errorf("table %s %s differs (-want +kernel):\n%s", tb.Family, tb.Name, golden.LineDiff(want, got))
	}
}

// tableOp is an op on tb.
func tableOp(tb *Table, k OpKind, name string) Op {
	return Op{Kind: k, Family: tb.Family, Table: tb.Name, Name: name}
}

// TestConnIdempotentAdds runs the full ops twice: adds of existing tables,
// chains, sets and elements succeed and change nothing.
func TestConnIdempotentAdds(t *testing.T) {
	ns := newTestNS(t)
	rs := renderScenario(t, "external")
	ns.program(t, rs)
	before := ns.list(t, IPv4, DefaultTable) + ns.list(t, IPv6, DefaultTable)
	listing, err := ns.conn.List(testContext(t), IPv4, DefaultTable)
	if err != nil {
		t.Fatal(err)
	}
	// The same ops again: no error, the same names. (The rules are
	// appended a second time.)
	if err := ns.conn.Run(testContext(t), fullOps(rs)); err != nil {
		t.Fatalf("second run of the same ops: %v", err)
	}
	if again, err := ns.conn.List(testContext(t), IPv4, DefaultTable); err != nil || fmt.Sprint(again) != fmt.Sprint(listing) {
		t.Errorf("List after the second run = %v, %v; want %v", again, err, listing)
	}
	// A full sync flushes the chains first: then the tables are as before.
	ops := slices.Concat(idempotentPrefix(rs), fullOps(rs))
	if err := ns.conn.Run(testContext(t), ops); err != nil {
		t.Fatalf("full sync: %v", err)
	}
	if after := ns.list(t, IPv4, DefaultTable) + ns.list(t, IPv6, DefaultTable); after != before {
		t.Errorf("the full sync changed the tables (-first +second):\n%s", golden.LineDiff(before, after))
	}
}

// idempotentPrefix flushes every chain of rs: with it, the full ops can
// run again without doubling the rules.
func idempotentPrefix(rs *Ruleset) []Op {
	var ops []Op
	for _, tb := range rs.Tables {
		ops = append(ops, tableOp(tb, AddTable, ""))
		for _, c := range tb.Chains {
			o := tableOp(tb, AddChain, c.Name)
			o.Chain = c
			ops = append(ops, o, tableOp(tb, FlushChain, c.Name))
		}
	}
	return ops
}

// TestConnAtomic checks that a batch whose last op fails applies none of
// its ops, and that the error names that op.
func TestConnAtomic(t *testing.T) {
	ns := newTestNS(t)
	rs := renderScenario(t, "clusterip")
	ns.program(t, rs)
	before := ns.list(t, IPv4, DefaultTable)
	tb := rs.Tables[0]
	extra := tableOp(tb, AddChain, "extra")
	extra.Chain = &Chain{Name: "extra"}
	elems := tableOp(tb, AddElements, setClusterIPs)
	elems.Elements = []Element{{Addr: netip.MustParseAddr("10.96.9.9")}}
	flush := tableOp(tb, FlushChain, chainServices)
	rule := tableOp(tb, AddRule, "missing-chain")
	rule.Rule = Rule{Drop}
	err := ns.conn.Run(testContext(t), []Op{extra, elems, flush, rule})
	if err == nil {
		t.Fatal("Run with a rule for a missing chain succeeded")
	}
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, unix.ENOENT) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v is not ENOENT", err)
	}
	if want := `nftables: add rule to chain "missing-chain": `; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q does not start with %q", err, want)
	}
	if after := ns.list(t, IPv4, DefaultTable); after != before {
		t.Errorf("the failed batch changed the table (-before +after):\n%s", golden.LineDiff(before, after))
	}
}

// TestConnErrorNamesOp checks that the error of a failing op deep in a
// batch names that op, and that nothing is applied.
func TestConnErrorNamesOp(t *testing.T) {
	ns := newTestNS(t)
	rs := renderScenario(t, "clusterip")
	ns.program(t, rs)
	tb := rs.Tables[0]
	before := ns.list(t, IPv4, DefaultTable)
	ops := []Op{tableOp(tb, FlushSet, mapServiceIPs)}
	// Thousands of ops, then the failing one: the kernel reports it by the
	// sequence number of its message, however long the batch.
	for i := range 6000 {
		o := tableOp(tb, AddChain, fmt.Sprintf("extra-%d", i))
		o.Chain = &Chain{Name: o.Name}
		ops = append(ops, o)
	}
	busy := tableOp(tb, DeleteChain, chainServices) // has rules and references
	ops = slices.Insert(ops, 5001, busy)
	err := ns.conn.Run(testContext(t), ops)
	if !errors.Is(err, ErrBusy) || !errors.Is(err, unix.EBUSY) {
		t.Fatalf("Run = %v, want EBUSY", err)
	}
	if want := `nftables: delete chain "services": `; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q does not start with %q", err, want)
	}
	if after := ns.list(t, IPv4, DefaultTable); after != before {
		t.Errorf("the failed batch changed the table (-before +after):\n%s", golden.LineDiff(before, after))
	}
}

// TestConnInvalidOp checks that an op that cannot be translated fails
// before anything is sent.
func TestConnInvalidOp(t *testing.T) {
	ns := newTestNS(t)
	rs := renderScenario(t, "clusterip")
	ops := fullOps(rs)
	bad := tableOp(rs.Tables[0], AddRule, chainServices)
	bad.Rule = Rule{L4Proto{Proto: "ICMP"}, Accept}
	err := ns.conn.Run(testContext(t), append(ops, bad))
	if err == nil || !strings.Contains(err.Error(), `add rule to chain "services"`) || !strings.Contains(err.Error(), "ICMP") {
		t.Fatalf("Run = %v, want an error naming the rule and the protocol", err)
	}
	if l, err := ns.conn.List(testContext(t), IPv4, DefaultTable); err != nil || l.Exists {
		t.Errorf("List = %+v, %v; want no table", l, err)
	}
}

// TestConnOps checks each delete and flush operation against the same
// change made to the rendered table.
func TestConnOps(t *testing.T) {
	for _, tc := range []struct {
		name string
		// ops returns the ops to test and makes the same change to tb.
		ops func(t *testing.T, ns *testNS, tb *Table) []Op
	}{
		{"DeleteElements", func(t *testing.T, ns *testNS, tb *Table) []Op {
			svc, cidrs := findSet(t, tb, mapServiceIPs), findSet(t, tb, setClusterCIDRs)
			o1, o2 := tableOp(tb, DeleteElements, svc.Name), tableOp(tb, DeleteElements, cidrs.Name)
			o1.Elements, o2.Elements = svc.Elements[:1], cidrs.Elements
			svc.Elements, cidrs.Elements = svc.Elements[1:], nil
			return []Op{o1, o2}
		}},
		{"FlushSet", func(t *testing.T, ns *testNS, tb *Table) []Op {
			findSet(t, tb, mapServiceIPs).Elements = nil
			return []Op{tableOp(tb, FlushSet, mapServiceIPs)}
		}},
		{"FlushChain", func(t *testing.T, ns *testNS, tb *Table) []Op {
			findChain(t, tb, chainServices).Rules = nil
			return []Op{tableOp(tb, FlushChain, chainServices)}
		}},
		{"DeleteChain", func(t *testing.T, ns *testNS, tb *Table) []Op {
			// A chain with a rule, added in a first run, then flushed and
			// deleted.
			add, rule := tableOp(tb, AddChain, "extra"), tableOp(tb, AddRule, "extra")
			add.Chain, rule.Rule = &Chain{Name: "extra"}, Rule{Drop}
			if err := ns.conn.Run(testContext(t), []Op{add, rule}); err != nil {
				t.Fatal(err)
			}
			return []Op{tableOp(tb, FlushChain, "extra"), tableOp(tb, DeleteChain, "extra")}
		}},
		{"DeleteSet", func(t *testing.T, ns *testNS, tb *Table) []Op {
			extra := &Set{Name: "extra", Type: "ipv4_addr . inet_proto . inet_service", Data: "verdict"}
			add := tableOp(tb, AddSet, extra.Name)
			add.Set = extra
			return []Op{add, tableOp(tb, DeleteSet, extra.Name)}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newTestNS(t)
			rs := renderScenario(t, "clusterip")
			ns.program(t, rs)
			tb := rs.Tables[0]
			if err := ns.conn.Run(testContext(t), tc.ops(t, ns, tb)); err != nil {
				t.Fatal(err)
			}
			ns.checkTable(t, tb)
			ns.checkTable(t, rs.Tables[1]) // untouched
		})
	}
}

// TestConnDeleteTable deletes a table, twice: the second time it does not
// exist, which is ErrNotFound, as with the Fake.
func TestConnDeleteTable(t *testing.T) {
	ns := newTestNS(t)
	rs := renderScenario(t, "affinity")
	ns.program(t, rs)
	del := tableOp(rs.Tables[0], DeleteTable, "")
	if err := ns.conn.Run(testContext(t), []Op{del}); err != nil {
		t.Fatal(err)
	}
	err := ns.conn.Run(testContext(t), []Op{del})
	if !errors.Is(err, ErrNotFound) || !strings.HasPrefix(err.Error(), "nftables: delete table ip proxykit: ") {
		t.Errorf("second delete = %v, want ErrNotFound for the table", err)
	}
	if l, err := ns.conn.List(testContext(t), IPv4, DefaultTable); err != nil || l.Exists {
		t.Errorf("List = %+v, %v; want no table", l, err)
	}
	if _, err := ns.nft(t, "list", "table", "ip", DefaultTable); err == nil {
		t.Error("nft still lists the deleted table")
	}
	ns.checkTable(t, rs.Tables[1])
}

// TestConnList checks the names List returns, without the anonymous sets
// of rules, and a missing table.
func TestConnList(t *testing.T) {
	ns := newTestNS(t)
	rs := renderScenario(t, "external") // has anonymous sets and maps
	for _, tb := range rs.Tables {
		if l, err := ns.conn.List(testContext(t), tb.Family, tb.Name); err != nil || l.Exists || l.Chains != nil || l.Sets != nil {
			t.Errorf("List before programming = %+v, %v; want a zero Listing", l, err)
		}
	}
	ns.program(t, rs)
	for _, tb := range rs.Tables {
		want := Listing{Exists: true}
		for _, c := range tb.Chains {
			want.Chains = append(want.Chains, c.Name)
		}
		for _, s := range tb.Sets {
			want.Sets = append(want.Sets, s.Name)
		}
		slices.Sort(want.Chains)
		slices.Sort(want.Sets)
		got, err := ns.conn.List(testContext(t), tb.Family, tb.Name)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("List(%s) = %+v, want %+v", tb.Family, got, want)
		}
	}
	if l, err := ns.conn.List(testContext(t), IPv4, "other"); err != nil || l.Exists {
		t.Errorf("List of a missing table = %+v, %v", l, err)
	}
	if _, err := ns.conn.List(testContext(t), "inet", DefaultTable); err == nil {
		t.Error("List of family inet: no error")
	}
}

// TestConnContext checks that a done context stops Run and List.
func TestConnContext(t *testing.T) {
	ns := newTestNS(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ns.conn.Run(ctx, fullOps(renderScenario(t, "clusterip"))); !errors.Is(err, context.Canceled) {
		t.Errorf("Run with a cancelled context = %v", err)
	}
	if _, err := ns.conn.List(ctx, IPv4, DefaultTable); !errors.Is(err, context.Canceled) {
		t.Errorf("List with a cancelled context = %v", err)
	}
}

func TestTranslateError(t *testing.T) {
	joined := fmt.Errorf("conn.Receive: %w", errors.Join(
		fmt.Errorf("receive: %w", syscall.EBUSY), fmt.Errorf("receive: %w", syscall.ENOENT)))
	err := translateError(joined)
	if !errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.ENOENT) {
		t.Errorf("translateError = %v, want the first errno, EBUSY", err)
	}
	if !strings.Contains(err.Error(), "in use") {
		t.Errorf("translateError = %q, want a hint", err)
	}
	if got := errnosOf(joined); !slices.Equal(got, []syscall.Errno{syscall.EBUSY, syscall.ENOENT}) {
		t.Errorf("errnosOf = %v", got)
	}
	if e := translateError(syscall.ENOENT); !errors.Is(e, fs.ErrNotExist) || !errors.Is(e, ErrNotFound) || errors.Is(e, ErrBusy) {
		t.Error("ENOENT is not fs.ErrNotExist and ErrNotFound only")
	}
	if !errors.Is(translateError(syscall.EEXIST), ErrExists) {
		t.Error("EEXIST is not ErrExists")
	}
	plain := errors.New("plain")
	if translateError(plain) != plain {
		t.Error("translateError changed an error without errno")
	}
}

// TestConnLargeBatch runs a batch larger than the default socket buffers,
// with element lists longer than one netlink attribute holds (64 KiB):
// they are split over several messages.
func TestConnLargeBatch(t *testing.T) {
	ns := newTestNS(t)
	rs, err := Render(benchSnapshot(t, 1000, 10), testConfig)
	if err != nil {
		t.Fatal(err)
	}
	// A set of 6000 addresses: more than one netlink attribute holds.
	big := &Set{Name: "big", Type: "ipv4_addr"}
	for i := range 6000 {
		big.Elements = append(big.Elements, Element{Addr: netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)})})
	}
	tb := rs.Tables[0]
	tb.Sets = append(tb.Sets, big)
	ns.program(t, rs)
	ns.checkTable(t, tb)
	l, err := ns.conn.List(testContext(t), IPv4, DefaultTable)
	if err != nil || len(l.Chains) != len(tb.Chains) || len(l.Sets) != len(tb.Sets) {
		t.Errorf("List = %d chains, %d sets, %v; want %d, %d", len(l.Chains), len(l.Sets), err, len(tb.Chains), len(tb.Sets))
	}
}
