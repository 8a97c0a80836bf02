.PHONY: test demo bench bench-foundation fmt

# Every test, as CI runs it (CI also sets PROXYKIT_REQUIRE_PRIVILEGED=1).
test:
	scripts/test

demo:
	scripts/demo

# The side-by-side backend benchmarks (issue 8): bench/results/REPORT.md and
# PNG plots. Needs root (network namespaces). QUICK=1 for a run under 3 minutes.
bench:
	cd bench && go run ./cmd/proxykit-bench -out results $(if $(QUICK),-quick)

# The foundation's benchmarks: initial load and incremental snapshots.
bench-foundation:
	go test -run='^$$' -bench=. -benchmem ./ ./servicemap ./endpoints ./topology ./internal/sorted

fmt:
	gofmt -w $$(git ls-files '*.go')
