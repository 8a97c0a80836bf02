package bench

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/iptables"
	"github.com/proxykit/proxykit/ipvs"
	"github.com/proxykit/proxykit/nftables"
)

// renderer is one backend's pure step from a snapshot to its desired state.
type renderer struct {
	name string
	fn   func(*proxykit.Snapshot) error
}

var renderers = []renderer{
	{"nftables", func(s *proxykit.Snapshot) error { _, err := nftables.Render(s, nftConfig); return err }},
	{"iptables", func(s *proxykit.Snapshot) error { _, err := iptables.Render(s, iptConfig); return err }},
	{"ipvs (Plan+Rules)", func(s *proxykit.Snapshot) error {
		if _, err := ipvs.Plan(s, ipvsConfig); err != nil {
			return err
		}
		_, err := ipvs.Rules(s, ipvsConfig)
		return err
	}},
}

// runRender is scenario 1: Render (IPVS: Plan and its companion Rules) of
// n services × 10 endpoints, ns/op and allocs/op, with the snapshot's
// construction as the baseline.
func runRender(_ context.Context, env *Env) (Result, error) {
	const eps = 10
	setBenchTime(env.benchTime())
	t := Table{Title: "Render only (n services × 10 endpoints)",
		Columns: []string{"services", "backend", "time/op", "allocs/op", "bytes/op"},
		Note:    "Baseline: `proxykit.NewSnapshot` of the same cluster, the input every backend shares. IPVS is `ipvs.Plan` plus `ipvs.Rules` (its nftables companion rules)."}
	series := make([]Series, len(renderers)+1)
	series[0].Name = "NewSnapshot (baseline)"
	for i, r := range renderers {
		series[i+1] = Series{Name: r.name, Group: i + 1}
	}
	for _, n := range env.sizes([]int{1000, 5000, 10000, 30000}, []int{1000, 5000}) {
		svcs, slices := Cluster(n, eps)
		env.Logf("  render %d services: NewSnapshot", n)
		var berr error
		res := testing.Benchmark(func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := proxykit.NewSnapshot(Node, svcs, slices); err != nil {
					berr = err
					b.SkipNow()
				}
			}
		})
		if berr != nil {
			return Result{}, berr
		}
		t.AddRow(n, "baseline: NewSnapshot", time.Duration(res.NsPerOp()), res.AllocsPerOp(), fmtBytes(uint64(res.AllocedBytesPerOp())))
		series[0].X = append(series[0].X, float64(n))
		series[0].Y = append(series[0].Y, float64(res.NsPerOp())/1e6)
		snap, err := proxykit.NewSnapshot(Node, svcs, slices)
		if err != nil {
			return Result{}, err
		}
		for i, r := range renderers {
			env.Logf("  render %d services: %s", n, r.name)
			if err := r.fn(snap); err != nil {
				return Result{}, fmt.Errorf("%s: %w", r.name, err)
			}
			res := testing.Benchmark(func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					_ = r.fn(snap)
				}
			})
			t.AddRow(n, r.name, time.Duration(res.NsPerOp()), res.AllocsPerOp(), fmtBytes(uint64(res.AllocedBytesPerOp())))
			series[i+1].X = append(series[i+1].X, float64(n))
			series[i+1].Y = append(series[i+1].Y, float64(res.NsPerOp())/1e6)
		}
	}
	return Result{Tables: []Table{t}, Plots: []Plot{{File: "s1-render.png", Title: "Render (×10 endpoints)",
		XLabel: "services", YLabel: "ms/op", LogX: true, LogY: true, Series: series}}}, nil
}

// setBenchTime sets testing.Benchmark's duration: the -test.benchtime flag,
// registered by testing.Init (main calls it; go test does).
func setBenchTime(d time.Duration) {
	if flag.Lookup("test.benchtime") == nil {
		testing.Init()
	}
	_ = flag.Set("test.benchtime", d.String())
}
