package nftables

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/affinity"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// fakeProxy is a Proxy syncing into a Fake through the nftables Syncer.
func fakeProxy(t testing.TB, cfg Config) (*proxykit.Proxy, *Fake, *[]*proxykit.Snapshot) {
	f := NewFake()
	s, err := NewSyncer(cfg, WithConn(f))
	if err != nil {
		t.Fatal(err)
	}
	var snaps []*proxykit.Snapshot
	rec := proxykit.SyncerFunc(func(ctx context.Context, snap *proxykit.Snapshot) error {
		snaps = append(snaps, snap)
		return s.Sync(ctx, snap)
	})
	return proxykit.New(testNode, rec), f, &snaps
}

// A partial sync after N services sends a batch whose size does not
// depend on N.
func TestPartialSyncBatchSize(t *testing.T) {
	sizes := map[int]int{}
	for _, n := range []int{1000, 10000} {
		p, f, _ := fakeProxy(t, testConfig)
		svcs, slices := benchCluster(n, 10)
		for i := range svcs {
			_ = p.OnServiceUpdate(nil, svcs[i])
			_ = p.OnSliceUpdate(slices[i])
		}
		if err := p.SyncNow(context.Background()); err != nil {
			t.Fatal(err)
		}
		// One endpoint of one service is replaced.
		changed := *slices[n/2]
		changed.Endpoints = append([]endpoints.Endpoint(nil), changed.Endpoints...)
		changed.Endpoints[0].Addr = netip.MustParseAddr("10.200.0.1")
		_ = p.OnSliceUpdate(&changed)
		if err := p.SyncNow(context.Background()); err != nil {
			t.Fatal(err)
		}
		elements := 0
		for _, op := range f.LastOps {
			elements += len(op.Elements)
		}
		sizes[n] = len(f.LastOps)*1000 + elements
		t.Logf("%d services: %d ops, %d elements", n, len(f.LastOps), elements)
	}
	if sizes[1000] != sizes[10000] || sizes[1000] > 20*1000 {
		t.Errorf("partial batch depends on the number of services or is large: %v", sizes)
	}
}

// Random changes, each synced partially, always leave the Fake holding
// exactly the full render of the current snapshot.
func TestPartialSyncMatchesFullRender(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 8))
	p, f, snaps := fakeProxy(t, testConfig)
	partials := 0
	for step := range 120 {
		applyRandomChange(t, r, p, step)
		if err := p.SyncNow(context.Background()); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		snap := (*snaps)[len(*snaps)-1]
		if !snap.Full() {
			partials++
		}
		checkHolds(t, f, snap, testConfig)
		if t.Failed() {
			t.Fatalf("step %d diverged", step)
		}
	}
	if partials < 100 {
		t.Errorf("only %d of 120 syncs were partial", partials)
	}
}

// applyRandomChange adds, changes or deletes one of 8 services or its
// endpoints, across the features that shape the ruleset.
func applyRandomChange(t *testing.T, r *rand.Rand, p *proxykit.Proxy, step int) {
	i := r.IntN(8)
	name := fmt.Sprintf("svc%d", i)
	svc := &servicemap.Service{Namespace: "ns", Name: name,
		ClusterIPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 96, 0, byte(i + 1)})},
		Ports:      []servicemap.Port{{Name: "p", Protocol: []servicemap.Protocol{servicemap.TCP, servicemap.UDP}[i%2], Port: 80}}}
	switch r.IntN(4) {
	case 0:
		svc.Type = servicemap.LoadBalancer
		svc.Ports[0].NodePort = uint16(30000 + i)
		svc.LoadBalancerIPs = []netip.Addr{netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)})}
		if r.IntN(2) == 0 {
			svc.ExternalTrafficPolicy = servicemap.Local
		}
		if r.IntN(2) == 0 {
			svc.LoadBalancerSourceRanges = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}
		}
	case 1:
		svc.Affinity = affinity.Config{ClientIP: true, Timeout: time.Hour}
	}
	if r.IntN(6) == 0 {
		p.OnServiceDelete(svc)
		return
	}
	if err := p.OnServiceUpdate(nil, svc); err != nil {
		t.Fatal(err)
	}
	s := &endpoints.Slice{Namespace: "ns", Service: name, Name: name + "-1",
		Ports: []endpoints.Port{{Name: "p", Protocol: svc.Ports[0].Protocol, Port: 8080}}}
	for range r.IntN(4) {
		// Shared endpoints across services exercise the claims.
		s.Endpoints = append(s.Endpoints, endpoints.Endpoint{
			Addr: netip.AddrFrom4([4]byte{10, 244, byte(1 + r.IntN(2)), byte(10 + r.IntN(6))}), Ready: true,
			NodeName: []string{"node-a", "node-b"}[r.IntN(2)], Weight: uint16(r.IntN(3))})
	}
	if err := p.OnSliceUpdate(s); err != nil {
		t.Fatal(err)
	}
}
