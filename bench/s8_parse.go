package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var errNoVMResults = errors.New("IPVS in a VM: no benchmark results in the VM's output")

// vmBench is one benchmark result line of the VM's output.
type vmBench struct {
	// Name is the full name without the GOMAXPROCS suffix, e.g.
	// "BenchmarkScenario1Render/ipvs/services=1000".
	Name string
	// N is the number of ops.
	N int
	// Metrics are the values by unit: "ns/op", "B/op", "p50-ns", ….
	Metrics map[string]float64
}

// vmRun is what the VM's output says.
type vmRun struct {
	Kernel   string        // the VM's kernel release
	Took     time.Duration // the VM's run time, boot to power-off
	Results  []vmBench
	Failures []string // the VM's "--- FAIL:" lines
}

// procsSuffix is the GOMAXPROCS suffix of a benchmark's name.
var procsSuffix = regexp.MustCompile(`-\d+$`)

// parseBenchLine reads a `go test -bench` result line, bare or as TestVM
// logs the VM's console ("    vmtest.go:108: vm: BenchmarkX-2  10  5 ns/op").
func parseBenchLine(line string) (vmBench, bool) {
	if _, rest, ok := strings.Cut(line, "vm: "); ok {
		line = rest
	}
	f := strings.Fields(line)
	if len(f) < 4 || len(f)%2 != 0 || !strings.HasPrefix(f[0], "Benchmark") {
		return vmBench{}, false
	}
	n, err := strconv.Atoi(f[1])
	if err != nil || n <= 0 {
		return vmBench{}, false
	}
	r := vmBench{Name: procsSuffix.ReplaceAllString(f[0], ""), N: n, Metrics: map[string]float64{}}
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return vmBench{}, false
		}
		r.Metrics[f[i+1]] = v
	}
	if _, ok := r.Metrics["ns/op"]; !ok {
		return vmBench{}, false
	}
	return r, true
}

// parseVMOutput reads the output of `go test -v -run '^TestVM$'` with the
// benchmarks: the results, the VM's kernel and run time, and failures.
func parseVMOutput(r io.Reader) vmRun {
	var run vmRun
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if b, ok := parseBenchLine(line); ok {
			run.Results = append(run.Results, b)
			continue
		}
		if _, rest, ok := strings.Cut(line, "vmtest: kernel "); ok && run.Kernel == "" {
			run.Kernel, _, _ = strings.Cut(rest, ",")
			run.Kernel = strings.TrimSpace(run.Kernel)
		}
		if _, rest, ok := strings.Cut(line, "vmtest: VM exited after "); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				run.Took, _ = time.ParseDuration(f[0])
			}
		}
		if _, rest, ok := strings.Cut(line, "vm: --- FAIL: "); ok {
			run.Failures = append(run.Failures, strings.TrimSpace(rest))
		}
	}
	return run
}

// vmScenario is how one benchmark of the VM becomes rows.
type vmScenario struct {
	bench    string // top-level benchmark
	label    string // scenario column
	eps      string // "×10", or "" when the name carries the size
	suffix   string // after the size
	measures []vmMeasure
}

type vmMeasure struct {
	name, unit string
	series     string // plot series, "" for none
	group      int    // the series' colour
	dashed     bool
}

var vmScenarios = []vmScenario{
	{bench: "BenchmarkScenario1Render", label: "1. render", eps: "×10",
		measures: []vmMeasure{{"time/op", "ns/op", "render", 0, false}}},
	{bench: "BenchmarkScenario2ColdApply", label: "2. cold apply",
		measures: []vmMeasure{{"Sync into an empty namespace", "ns/op", "cold apply (×2)", 1, false}}},
	{bench: "BenchmarkScenario3OneChange", label: "3. one change", eps: "×10", suffix: " installed",
		measures: []vmMeasure{
			{"one change p50", "p50-ns", "one change p50", 2, false},
			{"one change p99", "p99-ns", "one change p99", 2, true},
			{"one change p50, endpoint off the node", "offnode-p50-ns", "one change p50, off the node", 4, false},
			{"initial full sync", "install-ns", "initial full sync (×10)", 3, false},
		}},
}

// vmOffNodeChanges is offNodeChanges of ipvs/bench_kernel_test.go.
const vmOffNodeChanges = 20

// vmBackends are the compared backends: the ratio is the first's time
// over the second's.
var vmBackends = [2]string{"ipvs", "nftables"}

// vmResult turns a VM run into scenario 8's table and plot.
func vmResult(run vmRun, benchtime time.Duration, limit int, rawSaved bool) (Result, error) {
	if len(run.Results) == 0 {
		return Result{}, errNoVMResults
	}
	byName := map[string]vmBench{}
	for _, r := range run.Results {
		byName[r.Name] = r
	}
	kernel := run.Kernel
	if kernel == "" {
		kernel = "unknown"
	}
	t := Table{Title: fmt.Sprintf("IPVS / nftables in a qemu VM (Debian kernel %s, emulated CPU)", kernel),
		Columns: []string{"scenario", "size", "measure", "ipvs / nftables", "ipvs (VM, emulated)", "nftables (VM, emulated)", "ops (ipvs, nftables)"}}
	var series []Series
	seriesOf := map[string]int{}
	for _, sc := range vmScenarios {
		// The sizes, in the order the VM ran them.
		var params []string
		seen := map[string]bool{}
		for _, r := range run.Results {
			parts := strings.Split(r.Name, "/")
			if len(parts) != 3 || parts[0] != sc.bench || seen[parts[2]] {
				continue
			}
			seen[parts[2]] = true
			params = append(params, parts[2])
		}
		for _, param := range params {
			a, okA := byName[sc.bench+"/"+vmBackends[0]+"/"+param]
			b, okB := byName[sc.bench+"/"+vmBackends[1]+"/"+param]
			if !okA || !okB {
				continue
			}
			size, n := vmSize(param)
			size += sc.eps + sc.suffix
			for _, m := range sc.measures {
				va, okA := a.Metrics[m.unit]
				vb, okB := b.Metrics[m.unit]
				if !okA || !okB {
					continue
				}
				da, db := time.Duration(va), time.Duration(vb)
				t.AddRow(sc.label, size, m.name, ratio(da, db), da, db, fmt.Sprintf("%d, %d", a.N, b.N))
				if m.series == "" || n <= 0 || db <= 0 {
					continue
				}
				i, ok := seriesOf[m.series]
				if !ok {
					i = len(series)
					seriesOf[m.series] = i
					series = append(series, Series{Name: m.series, Group: m.group, Dashed: m.dashed})
				}
				series[i].X = append(series[i].X, float64(n))
				series[i].Y = append(series[i].Y, va/vb)
			}
		}
	}
	if len(t.Rows) == 0 {
		return Result{}, fmt.Errorf("%w: no pair of ipvs and nftables results among %d", errNoVMResults, len(run.Results))
	}
	t.Note = vmNote(run, benchtime, limit, rawSaved)
	res := Result{Tables: []Table{t}}
	if len(series) > 0 {
		res.Plots = []Plot{{File: "s8-ipvs-vm.png", Title: "IPVS / nftables in the VM", XLabel: "services",
			YLabel: "ipvs time / nftables time", LogX: true, LogY: true, Series: series}}
	}
	return res, nil
}

// vmSize reads a benchmark's size parameter: "services=1000" is "1000",
// "size=1000x2" is "1000×2"; n is the number of services.
func vmSize(param string) (string, int) {
	_, v, _ := strings.Cut(param, "=")
	nStr, eps, hasEps := strings.Cut(v, "x")
	n, _ := strconv.Atoi(nStr)
	if hasEps {
		return nStr + "×" + eps, n
	}
	return v, n
}

func vmNote(run vmRun, benchtime time.Duration, limit int, rawSaved bool) string {
	var b strings.Builder
	b.WriteString("**Only the ratio column means anything.** ")
	b.WriteString("The host's kernel has no IPVS: both backends ran in one qemu VM (TCG: an emulated CPU, 2 vCPUs, no KVM) booted from Debian's kernel by internal/vmtest, ")
	b.WriteString("so the times, marked emulated, are many times the host's and do not compare with the other scenarios; the ratio ipvs / nftables, from the same VM run, does (above 1×: IPVS is slower). ")
	b.WriteString("Emulation does not slow every kind of work alike (system calls and kernel paths against Go code), and the host's cores are shared: read the ratios as indications, and render's against scenario 1, which measures it on the host. ")
	b.WriteString("Each backend programs a fresh namespace with only loopback up, with this suite's configuration and cluster. ")
	b.WriteString("Render: `ipvs.Plan` + `ipvs.Rules` against `nftables.Render` (scenario 1). ")
	b.WriteString("Cold apply: `Sync` into an empty namespace (scenario 2, without floor). ")
	b.WriteString("One change: with n × 10 installed (initial full sync: the first `Proxy.SyncNow`), the first endpoint (on the node) of a different slice moved per `Proxy.SyncNow` (scenario 3); ops are changes, and the p99 of fewer than 100 is their maximum. ")
	fmt.Fprintf(&b, "Then as many changes (at most %d) move the second endpoint, on another node: IPVS's companion rules (the node's hairpin set) do not change then. ", vmOffNodeChanges)
	b.WriteString("In the VM's kernel a transaction that changes nftables set elements takes tens of milliseconds (an empty one about 1 ms), far more than a whole change on the host (scenario 3): that floor is most of both backends' on-node change, since IPVS updates its companion rules in one such transaction; the off-node row shows IPVS without it. ")
	fmt.Fprintf(&b, "Each benchmark runs for -test.benchtime=%s of measured time (at least one op). ", benchtime)
	if limit > 0 {
		fmt.Fprintf(&b, "Sizes are capped at %d services. ", limit)
	}
	b.WriteString("Benchmarks: `BenchmarkScenario…` in ipvs/bench_kernel_test.go, run by `" + vmCommand(benchtime, limit) + "` in the root module")
	if run.Took > 0 {
		fmt.Fprintf(&b, "; the VM ran %s", fmtDur(run.Took))
	}
	b.WriteString(".")
	if rawSaved {
		b.WriteString(" Raw output: " + vmOutputFile + ".")
	}
	return b.String()
}
