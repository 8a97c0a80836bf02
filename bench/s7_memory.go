package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/proxykit/proxykit/nftables"
)

// runMemory is scenario 7: the live heap of a Proxy holding n services ×
// 10 endpoints synced into nftables (a real namespace when privileged,
// else the in-memory Fake), and the process's peak RSS.
func runMemory(ctx context.Context, env *Env) (Result, error) {
	sizes := env.sizes([]int{30000}, nil)
	n := sizes[len(sizes)-1]
	const eps = 10
	t := Table{Title: fmt.Sprintf("Memory holding and syncing %d services × %d endpoints (nftables)", n, eps),
		Columns: []string{"measure", "value"}}
	var conn nftables.Conn
	where := "the in-memory Fake (not privileged)"
	if env.Privileged == nil {
		ns, err := NewNetNS()
		if err != nil {
			return Result{}, err
		}
		defer ns.Close()
		if conn, err = nftables.NewConn(ns.Fd()); err != nil {
			return Result{}, err
		}
		where = "a network namespace"
	} else {
		conn = nftables.NewFake()
	}
	base := liveHeap()
	env.Logf("  memory: load and sync %d services into %s", n, where)
	s, err := nftables.NewSyncer(nftConfig, nftables.WithConn(conn))
	if err != nil {
		return Result{}, err
	}
	p, _, err := loadProxy(s, n, eps)
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	if err := p.SyncNow(ctx); err != nil {
		return Result{}, err
	}
	took := time.Since(start)
	held := liveHeap()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.AddRow("sync target", where)
	t.AddRow("full sync", took)
	t.AddRow("live heap before loading", fmtBytes(base))
	t.AddRow("live heap holding the Proxy, its Snapshot and the Syncer (after GC)", fmtBytes(held))
	t.AddRow("held by proxykit (difference)", fmtBytes(held-min(held, base)))
	t.AddRow("Go heap obtained from the OS (HeapSys)", fmtBytes(ms.HeapSys))
	t.AddRow("process peak RSS (VmHWM)", fmtBytes(vmHWM()))
	t.Note = "This scenario runs first, so VmHWM (the process's peak so far) covers loading and syncing this cluster and not the other scenarios."
	runtime.KeepAlive(p)
	runtime.KeepAlive(s)
	return Result{Tables: []Table{t}}, nil
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
