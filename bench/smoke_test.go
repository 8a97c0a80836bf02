package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs the whole suite with tiny sizes into a temporary directory
// and checks the report and the plots, so that the suite cannot rot. The
// privileged scenarios skip when not root, unless PROXYKIT_REQUIRE_PRIVILEGED
// is set, which makes them fail.
func TestSmoke(t *testing.T) {
	priv := CheckPrivileged()
	if priv != nil && Required() {
		t.Fatalf("%s is set but the privileged scenarios cannot run: %v", RequireEnv, priv)
	}
	dir := t.TempDir()
	var progress strings.Builder
	outs, err := Run(context.Background(), Config{Out: dir, Sizes: []int{10}, Changes: 3, Reps: 1,
		BenchTime: 10 * time.Millisecond, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != len(Scenarios) {
		t.Errorf("%d outcomes, want %d", len(outs), len(Scenarios))
	}
	for i, o := range outs {
		if o.Scenario.ID != i+1 {
			t.Errorf("outcome %d is scenario %d: not in report order", i, o.Scenario.ID)
		}
		if o.Err != nil {
			t.Errorf("scenario %d: %v", o.Scenario.ID, o.Err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, ReportName))
	if err != nil {
		t.Fatal(err)
	}
	report := string(b)
	want := []string{"| Kernel |", "| CPU |", "| Date |",
		"## 1. Render only", "**Sync path with a null kernel: pending changes → Snapshot + Render, 10 services × 10 endpoints**", "| 10 | nftables |", "| 10 | iptables |", "| 10 | ipvs (Plan+Rules) |", "| 10 | baseline: NewSnapshot |",
		"## 7. Memory", "**Memory holding and syncing 10 services", "| iptables | a Runner that discards the restore input |",
		"| ipvs | the in-memory IPVS and nftables Fakes (subtracted) |",
		"## 8. IPVS in a VM: scenarios 1–3 as ratios to nftables", "Skipped: IPVS in a VM: sizes are set (a test run), so the VM is not booted",
	}
	pngs := []string{"s1-render.png"}
	if priv == nil {
		want = append(want,
			"| 10×2 | nftables |", "| 10×2 | iptables-legacy |", "| 10×2 | iptables-nft |", "| 10 | iptables-nft |",
			"**One service changed, 3 changes", "| 10 | iptables-legacy |",
			"**First-packet latency: TCP connect through the last ClusterIP (n services × 2 endpoints)**",
			"| 10 | nftables | – (one map lookup) |", "| 10 | iptables-legacy | 10 of 10 |", "| 10 | direct to pod (no rules) |",
			"| nftables | a network namespace |",
			"**Churn: 50 endpoint changes/s for 1 s", "| nftables | 10×10 | 50/50 |", "| iptables-legacy | 10×10 | 50/50 |",
			"**Conntrack cleanup: full reconcile with a fifth of 10 UDP services", "| 1000 | 1 |")
		pngs = append(pngs, "s2-cold-apply.png", "s3-incremental.png", "s5-first-packet.png")
	} else {
		t.Logf("privileged scenarios skipped: %v", priv)
		want = append(want, "Skipped: "+priv.Error())
	}
	for _, w := range want {
		if !strings.Contains(report, w) {
			t.Errorf("REPORT.md lacks %q", w)
		}
	}
	for _, p := range pngs {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil || fi.Size() == 0 {
			t.Errorf("plot %s: %v", p, err)
		}
	}
	p := progress.String()
	if i, j := strings.Index(p, "scenario 7: Memory"), strings.Index(p, "scenario 1: Render only"); i < 0 || j < 0 || i > j {
		t.Errorf("progress lacks scenarios 7 then 1:\n%s", p)
	}
	if strings.Index(report, "## 1. Render only") > strings.Index(report, "## 7. Memory") {
		t.Error("REPORT.md is not in scenario order")
	}
	if t.Failed() {
		t.Logf("REPORT.md:\n%s", report)
	}
}
