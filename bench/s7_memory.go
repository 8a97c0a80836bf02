package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/iptables"
	"github.com/proxykit/proxykit/ipvs"
	"github.com/proxykit/proxykit/nftables"
)

// memBackend is one backend of the memory scenario: make returns its
// Syncer, where it syncs to, the live heap of what stands in for the
// kernel (to subtract), and a cleanup.
type memBackend struct {
	name string
	make func(env *Env) (s proxykit.Syncer, where string, standIn func() any, cleanup func(), err error)
}

var memBackends = []memBackend{
	{"nftables", func(env *Env) (proxykit.Syncer, string, func() any, func(), error) {
		if env.Privileged != nil {
			s, err := nftables.NewSyncer(nftConfig, nftables.WithConn(nftables.NewFake()))
			return s, "the in-memory Fake (not privileged; included)", nil, func() {}, err
		}
		ns, err := NewNetNS()
		if err != nil {
			return nil, "", nil, nil, err
		}
		conn, err := nftables.NewConn(ns.Fd())
		if err != nil {
			ns.Close()
			return nil, "", nil, nil, err
		}
		s, err := nftables.NewSyncer(nftConfig, nftables.WithConn(conn))
		return s, "a network namespace", nil, func() { ns.Close() }, err
	}},
	{"iptables", func(*Env) (proxykit.Syncer, string, func() any, func(), error) {
		s, err := iptables.NewSyncer(iptConfig, iptables.WithRunner(discardRunner{}))
		return s, "a Runner that discards the restore input", nil, func() {}, err
	}},
	{"ipvs", func(*Env) (proxykit.Syncer, string, func() any, func(), error) {
		h := ipvs.NewFake()
		nft := nftables.NewFake()
		s, err := ipvs.NewSyncer(ipvsConfig, ipvs.WithHandle(h), ipvs.WithNFTConn(nft))
		return s, "the in-memory IPVS and nftables Fakes (subtracted)", func() any { return []any{h, nft} }, func() {}, err
	}},
}

// runMemory is scenario 7: for each backend, the live heap of a Proxy
// holding n services × 10 endpoints after a full sync, and the process's
// peak RSS while loading and syncing them. nftables syncs into a real
// namespace; iptables renders and hands its restore input to a Runner
// that drops it (a legacy restore of 30k × 10 takes minutes, and the
// tool's memory is its own process's); IPVS syncs into the in-memory
// Fakes, whose own heap is subtracted (the kernel holds that state).
func runMemory(ctx context.Context, env *Env) (Result, error) {
	sizes := env.sizes([]int{30000}, nil)
	n := sizes[len(sizes)-1]
	const eps = 10
	t := Table{Title: fmt.Sprintf("Memory holding and syncing %d services × %d endpoints", n, eps),
		Columns: []string{"backend", "sync target", "full sync", "live heap held by proxykit (after GC)", "peak heap while loading and syncing (sampled every 2 ms)", "peak RSS while loading and syncing"},
		Note: "This scenario runs first. Before each backend the heap is collected and returned to the OS and the peak RSS is reset " +
			"(`echo 5 > /proc/self/clear_refs`), so each row's peak covers loading the Proxy and its full sync only; it includes the Go runtime and the benchmark's own code (about the baseline row)."}
	debug.FreeOSMemory()
	resetHWM()
	t.AddRow("baseline: the process before loading", "", "", fmtBytes(liveHeap()), "", fmtBytes(vmHWM()))
	for _, b := range memBackends {
		if err := memoryOf(ctx, env, b, n, eps, &t); err != nil {
			return Result{}, fmt.Errorf("%s: %w", b.name, err)
		}
	}
	return Result{Tables: []Table{t}}, nil
}

func memoryOf(ctx context.Context, env *Env, b memBackend, n, eps int, t *Table) error {
	debug.FreeOSMemory()
	base := liveHeap()
	resetHWM()
	s, where, standIn, cleanup, err := b.make(env)
	if err != nil {
		return err
	}
	defer cleanup()
	env.Logf("  memory: load and sync %d services into %s (%s)", n, where, b.name)
	sampler := sampleHeap()
	p, _, err := loadProxy(s, n, eps)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := p.SyncNow(ctx); err != nil {
		return err
	}
	took := time.Since(start)
	peakHeap := sampler.stop()
	peak := vmHWM()
	held := liveHeap()
	runtime.KeepAlive(p)
	runtime.KeepAlive(s)
	if standIn != nil {
		keep := standIn()
		p, s = nil, nil // only the stand-ins stay live
		fakes := liveHeap()
		held -= min(held, fakes-min(fakes, base))
		runtime.KeepAlive(keep)
	}
	t.AddRow(b.name, where, took, fmtBytes(held-min(held, base)), fmtBytes(peakHeap), fmtBytes(peak))
	return nil
}

// heapSampler records the largest heap (live and not yet collected
// objects) seen every few milliseconds.
type heapSampler struct {
	done chan struct{}
	peak chan uint64
}

func sampleHeap() *heapSampler {
	h := &heapSampler{done: make(chan struct{}), peak: make(chan uint64)}
	go func() {
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-h.done:
				h.peak <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return h
}

// stop ends the sampling and returns the peak.
func (h *heapSampler) stop() uint64 {
	close(h.done)
	return <-h.peak
}

// resetHWM resets the process's peak RSS (VmHWM) to its current RSS.
func resetHWM() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// discardRunner is an iptables Runner that accepts every restore and
// drops it: the library's memory without the kernel's minutes.
type discardRunner struct{}

func (discardRunner) Restore(context.Context, proxykit.Family, string, [][]byte) error { return nil }
func (discardRunner) Save(context.Context, proxykit.Family, string) ([]byte, error)    { return nil, nil }
func (discardRunner) RuleExists(context.Context, proxykit.Family, string, string, []string) (bool, error) {
	return true, nil
}
func (discardRunner) InsertRule(context.Context, proxykit.Family, string, string, int, []string) error {
	return nil
}
func (discardRunner) DeleteRule(context.Context, proxykit.Family, string, string, []string) error {
	return nil
}
func (discardRunner) Version(context.Context, proxykit.Family) (string, iptables.Variant, error) {
	return "1.8.9", iptables.Legacy, nil
}

// liveHeap returns HeapAlloc after a full GC.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// vmHWM returns the process's peak resident set size from
// /proc/self/status, 0 if unknown.
func vmHWM() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	return parseVmHWM(string(b))
}

func parseVmHWM(status string) uint64 {
	for line := range strings.Lines(status) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v) // "123456 kB"
			if len(f) > 0 {
				kb, err := strconv.ParseUint(f[0], 10, 64)
				if err == nil {
					return kb * 1024
				}
			}
		}
	}
	return 0
}
