package synthetic

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
)

// LoadProxy returns a Proxy on ClusterNode over s with Cluster(n, eps) pending,
// not yet synced, and the cluster's slices.
func LoadProxy(tb testing.TB, s proxykit.Syncer, n, eps int) (*proxykit.Proxy, []*endpoints.Slice) {
	tb.Helper()
	p := proxykit.New(ClusterNode, s)
	svcs, slcs := Cluster(n, eps)
	for i := range svcs {
		if err := p.OnServiceUpdate(nil, svcs[i]); err != nil {
			tb.Fatal(err)
		}
		if err := p.OnSliceUpdate(slcs[i]); err != nil {
			tb.Fatal(err)
		}
	}
	return p, slcs
}

// Change is the i-th change of the one-change benchmarks: endpoint j of
// slice (i×7919) mod len(slcs), a different service each time, moves to
// 10.(250+j).x.y, an address the cluster does not use and distinct for
// each i below 65536. It updates p, syncs it and stores the new slice in
// slcs, and returns the time from the update to the end of the sync.
func Change(tb testing.TB, p *proxykit.Proxy, slcs []*endpoints.Slice, i, j int) time.Duration {
	tb.Helper()
	k := (i * 7919) % len(slcs)
	changed := *slcs[k]
	changed.Endpoints = slices.Clone(changed.Endpoints)
	changed.Endpoints[j].Addr = netip.AddrFrom4([4]byte{10, byte(250 + j), byte(i >> 8), byte(i)})
	start := time.Now()
	if err := p.OnSliceUpdate(&changed); err != nil {
		tb.Fatal(err)
	}
	if err := p.SyncNow(context.Background()); err != nil {
		tb.Fatalf("change %d: %v", i, err)
	}
	took := time.Since(start)
	slcs[k] = &changed
	return took
}

// BenchSyncPath is the sync path with a null kernel, the backend issues'
// goal measure: Cluster(n, eps) pending in a Proxy (the Update calls
// outside the timer, as informer events are outside kube-proxy's sync)
// turned into a Snapshot and given to render.
func BenchSyncPath(b *testing.B, n, eps int, render func(*proxykit.Snapshot) error) {
	syncer := proxykit.SyncerFunc(func(_ context.Context, snap *proxykit.Snapshot) error { return render(snap) })
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		p, _ := LoadProxy(b, syncer, n, eps)
		b.StartTimer()
		if err := p.SyncNow(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
