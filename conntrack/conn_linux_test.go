//go:build linux

package conntrack

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/internal/netnstest"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// nat returns a flow client → frontend, translated to endpoint; reply
// to the client itself (no masquerade).
func nat(proto Proto, client, frontend, endpoint string) Flow {
	c, e := ap(client), ap(endpoint)
	return Flow{Proto: proto, Orig: Tuple{Src: c, Dst: ap(frontend)}, Reply: Tuple{Src: e, Dst: c}}
}

func sortFlows(fs []Flow) []Flow {
	fs = slices.Clone(fs)
	slices.SortFunc(fs, func(a, b Flow) int {
		return cmp.Or(a.Orig.Src.Compare(b.Orig.Src), a.Orig.Dst.Compare(b.Orig.Dst), cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Zone, b.Zone))
	})
	return fs
}

// The lean decoder reads what github.com/ti-mo/conntrack reads, and the
// kernel filters the dump by family and protocol.
func TestConnDumpMatchesReference(t *testing.T) {
	tp := netnstest.New(t)
	c := kernelConn(t, tp.Node1)
	zoned := nat(UDP, "192.0.2.100:1003", "10.96.0.10:53", "10.244.2.10:53")
	zoned.Zone = 7
	flows := []Flow{
		nat(UDP, "192.0.2.100:1001", "10.96.0.10:53", "10.244.2.10:53"),
		nat(UDP, "192.0.2.100:1002", "10.96.0.10:53", "10.244.2.11:53"),
		zoned,
		nat(UDP, "[2001:db8:c::100]:1001", "[fd00:96::a]:53", "[fd00:244:2::10]:53"),
		nat(TCP, "192.0.2.100:1001", "10.96.0.10:53", "10.244.2.10:53"),
		nat(SCTP, "192.0.2.100:1001", "10.96.0.10:53", "10.244.2.10:53"),
		nat(UDP, "192.0.2.100:1001", "10.96.0.10:54", "10.244.2.11:54"),
	}
	if err := createFlows(t.Context(), c, flows, 600); err != nil {
		t.Fatal(err)
	}
	ref := tiDump(t, tp.Node1)
	for _, flt := range []Filter{
		{Family: proxykit.IPv4, Proto: UDP}, {Family: proxykit.IPv6, Proto: UDP}, {Family: proxykit.IPv4, Proto: TCP},
		{Family: proxykit.IPv4, Proto: SCTP}, {Family: proxykit.IPv6, Proto: SCTP},
		{Family: proxykit.IPv4, Proto: UDP, Port: 53}, {Family: proxykit.IPv4, Proto: UDP, Port: 54},
		{Family: proxykit.IPv6, Proto: UDP, Port: 53}, {Family: proxykit.IPv4, Proto: UDP, Port: 55},
	} {
		var got []Flow
		if err := c.Dump(t.Context(), flt, func(f *Flow) { got = append(got, *f) }); err != nil {
			t.Fatal(err)
		}
		want := slices.DeleteFunc(slices.Clone(ref), func(f Flow) bool {
			return f.Family() != flt.Family || f.Proto != flt.Proto || (flt.Port != 0 && f.Orig.Dst.Port() != flt.Port)
		})
		if !slices.Equal(sortFlows(got), sortFlows(want)) {
			t.Errorf("%v: dump\n got %v\nwant %v (ti-mo/conntrack)", flt, got, want)
		}
		for _, f := range got {
			if f.ID == 0 {
				t.Errorf("%v: no ID", f)
			}
		}
	}
	if n := countBy(ref, func(f Flow) bool { return f.Zone == 7 }); n != 1 {
		t.Errorf("%d flows in zone 7, want 1", n)
	}
}

// Delete matches the tuple, the zone and the ID; a flow gone is neither
// counted nor an error; several writes are pipelined.
func TestConnDelete(t *testing.T) {
	tp := netnstest.New(t)
	c := kernelConn(t, tp.Node1)
	ctx := t.Context()
	var flows []Flow
	for i := range 3000 {
		flows = append(flows, nat(UDP, netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(1000+i)).String(), "10.96.0.10:53", "10.244.2.10:53"))
	}
	if err := createFlows(ctx, c, flows[:2000], 600); err != nil {
		t.Fatal(err)
	}
	var dumped []Flow
	if err := c.Dump(ctx, Filter{Family: proxykit.IPv4, Proto: UDP}, func(f *Flow) { dumped = append(dumped, *f) }); err != nil {
		t.Fatal(err)
	}
	if len(dumped) != 2000 {
		t.Fatalf("dumped %d flows, want 2000", len(dumped))
	}
	wrongID := dumped[0]
	wrongID.ID++
	if n, err := c.Delete(ctx, []Flow{wrongID}); n != 0 || err != nil {
		t.Errorf("delete with a wrong ID: %d, %v; want 0, nil", n, err)
	}
	wrongZone := dumped[0]
	wrongZone.Zone = 3
	if n, err := c.Delete(ctx, []Flow{wrongZone}); n != 0 || err != nil {
		t.Errorf("delete in another zone: %d, %v; want 0, nil", n, err)
	}
	// 2000 present of 3000, in several writes.
	w0 := c.writes.Load()
	if n, err := c.Delete(ctx, flows); n != 2000 || err != nil {
		t.Errorf("delete 3000 with 2000 present: %d, %v; want 2000, nil", n, err)
	}
	if w := c.writes.Load() - w0; w < 2 || w > 4 {
		t.Errorf("%d writes for 3000 deletions, want 2 to 4", w)
	}
	if n, err := c.Delete(ctx, flows[:10]); n != 0 || err != nil {
		t.Errorf("delete again: %d, %v; want 0, nil", n, err)
	}
	if left := tiDump(t, tp.Node1); len(left) != 0 {
		t.Errorf("%d flows left, want none: %v", len(left), left[:min(3, len(left))])
	}
	bad := Flow{Proto: UDP, Orig: Tuple{Src: ap("10.0.0.1:1"), Dst: ap("[fd00::1]:53")}}
	if n, err := c.Delete(ctx, []Flow{flows[0], bad}); n != 0 || err == nil {
		t.Errorf("delete of a mixed-family tuple: %d, %v; want 0 and an error", n, err)
	}
}

// Kernel errors keep their errno, with a hint; Supported passes on a
// kernel that has what the package needs.
func TestKernelErrors(t *testing.T) {
	err := translateError(fmt.Errorf("recvmsg: %w", unix.EPERM))
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "CAP_NET_ADMIN") {
		t.Errorf("EPERM: %v", err)
	}
	if _, err := NewConn(-1); err == nil {
		t.Error("NewConn(-1) succeeded")
	}
	tp := netnstest.New(t)
	s, err := NewSyncer(Config{}, WithConn(kernelConn(t, tp.Node1)))
	must(t, err)
	if err := s.Supported(t.Context()); err != nil {
		t.Errorf("Supported: %v", err)
	}
}
