package iptables

import (
	"fmt"
	"testing"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/internal/synthetic"
)

// benchCluster is the benchmarks' cluster, the same for every backend.
var benchCluster = synthetic.Cluster

// BenchmarkRender renders n services × 10 endpoints into the restore
// input of the four tables.
func BenchmarkRender(b *testing.B) {
	for _, n := range []int{1000, 10000, 30000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			svcs, slices := benchCluster(n, 10)
			snap, err := proxykit.NewSnapshot(proxykit.Node{Name: "node-0"}, svcs, slices)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			var size int
			for b.Loop() {
				rs, err := Render(snap, testConfig)
				if err != nil {
					b.Fatal(err)
				}
				size = 0
				for _, t := range rs.Tables {
					size += t.Size()
				}
			}
			b.ReportMetric(float64(size)/1e6, "MB-payload")
		})
	}
}

// BenchmarkSnapshotAndRender is the sync path at 30k × 10 with a null
// kernel: the pending changes turned into a snapshot, plus Render. The
// Update calls are outside the timer, as informer events are outside
// kube-proxy's sync (43 ms at 1k × 10 and 1.81 s at 30k × 10 here).
func BenchmarkSnapshotAndRender(b *testing.B) {
	synthetic.BenchSyncPath(b, 30000, 10, func(snap *proxykit.Snapshot) error {
		_, err := Render(snap, testConfig)
		return err
	})
}
