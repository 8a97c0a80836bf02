package nftables

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// benchCluster makes n single-port TCP services with eps endpoints each.
func benchCluster(n, eps int) ([]*servicemap.Service, []*endpoints.Slice) {
	svcs := make([]*servicemap.Service, n)
	slices := make([]*endpoints.Slice, n)
	for i := range n {
		name := fmt.Sprintf("svc-%05d", i)
		svcs[i] = &servicemap.Service{Namespace: "bench", Name: name,
			ClusterIPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})},
			Ports:      []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80}}}
		s := &endpoints.Slice{Namespace: "bench", Service: name, Name: name + "-x",
			Ports: []endpoints.Port{{Name: "http", Protocol: servicemap.TCP, Port: 8080}}}
		for j := range eps {
			k := i*eps + j
			s.Endpoints = append(s.Endpoints, endpoints.Endpoint{Addr: netip.AddrFrom4([4]byte{10, byte(128 + k>>16), byte(k >> 8), byte(k)}),
				Ready: true, NodeName: fmt.Sprintf("node-%d", j%4)})
		}
		slices[i] = s
	}
	return svcs, slices
}

// benchSnapshot is a full snapshot of benchCluster(n, eps) on node-0.
func benchSnapshot(tb testing.TB, n, eps int) *proxykit.Snapshot {
	tb.Helper()
	svcs, slices := benchCluster(n, eps)
	snap, err := proxykit.NewSnapshot(proxykit.Node{Name: "node-0"}, svcs, slices)
	if err != nil {
		tb.Fatal(err)
	}
	return snap
}

// BenchmarkRender renders (and prints, as the apply step and nft -f need)
// n services × 10 endpoints.
func BenchmarkRender(b *testing.B) {
	for _, n := range []int{1000, 10000, 30000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			snap := benchSnapshot(b, n, 10)
			b.ReportAllocs()
			for b.Loop() {
				rs, err := Render(snap, testConfig)
				if err != nil {
					b.Fatal(err)
				}
				_ = rs
			}
		})
	}
}

// BenchmarkSnapshotAndRender is the sync path at 30k × 10 with a null
// kernel: the pending changes turned into a snapshot, plus Render. It
// compares with kube-proxy's tracker apply plus render (1.21 s, 558 MB on
// these machines). The Update calls are outside the timer, as informer
// events are outside kube-proxy's sync.
func BenchmarkSnapshotAndRender(b *testing.B) {
	svcs, slices := benchCluster(30000, 10)
	render := proxykit.SyncerFunc(func(_ context.Context, snap *proxykit.Snapshot) error {
		_, err := Render(snap, testConfig)
		return err
	})
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		p := proxykit.New(proxykit.Node{Name: "node-0"}, render)
		for i := range svcs {
			if err := p.OnServiceUpdate(nil, svcs[i]); err != nil {
				b.Fatal(err)
			}
			if err := p.OnSliceUpdate(slices[i]); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		if err := p.SyncNow(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
