package iptables

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/internal/golden"
)

// checkHolds asserts that the Fake holds exactly what Render gives for
// snap, after normalize.
func checkHolds(t *testing.T, f *Fake, snap *proxykit.Snapshot, cfg Config, dispatchAnyOrder bool) {
	t.Helper()
	rs, err := Render(snap, cfg)
	if err != nil {
		t.Fatal(err)
	}
	prefix := cfg.withDefaults().Prefix
	for _, want := range rs.Tables {
		got, err := f.Save(context.Background(), want.Family, want.Name)
		if err != nil {
			t.Fatal(err)
		}
		w, g := normalize(want.String(), prefix, dispatchAnyOrder), normalize(string(got), prefix, dispatchAnyOrder)
		if w != g {
			t.Errorf("%s %s differs from the render:\n%s", want.Family, want.Name, golden.LineDiff(w, g))
		}
	}
}

func newFakeSyncer(t testing.TB, cfg Config, f *Fake) *Syncer {
	t.Helper()
	s, err := NewSyncer(cfg, WithRunner(f))
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
			checkHolds(t, f, snap, cfg, false)
			// A restarted Syncer finds the jumps: one restore per table
			// and family.
			n := len(f.Restores)
			if err := newFakeSyncer(t, cfg, f).Sync(context.Background(), snap); err != nil {
				t.Fatal(err)
			}
			if got := len(f.Restores) - n; got != 4 {
				t.Errorf("%d restores, want 4 (one per table and family)", got)
			}
			for _, fam := range proxykit.Families {
				for _, j := range jumpRules(cfg.withDefaults().Prefix) {
					rules, _ := f.Rules(fam, j.table, j.chain)
					if len(rules) < j.pos || rules[j.pos-1] != specText(j.spec) {
						t.Errorf("%s %s %s: jump %q not at %d: %q", fam, j.table, j.chain, specText(j.spec), j.pos, rules)
					}
				}
			}
		})
	}
}

// §11: a fresh Syncer adopts the chains of an earlier run and prunes what
// the new snapshot no longer has; the jumps are not duplicated.
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
	if err := newFakeSyncer(t, cfg, f).Sync(context.Background(), small); err != nil {
		t.Fatal(err)
	}
	checkHolds(t, f, small, cfg, false)
	if rules, _ := f.Rules(proxykit.IPv4, tableNAT, "PREROUTING"); len(rules) != 1 {
		t.Errorf("PREROUTING holds %q, want one jump", rules)
	}
}

// A failed restore leaves the previous rules, and the next sync is full
// and repairs them.
func TestSyncFailureLeavesPreviousRules(t *testing.T) {
	f := NewFake()
	a, cfg := scenarioSnapshot(t, "clusterip")
	s := newFakeSyncer(t, cfg, f)
	if err := s.Sync(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	b, _ := scenarioSnapshot(t, "external")
	injected := errors.New("injected")
	f.FailRestore = func(proxykit.Family, string, []byte) error { return injected }
	if err := s.Sync(context.Background(), b); !errors.Is(err, injected) {
		t.Fatalf("Sync = %v, want the injected error", err)
	}
	checkHolds(t, f, a, cfg, false)
	f.FailRestore = nil
	n := len(f.Restores)
	if err := s.Sync(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	checkHolds(t, f, b, cfg, false)
	if got := len(f.Restores) - n; got != 4 {
		t.Errorf("the sync after a failure made %d restores, want a full sync (4)", got)
	}
}

// A restore that fails part-way (a line the kernel refuses) changes
// nothing of its table.
func TestFakeRestoreIsAtomic(t *testing.T) {
	f := NewFake()
	snap, cfg := scenarioSnapshot(t, "clusterip")
	if err := newFakeSyncer(t, cfg, f).Sync(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	before, _ := f.Save(context.Background(), proxykit.IPv4, tableNAT)
	payload := "*nat\n:PROXYKIT-NEW - [0:0]\n-A PROXYKIT-SERVICES -j PROXYKIT-NEW\n-A PROXYKIT-NEW -j NO-SUCH-CHAIN\nCOMMIT\n"
	err := f.Restore(context.Background(), proxykit.IPv4, tableNAT, [][]byte{[]byte(payload)})
	var re *RestoreError
	if !errors.As(err, &re) || re.Line != 4 {
		t.Fatalf("Restore = %v, want a RestoreError at line 4", err)
	}
	if after, _ := f.Save(context.Background(), proxykit.IPv4, tableNAT); string(after) != string(before) {
		t.Errorf("a failed restore changed the table:\n%s", golden.LineDiff(string(before), string(after)))
	}
}

// Something flushed our chains: the next sync finds the canary gone and
// makes a full sync, also when nothing changed.
func TestFlushedCanaryTriggersFullSync(t *testing.T) {
	for _, change := range []bool{true, false} {
		name := map[bool]string{true: "with a change", false: "without changes"}[change]
		t.Run(name, func(t *testing.T) {
			p, f, snaps := fakeProxy(t, testConfig)
			svcs, slices := benchCluster(20, 2)
			for i := range svcs {
				_ = p.OnServiceUpdate(nil, svcs[i])
				_ = p.OnSliceUpdate(slices[i])
			}
			if err := p.SyncNow(context.Background()); err != nil {
				t.Fatal(err)
			}
			f.FlushAll(proxykit.IPv4, tableNAT)
			if change {
				changed := *slices[3]
				changed.Endpoints = changed.Endpoints[:1]
				_ = p.OnSliceUpdate(&changed)
			}
			if err := p.SyncNow(context.Background()); err != nil {
				t.Fatal(err)
			}
			last := (*snaps)[len(*snaps)-1]
			if last.Full() {
				t.Fatal("the proxy asked for a full sync; the test needs a partial one")
			}
			checkHolds(t, f, last, testConfig, true)
			if rules, _ := f.Rules(proxykit.IPv4, tableNAT, "PREROUTING"); len(rules) != 1 {
				t.Errorf("PREROUTING holds %q, want the jump back", rules)
			}
		})
	}
}

func TestCleanup(t *testing.T) {
	f := NewFake()
	snap, cfg := scenarioSnapshot(t, "external")
	s := newFakeSyncer(t, cfg, f)
	if err := s.Sync(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	if err := s.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, fam := range proxykit.Families {
		for _, table := range []string{tableNAT, tableFilter} {
			out, _ := f.Save(context.Background(), fam, table)
			if strings.Contains(string(out), "PROXYKIT") {
				t.Errorf("%s %s still holds our chains or jumps:\n%s", fam, table, out)
			}
		}
	}
	n := len(f.Restores)
	if err := s.Cleanup(context.Background()); err != nil || len(f.Restores) != n {
		t.Errorf("a second Cleanup: err=%v, restores %d -> %d", err, n, len(f.Restores))
	}
}

func TestNewSyncerValidatesConfig(t *testing.T) {
	_, err := NewSyncer(Config{Prefix: "bad prefix", MasqueradeMark: 3, Variant: "x"}, WithRunner(NewFake()))
	for _, want := range []string{"Config.Prefix", "Config.MasqueradeMark", "Config.ClusterCIDRs", "Config.Variant"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

// Supported passes on the Fake, and a refused probe names the feature.
func TestSupportedNamesTheMissingFeature(t *testing.T) {
	f := NewFake()
	s := newFakeSyncer(t, testConfig, f)
	if err := s.Supported(context.Background()); err != nil {
		t.Fatalf("Supported on the Fake: %v", err)
	}
	f.FailRestore = func(_ proxykit.Family, _ string, payload []byte) error {
		if strings.Contains(string(payload), "-m statistic") {
			return errors.New("Couldn't load match `statistic'")
		}
		return nil
	}
	err := s.Supported(context.Background())
	if err == nil || !strings.Contains(err.Error(), "statistic is not supported") || !strings.Contains(err.Error(), "xt_statistic") {
		t.Fatalf("Supported = %v, want it to name statistic and its module", err)
	}
	for _, fam := range proxykit.Families {
		if _, ok := f.Rules(fam, tableNAT, "PROXYKIT-PROBE"); ok {
			t.Errorf("%s: the probe chain was left behind", fam)
		}
	}
}
