package bench

import (
	"context"
	"errors"
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
	sizes := env.sizes([]int{30000}, nil)
	sp, err := syncPath(env, sizes[len(sizes)-1], eps)
	if err != nil {
		return Result{}, err
	}
	return Result{Tables: []Table{t, sp}, Plots: []Plot{{File: "s1-render.png", Title: "Render (×10 endpoints)",
		XLabel: "services", YLabel: "ms/op", LogX: true, LogY: true, Series: series}}}, nil
}

// syncTargets are the backend issues' goals for the sync path with a null
// kernel at 30k × 10, and kube-proxy's figures on these machines.
var syncTargets = map[string]string{
	"nftables": "≤ 240 ms, ≤ 150 MB (kube-proxy nftables: 1.21 s, 558 MB)",
	"iptables": "≤ 360 ms (kube-proxy iptables: 1.81 s, 891 MB)",
}

// syncPath measures the sync path with a null kernel, the goal measure of
// the backend issues: a Proxy's pending changes (n services × eps
// endpoints, the Update calls outside the timer, as informer events are
// outside kube-proxy's sync) turned into a Snapshot, plus the backend's
// Render.
func syncPath(env *Env, n, eps int) (Table, error) {
	t := Table{Title: fmt.Sprintf("Sync path with a null kernel: pending changes → Snapshot + Render, %d services × %d endpoints", n, eps),
		Columns: []string{"backend", "time/op", "allocs/op", "bytes/op", "goal (backend issue)"},
		Note: "`Proxy.SyncNow` over a Syncer that only renders, after the Update calls of every service and slice (not timed). " +
			"The goals are for 30k × 10; kube-proxy's figures are its sync with a null kernel (tracker apply plus render) on these machines, from the backend issues."}
	svcs, slcs := Cluster(n, eps)
	for _, r := range renderers {
		env.Logf("  sync path %d services: %s", n, r.name)
		var berr error
		render := proxykit.SyncerFunc(func(_ context.Context, s *proxykit.Snapshot) error { return r.fn(s) })
		res := testing.Benchmark(func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				p := proxykit.New(Node, render)
				for i := range svcs {
					if err := errors.Join(p.OnServiceUpdate(nil, svcs[i]), p.OnSliceUpdate(slcs[i])); err != nil {
						berr = err
						b.SkipNow()
					}
				}
				b.StartTimer()
				if err := p.SyncNow(context.Background()); err != nil {
					berr = err
					b.SkipNow()
				}
			}
		})
		if berr != nil {
			return t, fmt.Errorf("%s: %w", r.name, berr)
		}
		goal := syncTargets[r.name]
		if goal == "" {
			goal = "–"
		}
		t.AddRow(r.name, time.Duration(res.NsPerOp()), res.AllocsPerOp(), fmtBytes(uint64(res.AllocedBytesPerOp())), goal)
	}
	return t, nil
}

// setBenchTime sets testing.Benchmark's duration: the -test.benchtime flag,
// registered by testing.Init (main calls it; go test does).
func setBenchTime(d time.Duration) {
	if flag.Lookup("test.benchtime") == nil {
		testing.Init()
	}
	_ = flag.Set("test.benchtime", d.String())
}
