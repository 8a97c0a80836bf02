//go:build linux

package ipvs_test

import (
	"os"
	"testing"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/internal/conformance"
	"github.com/proxykit/proxykit/internal/netnstest"
	"github.com/proxykit/proxykit/internal/vmtest"
	"github.com/proxykit/proxykit/ipvs"
)

// TestVM runs this package's kernel tests (TestKernel…) in a VM with
// Debian's kernel, which has IPVS; the host's kernel has not.
func TestVM(t *testing.T) {
	if vmtest.InVM() {
		t.Skip("inside the VM: the TestKernel tests run here")
	}
	if testing.Short() {
		t.Skip("boots a VM")
	}
	run := "^TestKernel"
	if r := os.Getenv("PROXYKIT_VM_RUN"); r != "" {
		run = r // e.g. to run the VM benchmarks: PROXYKIT_VM_RUN='^$' PROXYKIT_VM_BENCH=Scenario
	}
	args := []string{"-test.run=" + run, "-test.v", "-test.timeout=200s", "-test.parallel=8"}
	timeout := 7 * time.Minute // room for one boot retry (vmtest.BootTimeout)
	env := map[string]string{}
	if b := os.Getenv("PROXYKIT_VM_BENCH"); b != "" {
		// The benchmarks (bench_kernel_test.go): PROXYKIT_VM_BENCHTIME is
		// their -test.benchtime, and PROXYKIT_VM_BENCH_MAX caps their
		// number of services.
		benchtime := "1x"
		if v := os.Getenv("PROXYKIT_VM_BENCHTIME"); v != "" {
			benchtime = v
		}
		args = append(args, "-test.bench="+b, "-test.benchtime="+benchtime, "-test.timeout=25m")
		if v := os.Getenv(benchMaxEnv); v != "" {
			env[benchMaxEnv] = v
		}
		timeout = 30 * time.Minute
	}
	vmtest.Run(t, vmtest.Options{Package: ".", Args: args, Env: env, Timeout: timeout, MemoryMB: 2048})
}

// requireKernel skips a kernel test unless it runs in the VM or on a host
// kernel with IPVS (as root); PROXYKIT_REQUIRE_PRIVILEGED does not turn
// this skip into a failure, since TestVM runs the test where IPVS is.
func requireKernel(t testing.TB) {
	t.Helper()
	if vmtest.InVM() {
		return
	}
	if _, err := os.Stat("/proc/net/ip_vs"); err != nil || os.Geteuid() != 0 {
		t.Skip("needs a kernel with IPVS: runs in the VM through TestVM")
	}
}

// TestKernelConformance runs the behavioural suite (SEMANTICS) against
// the IPVS backend with real packets, IPv4 and IPv6, with the default
// policy and with MasqueradeAll.
func TestKernelConformance(t *testing.T) {
	requireKernel(t)
	for _, masqAll := range []bool{false, true} {
		name := "ipvs"
		if masqAll {
			name = "ipvs-masquerade-all"
		}
		t.Run(name, func(t *testing.T) {
			conformance.Run(t, conformance.Backend{
				Name:   name,
				New:    newKernelSyncer(masqAll),
				Policy: proxykit.Policy{MasqueradeAll: masqAll},
				// The VM is emulated (TCG) and shares the host's cores
				// with the rest of the suite.
				ForwardTimeout: 6 * time.Second,
			})
		})
	}
}

func newKernelSyncer(masqAll bool) func(testing.TB, *netnstest.Topology) proxykit.Syncer {
	return func(t testing.TB, tp *netnstest.Topology) proxykit.Syncer {
		t.Helper()
		return kernelSyncer(t, tp, ipvs.Config{
			// SEMANTICS §3 asks for a weighted choice over any window of
			// connections. rr, the default, ignores weights; wrr follows
			// them over a full cycle only (601 connections for weights
			// 100:201:300). wlc follows them from the start: the
			// connections of the probes stay counted (inactive, TIME_WAIT)
			// and each new one goes to the least connections per weight.
			Scheduler:     "wlc",
			ClusterCIDRs:  tp.ClusterCIDRs,
			LocalPodCIDRs: conformance.LocalPodCIDRs,
			MasqueradeAll: masqAll,
		})
	}
}

func kernelSyncer(t testing.TB, tp *netnstest.Topology, cfg ipvs.Config) *ipvs.Syncer {
	t.Helper()
	s, err := ipvs.NewSyncer(cfg, ipvs.WithNetNSFd(tp.Node1.Fd()))
	if err != nil {
		t.Fatalf("ipvs.NewSyncer: %v", err)
	}
	if err := s.Supported(t.Context()); err != nil {
		t.Fatalf("Supported: %v", err)
	}
	return s
}
