//go:build linux

package iptables

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/proxykit/proxykit/internal/synthetic"
)

// BenchmarkColdApply programs n services × e endpoints into an empty
// network namespace: Render plus the four restores, with each variant.
func BenchmarkColdApply(b *testing.B) {
	for _, v := range variants {
		for _, size := range []struct{ n, eps int }{{1000, 2}, {10000, 2}, {30000, 10}} {
			b.Run(fmt.Sprintf("%s/%dx%d", v, size.n, size.eps), func(b *testing.B) {
				if v == NFT && size.n*size.eps > 20000 {
					b.Skip(nftQuadratic)
				}
				snap, err := synthetic.Snapshot(size.n, size.eps)
				if err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					b.StopTimer()
					s, err := NewSyncer(testConfig, WithRunner(newTestRunner(b, v)))
					if err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					if err := s.Sync(context.Background(), snap); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// nftQuadratic explains the skipped iptables-nft sizes.
const nftQuadratic = "iptables-nft-restore 1.8.9 --noflush is quadratic in the chains of one input " +
	"(30k declarations: 13 s, 10k services x 2 endpoints: 71 s); larger sizes take too long to benchmark"

// BenchmarkOneChange10k is the latency of one service's change, from the
// update to the kernel, with 10 000 services installed (× 10 endpoints
// with legacy, × 2 with nft, see nftQuadratic): a partial sync. It
// reports p50 and p99.
func BenchmarkOneChange10k(b *testing.B) {
	for _, v := range variants {
		eps := 10
		if v == NFT {
			eps = 2
		}
		b.Run(fmt.Sprintf("%s/10000x%d", v, eps), func(b *testing.B) {
			s, err := NewSyncer(testConfig, WithRunner(newTestRunner(b, v)))
			if err != nil {
				b.Fatal(err)
			}
			p, slcs := synthetic.LoadProxy(b, s, 10000, eps)
			if err := p.SyncNow(context.Background()); err != nil {
				b.Fatal(err)
			}
			var took []time.Duration
			for i := 0; b.Loop(); i++ {
				took = append(took, synthetic.Change(b, p, slcs, i, 0))
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
		})
	}
}
