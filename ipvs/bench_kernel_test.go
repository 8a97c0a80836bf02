//go:build linux

package ipvs_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	mobyipvs "github.com/moby/ipvs"
	"golang.org/x/sys/unix"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/internal/netnstest"
	"github.com/proxykit/proxykit/internal/synthetic"
	"github.com/proxykit/proxykit/ipvs"
	"github.com/proxykit/proxykit/nftables"
)

// The kernel benchmarks compare the IPVS backend with the nftables
// backend on the same kernel, as scenarios 1–3 of the bench module's
// suite (bench/, scenario 8): in the VM, whose CPU is emulated, times are
// only meaningful as ratios. Run them with
//
//	PROXYKIT_VM_RUN='^$' PROXYKIT_VM_BENCH=Scenario PROXYKIT_VM_BENCHTIME=1s go test -run '^TestVM$' -v ./ipvs/
//
// PROXYKIT_VM_BENCHTIME is -test.benchtime (default 1x), and
// PROXYKIT_VM_BENCH_MAX, when set, caps the number of services (a cap
// below every size runs the cap itself). Each backend programs a fresh,
// empty network namespace, with the bench suite's configuration and
// cluster (internal/synthetic).

// benchMaxEnv caps the services of the kernel benchmarks; TestVM passes
// it into the VM.
const benchMaxEnv = "PROXYKIT_VM_BENCH_MAX"

// The bench suite's configuration (bench/backends.go).
var (
	benchIPVSConfig = ipvs.Config{ClusterCIDRs: synthetic.ClusterCIDRs, LocalPodCIDRs: synthetic.LocalPodCIDRs}
	benchNFTConfig  = nftables.Config{ClusterCIDRs: synthetic.ClusterCIDRs, LocalPodCIDRs: synthetic.LocalPodCIDRs}
)

// benchBackends are the compared backends, in the order they run.
var benchBackends = []string{"ipvs", "nftables"}

// newKernelBackend returns a backend's Syncer in the namespace fd.
func newKernelBackend(b *testing.B, backend string, fd int) proxykit.Syncer {
	b.Helper()
	switch backend {
	case "ipvs":
		s, err := ipvs.NewSyncer(benchIPVSConfig, ipvs.WithNetNSFd(fd))
		if err != nil {
			b.Fatal(err)
		}
		return s
	case "nftables":
		c, err := nftables.NewConn(fd)
		if err != nil {
			b.Fatal(err)
		}
		s, err := nftables.NewSyncer(benchNFTConfig, nftables.WithConn(c))
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	b.Fatalf("unknown backend %q", backend)
	return nil
}

// benchSizes returns def capped by benchMaxEnv.
func benchSizes(b *testing.B, def []int) []int {
	v := os.Getenv(benchMaxEnv)
	if v == "" {
		return def
	}
	limit, err := strconv.Atoi(v)
	if err != nil || limit < 0 {
		b.Fatalf("%s=%q: not a number of services", benchMaxEnv, v)
	}
	if limit == 0 {
		return def
	}
	var out []int
	for _, n := range def {
		if n <= limit {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		out = []int{limit}
	}
	return out
}

func benchSnapshot(b *testing.B, n, eps int) *proxykit.Snapshot {
	b.Helper()
	snap, err := synthetic.Snapshot(n, eps)
	if err != nil {
		b.Fatal(err)
	}
	return snap
}

// BenchmarkScenario1Render is scenario 1: the pure step from a snapshot
// of n services × 10 endpoints to the desired state, ipvs.Plan plus
// ipvs.Rules (the companion rules) against nftables.Render.
func BenchmarkScenario1Render(b *testing.B) {
	const eps = 10
	for _, n := range benchSizes(b, []int{1000, 5000, 10000}) {
		snap := benchSnapshot(b, n, eps)
		for _, backend := range benchBackends {
			b.Run(fmt.Sprintf("%s/services=%d", backend, n), func(b *testing.B) {
				render := func() {
					var err error
					if backend == "ipvs" {
						if _, err = ipvs.Plan(snap, benchIPVSConfig); err == nil {
							_, err = ipvs.Rules(snap, benchIPVSConfig)
						}
					} else {
						_, err = nftables.Render(snap, benchNFTConfig)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				render() // warm up: few ops fit in the benchtime under emulation
				b.ReportAllocs()
				for b.Loop() {
					render()
				}
			})
		}
	}
}

// BenchmarkScenario2ColdApply is scenario 2: a full sync of n services ×
// 2 endpoints into a fresh, empty namespace. The namespace is created
// and released outside the timer, and the kernel's teardown of the last
// one is waited for.
func BenchmarkScenario2ColdApply(b *testing.B) {
	requireKernel(b)
	warmUpKernel(b)
	const eps = 2
	for _, n := range benchSizes(b, []int{1000, 10000}) {
		snap := benchSnapshot(b, n, eps)
		for _, backend := range benchBackends {
			b.Run(fmt.Sprintf("%s/size=%dx%d", backend, n, eps), func(b *testing.B) {
				waitIdle(b)
				ctx := context.Background()
				for b.Loop() {
					b.StopTimer()
					fd := newBareNetNS(b)
					s := newKernelBackend(b, backend, fd)
					b.StartTimer()
					if err := s.Sync(ctx, snap); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					releaseNetNS(b, fd)
					b.StartTimer()
				}
			})
		}
	}
}

// BenchmarkScenario3OneChange is scenario 3: with n services × 10
// endpoints installed (the initial full sync is reported as install-ns),
// each op moves the first endpoint of one slice (on the node), a
// different service each time, and syncs through Proxy.SyncNow: a
// partial sync. Besides the mean (ns/op) it reports the p50 and p99 of
// the ops, and the p50 of as many changes (at most offNodeChanges) of the
// second endpoint, which is on another node (offnode-p50-ns).
func BenchmarkScenario3OneChange(b *testing.B) {
	requireKernel(b)
	warmUpKernel(b)
	const eps = 10
	for _, n := range benchSizes(b, []int{1000, 10000}) {
		for _, backend := range benchBackends {
			b.Run(fmt.Sprintf("%s/services=%d", backend, n), func(b *testing.B) {
				waitIdle(b)
				fd := newBareNetNS(b)
				defer releaseNetNS(b, fd)
				p, slcs := synthetic.LoadProxy(b, newKernelBackend(b, backend, fd), n, eps)
				start := time.Now()
				if err := p.SyncNow(context.Background()); err != nil {
					b.Fatal(err)
				}
				install := time.Since(start)
				waitIdle(b)
				var took []time.Duration
				i := 0
				for ; b.Loop(); i++ {
					took = append(took, synthetic.Change(b, p, slcs, i, 0))
				}
				// The same changes with the second endpoint, on another
				// node, untimed by the benchmark: IPVS's companion rules
				// (the node's hairpin set) do not change then.
				var off []time.Duration
				for range min(len(took), offNodeChanges) {
					off = append(off, synthetic.Change(b, p, slcs, i, 1))
					i++
				}
				b.ReportMetric(float64(install.Nanoseconds()), "install-ns")
				b.ReportMetric(float64(nearestRank(took, 50).Nanoseconds()), "p50-ns")
				b.ReportMetric(float64(nearestRank(took, 99).Nanoseconds()), "p99-ns")
				b.ReportMetric(float64(nearestRank(off, 50).Nanoseconds()), "offnode-p50-ns")
			})
		}
	}
}

// offNodeChanges bounds the changes of an endpoint off the node in
// BenchmarkScenario3OneChange.
const offNodeChanges = 20

// warmUpKernel syncs 10 services with each backend into a namespace of
// its own, untimed, so that no benchmark pays for the first use of IPVS
// or nf_tables.
func warmUpKernel(b *testing.B) {
	b.Helper()
	snap := benchSnapshot(b, 10, 2)
	for _, backend := range benchBackends {
		fd := newBareNetNS(b)
		if err := newKernelBackend(b, backend, fd).Sync(context.Background(), snap); err != nil {
			b.Fatalf("warm-up %s: %v", backend, err)
		}
		releaseNetNS(b, fd)
	}
}

// nearestRank returns the p-th percentile of ds by the nearest-rank
// method (as the bench suite's percentile).
func nearestRank(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

// newBareNetNS returns the fd of a new network namespace with only
// loopback, up: without its local routing table IPVS refuses real
// servers (EINVAL: the address type is not unicast).
func newBareNetNS(b *testing.B) int {
	b.Helper()
	fd, err := netnstest.Anonymous(true)
	if err != nil {
		b.Fatal(err)
	}
	return fd
}

// releaseNetNS flushes IPVS in the namespace fd, closes it and waits for
// the kernel to be idle. The flush matters: IPVS's service table is
// global, keyed by namespace, and the ipvs Syncer's netlink sockets keep
// its namespace alive; services left there would slow the next runs.
func releaseNetNS(b *testing.B, fd int) {
	b.Helper()
	h, err := mobyipvs.New("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		b.Fatal(err)
	}
	if err := h.Flush(); err != nil {
		b.Fatal(err)
	}
	h.Close()
	if err := unix.Close(fd); err != nil {
		b.Fatal(err)
	}
	waitIdle(b)
}

// waitIdle waits, up to 30 seconds, until the CPUs are at least 90% idle
// over 200 ms: the kernel tears namespaces down in the background.
func waitIdle(b *testing.B) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	idle0, total0 := cpuTimes(b)
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		idle1, total1 := cpuTimes(b)
		if total1 > total0 && float64(idle1-idle0)/float64(total1-total0) >= 0.9 {
			return
		}
		idle0, total0 = idle1, total1
	}
	b.Logf("waitIdle: the CPUs were still busy after 30s")
}

// cpuTimes returns the idle (idle and iowait) and total jiffies of all
// CPUs, from /proc/stat.
func cpuTimes(b *testing.B) (idle, total uint64) {
	b.Helper()
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[0] != "cpu" {
			continue
		}
		for i, v := range f[1:] {
			if i >= 8 { // guest times are part of user and nice
				break
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				b.Fatalf("/proc/stat: %q: %v", sc.Text(), err)
			}
			total += n
			if i == 3 || i == 4 {
				idle += n
			}
		}
		return idle, total
	}
	b.Fatal("/proc/stat: no cpu line")
	return 0, 0
}
