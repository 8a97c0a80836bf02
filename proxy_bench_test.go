package proxykit

import (
	"context"
	"fmt"
	"testing"

	"github.com/proxykit/proxykit/endpoints"
)

var benchNode = Node{Name: "node-0", Zone: "zone-a"}

func nopSyncer() Syncer {
	return SyncerFunc(func(context.Context, *Snapshot) error { return nil })
}

// BenchmarkInitialLoad measures the initial load of 30 000 services × 10
// endpoints in two parts: (a) the Update calls, (b) the pending changes
// turned into a ready Snapshot.
func BenchmarkInitialLoad(b *testing.B) {
	svcs, slices := genCluster(30000, 10)
	b.Run("a-updates", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p := New(benchNode, nopSyncer())
			for i := range svcs {
				if err := p.OnServiceUpdate(nil, svcs[i]); err != nil {
					b.Fatal(err)
				}
				if err := p.OnSliceUpdate(slices[i]); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("b-snapshot", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			p := New(benchNode, nopSyncer())
			for i := range svcs {
				_ = p.OnServiceUpdate(nil, svcs[i])
				_ = p.OnSliceUpdate(slices[i])
			}
			b.StartTimer()
			snap := p.next(true)
			if snap.Family(IPv4).Len() != len(svcs) {
				b.Fatalf("snapshot has %d ports", snap.Family(IPv4).Len())
			}
		}
	})
}

// BenchmarkOneSliceChange measures one changed slice, from the update to
// the next ready snapshot, among 1 000 and 30 000 installed services. The
// cost must not grow with the total.
func BenchmarkOneSliceChange(b *testing.B) {
	for _, n := range []int{1000, 30000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			svcs, slices := genCluster(n, 10)
			p := New(benchNode, nopSyncer())
			for i := range svcs {
				_ = p.OnServiceUpdate(nil, svcs[i])
				_ = p.OnSliceUpdate(slices[i])
			}
			p.applied(p.next(true))
			// Two versions of one slice to alternate between.
			k := n / 2
			versions := [2]*endpoints.Slice{genSlice(svcs[k].Name, k, 10, 1), slices[k]}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := p.OnSliceUpdate(versions[i%2]); err != nil {
					b.Fatal(err)
				}
				i++
				snap := p.next(false)
				if len(snap.Changed()) != 1 {
					b.Fatalf("changed = %v, want one port", snap.Changed())
				}
				// What a successful sync does.
				p.applied(snap)
			}
		})
	}
}
