package bench

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRenderTable(t *testing.T) {
	tb := Table{Title: "T | 1", Note: "a note", Columns: []string{"a", "b"}}
	tb.AddRow("x|y", 3)
	tb.AddRow(1500*time.Microsecond, 0.5)
	tb.AddRow("short") // missing cells are empty
	got := RenderTable(tb)
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if lines[0] != `**T \| 1**` {
		t.Errorf("title line = %q", lines[0])
	}
	want := []string{"| a | b |", "| --- | --- |", `| x\|y | 3 |`, "| 1.5 ms | 0.5 |", "| short |  |"}
	for i, w := range want {
		if lines[2+i] != w {
			t.Errorf("line %d = %q, want %q", 2+i, lines[2+i], w)
		}
	}
	if lines[len(lines)-1] != "a note" {
		t.Errorf("last line = %q, want the note", lines[len(lines)-1])
	}
	// Every row has as many cells as there are columns.
	for _, l := range lines[2 : 2+len(want)] {
		if n := strings.Count(strings.ReplaceAll(l, `\|`, ""), "|"); n != 3 {
			t.Errorf("row %q has %d separators, want 3", l, n)
		}
	}
}

func TestCellIsOneLine(t *testing.T) {
	if got := cell("a\n b|c\t d"); got != `a b\|c d` {
		t.Errorf("cell = %q", got)
	}
}

func TestWriteReport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "results")
	m := Machine{Kernel: "6.18.0-test", CPU: "Test CPU 9000", Cores: 2, GoVersion: "go1.26", Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	tb := Table{Title: "the table", Columns: []string{"n", "ns/op"}}
	tb.AddRow(10, 123)
	outs := []Outcome{
		{Scenario: Scenario{ID: 1, Name: "First"}, Took: time.Second, Result: Result{Tables: []Table{tb},
			Plots: []Plot{{File: "p.png", Title: "the plot", XLabel: "x", YLabel: "y", LogX: true, LogY: true,
				Series: []Series{{Name: "a", X: []float64{1, 10, 100}, Y: []float64{1, 2, 0}}, {Name: "b", X: []float64{5}, Y: []float64{3}, Dashed: true, Group: 1}}}}}},
		{Scenario: Scenario{ID: 2, Name: "Second"}, Result: Result{Skipped: []string{"needs root"}}},
		{Scenario: Scenario{ID: 3, Name: "Third"}, Err: errors.New("boom\nsecond line")},
	}
	if err := WriteReport(dir, m, Config{Quick: true, MaxServices: 50}, outs, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ReportName))
	if err != nil {
		t.Fatal(err)
	}
	report := string(b)
	for _, want := range []string{
		"| Date | 2026-01-02T03:04:05Z |", "| Kernel | 6.18.0-test |", "| CPU | Test CPU 9000 |", "| Cores | 2 |", "| Go | go1.26 |",
		"| Mode | quick, at most 50 services |",
		"## 1. First", "**the table**", "| 10 | 123 |", "![the plot](p.png)",
		"## 2. Second", "Skipped: needs root",
		"## 3. Third", "**Error:** `boom second line`",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if strings.Contains(report, "## 2. Second\n\n_took") {
		t.Error("a skipped scenario shows a time")
	}
	png, err := os.ReadFile(filepath.Join(dir, "p.png"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Error("p.png is not a PNG")
	}
}

func TestWritePlotNeedsSeries(t *testing.T) {
	if err := WritePlot(filepath.Join(t.TempDir(), "x.png"), Plot{}); err == nil {
		t.Error("WritePlot without series: no error")
	}
}

func TestCPUModel(t *testing.T) {
	info := "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\nmodel name\t: other\n"
	if got := cpuModel([]byte(info)); got != "AMD EPYC 7B13" {
		t.Errorf("cpuModel = %q", got)
	}
	if got := cpuModel([]byte("processor: 0\n")); got != "unknown" {
		t.Errorf("cpuModel without a model = %q", got)
	}
}

func TestParseVmHWM(t *testing.T) {
	if got := parseVmHWM("Name:\tx\nVmPeak:\t  99 kB\nVmHWM:\t   2048 kB\n"); got != 2048*1024 {
		t.Errorf("parseVmHWM = %d", got)
	}
	if got := parseVmHWM("Name:\tx\n"); got != 0 {
		t.Errorf("parseVmHWM without VmHWM = %d", got)
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i))
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50}, {99, 99}, {100, 100}, {0, 1}, {90, 90}} {
		if got := percentile(ds, c.p); got != c.want {
			t.Errorf("p%v = %d, want %d", c.p, got, c.want)
		}
	}
	if ds[0] != 100 {
		t.Error("percentile sorted its input")
	}
	if percentile(nil, 50) != 0 {
		t.Error("percentile of nothing is not 0")
	}
	if got := median([]time.Duration{3, 1, 2}); got != 2 {
		t.Errorf("median = %d", got)
	}
}

func TestSizes(t *testing.T) {
	def, quick := []int{1000, 5000, 30000}, []int{1000}
	for _, c := range []struct {
		env  Env
		want []int
	}{
		{Env{}, def},
		{Env{Config: Config{Quick: true}}, quick},
		{Env{Config: Config{MaxServices: 5000}}, []int{1000, 5000}},
		{Env{Config: Config{MaxServices: 10}}, []int{10}},
		{Env{Config: Config{Sizes: []int{7}}}, []int{7}},
	} {
		got := c.env.sizes(def, quick)
		if !equalInts(got, c.want) {
			t.Errorf("%+v: sizes = %v, want %v", c.env.Config, got, c.want)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFormat(t *testing.T) {
	for d, want := range map[time.Duration]string{500: "500 ns", 1500: "1.5 µs", 2_500_000: "2.5 ms", 12 * time.Second: "12 s"} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%d) = %q, want %q", d, got, want)
		}
	}
	for b, want := range map[uint64]string{10: "10 B", 2048: "2.0 KiB", 3 << 20: "3.0 MiB", 5 << 30: "5.00 GiB"} {
		if got := fmtBytes(b); got != want {
			t.Errorf("fmtBytes(%d) = %q, want %q", b, got, want)
		}
	}
	if got := ratio(3, 2); got != "1.50×" {
		t.Errorf("ratio = %q", got)
	}
	if got := ratio(3, 0); got != "–" {
		t.Errorf("ratio by 0 = %q", got)
	}
}

func TestCluster(t *testing.T) {
	svcs, slices := Cluster(300, 3)
	if len(svcs) != 300 || len(slices) != 300 {
		t.Fatalf("Cluster(300, 3): %d services, %d slices", len(svcs), len(slices))
	}
	last := svcs[299]
	if last.Name != "svc-00299" || last.ClusterIPs[0].String() != "10.96.1.43" {
		t.Errorf("last service = %s %v", last.Name, last.ClusterIPs)
	}
	eps := slices[299].Endpoints
	if eps[2].Addr.String() != "10.128.3.131" || eps[2].NodeName != "node-2" {
		t.Errorf("last endpoint = %v on %s", eps[2].Addr, eps[2].NodeName)
	}
	c := changedSlice(slices[0], 5)
	if c.Endpoints[0].Addr.String() != "10.250.0.5" || slices[0].Endpoints[0].Addr.String() != "10.128.0.0" {
		t.Errorf("changedSlice: %v, original %v", c.Endpoints[0].Addr, slices[0].Endpoints[0].Addr)
	}
	if _, err := Snapshot(10, 2); err != nil {
		t.Fatal(err)
	}
}
