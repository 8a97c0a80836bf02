//go:build linux

package nftables

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/proxykit/proxykit/internal/synthetic"
)

// BenchmarkColdApply programs n services × e endpoints into an empty
// network namespace: Render plus one netlink transaction.
func BenchmarkColdApply(b *testing.B) {
	for _, size := range []struct{ n, eps int }{{1000, 2}, {10000, 2}, {30000, 10}} {
		b.Run(fmt.Sprintf("%dx%d", size.n, size.eps), func(b *testing.B) {
			snap := benchSnapshot(b, size.n, size.eps)
			for b.Loop() {
				b.StopTimer()
				ns := newTestNS(b)
				s, err := NewSyncer(testConfig, WithConn(ns.conn))
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

// BenchmarkNftFloor is the physical floor of a cold apply: `nft -f` of
// the rendered text into an empty network namespace, for the sizes of
// BenchmarkColdApply. The nft binary parses and evaluates the text, then
// sends its own batch; the kernel's share is the same as ours.
func BenchmarkNftFloor(b *testing.B) {
	newTestNS(b) // root and nft, or skip
	for _, size := range []struct{ n, eps int }{{1000, 2}, {10000, 2}, {30000, 10}} {
		b.Run(fmt.Sprintf("%dx%d", size.n, size.eps), func(b *testing.B) {
			snap := benchSnapshot(b, size.n, size.eps)
			rs, err := Render(snap, testConfig)
			if err != nil {
				b.Fatal(err)
			}
			text := rs.String()
			for b.Loop() {
				cmd := exec.Command("unshare", "-n", "nft", "-f", "-")
				cmd.Stdin = strings.NewReader(text)
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("nft -f: %v\n%s", err, out)
				}
			}
		})
	}
}

// BenchmarkOneChange30k is the latency of one service's change, from the
// update to the kernel, with 30 000 services × 10 endpoints installed: a
// partial sync. It reports p50 and p99.
func BenchmarkOneChange30k(b *testing.B) {
	ns := newTestNS(b)
	s, err := NewSyncer(testConfig, WithConn(ns.conn))
	if err != nil {
		b.Fatal(err)
	}
	p, slcs := synthetic.LoadProxy(b, s, 30000, 10)
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
}
