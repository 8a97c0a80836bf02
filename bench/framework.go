package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"
)

// Table is one table of the report.
type Table struct {
	Title   string
	Note    string // optional, printed under the table
	Columns []string
	Rows    [][]string
}

// AddRow appends a row; cells are formatted with fmt.Sprint unless they are
// strings already.
func (t *Table) AddRow(cells ...any) {
	row := make([]string, len(cells))
	for i, c := range cells {
		switch v := c.(type) {
		case string:
			row[i] = v
		case time.Duration:
			row[i] = fmtDur(v)
		case float64:
			row[i] = fmt.Sprintf("%.3g", v)
		default:
			row[i] = fmt.Sprint(v)
		}
	}
	t.Rows = append(t.Rows, row)
}

// Series is one line of a plot.
type Series struct {
	Name string
	X, Y []float64
	// Group picks the colour: series of one backend share it (p50 and
	// p99, wall and floor). Dashed draws the line dashed.
	Group  int
	Dashed bool
}

// Plot is one PNG of the report.
type Plot struct {
	File           string // base name, e.g. "s2-cold-apply.png"
	Title          string
	XLabel, YLabel string
	LogX, LogY     bool
	Series         []Series
}

// Result is what a scenario produces.
type Result struct {
	Tables []Table
	Plots  []Plot
	// Skipped, when set, says why the scenario (or part of it) did not run.
	Skipped []string
}

// Scenario is one scenario of the suite.
type Scenario struct {
	ID         int
	Name       string
	Privileged bool // needs root and network namespaces
	// First runs the scenario before the others (its place in the report
	// does not change): memory peaks must not include theirs.
	First bool
	Run   func(ctx context.Context, env *Env) (Result, error)
}

// Config is the suite's configuration.
type Config struct {
	// Out is the directory of REPORT.md and the plots.
	Out string
	// Quick caps sizes and repetitions for a run of a few minutes.
	Quick bool
	// MaxServices caps every scenario's service count (0: no cap).
	MaxServices int
	// Scenarios selects scenarios by ID (empty: all).
	Scenarios []int
	// Sizes, when set, replace every scenario's service counts (tests).
	Sizes []int
	// Changes is the number of changes of the incremental scenario
	// (0: 50, quick 10).
	Changes int
	// Reps is the number of repetitions of each cold apply (0: 3, quick 1).
	Reps int
	// BenchTime is the testing.Benchmark duration of the render scenario
	// (0: 1s, quick 200ms).
	BenchTime time.Duration
	// Progress receives one line per step (nil: discarded).
	Progress io.Writer
}

// Env is what a scenario gets.
type Env struct {
	Config
	// Privileged is nil when namespaces can be used, else why not.
	Privileged error
}

// Logf prints a progress line.
func (e *Env) Logf(format string, args ...any) {
	if e.Progress != nil {
		fmt.Fprintf(e.Progress, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
}

// sizes returns def (or the test override), capped by MaxServices; a cap
// below every size keeps the cap itself.
func (e *Env) sizes(def, quick []int) []int {
	s := def
	if e.Quick && quick != nil {
		s = quick
	}
	if e.Sizes != nil {
		s = e.Sizes
	}
	if e.MaxServices <= 0 {
		return s
	}
	var out []int
	for _, n := range s {
		if n <= e.MaxServices {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		out = []int{e.MaxServices}
	}
	return out
}

func (e *Env) changes() int {
	switch {
	case e.Changes > 0:
		return e.Changes
	case e.Quick:
		return 10
	}
	return 50
}

func (e *Env) reps() int {
	switch {
	case e.Reps > 0:
		return e.Reps
	case e.Quick:
		return 1
	}
	return 3
}

func (e *Env) benchTime() time.Duration {
	switch {
	case e.BenchTime > 0:
		return e.BenchTime
	case e.Quick:
		return 200 * time.Millisecond
	}
	return time.Second
}

// Scenarios is the suite, in order.
var Scenarios = []Scenario{
	{ID: 1, Name: "Render only", Run: runRender},
	{ID: 2, Name: "Cold apply", Privileged: true, Run: runColdApply},
	{ID: 3, Name: "Incremental: one service changed", Privileged: true, Run: runIncremental},
	{ID: 4, Name: "Churn", Privileged: true, Run: runChurn},
	{ID: 5, Name: "Data plane: first-packet latency", Privileged: true, Run: runDataPlane},
	{ID: 6, Name: "Conntrack cleanup rate", Privileged: true, Run: runConntrack},
	{ID: 7, Name: "Memory", First: true, Run: runMemory},
	{ID: 8, Name: "IPVS in a VM: scenarios 1–3 as ratios to nftables", Run: runIPVSVM},
}

// Outcome is one scenario's result as the report shows it.
type Outcome struct {
	Scenario Scenario
	Result   Result
	Err      error
	Took     time.Duration
}

// Run runs the selected scenarios and writes the report into cfg.Out. It
// returns the outcomes and the first error of writing the report; scenario
// errors are in the outcomes (and the report).
func Run(ctx context.Context, cfg Config) ([]Outcome, error) {
	env := &Env{Config: cfg, Privileged: CheckPrivileged()}
	start := time.Now()
	var outs []Outcome
	order := slices.Clone(Scenarios)
	slices.SortStableFunc(order, func(a, b Scenario) int {
		switch {
		case a.First && !b.First:
			return -1
		case b.First && !a.First:
			return 1
		}
		return 0
	})
	for _, sc := range order {
		if len(cfg.Scenarios) > 0 && !slices.Contains(cfg.Scenarios, sc.ID) {
			continue
		}
		env.Logf("scenario %d: %s", sc.ID, sc.Name)
		t0 := time.Now()
		var res Result
		var err error
		if sc.Privileged && env.Privileged != nil {
			res.Skipped = []string{env.Privileged.Error()}
		} else {
			res, err = sc.Run(ctx, env)
		}
		o := Outcome{Scenario: sc, Result: res, Err: err, Took: time.Since(t0)}
		if err != nil {
			env.Logf("scenario %d failed: %v", sc.ID, err)
		}
		for _, s := range res.Skipped {
			env.Logf("scenario %d skipped: %s", sc.ID, s)
		}
		env.Logf("scenario %d done in %s", sc.ID, fmtDur(o.Took))
		outs = append(outs, o)
	}
	slices.SortFunc(outs, func(a, b Outcome) int { return a.Scenario.ID - b.Scenario.ID })
	m := ReadMachine()
	if err := WriteReport(cfg.Out, m, cfg, outs, time.Since(start)); err != nil {
		return outs, err
	}
	env.Logf("wrote %s", cfg.Out)
	return outs, nil
}
