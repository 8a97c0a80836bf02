package ipvs

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/nftables"
	"github.com/proxykit/proxykit/servicemap"
)

// clock is a settable clock for the grace period.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newFakeSyncer(t testing.TB, h *Fake, nft *nftables.Fake, c *clock, cfg Config) *Syncer {
	t.Helper()
	s, err := NewSyncer(cfg, WithHandle(h), WithNFTConn(nft), WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustSync(t testing.TB, s *Syncer, snap *proxykit.Snapshot) {
	t.Helper()
	if err := s.Sync(context.Background(), snap); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// The fake holds what Plan says, plus nothing: its dump is the plan's
// text without comments.
func TestSyncMatchesPlan(t *testing.T) {
	for name, sc := range goldenScenarios() {
		t.Run(name, func(t *testing.T) {
			h, nft := NewFake(), nftables.NewFake()
			s := newFakeSyncer(t, h, nft, &clock{time.Unix(0, 0)}, sc.cfg)
			snap := snapshot(t, sc.svcs, sc.slices)
			mustSync(t, s, snap)
			st, _ := Plan(snap, sc.cfg)
			if got, want := h.Dump(), planDump(st, sc.cfg); got != want {
				t.Errorf("kernel differs from plan (-want +got):\n-%s\n+%s", want, got)
			}
			if nft.Table(nftables.IPv4, DefaultTable) == nil || nft.Table(nftables.IPv6, DefaultTable) == nil {
				t.Error("companion tables missing")
			}
			if got := h.Sysctl("net/ipv4/vs/conntrack"); got != "1" {
				t.Errorf("net.ipv4.vs.conntrack = %q, want 1", got)
			}
			ops := h.Ops()
			mustSync(t, s, snap)
			if h.Ops() != ops+len(Sysctls) {
				t.Errorf("a second full sync made %d changes, want only the %d sysctls", h.Ops()-ops, len(Sysctls))
			}
		})
	}
}

// planDump is what Fake.Dump prints for a state.
func planDump(st *State, cfg Config) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSuffix(st.String(), "\n"), "\n") {
		if i := strings.Index(line, "  # "); i >= 0 {
			line = line[:i]
		}
		if strings.HasPrefix(line, "address ") {
			line += " on " + cfg.withDefaults().Interface
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// A fault at any point of a sync leaves a state that the next sync
// repairs, whatever the point.
func TestFaultRepairedByNextSync(t *testing.T) {
	sc := goldenScenarios()["flags"]
	snap := snapshot(t, sc.svcs, sc.slices)
	clean := NewFake()
	mustSync(t, newFakeSyncer(t, clean, nftables.NewFake(), &clock{}, sc.cfg), snap)
	total := clean.Ops()
	// Start from a different state: a stale service, a stale address and a
	// wrong weight, so the sync also deletes and updates.
	for at := 1; at <= total; at++ {
		h := NewFake()
		s := newFakeSyncer(t, h, nftables.NewFake(), &clock{}, sc.cfg)
		stale := &VirtualServer{Key: Key{Addr: netip.MustParseAddr("10.96.9.9"), Proto: servicemap.TCP, Port: 80}, Scheduler: "rr"}
		_ = h.EnsureInterface(context.Background(), DefaultInterface)
		_ = h.AddAddress(context.Background(), DefaultInterface, stale.Addr)
		_ = h.AddService(context.Background(), stale)
		h.FailAt(at)
		err := s.Sync(context.Background(), snap)
		if err == nil {
			continue // the fault hit an op this start state does not need
		}
		var oe *OpError
		if !errors.As(err, &oe) {
			t.Fatalf("fault at op %d: error %v is not an *OpError", at, err)
		}
		mustSync(t, s, snap)
		if got, want := h.Dump(), clean.Dump(); got != want {
			t.Fatalf("fault at op %d (%v): not repaired (-want +got):\n-%s\n+%s", at, err, want, got)
		}
	}
}

// One changed endpoint costs a handful of operations, whatever the
// number of services.
func TestPartialSyncTouchesOnlyTheChange(t *testing.T) {
	for _, n := range []int{100, 1000} {
		h, nft := NewFake(), nftables.NewFake()
		s := newFakeSyncer(t, h, nft, &clock{}, testConfig)
		var last *proxykit.Snapshot
		p := proxykit.New(testNode, proxykit.SyncerFunc(func(ctx context.Context, snap *proxykit.Snapshot) error {
			last = snap
			return s.Sync(ctx, snap)
		}))
		svcs, slices := benchCluster(n, 10)
		for i := range svcs {
			_ = p.OnServiceUpdate(nil, svcs[i])
			_ = p.OnSliceUpdate(slices[i])
		}
		if err := p.SyncNow(context.Background()); err != nil {
			t.Fatal(err)
		}
		changed := *slices[n/2]
		changed.Endpoints = append([]endpoints.Endpoint(nil), changed.Endpoints...)
		changed.Endpoints[0].Addr = netip.MustParseAddr("10.200.0.1")
		_ = p.OnSliceUpdate(&changed)
		before := h.Ops()
		if err := p.SyncNow(context.Background()); err != nil {
			t.Fatal(err)
		}
		// The old endpoint goes (no connections: deleted), the new one comes.
		if got := h.Ops() - before; got != 2 {
			t.Errorf("%d services: one endpoint change made %d kernel changes, want 2", n, got)
		}
		if last.Full() {
			t.Fatal("the second sync was full")
		}
		sameElements(t, nft, rules(last, s.cfg))
		// A port loses its endpoints: the companion rules change by an
		// element of no-endpoint-services.
		empty := *slices[1]
		empty.Endpoints = nil
		_ = p.OnSliceUpdate(&empty)
		if err := p.SyncNow(context.Background()); err != nil {
			t.Fatal(err)
		}
		if last.Full() {
			t.Fatal("the third sync was full")
		}
		sameElements(t, nft, rules(last, s.cfg))
		for _, set := range nft.Table(nftables.IPv4, DefaultTable).Sets {
			if set.Name == mapNoEndpointIPs && len(set.Elements) != 1 {
				t.Errorf("%s holds %v, want one element", set.Name, set.Elements)
			}
		}
	}
}

// sameElements checks that the companion tables in nft hold the sets and
// elements of want.
func sameElements(t *testing.T, nft *nftables.Fake, want *nftables.Ruleset) {
	t.Helper()
	for _, wt := range want.Tables {
		got := nft.Table(wt.Family, wt.Name)
		if got == nil {
			t.Fatalf("table %s %s missing", wt.Family, wt.Name)
		}
		elems := map[string]map[elemKey]bool{}
		for _, set := range got.Sets {
			elems[set.Name] = map[elemKey]bool{}
			for _, e := range set.Elements {
				elems[set.Name][keyOf(e)] = true
			}
		}
		for _, set := range wt.Sets {
			if len(elems[set.Name]) != len(set.Elements) {
				t.Errorf("set %s %s: %d elements, want %d", wt.Family, set.Name, len(elems[set.Name]), len(set.Elements))
			}
			for _, e := range set.Elements {
				if !elems[set.Name][keyOf(e)] {
					t.Errorf("set %s %s lacks %s", wt.Family, set.Name, e)
				}
			}
		}
	}
}

// Virtual servers on addresses the backend does not own stay as they
// are.
func TestForeignServicesUntouched(t *testing.T) {
	sc := goldenScenarios()["external"]
	h := NewFake()
	ctx := context.Background()
	foreign := []*VirtualServer{
		{Key: Key{Addr: netip.MustParseAddr("172.16.0.1"), Proto: servicemap.TCP, Port: 80}, Scheduler: "wlc"},
		{Key: Key{Addr: testNode.Addresses[0], Proto: servicemap.TCP, Port: 443}, Scheduler: "rr"},
	}
	for _, v := range foreign {
		if err := h.AddService(ctx, v); err != nil {
			t.Fatal(err)
		}
		_ = h.AddReal(ctx, v.Key, RealServer{Addr: netip.MustParseAddr("172.16.1.1"), Port: 80, Weight: 1})
	}
	s := newFakeSyncer(t, h, nftables.NewFake(), &clock{}, sc.cfg)
	mustSync(t, s, snapshot(t, sc.svcs, sc.slices))
	mustSync(t, s, snapshot(t, nil, nil))
	if err := s.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	want := "TCP  172.16.0.1:80 wlc\n  -> 172.16.1.1:80 weight 1\nTCP  192.0.2.1:443 rr\n  -> 172.16.1.1:80 weight 1\n"
	if got := h.Dump(); got != want {
		t.Errorf("after sync and cleanup (-want +got):\n-%s\n+%s", want, got)
	}
}
