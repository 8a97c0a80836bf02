//go:build linux

package conntrack

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/mdlayher/netlink"
	ticonntrack "github.com/ti-mo/conntrack"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/internal/netnstest"
	"github.com/proxykit/proxykit/servicemap"
)

// benchServices is the number of UDP services of the benchmark snapshot,
// each with two endpoints; service i listens on port 10000+i.
const benchServices = 1000

// benchTable returns a snapshot of benchServices UDP services and a
// table of size flows spread over them from distinct clients, of which
// every tenth, up to stale, has a reply source that is not an endpoint.
func benchTable(tb testing.TB, size, stale int) (*proxykit.Snapshot, []Flow, []Flow) {
	tb.Helper()
	addr := func(base [4]byte, n int) netip.Addr {
		base[2] += byte(n >> 8)
		base[3] += byte(n)
		return netip.AddrFrom4(base)
	}
	svcs := make([]*servicemap.Service, benchServices)
	slices := make([]*endpoints.Slice, benchServices)
	for i := range benchServices {
		name := fmt.Sprintf("svc-%d", i)
		svcs[i] = &servicemap.Service{Namespace: "bench", Name: name, ClusterIPs: []netip.Addr{addr([4]byte{10, 96}, i)},
			Ports: []servicemap.Port{{Name: "dns", Protocol: servicemap.UDP, Port: uint16(10000 + i)}}}
		slices[i] = &endpoints.Slice{Namespace: "bench", Service: name, Name: name,
			Ports: []endpoints.Port{{Name: "dns", Protocol: servicemap.UDP, Port: 8080}},
			Endpoints: []endpoints.Endpoint{
				{Addr: addr([4]byte{10, 244}, 2*i), Ready: true},
				{Addr: addr([4]byte{10, 244}, 2*i+1), Ready: true},
			}}
	}
	snap, err := proxykit.NewSnapshot(proxykit.Node{Name: "node1"}, svcs, slices)
	if err != nil {
		tb.Fatal(err)
	}
	flows := make([]Flow, 0, size)
	var staleFlows []Flow
	for j := range size {
		i := j % benchServices
		client := netip.AddrPortFrom(addr([4]byte{10, 100}, j/50000), uint16(10000+j%50000))
		ep := netip.AddrPortFrom(addr([4]byte{10, 244}, 2*i+(j/benchServices)%2), 8080)
		isStale := j%10 == 0 && len(staleFlows) < stale
		if isStale {
			ep = netip.AddrPortFrom(addr([4]byte{10, 245}, i), 8080) // a replaced endpoint
		}
		f := Flow{Proto: UDP, Orig: Tuple{Src: client, Dst: netip.AddrPortFrom(addr([4]byte{10, 96}, i), uint16(10000+i))},
			Reply: Tuple{Src: ep, Dst: client}}
		flows = append(flows, f)
		if isStale {
			staleFlows = append(staleFlows, f)
		}
	}
	return snap, flows, staleFlows
}

// benchNS returns a fresh namespace whose conntrack table can hold size
// flows.
func benchNS(b *testing.B, size int) *netnstest.NS {
	tp := netnstest.New(b)
	if have := ctMax(b, tp.Node1, size+size/10); have < size {
		b.Skipf("net.netfilter.nf_conntrack_max is %d, below %d flows, and read-only in a network namespace: raise it in the initial namespace", have, size)
	}
	return tp.Node1
}

// BenchmarkReconcile is a full reconcile (dump, compute, delete) of a
// table of 100k and 200k UDP flows created through netlink, with 10 %
// stale flows and with none (a no-op reconcile, as after a restart).
// deletions/s is the reconcile's rate over its whole time; requests and
// writes are the netlink messages and send system calls per 1000
// deletions, dump requests included.
func BenchmarkReconcile(b *testing.B) {
	for _, size := range []int{100_000, 200_000} {
		for _, stale := range []int{size / 10, 0} {
			name := fmt.Sprintf("flows=%dk/stale=%d", size/1000, stale)
			b.Run(name, func(b *testing.B) { benchReconcile(b, size, stale) })
		}
	}
}

func benchReconcile(b *testing.B, size, stale int) {
	ns := benchNS(b, size)
	c := kernelConn(b, ns)
	snap, flows, staleFlows := benchTable(b, size, stale)
	ctx := b.Context()
	if err := createFlows(ctx, c, flows, 3600); err != nil {
		b.Fatal(err)
	}
	s, err := NewSyncer(Config{}, WithConn(c))
	if err != nil {
		b.Fatal(err)
	}
	var deleted, requests, writes int64
	b.ResetTimer()
	for i := range b.N {
		if i > 0 && stale > 0 {
			recreate(b, c, staleFlows)
		}
		r0, w0 := c.requests.Load(), c.writes.Load()
		res, err := s.Reconcile(ctx, snap)
		if err != nil {
			b.Fatal(err)
		}
		requests += c.requests.Load() - r0
		writes += c.writes.Load() - w0
		if res.Deleted != stale || res.Dumped != size {
			b.Fatalf("reconcile: %+v, want %d dumped and %d deleted", res, size, stale)
		}
		deleted += int64(res.Deleted)
	}
	b.StopTimer()
	if deleted > 0 {
		b.ReportMetric(float64(deleted)/b.Elapsed().Seconds(), "deletions/s")
		b.ReportMetric(float64(requests)*1000/float64(deleted), "requests/1000del")
		b.ReportMetric(float64(writes)*1000/float64(deleted), "writes/1000del")
	}
}

// BenchmarkPartialSync is the reconcile of a partial sync in which one
// service of benchServices changed, with 200k flows in the table: one dump
// filtered by the service's port in the kernel, then the service's stale
// flows (20 of its 200) deleted.
func BenchmarkPartialSync(b *testing.B) {
	const size, stale = 200_000, 20_000
	ns := benchNS(b, size)
	c := kernelConn(b, ns)
	snap, flows, staleFlows := benchTable(b, size, stale)
	var mine []Flow // service 0's stale flows
	for _, f := range staleFlows {
		if f.Orig.Dst.Port() == 10000 {
			mine = append(mine, f)
		}
	}
	ctx := b.Context()
	if err := createFlows(ctx, c, flows, 3600); err != nil {
		b.Fatal(err)
	}
	s, err := NewSyncer(Config{}, WithConn(c))
	if err != nil {
		b.Fatal(err)
	}
	one := func(n servicemap.PortName) bool { return n.Name == "svc-0" }
	b.ResetTimer()
	for i := range b.N {
		if i > 0 {
			recreate(b, c, mine)
		}
		s.mu.Lock()
		res, err := s.reconcile(ctx, snap, false, one)
		s.mu.Unlock()
		if err != nil {
			b.Fatal(err)
		}
		if res.Deleted != len(mine) || res.Dumps != 1 || res.Dumped != size/benchServices {
			b.Fatalf("reconcile: %+v, want 1 dump of %d flows deleting %d", res, size/benchServices, len(mine))
		}
	}
}

// BenchmarkReferenceTiMo is the same reconcile with 200k flows and 10 %
// stale done with github.com/ti-mo/conntrack v0.5.2 alone: an unfiltered
// Dump that returns the whole table, then one Delete (a request and its
// acknowledgement) per stale flow. It is the baseline the package's own
// netlink path is measured against.
func BenchmarkReferenceTiMo(b *testing.B) {
	const size, stale = 200_000, 20_000
	ns := benchNS(b, size)
	c := kernelConn(b, ns)
	snap, flows, staleFlows := benchTable(b, size, stale)
	ctx := b.Context()
	if err := createFlows(ctx, c, flows, 3600); err != nil {
		b.Fatal(err)
	}
	tc, err := ticonntrack.Dial(&netlink.Config{NetNS: ns.Fd()})
	if err != nil {
		b.Fatal(err)
	}
	defer tc.Close()
	var deleted int64
	b.ResetTimer()
	for i := range b.N {
		if i > 0 {
			recreate(b, c, staleFlows)
		}
		all, err := tc.Dump(nil)
		if err != nil {
			b.Fatal(err)
		}
		ix := buildIndex(snap, Config{}, coverAll)
		for _, tf := range all {
			f := Flow{ID: tf.ID, Zone: tf.Zone, Proto: Proto(tf.TupleOrig.Proto.Protocol), Orig: tiTuple(tf.TupleOrig), Reply: tiTuple(tf.TupleReply)}
			if !ix.stale(&f) {
				continue
			}
			if err := tc.Delete(tf); err != nil {
				b.Fatal(err)
			}
			deleted++
		}
	}
	b.StopTimer()
	if deleted != int64(b.N*stale) {
		b.Fatalf("deleted %d, want %d", deleted, b.N*stale)
	}
	b.ReportMetric(float64(deleted)/b.Elapsed().Seconds(), "deletions/s")
	b.ReportMetric(1000+1000.0/stale, "requests/1000del")
}

// BenchmarkDumpFloor reads dumps of a table of 200k UDP flows without
// decoding them: the kernel's own cost, the floor of every dump-based
// reconcile. "copy" selects every flow (the kernel fills a message per
// flow), "walk" a port that no flow has (the kernel only visits them).
func BenchmarkDumpFloor(b *testing.B) {
	const size = 200_000
	ns := benchNS(b, size)
	c := kernelConn(b, ns)
	_, flows, _ := benchTable(b, size, 0)
	if err := createFlows(b.Context(), c, flows, 3600); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		flt  Filter
		want int
	}{
		{"copy", Filter{Family: proxykit.IPv4, Proto: UDP}, size},
		{"walk", Filter{Family: proxykit.IPv4, Proto: UDP, Port: 9}, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for range b.N {
				if n := rawDump(b, c, bc.flt); n != bc.want {
					b.Fatalf("dumped %d flows, want %d", n, bc.want)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/flow")
		})
	}
}

// rawDump runs one dump and counts its messages without decoding them.
func rawDump(b *testing.B, c *netlinkConn, flt Filter) int {
	s, err := c.open()
	if err != nil {
		b.Fatal(err)
	}
	defer s.close()
	var e encoder
	e.dumpRequest(s.nextSeq(), flt)
	if err := s.write(b.Context(), e.b, 1); err != nil {
		b.Fatal(err)
	}
	n := 0
	for {
		buf, err := s.read(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		for len(buf) > 0 {
			h, _, rest, err := nextMessage(buf)
			if err != nil {
				b.Fatal(err)
			}
			buf = rest
			if h.typ == nlmsgDone {
				return n
			}
			n++
		}
	}
}

// BenchmarkDelete deletes 20k known flows from a table of 200k: the
// deletion stage of a reconcile alone, without its dump.
func BenchmarkDelete(b *testing.B) {
	const size, stale = 200_000, 20_000
	ns := benchNS(b, size)
	c := kernelConn(b, ns)
	_, flows, staleFlows := benchTable(b, size, stale)
	ctx := b.Context()
	if err := createFlows(ctx, c, flows, 3600); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		if i > 0 {
			recreate(b, c, staleFlows)
		}
		n, err := c.Delete(ctx, staleFlows)
		if err != nil || n != stale {
			b.Fatalf("deleted %d of %d: %v", n, stale, err)
		}
	}
	b.ReportMetric(float64(b.N*stale)/b.Elapsed().Seconds(), "deletions/s")
}

// recreate puts flows back into the table, outside the benchmark's timer:
// the flows an iteration deleted, for the next one.
func recreate(b *testing.B, c *netlinkConn, flows []Flow) {
	b.StopTimer()
	defer b.StartTimer()
	if err := createFlows(b.Context(), c, flows, 3600); err != nil {
		b.Fatal(err)
	}
}
