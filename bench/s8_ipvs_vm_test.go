package bench

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testdata/s8-vm-bench-output.txt is the output of a real VM run, as
// `proxykit-bench -scenarios 8` saved it (s8-ipvs-vm.txt):
//
//	PROXYKIT_VM_RUN='^$' PROXYKIT_VM_BENCH='^BenchmarkScenario' PROXYKIT_VM_BENCHTIME=1s \
//	go test -count=1 -run '^TestVM$' -v ./ipvs/
func readVMSample(t *testing.T) vmRun {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "s8-vm-bench-output.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return parseVMOutput(f)
}

func TestS8ParseVMOutput(t *testing.T) {
	run := readVMSample(t)
	if run.Kernel != "6.1.0-57-amd64" {
		t.Errorf("kernel %q", run.Kernel)
	}
	if want := time.Minute + 25944*time.Millisecond; run.Took != want {
		t.Errorf("took %v, want %v", run.Took, want)
	}
	if len(run.Failures) != 0 {
		t.Errorf("failures %v", run.Failures)
	}
	if len(run.Results) != 14 {
		t.Fatalf("%d results, want 14: %+v", len(run.Results), run.Results)
	}
	r := run.Results[0]
	if r.Name != "BenchmarkScenario1Render/ipvs/services=1000" || r.N != 44 ||
		r.Metrics["ns/op"] != 26747827 || r.Metrics["B/op"] != 2524311 || r.Metrics["allocs/op"] != 3381 {
		t.Errorf("first result %+v", r)
	}
	last := run.Results[13]
	if last.Name != "BenchmarkScenario3OneChange/nftables/services=10000" || last.N != 62 || last.Metrics["ns/op"] != 19334827 ||
		last.Metrics["install-ns"] != 1918963100 || last.Metrics["p50-ns"] != 16330980 || last.Metrics["p99-ns"] != 32210730 ||
		last.Metrics["offnode-p50-ns"] != 24833980 {
		t.Errorf("last result %+v", last)
	}
}

func TestS8Table(t *testing.T) {
	res, err := vmResult(readVMSample(t), time.Second, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tables) != 1 || len(res.Plots) != 1 {
		t.Fatalf("%d tables, %d plots", len(res.Tables), len(res.Plots))
	}
	// 3 render sizes, 2 cold apply sizes, 2 one-change sizes × 4 measures.
	if got := len(res.Tables[0].Rows); got != 13 {
		t.Errorf("%d rows, want 13", got)
	}
	md := RenderTable(res.Tables[0])
	for _, want := range []string{
		"**IPVS / nftables in a qemu VM (Debian kernel 6.1.0-57-amd64, emulated CPU)**",
		"| scenario | size | measure | ipvs / nftables | ipvs (VM, emulated) | nftables (VM, emulated) | ops (ipvs, nftables) |",
		"| 1. render | 1000×10 | time/op | 1.25× | 26.7 ms | 21.4 ms | 44, 51 |",
		"| 1. render | 10000×10 | time/op | 1.49× | 258 ms | 173 ms | 6, 7 |",
		"| 2. cold apply | 10000×2 | Sync into an empty namespace | 25.85× | 14.3 s | 555 ms | 1, 2 |",
		"| 3. one change | 1000×10 installed | one change p50, endpoint off the node | 0.09× | 1.78 ms | 19.8 ms | 45, 43 |",
		"| 3. one change | 10000×10 installed | one change p50 | 1.46× | 23.9 ms | 16.3 ms | 46, 62 |",
		"| 3. one change | 10000×10 installed | initial full sync | 14.52× | 27.9 s | 1.92 s | 46, 62 |",
		"Only the ratio column means anything", "-test.benchtime=1s", "the VM ran 85.9 s", "Raw output: s8-ipvs-vm.txt",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
	p := res.Plots[0]
	if len(p.Series) != 6 || p.Series[0].Name != "render" || len(p.Series[0].X) != 3 {
		t.Errorf("plot series %+v", p.Series)
	}
	if err := WritePlot(filepath.Join(t.TempDir(), p.File), p); err != nil {
		t.Error(err)
	}
}

func TestS8ParseBenchLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		ok   bool
		name string
		n    int
	}{
		{"BenchmarkScenario2ColdApply/ipvs/size=1000x2-2 \t 1\t2612928170 ns/op", true, "BenchmarkScenario2ColdApply/ipvs/size=1000x2", 1},
		{"    vmtest.go:108: vm: BenchmarkX/a=1-16   \t  7\t 5.5 ns/op\t 3 p50-ns", true, "BenchmarkX/a=1", 7},
		{"    vmtest.go:108: vm: BenchmarkScenario1Render/ipvs/services=1000", false, "", 0},
		{"    vmtest.go:108: vm: BenchmarkX-2 \t 1\t 5 B/op", false, "", 0}, // no ns/op
		{"    vmtest.go:108: vm: BenchmarkX-2 \t x\t 5 ns/op", false, "", 0},
		{"    vmtest.go:108: vm: --- FAIL: BenchmarkX/ipvs", false, "", 0},
		{"ok  \tgithub.com/proxykit/proxykit/ipvs\t184.155s", false, "", 0},
	} {
		r, ok := parseBenchLine(tc.line)
		if ok != tc.ok || r.Name != tc.name || r.N != tc.n {
			t.Errorf("parseBenchLine(%q) = %+v, %v", tc.line, r, ok)
		}
	}
}

func TestS8Failures(t *testing.T) {
	out := "    vmtest.go:108: vm: BenchmarkScenario2ColdApply/ipvs/size=1000x2\n" +
		"    vmtest.go:108: vm:     bench_kernel_test.go:162: ipvs: add real server: invalid argument\n" +
		"    vmtest.go:108: vm: --- FAIL: BenchmarkScenario2ColdApply/ipvs/size=1000x2\n" +
		"    vmtest.go:108: vm: BenchmarkScenario2ColdApply/nftables/size=1000x2-2 \t 6\t 331152195 ns/op\n"
	run := parseVMOutput(strings.NewReader(out))
	if len(run.Failures) != 1 || run.Failures[0] != "BenchmarkScenario2ColdApply/ipvs/size=1000x2" || len(run.Results) != 1 {
		t.Errorf("run %+v", run)
	}
	// nftables alone makes no row.
	if _, err := vmResult(run, time.Second, 0, false); !errors.Is(err, errNoVMResults) {
		t.Errorf("vmResult: %v, want errNoVMResults", err)
	}
}

// TestS8SkipsWithSizes: the smoke test's sizes must not boot the VM.
func TestS8SkipsWithSizes(t *testing.T) {
	start := time.Now()
	res, err := runIPVSVM(context.Background(), &Env{Config: Config{Sizes: []int{10}}})
	if err != nil || len(res.Skipped) != 1 || res.Tables != nil {
		t.Errorf("runIPVSVM = %+v, %v", res, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
}

func TestS8RootModuleDir(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip(err)
	}
	root, err := rootModuleDir(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if want := filepath.Dir(wd); root != want {
		t.Errorf("root %q, want %q", root, want)
	}
}

// TestS8MissingTools: without the VM's tools scenario 8 skips, or fails
// when RequireEnv is set; it never boots.
func TestS8MissingTools(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv(RequireEnv, "")
	res, err := runIPVSVM(context.Background(), &Env{})
	if err != nil || len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0], "qemu-system-x86_64") {
		t.Errorf("runIPVSVM = %+v, %v; want a skip naming qemu-system-x86_64", res, err)
	}
	t.Setenv(RequireEnv, "1")
	if _, err := runIPVSVM(context.Background(), &Env{}); err == nil || !strings.Contains(err.Error(), RequireEnv) {
		t.Errorf("runIPVSVM with %s=1: %v, want an error", RequireEnv, err)
	}
}
