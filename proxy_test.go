package proxykit

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

var (
	v4a = netip.MustParseAddr("10.96.0.10")
	v6a = netip.MustParseAddr("fd00:96::10")
)

func dualStackService() *servicemap.Service {
	return &servicemap.Service{
		Namespace:   "ns",
		Name:        "web",
		Type:        servicemap.LoadBalancer,
		ClusterIPs:  []netip.Addr{v4a, v6a},
		Ports:       []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80, NodePort: 30080}},
		ExternalIPs: []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")},
		LoadBalancerSourceRanges: []netip.Prefix{
			netip.MustParsePrefix("198.51.100.0/24"),
		},
	}
}

func webEndpoints(addrs ...string) *endpoints.Slice {
	s := &endpoints.Slice{
		Namespace: "ns", Service: "web", Name: "web-1",
		Ports: []endpoints.Port{{Name: "http", Protocol: servicemap.TCP, Port: 8080}},
	}
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, endpoints.Endpoint{Addr: netip.MustParseAddr(a), Ready: true, Serving: true, NodeName: "n1"})
	}
	return s
}

var webHTTP = servicemap.PortName{Namespace: "ns", Name: "web", Port: "http", Protocol: servicemap.TCP}

// §1: each family is decided on its own; v4 frontends use only v4
// endpoints, v6 frontends only v6 endpoints.
func TestNewSnapshotSplitsFamilies(t *testing.T) {
	snap, err := NewSnapshot(Node{Name: "n1"}, []*servicemap.Service{dualStackService()}, []*endpoints.Slice{webEndpoints("10.0.0.2", "fd00::2", "10.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	if !snap.Full() || snap.Generation() != 1 {
		t.Errorf("Full=%v Generation=%d, want true 1", snap.Full(), snap.Generation())
	}
	v4, ok := snap.Family(IPv4).Get(webHTTP)
	if !ok {
		t.Fatal("no IPv4 state")
	}
	v6, ok := snap.Family(IPv6).Get(webHTTP)
	if !ok {
		t.Fatal("no IPv6 state")
	}
	if v4.ClusterIP != v4a || v6.ClusterIP != v6a {
		t.Errorf("cluster IPs %v %v", v4.ClusterIP, v6.ClusterIP)
	}
	if got := addrsOf(v4.Endpoints.All); !slices.Equal(got, []string{"10.0.0.1:8080", "10.0.0.2:8080"}) {
		t.Errorf("IPv4 endpoints = %v", got)
	}
	if got := addrsOf(v6.Endpoints.All); !slices.Equal(got, []string{"[fd00::2]:8080"}) {
		t.Errorf("IPv6 endpoints = %v", got)
	}
	if len(v4.ExternalIPs) != 1 || !v4.ExternalIPs[0].Is4() || len(v6.ExternalIPs) != 1 || !v6.ExternalIPs[0].Is6() {
		t.Errorf("external IPs not split by family: %v %v", v4.ExternalIPs, v6.ExternalIPs)
	}
	// §6: a v4-only source range still firewalls the v6 side.
	if !v6.Firewalled || len(v6.SourceRanges) != 0 || len(v4.SourceRanges) != 1 {
		t.Errorf("source ranges: v4 %v v6 %v firewalled %v", v4.SourceRanges, v6.SourceRanges, v6.Firewalled)
	}
	if !slices.Equal(snap.Changed(), []servicemap.PortName{webHTTP}) || !snap.IsChanged(webHTTP) {
		t.Errorf("Changed() = %v", snap.Changed())
	}
}

func addrsOf(eps []endpoints.Endpoint) []string {
	var out []string
	for i := range eps {
		out = append(out, eps[i].AddrPort().String())
	}
	return out
}

// §1: headless services and services without a ClusterIP of a family get
// no rules in it.
func TestNewSnapshotSkipsHeadlessAndMissingFamily(t *testing.T) {
	v4only := &servicemap.Service{Namespace: "ns", Name: "v4", ClusterIPs: []netip.Addr{v4a}, Ports: []servicemap.Port{{Port: 53, Protocol: servicemap.UDP}}}
	headless := &servicemap.Service{Namespace: "ns", Name: "hl", Ports: []servicemap.Port{{Port: 80}}}
	snap, err := NewSnapshot(Node{}, []*servicemap.Service{v4only, headless}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n4, n6 := snap.Family(IPv4).Len(), snap.Family(IPv6).Len(); n4 != 1 || n6 != 0 {
		t.Errorf("ports per family = %d, %d; want 1, 0", n4, n6)
	}
	for p := range snap.Family(IPv4).Ports() {
		if p.Name.Name != "v4" || p.Endpoints.Cluster == nil || p.Endpoints.HasAny {
			t.Errorf("unexpected port state %+v", p)
		}
	}
	// §9: a new UDP port with no endpoints leaves no flows to clean.
	if got := snap.ConntrackCleanup(); len(got) != 0 {
		t.Errorf("ConntrackCleanup() = %v, want none", got)
	}
}

func TestNewSnapshotRejectsInvalidInput(t *testing.T) {
	bad := &servicemap.Service{Namespace: "ns", Name: "bad", ClusterIPs: []netip.Addr{v4a}, Ports: []servicemap.Port{{Port: 0}}}
	badSlice := &endpoints.Slice{Namespace: "ns", Service: "web", Name: "x", Ports: []endpoints.Port{{Port: 80}},
		Endpoints: []endpoints.Endpoint{{}}}
	_, err := NewSnapshot(Node{}, []*servicemap.Service{bad}, []*endpoints.Slice{badSlice})
	var se *servicemap.ValidationError
	var ee *endpoints.ValidationError
	if !errors.As(err, &se) || !errors.As(err, &ee) {
		t.Fatalf("want both validation errors, got %v", err)
	}
}

func TestProxyIncrementalSnapshots(t *testing.T) {
	p := New(Node{Name: "n1"}, nopSyncer())
	if err := p.OnServiceUpdate(nil, dualStackService()); err != nil {
		t.Fatal(err)
	}
	_ = p.OnSliceUpdate(webEndpoints("10.0.0.1"))
	s1 := p.next(true)
	p.applied(s1)

	other := &servicemap.Service{Namespace: "a", Name: "dns", ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.53")},
		Ports: []servicemap.Port{{Name: "dns", Protocol: servicemap.UDP, Port: 53}}}
	_ = p.OnServiceUpdate(nil, other)
	_ = p.OnSliceUpdate(webEndpoints("10.0.0.1", "10.0.0.2"))
	s2 := p.next(false)

	dns := servicemap.PortName{Namespace: "a", Name: "dns", Port: "dns", Protocol: servicemap.UDP}
	if want := []servicemap.PortName{dns, webHTTP}; !slices.Equal(s2.Changed(), want) {
		t.Errorf("Changed() = %v, want %v", s2.Changed(), want)
	}
	if s2.Full() || s2.Generation() != 2 {
		t.Errorf("Full=%v Generation=%d", s2.Full(), s2.Generation())
	}
	// Ports are sorted: "a/dns" before "ns/web".
	var names []string
	for ps := range s2.Family(IPv4).Ports() {
		names = append(names, ps.Name.String())
	}
	if !slices.Equal(names, []string{"a/dns:dns/UDP", "ns/web:http/TCP"}) {
		t.Errorf("IPv4 ports = %v", names)
	}
	// The older snapshot is untouched.
	if s1.Family(IPv4).Len() != 1 {
		t.Errorf("old snapshot changed: %d ports", s1.Family(IPv4).Len())
	}
	old, _ := s1.Family(IPv4).Get(webHTTP)
	cur, _ := s2.Family(IPv4).Get(webHTTP)
	if len(old.Endpoints.All) != 1 || len(cur.Endpoints.All) != 2 {
		t.Errorf("endpoints old %d new %d", len(old.Endpoints.All), len(cur.Endpoints.All))
	}

	// Delete: the port leaves both families and is reported changed.
	p.OnServiceDelete(dualStackService())
	s3 := p.next(false)
	if _, ok := s3.Family(IPv6).Get(webHTTP); ok || !s3.IsChanged(webHTTP) {
		t.Errorf("deleted port still present or not reported changed")
	}
}

// A failed sync keeps the changes pending: the next snapshot still lists
// them and their conntrack cleanup.
func TestProxyKeepsChangesAcrossFailedSync(t *testing.T) {
	var mu sync.Mutex
	var got []*Snapshot
	fail := true
	s := SyncerFunc(func(_ context.Context, snap *Snapshot) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, snap)
		if fail {
			fail = false
			return errors.New("kernel said no")
		}
		return nil
	})
	dns := &servicemap.Service{Namespace: "a", Name: "dns", ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.53")},
		Ports: []servicemap.Port{{Name: "dns", Protocol: servicemap.UDP, Port: 53}}}
	p := New(Node{Name: "n1"}, s, WithMinSyncInterval(0), WithRetryBackoff(time.Second, time.Second))
	if err := p.OnServiceUpdate(nil, dns); err != nil {
		t.Fatal(err)
	}
	// Its first endpoint: flows made while it had none must go (§9).
	if err := p.OnSliceUpdate(&endpoints.Slice{Namespace: "a", Service: "dns", Name: "dns-1",
		Ports:     []endpoints.Port{{Name: "dns", Protocol: servicemap.UDP, Port: 53}},
		Endpoints: []endpoints.Endpoint{{Addr: netip.MustParseAddr("10.0.0.53"), Ready: true}}}); err != nil {
		t.Fatal(err)
	}
	if err := p.sync(context.Background(), true); err == nil {
		t.Fatal("first sync should fail")
	}
	if p.Snapshot() != nil {
		t.Fatal("a failed sync must not become the last snapshot")
	}
	if err := p.sync(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(got[1].Changed()) != 1 || len(got[1].ConntrackCleanup()) != 1 {
		t.Fatalf("retry snapshot lost the pending changes: %v / %v", got[1].Changed(), got[1].ConntrackCleanup())
	}
	if p.Snapshot() != got[1] {
		t.Error("Snapshot() is not the last successful one")
	}
	// After success, the next sync starts afresh.
	if err := p.sync(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if len(got[2].Changed()) != 0 || len(got[2].ConntrackCleanup()) != 0 {
		t.Errorf("changes not cleared after success: %v", got[2].Changed())
	}
}

// A node change recategorises every port and forces a full snapshot.
func TestProxySetNodeRecategorises(t *testing.T) {
	svc := dualStackService()
	svc.InternalTrafficPolicy = servicemap.Local
	p := New(Node{Name: "n2"}, nopSyncer())
	_ = p.OnServiceUpdate(nil, svc)
	_ = p.OnSliceUpdate(webEndpoints("10.0.0.1")) // on n1
	s1 := p.next(false)
	st, _ := s1.Family(IPv4).Get(webHTTP)
	if len(st.Endpoints.Local) != 0 {
		t.Fatalf("n2 has no local endpoint, got %v", addrsOf(st.Endpoints.Local))
	}
	p.SetNode(Node{Name: "n1"})
	s2 := p.next(false)
	st, _ = s2.Family(IPv4).Get(webHTTP)
	if !s2.Full() || len(st.Endpoints.Local) != 1 || s2.Node().Name != "n1" {
		t.Errorf("after SetNode: full=%v local=%v node=%q", s2.Full(), addrsOf(st.Endpoints.Local), s2.Node().Name)
	}
}

// The whole loop: Run syncs at once (full), then coalesces changes.
func TestProxyRunEndToEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var snaps []*Snapshot
		s := SyncerFunc(func(_ context.Context, snap *Snapshot) error {
			mu.Lock()
			snaps = append(snaps, snap)
			mu.Unlock()
			return nil
		})
		p := New(Node{Name: "n1"}, s, WithMinSyncInterval(time.Second))
		_ = p.OnServiceUpdate(nil, dualStackService())
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		synctest.Wait()
		for _, a := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
			_ = p.OnSliceUpdate(webEndpoints(a))
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		if len(snaps) != 2 {
			t.Fatalf("got %d syncs, want 2 (initial + one coalesced)", len(snaps))
		}
		if !snaps[0].Full() || snaps[1].Full() {
			t.Errorf("full flags %v %v", snaps[0].Full(), snaps[1].Full())
		}
		st, _ := snaps[1].Family(IPv4).Get(webHTTP)
		if got := addrsOf(st.Endpoints.All); !slices.Equal(got, []string{"10.0.0.3:8080"}) {
			t.Errorf("last slice version not applied: %v", got)
		}
		if err := p.Healthy(); err != nil {
			t.Errorf("Healthy() = %v", err)
		}
	})
}

// Nil services and slices never panic, and never produce rules.
func TestProxyNilInputs(t *testing.T) {
	p := New(Node{}, nopSyncer())
	// nil prev and cur: nothing to record, no panic.
	_ = p.OnServiceUpdate(nil, nil)
	if err := p.OnSliceUpdate(nil); err == nil {
		t.Error("OnSliceUpdate(nil) accepted")
	}
	p.OnServiceDelete(nil)
	p.OnSliceDelete(nil)
	if snap := p.next(false); snap.Family(IPv4).Len() != 0 {
		t.Error("nil inputs produced ports")
	}
}

// SyncNow runs one full sync at once, without a Run loop.
func TestProxySyncNow(t *testing.T) {
	var got []*Snapshot
	p := New(Node{Name: "n1"}, SyncerFunc(func(_ context.Context, s *Snapshot) error {
		got = append(got, s)
		return nil
	}))
	_ = p.OnServiceUpdate(nil, dualStackService())
	if err := p.SyncNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Full() || got[0].Family(IPv4).Len() != 1 || p.Snapshot() != got[0] {
		t.Fatalf("SyncNow: %d syncs", len(got))
	}
}

// After the first (full) SyncNow, the next is partial with the changes.
func TestProxySyncNowPartial(t *testing.T) {
	var got []*Snapshot
	p := New(Node{Name: "n1"}, SyncerFunc(func(_ context.Context, s *Snapshot) error {
		got = append(got, s)
		return nil
	}))
	_ = p.OnServiceUpdate(nil, dualStackService())
	_ = p.SyncNow(context.Background())
	_ = p.OnSliceUpdate(webEndpoints("10.0.0.1"))
	_ = p.SyncNow(context.Background())
	if len(got) != 2 || got[1].Full() || !slices.Equal(got[1].Changed(), []servicemap.PortName{webHTTP}) {
		t.Fatalf("second SyncNow: full=%v changed=%v", got[1].Full(), got[1].Changed())
	}
}
