// Package bench is proxykit's side-by-side benchmark suite (issue 8): it runs
// the backends (nftables, iptables-legacy, IPVS) over one synthetic cluster,
// in one process run and in network namespaces, and writes REPORT.md with one
// table per scenario plus PNG plots.
//
// Run it with `go run ./cmd/proxykit-bench -out results` (make bench). The
// suite is not part of CI; TestSmoke runs the whole pipeline with tiny sizes
// so that it cannot rot. Privileged scenarios skip when not root, unless
// PROXYKIT_REQUIRE_PRIVILEGED=1, which makes them fail.
package bench
