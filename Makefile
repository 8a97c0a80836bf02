.PHONY: test demo bench-foundation fmt

# Every test, as CI runs it (CI also sets PROXYKIT_REQUIRE_PRIVILEGED=1).
test:
	scripts/test

demo:
	scripts/demo

# The foundation's benchmarks: initial load and incremental snapshots.
bench-foundation:
	go test -run='^$$' -bench=. -benchmem ./ ./servicemap ./endpoints ./topology ./internal/sorted

fmt:
	gofmt -w $$(git ls-files '*.go')
