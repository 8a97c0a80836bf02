package bench

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/servicemap"
)

func TestCoveredBy(t *testing.T) {
	p1 := servicemap.PortName{Namespace: "bench", Name: "a", Port: "http", Protocol: servicemap.TCP}
	p2 := servicemap.PortName{Namespace: "bench", Name: "b", Port: "http", Protocol: servicemap.TCP}
	addr := func(i byte) netip.Addr { return netip.AddrFrom4([4]byte{10, 250, 0, i}) }
	pending := []*churnChange{
		{port: p1, addr: addr(1)},
		{port: p2, addr: addr(2)},
		{port: p1, addr: addr(3)},
		{port: p1, addr: addr(4)},
	}
	for _, tc := range []struct {
		name string
		in   []byte // addresses the snapshot has
		want []bool
	}{
		{"none", nil, []bool{false, false, false, false}},
		{"oldest only", []byte{1}, []bool{true, false, false, false}},
		{"a later change covers the earlier ones of its port", []byte{3}, []bool{true, false, true, false}},
		{"other port", []byte{2}, []bool{false, true, false, false}},
		{"all", []byte{4, 2}, []bool{true, true, true, true}},
	} {
		has := func(c *churnChange) bool {
			return slices.ContainsFunc(tc.in, func(i byte) bool { return addr(i) == c.addr })
		}
		if got := coveredBy(pending, has); !slices.Equal(got, tc.want) {
			t.Errorf("%s: coveredBy = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSnapshotHas(t *testing.T) {
	svcs, slcs := Cluster(3, 2)
	old := slcs[1]
	slcs[1] = changedSlice(old, 7)
	snap, err := proxykit.NewSnapshot(Node, svcs, slcs)
	if err != nil {
		t.Fatal(err)
	}
	port := servicemap.PortName{Namespace: "bench", Name: old.Service, Port: "http", Protocol: servicemap.TCP}
	has := snapshotHas(snap)
	if !has(&churnChange{port: port, addr: slcs[1].Endpoints[0].Addr}) {
		t.Error("the new address is not found")
	}
	if has(&churnChange{port: port, addr: old.Endpoints[0].Addr}) {
		t.Error("the replaced address is found")
	}
	other := port
	other.Name = slcs[0].Service
	if has(&churnChange{port: other, addr: slcs[1].Endpoints[0].Addr}) {
		t.Error("the new address is found in another service")
	}
}

// TestChurnFake drives churn against a slow fake Syncer, with fewer
// services than changes so that changes of one slice supersede each other.
func TestChurnFake(t *testing.T) {
	var syncs atomic.Int64
	s := proxykit.SyncerFunc(func(context.Context, *proxykit.Snapshot) error {
		syncs.Add(1)
		time.Sleep(20 * time.Millisecond)
		return nil
	})
	started := false
	r, err := churn(context.Background(), s, 7, 3, 500*time.Millisecond, func() { started = true },
		proxykit.WithMinSyncInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if !started {
		t.Error("started not called")
	}
	if r.changes != 25 || len(r.latencies) != r.changes {
		t.Errorf("%d changes, %d latencies; want 25 each", r.changes, len(r.latencies))
	}
	if r.syncs < 2 || r.full != 0 || r.failed != 0 || int64(r.syncs)+1 != syncs.Load() {
		t.Errorf("syncs %d (%d full, %d failed), Syncer called %d times", r.syncs, r.full, r.failed, syncs.Load())
	}
	for i, d := range r.latencies {
		if d <= 0 || d > time.Second {
			t.Errorf("change %d: latency %v", i, d)
		}
	}
	if r.initial < 20*time.Millisecond || r.cpuSelf <= 0 {
		t.Errorf("initial sync %v, CPU %v", r.initial, r.cpuSelf)
	}
}

// TestChurnRetry fails the first sync after the initial one: the changes
// it held are applied only by the retry, a backoff later.
func TestChurnRetry(t *testing.T) {
	const backoff = 300 * time.Millisecond
	var calls atomic.Int64
	s := proxykit.SyncerFunc(func(context.Context, *proxykit.Snapshot) error {
		if calls.Add(1) == 2 {
			return errors.New("boom")
		}
		return nil
	})
	r, err := churn(context.Background(), s, 100, 2, 400*time.Millisecond, nil,
		proxykit.WithMinSyncInterval(50*time.Millisecond), proxykit.WithRetryBackoff(backoff, backoff))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.latencies) != 20 || r.failed != 1 || r.full < 1 {
		t.Errorf("%d latencies, %d syncs (%d full, %d failed)", len(r.latencies), r.syncs, r.full, r.failed)
	}
	if m := slices.Max(r.latencies); m < backoff {
		t.Errorf("max latency %v, below the retry backoff %v", m, backoff)
	}
}

// TestChurnBackends runs scenario 4 with 10 services on the real backends
// (root only) and checks that every change was applied.
func TestChurnBackends(t *testing.T) {
	if err := CheckPrivileged(); err != nil {
		if Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	res, err := runChurn(context.Background(), &Env{Config: Config{Sizes: []int{10}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tables) != 1 {
		t.Fatalf("%d tables", len(res.Tables))
	}
	tab := res.Tables[0]
	t.Log("\n" + RenderTable(tab))
	if len(tab.Rows)+len(res.Skipped) != len(incBackends) {
		t.Errorf("%d rows, skipped %v", len(tab.Rows), res.Skipped)
	}
	for _, row := range tab.Rows {
		if row[2] != "50/50" {
			t.Errorf("%s: %s changes applied, want 50/50", row[0], row[2])
		}
	}
}
