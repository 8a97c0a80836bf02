package ipvs

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/internal/synthetic"
	"github.com/proxykit/proxykit/nftables"
)

// benchCluster is the benchmarks' cluster, the same for every backend.
var benchCluster = synthetic.Cluster

// BenchmarkSyncFake is a cold full sync of n virtual servers × 10 real
// servers into an empty Fake.
func BenchmarkSyncFake(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			svcs, slices := benchCluster(n, 10)
			snap, err := proxykit.NewSnapshot(proxykit.Node{Name: "node-0"}, svcs, slices)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				s, err := NewSyncer(Config{MasqueradeAll: true}, WithHandle(NewFake()), WithNFTConn(nftables.NewFake()))
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Sync(context.Background(), snap); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSyncFakeOneChange is a partial sync of one endpoint change
// with 10k virtual servers × 10 installed. The endpoint is on the node,
// so the companion rules' hairpin set changes too: most of the time and
// memory is then the nftables.Fake copying its tables for the
// transaction.
func BenchmarkSyncFakeOneChange(b *testing.B) { benchOneChange(b, 0) }

// BenchmarkSyncFakeOneChangeOffNode is BenchmarkSyncFakeOneChange with an
// endpoint of another node: IPVS changes, the companion rules do not.
func BenchmarkSyncFakeOneChangeOffNode(b *testing.B) { benchOneChange(b, 1) }

// benchOneChange replaces endpoint e of one service per sync.
func benchOneChange(b *testing.B, e int) {
	const n = 10000
	s, err := NewSyncer(Config{MasqueradeAll: true}, WithHandle(NewFake()), WithNFTConn(nftables.NewFake()))
	if err != nil {
		b.Fatal(err)
	}
	p := proxykit.New(proxykit.Node{Name: "node-0"}, s)
	svcs, slices := benchCluster(n, 10)
	for i := range svcs {
		_ = p.OnServiceUpdate(nil, svcs[i])
		_ = p.OnSliceUpdate(slices[i])
	}
	ctx := context.Background()
	if err := p.SyncNow(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		changed := *slices[i%n]
		changed.Endpoints = append([]endpoints.Endpoint(nil), changed.Endpoints...)
		changed.Endpoints[e].Addr = netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)})
		_ = p.OnSliceUpdate(&changed)
		if err := p.SyncNow(ctx); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
