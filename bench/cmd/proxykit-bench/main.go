// Command proxykit-bench runs proxykit's side-by-side backend benchmarks and
// writes REPORT.md and PNG plots (see package bench). Progress goes to
// stderr. Most scenarios need root: they program network namespaces.
//
//	go run ./cmd/proxykit-bench -out results            # default sizes
//	go run ./cmd/proxykit-bench -quick -out results     # a few minutes
//	go run ./cmd/proxykit-bench -scenarios 1,2 -max-services 1000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/proxykit/proxykit/bench"
)

func main() {
	var cfg bench.Config
	var scenarios string
	flag.StringVar(&cfg.Out, "out", "results", "directory of REPORT.md and the plots")
	flag.BoolVar(&cfg.Quick, "quick", false, "smaller sizes and fewer repetitions (QUICK=1)")
	flag.IntVar(&cfg.MaxServices, "max-services", 0, "cap every scenario's number of services (0: no cap)")
	flag.StringVar(&scenarios, "scenarios", "", "comma-separated scenario numbers to run (default: all)")
	flag.IntVar(&cfg.Changes, "changes", 0, "changes of the incremental scenario (default 50, quick 10)")
	flag.IntVar(&cfg.Reps, "reps", 0, "repetitions of each cold apply (default 3, quick 1)")
	flag.DurationVar(&cfg.BenchTime, "benchtime", 0, "testing.Benchmark time of the render scenario (default 1s, quick 200ms)")
	flag.Parse()
	ids, err := parseIDs(scenarios)
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxykit-bench:", err)
		os.Exit(2)
	}
	cfg.Scenarios = ids
	cfg.Progress = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	outs, err := bench.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxykit-bench:", err)
		os.Exit(1)
	}
	var failed error
	for _, o := range outs {
		if o.Err != nil {
			failed = errors.Join(failed, fmt.Errorf("scenario %d: %w", o.Scenario.ID, o.Err))
		}
		if bench.Required() && o.Scenario.Privileged && len(o.Result.Skipped) > 0 && o.Result.Tables == nil {
			failed = errors.Join(failed, fmt.Errorf("scenario %d skipped with %s set: %s", o.Scenario.ID, bench.RequireEnv, o.Result.Skipped[0]))
		}
	}
	if failed != nil {
		fmt.Fprintln(os.Stderr, "proxykit-bench:", failed)
		os.Exit(1)
	}
}

func parseIDs(s string) ([]int, error) {
	var ids []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		id, err := strconv.Atoi(f)
		if err != nil || id < 1 || id > len(bench.Scenarios) {
			return nil, fmt.Errorf("-scenarios: bad scenario %q (1-%d)", f, len(bench.Scenarios))
		}
		ids = append(ids, id)
	}
	return ids, nil
}
