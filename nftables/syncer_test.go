package nftables

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/internal/golden"
)

// sortedTable is t with sets and chains sorted by name and elements by
// key: the order the Fake reports.
func sortedTable(t *Table) *Table {
	c := *t
	c.Sets = slices.Clone(t.Sets)
	for i, s := range c.Sets {
		cs := *s
		cs.Elements = slices.SortedFunc(slices.Values(s.Elements), compareElements)
		c.Sets[i] = &cs
	}
	slices.SortFunc(c.Sets, func(a, b *Set) int { return strings.Compare(a.Name, b.Name) })
	c.Chains = slices.Clone(t.Chains)
	slices.SortFunc(c.Chains, func(a, b *Chain) int { return strings.Compare(a.Name, b.Name) })
	return &c
}

// scenarioSnapshot builds one of the golden scenarios' snapshots.
func scenarioSnapshot(t *testing.T, name string) (*proxykit.Snapshot, Config) {
	t.Helper()
	sc, ok := goldenScenarios()[name]
	if !ok {
		t.Fatalf("no scenario %q", name)
	}
	snap, err := proxykit.NewSnapshot(testNode, sc.svcs, sc.slices)
	if err != nil {
		t.Fatal(err)
	}
	return snap, sc.cfg
}

// checkHolds asserts that the Fake holds exactly what Render gives for snap.
func checkHolds(t *testing.T, f *Fake, snap *proxykit.Snapshot, cfg Config) {
	t.Helper()
	rs, err := Render(snap, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range rs.Tables {
		got := f.Table(want.Family, want.Name)
		if got == nil {
			t.Fatalf("table %s %s missing", want.Family, want.Name)
		}
		w, g := (&Ruleset{Tables: []*Table{sortedTable(want)}}).String(), (&Ruleset{Tables: []*Table{got}}).String()
		if w != g {
			t.Errorf("table %s differs from the render:\n%s", want.Family, golden.LineDiff(w, g))
		}
	}
}

func newFakeSyncer(t *testing.T, cfg Config, f *Fake) *Syncer {
	t.Helper()
	s, err := NewSyncer(cfg, WithConn(f))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSyncProgramsTheRender(t *testing.T) {
	for name := range goldenScenarios() {
		t.Run(name, func(t *testing.T) {
			snap, cfg := scenarioSnapshot(t, name)
			f := NewFake()
			if err := newFakeSyncer(t, cfg, f).Sync(context.Background(), snap); err != nil {
				t.Fatal(err)
			}
			checkHolds(t, f, snap, cfg)
			if f.Transactions != 1 {
				t.Errorf("%d transactions, want 1 (one atomic batch per sync)", f.Transactions)
			}
		})
	}
}

// §11: a fresh Syncer adopts the table of an earlier run and prunes what
// the new snapshot no longer has; references make a wrong order fail.
func TestSyncAdoptsAndPrunes(t *testing.T) {
	f := NewFake()
	big, cfg := scenarioSnapshot(t, "external")
	if err := newFakeSyncer(t, cfg, f).Sync(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	small, err := proxykit.NewSnapshot(testNode, goldenScenarios()["external"].svcs[1:], nil)
	if err != nil {
		t.Fatal(err)
	}
	restarted := newFakeSyncer(t, cfg, f)
	if err := restarted.Sync(context.Background(), small); err != nil {
		t.Fatal(err)
	}
	checkHolds(t, f, small, cfg)
	for _, c := range f.Table(IPv4, "proxykit").Chains {
		if strings.Contains(c.Name, "/lb/") {
			t.Errorf("stale chain %s survived", c.Name)
		}
	}
}

// A transaction that fails part-way leaves the previous ruleset intact,
// and the next sync repairs everything.
func TestSyncFailurePartWay(t *testing.T) {
	f := NewFake()
	a, cfg := scenarioSnapshot(t, "clusterip")
	s := newFakeSyncer(t, cfg, f)
	if err := s.Sync(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	b, _ := scenarioSnapshot(t, "affinity")
	injected := errors.New("injected")
	calls := 0
	f.FailOn = func(i int, op Op) error {
		calls++
		if op.Kind == AddRule && calls > 40 {
			return injected
		}
		return nil
	}
	if err := s.Sync(context.Background(), b); !errors.Is(err, injected) {
		t.Fatalf("Sync = %v, want the injected error", err)
	}
	checkHolds(t, f, a, cfg) // nothing of b was applied
	f.FailOn = nil
	if err := s.Sync(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	checkHolds(t, f, b, cfg)
}

// Affinity records live in dynamic sets; a sync must not flush them.
func TestSyncKeepsAffinityRecords(t *testing.T) {
	f := NewFake()
	snap, cfg := scenarioSnapshot(t, "affinity")
	s := newFakeSyncer(t, cfg, f)
	for range 2 {
		if err := s.Sync(context.Background(), snap); err != nil {
			t.Fatal(err)
		}
	}
	for _, op := range f.LastOps {
		if op.Kind == FlushSet && strings.HasPrefix(op.Name, "aff-") {
			t.Errorf("affinity set flushed: %s", op)
		}
	}
}

func TestCleanup(t *testing.T) {
	f := NewFake()
	snap, cfg := scenarioSnapshot(t, "clusterip")
	s := newFakeSyncer(t, cfg, f)
	if err := s.Sync(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	if err := s.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, fam := range []Family{IPv4, IPv6} {
		if l, _ := f.List(context.Background(), fam, "proxykit"); l.Exists {
			t.Errorf("table %s still exists", fam)
		}
	}
	n := f.Transactions
	if err := s.Cleanup(context.Background()); err != nil || f.Transactions != n {
		t.Errorf("a second Cleanup: err=%v, transactions %d -> %d", err, n, f.Transactions)
	}
}

func TestNewSyncerValidatesConfig(t *testing.T) {
	_, err := NewSyncer(Config{Table: "Bad Name", MasqueradeMark: 3}, WithConn(NewFake()))
	for _, want := range []string{"Config.Table", "Config.MasqueradeMark", "Config.ClusterCIDRs"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

// Supported passes on the Fake, and a probe that fails names the feature.
func TestSupportedNamesTheMissingFeature(t *testing.T) {
	f := NewFake()
	s := newFakeSyncer(t, testConfig, f)
	if err := s.Supported(context.Background()); err != nil {
		t.Fatalf("Supported on the Fake: %v", err)
	}
	f.FailOn = func(_ int, op Op) error {
		for _, st := range op.Rule {
			if _, ok := st.(NumgenLess); ok {
				return errors.New("operation not supported")
			}
		}
		return nil
	}
	err := s.Supported(context.Background())
	if err == nil || !strings.Contains(err.Error(), "numgen") || !strings.Contains(err.Error(), "nft_numgen") {
		t.Fatalf("Supported = %v, want it to name numgen and its module", err)
	}
	if l, _ := f.List(context.Background(), IPv4, probeTable); l.Exists {
		t.Error("the probe table was left behind")
	}
}

// renderScenario renders one of the golden scenarios.
func renderScenario(t *testing.T, name string) *Ruleset {
	t.Helper()
	snap, cfg := scenarioSnapshot(t, name)
	rs, err := Render(snap, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}
