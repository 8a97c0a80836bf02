package nftables

import (
	"fmt"
	"testing"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/internal/synthetic"
)

// benchCluster is the benchmarks' cluster, the same for every backend.
var benchCluster = synthetic.Cluster

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
	synthetic.BenchSyncPath(b, 30000, 10, func(snap *proxykit.Snapshot) error {
		_, err := Render(snap, testConfig)
		return err
	})
}
