package conntrack

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// harness drives a Syncer on a Fake through a proxykit.Proxy, as a user
// would.
type harness struct {
	fake *Fake
	s    *Syncer
	p    *proxykit.Proxy

	mu      sync.Mutex
	results []Result
}

func newHarness(t *testing.T, fake *Fake, opts ...Option) *harness {
	t.Helper()
	h := &harness{fake: fake}
	opts = append([]Option{WithConn(fake), WithObserver(func(r Result) {
		h.mu.Lock()
		h.results = append(h.results, r)
		h.mu.Unlock()
	})}, opts...)
	s, err := NewSyncer(Config{}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	h.p = proxykit.New(testNode, s)
	return h
}

// sync applies the pending changes and returns the reconciles it ran and
// the Syncer's error.
func (h *harness) sync(t *testing.T) ([]Result, error) {
	t.Helper()
	h.mu.Lock()
	n := len(h.results)
	h.mu.Unlock()
	err := h.p.SyncNow(t.Context())
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.results[n:]), err
}

func (h *harness) mustSync(t *testing.T) []Result {
	t.Helper()
	res, err := h.sync(t)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// clients returns n flows from distinct clients to frontend, translated
// to endpoint.
func clients(n int, frontend, endpoint string) []Flow {
	out := make([]Flow, n)
	for i := range out {
		out[i] = flow(UDP, fmt.Sprintf("192.0.2.100:%d", 10000+i), frontend, endpoint)
	}
	return out
}

// count counts the fake's flows to frontend answered by endpoint.
func count(f *Fake, frontend, endpoint string) int {
	n := 0
	for _, fl := range f.Flows() {
		if fl.Orig.Dst == addrPort(frontend) && fl.Reply.Src == addrPort(endpoint) {
			n++
		}
	}
	return n
}

const (
	vipDNS = "10.96.0.10:53"
	epC    = "10.244.2.10:5353"
	epD    = "10.244.2.11:5353"
)

// Sync reconciles only when the snapshot says cleanup is needed, and a
// restart with a consistent table deletes nothing.
func TestSyncRunsOnlyWhenNeeded(t *testing.T) {
	fake := NewFake(clients(3, vipDNS, epC)...)
	h := newHarness(t, fake)
	must(t, h.p.OnServiceUpdate(nil, svc()))
	must(t, h.p.OnSliceUpdate(slice(ready("10.244.2.10", "n2"))))
	if res := h.mustSync(t); len(res) != 1 || !res[0].Full || res[0].Deleted != 0 || res[0].Dumped != 3 {
		t.Fatalf("first (full) sync: %+v, want one full reconcile deleting nothing", res)
	}
	dumps, _ := fake.Calls()
	if res := h.mustSync(t); len(res) != 0 {
		t.Errorf("sync without changes: %+v", res)
	}
	must(t, h.p.OnSliceUpdate(slice(ready("10.244.2.10", "n2"), ready("10.244.2.11", "n2"))))
	if res := h.mustSync(t); len(res) != 0 {
		t.Errorf("a new endpoint needs no cleanup, got %+v", res)
	}
	if d, _ := fake.Calls(); d != dumps {
		t.Errorf("%d dumps without a cleanup", d-dumps)
	}
	fake.Add(clients(2, vipDNS, epD)...)
	must(t, h.p.OnSliceUpdate(slice(ready("10.244.2.11", "n2"))))
	res := h.mustSync(t)
	if len(res) != 1 || res[0].Full || res[0].Deleted != 3 || res[0].Stale != 3 {
		t.Errorf("endpoint removed: %+v, want one partial reconcile deleting 3", res)
	}
	if count(fake, vipDNS, epC) != 0 || count(fake, vipDNS, epD) != 2 {
		t.Errorf("left: %v", fake.Flows())
	}

	// A restart: a fresh Syncer and Proxy, the same state.
	h2 := newHarness(t, fake)
	must(t, h2.p.OnServiceUpdate(nil, svc()))
	must(t, h2.p.OnSliceUpdate(slice(ready("10.244.2.11", "n2"))))
	if res := h2.mustSync(t); len(res) != 1 || !res[0].Full || res[0].Stale != 0 {
		t.Errorf("restart: %+v, want a full reconcile with nothing stale", res)
	}
	if n := len(fake.Flows()); n != 2 {
		t.Errorf("restart: %d flows left, want 2", n)
	}
}

// A partial sync deletes only the changed ports' stale flows; the full
// sync after it covers every port.
func TestSyncPartialScope(t *testing.T) {
	other := func(s *servicemap.Service) {
		s.Name = "other"
		s.ClusterIPs = []netip.Addr{netip.MustParseAddr("10.96.0.20")}
	}
	otherSlice := slice(ready("10.244.2.20", "n2"))
	otherSlice.Service, otherSlice.Name = "other", "other-1"
	fake := NewFake()
	h := newHarness(t, fake)
	must(t, h.p.OnServiceUpdate(nil, svc()))
	must(t, h.p.OnSliceUpdate(slice(ready("10.244.2.10", "n2"))))
	must(t, h.p.OnServiceUpdate(nil, svc(other)))
	must(t, h.p.OnSliceUpdate(otherSlice))
	h.mustSync(t)
	fake.Add(clients(4, vipDNS, epC)...)
	fake.Add(clients(5, "10.96.0.20:53", "10.244.9.9:5353")...) // stale, but its port does not change
	must(t, h.p.OnSliceUpdate(slice(ready("10.244.2.11", "n2"))))
	res := h.mustSync(t)
	// One dump per family of the changed port (ConntrackCleanup does not
	// say which family changed), filtered by its port, 53, which the
	// unchanged port shares.
	if len(res) != 1 || res[0].Deleted != 4 || res[0].Dumps != 2 || res[0].Dumped != 9 {
		t.Errorf("partial: %+v, want two port-filtered dumps deleting the changed port's 4", res)
	}
	if n := count(fake, "10.96.0.20:53", "10.244.9.9:5353"); n != 5 {
		t.Errorf("partial: %d flows of the unchanged port left, want 5", n)
	}
	full, err := h.s.Reconcile(t.Context(), h.p.Snapshot())
	if err != nil || full.Deleted != 5 || !full.Full {
		t.Errorf("full: %+v, %v; want 5 deleted", full, err)
	}
}

// The flows of a deleted service go with it: its frontends are retired.
func TestSyncDeletedService(t *testing.T) {
	fake := NewFake()
	h := newHarness(t, fake)
	must(t, h.p.OnServiceUpdate(nil, svc()))
	must(t, h.p.OnSliceUpdate(slice(ready("10.244.2.10", "n2"))))
	h.mustSync(t)
	fake.Add(clients(3, vipDNS, epC)...)
	fake.Add(flow(TCP, "192.0.2.100:1", vipDNS, epC))
	h.p.OnServiceDelete(svc())
	res := h.mustSync(t)
	if len(res) != 1 || res[0].Deleted != 3 {
		t.Errorf("delete: %+v, want 3 deleted", res)
	}
	if left := fake.Flows(); len(left) != 1 || left[0].Proto != TCP {
		t.Errorf("left %v, want the TCP flow", left)
	}
}

// A failed batch is reported, does not stop the others, and is retried
// by the next sync, even one whose snapshot needs no cleanup.
func TestSyncFailedBatchRetried(t *testing.T) {
	fake := NewFake()
	h := newHarness(t, fake, WithBatchSize(1000))
	must(t, h.p.OnServiceUpdate(nil, svc()))
	must(t, h.p.OnSliceUpdate(slice(ready("10.244.2.10", "n2"))))
	h.mustSync(t)
	fake.Add(clients(2500, vipDNS, epC)...)
	boom := errors.New("injected")
	fake.FailDelete = func(n int, _ []Flow) error {
		if n == 1 {
			return boom
		}
		return nil
	}
	must(t, h.p.OnSliceUpdate(slice(ready("10.244.2.11", "n2"))))
	res, err := h.sync(t)
	var be *BatchError
	if !errors.As(err, &be) || !errors.Is(err, boom) || be.Flows != 1000 || be.Batches != 3 || be.Batch != 1 {
		t.Fatalf("sync error %v, want the second of 3 batches of 1000", err)
	}
	if len(res) != 1 || res[0].Deleted != 1500 || res[0].Failed != 1000 || res[0].Batches != 3 || res[0].Err == nil {
		t.Errorf("result %+v, want 1500 deleted and 1000 failed", res)
	}
	fake.FailDelete = nil
	// The Proxy retries (full); so would the next partial sync.
	res = h.mustSync(t)
	if len(res) != 1 || res[0].Deleted != 1000 || res[0].Err != nil {
		t.Errorf("retry: %+v, want the other 1000 deleted", res)
	}
	if n := len(fake.Flows()); n != 0 {
		t.Errorf("%d flows left", n)
	}
}

// After a failed reconcile, even a sync whose snapshot needs no cleanup
// reconciles everything.
func TestSyncAfterDumpError(t *testing.T) {
	fake := NewFake()
	s, err := NewSyncer(Config{}, WithConn(fake))
	must(t, err)
	snap := snapshot(t, []*servicemap.Service{svc()}, slice(ready("10.244.2.10", "n2")))
	fake.Add(clients(2, vipDNS, "10.244.9.9:5353")...)
	fake.FailDump = func(Filter) error { return errors.New("injected") }
	_, err = s.Reconcile(t.Context(), snap)
	var de *DumpError
	if !errors.As(err, &de) || de.Filter.Proto != UDP {
		t.Fatalf("error %v, want a DumpError", err)
	}
	fake.FailDump = nil
	partial := partialSnapshot(t, snap)
	if err := s.Sync(t.Context(), partial); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.Flows()); n != 0 {
		t.Errorf("%d stale flows left after the retry", n)
	}
}

// partialSnapshot returns a partial snapshot of the same state as full,
// with no changes: what a Proxy makes when nothing changed.
func partialSnapshot(t *testing.T, full *proxykit.Snapshot) *proxykit.Snapshot {
	t.Helper()
	var snap *proxykit.Snapshot
	p := proxykit.New(full.Node(), proxykit.SyncerFunc(func(_ context.Context, s *proxykit.Snapshot) error {
		snap = s
		return nil
	}))
	must(t, p.SyncNow(t.Context()))
	must(t, p.SyncNow(t.Context()))
	if snap.Full() || len(snap.ConntrackCleanup()) != 0 {
		t.Fatal("not a partial snapshot without cleanup")
	}
	return snap
}

// A kernel without dump filters sends every protocol: TCP stays.
func TestSyncUnfilteredKernel(t *testing.T) {
	fake := NewFake(flow(TCP, "192.0.2.100:1", vipDNS, "10.244.9.9:5353"), flow(UDP, "192.0.2.100:1", vipDNS, "10.244.9.9:5353"),
		flow(UDP, "192.0.2.100:1", "10.96.0.10:54", "10.244.9.9:5353"))
	fake.Unfiltered = true
	s, err := NewSyncer(Config{}, WithConn(fake))
	must(t, err)
	res, err := s.Reconcile(t.Context(), snapshot(t, []*servicemap.Service{svc()}, slice(ready("10.244.2.10", "n2"))))
	if err != nil || res.Deleted != 1 || res.Dumped != 3 {
		t.Errorf("%+v, %v: want 3 dumped, 1 deleted", res, err)
	}
}

// Run is the safety net: off by default, it reconciles the last snapshot
// on its schedule.
func TestRunResync(t *testing.T) {
	fake := NewFake()
	s, err := NewSyncer(Config{}, WithConn(fake))
	must(t, err)
	if err := s.Run(t.Context()); !errors.Is(err, ErrNoResync) {
		t.Errorf("Run without WithResync: %v", err)
	}
	done := make(chan Result, 100)
	s, err = NewSyncer(Config{}, WithConn(fake), WithResync(5*time.Millisecond), WithObserver(func(r Result) {
		select {
		case done <- r:
		default:
		}
	}))
	must(t, err)
	must(t, s.Sync(t.Context(), snapshot(t, []*servicemap.Service{svc()}, slice(ready("10.244.2.10", "n2")))))
	<-done
	fake.Add(clients(2, vipDNS, "10.244.9.9:5353")...) // slipped through
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	deadline := time.After(5 * time.Second)
	for deleted := 0; deleted < 2; {
		select {
		case r := <-done:
			deleted += r.Deleted
			if !r.Full {
				t.Errorf("resync not full: %+v", r)
			}
		case <-deadline:
			t.Fatal("the resync did not delete the stale flows")
		}
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
}

// Few ports of a family and protocol get one port-filtered dump each;
// many get one dump.
func TestDumpsPerPort(t *testing.T) {
	var svcs []*servicemap.Service
	var sls []*endpoints.Slice
	for i := range 6 {
		name := fmt.Sprintf("s%d", i)
		svcs = append(svcs, &servicemap.Service{Namespace: "ns", Name: name,
			ClusterIPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 96, 0, byte(i + 1)})},
			Ports:      []servicemap.Port{{Name: "p", Protocol: servicemap.UDP, Port: uint16(1000 + i)}}})
		sls = append(sls, &endpoints.Slice{Namespace: "ns", Service: name, Name: name,
			Ports:     []endpoints.Port{{Name: "p", Protocol: servicemap.UDP, Port: 53}},
			Endpoints: []endpoints.Endpoint{ready("10.244.2.10", "n2")}})
	}
	snap := snapshot(t, svcs, sls...)
	few := buildIndex(snap, Config{}, func(n servicemap.PortName) bool { return n.Name < "s2" }).dumps()
	want := []Filter{{Family: proxykit.IPv4, Proto: UDP, Port: 1000}, {Family: proxykit.IPv4, Proto: UDP, Port: 1001}}
	if !slices.Equal(few, want) {
		t.Errorf("two ports: dumps %v, want %v", few, want)
	}
	if all := buildIndex(snap, Config{}, coverAll).dumps(); !slices.Equal(all, []Filter{{Family: proxykit.IPv4, Proto: UDP}}) {
		t.Errorf("six ports: dumps %v, want one", all)
	}
}

func TestNewSyncerOptions(t *testing.T) {
	for _, opt := range []Option{WithBatchSize(0), WithBatchSize(MaxBatchSize + 1), WithResync(-time.Second)} {
		if _, err := NewSyncer(Config{}, WithConn(NewFake()), opt); err == nil {
			t.Error("an invalid option was accepted")
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
