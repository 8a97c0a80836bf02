package iptables

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/affinity"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// fakeProxy is a Proxy syncing into a Fake through the iptables Syncer;
// it records the snapshots.
func fakeProxy(t testing.TB, cfg Config) (*proxykit.Proxy, *Fake, *[]*proxykit.Snapshot) {
	f := NewFake()
	s := newFakeSyncer(t, cfg, f)
	var snaps []*proxykit.Snapshot
	rec := proxykit.SyncerFunc(func(ctx context.Context, snap *proxykit.Snapshot) error {
		snaps = append(snaps, snap)
		return s.Sync(ctx, snap)
	})
	return proxykit.New(testNode, rec), f, &snaps
}

// One changed service among N gives a restore payload whose size does
// not depend on N.
func TestPartialSyncPayloadSize(t *testing.T) {
	sizes, lines := map[int]int{}, map[int]int{}
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
		before := len(f.Restores)
		if err := p.SyncNow(context.Background()); err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, r := range f.Restores[before:] {
			total += r.Size
		}
		sizes[n] = total
		lines[n] = strings.Count(string(f.LastPayload), "\n")
		t.Logf("%d services: %d restores, %d bytes, %d lines", n, len(f.Restores)-before, total, lines[n])
		if got := len(f.Restores) - before; got != 1 {
			t.Errorf("%d services: %d restores, want 1 (the IPv4 nat table)", n, got)
		}
	}
	// The same lines; bytes differ only where addresses print longer.
	if lines[1000] != lines[10000] || abs(sizes[1000]-sizes[10000]) > 64 || sizes[10000] > 8000 {
		t.Errorf("partial payload depends on the number of services or is large: %v", sizes)
	}
}

// Random changes, each synced partially, always leave the Fake holding
// the full render of the current snapshot (dispatch rules in any order).
func TestPartialSyncMatchesFullRender(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 8))
	p, f, snaps := fakeProxy(t, testConfig)
	partials := 0
	for step := range 150 {
		applyRandomChange(t, r, p)
		if err := p.SyncNow(context.Background()); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		snap := (*snaps)[len(*snaps)-1]
		if !snap.Full() {
			partials++
		}
		checkHolds(t, f, snap, testConfig, true)
		for _, fam := range proxykit.Families {
			rules, _ := f.Rules(fam, tableNAT, "PROXYKIT-SERVICES")
			if last := rules[len(rules)-1]; !strings.Contains(last, "PROXYKIT-NODEPORTS") {
				t.Fatalf("step %d: the last rule of %s SERVICES is %q, not the NodePort jump", step, fam, last)
			}
		}
		if t.Failed() {
			t.Fatalf("step %d diverged", step)
		}
	}
	if partials < 120 {
		t.Errorf("only %d of 150 syncs were partial", partials)
	}
}

// applyRandomChange adds, changes or deletes one of 8 services or its
// endpoints, across the features that shape the rules.
func applyRandomChange(t *testing.T, r *rand.Rand, p *proxykit.Proxy) {
	i := r.IntN(8)
	name := fmt.Sprintf("svc%d", i)
	svc := &servicemap.Service{Namespace: "ns", Name: name,
		ClusterIPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 96, 0, byte(i + 1)}), netip.MustParseAddr(fmt.Sprintf("fd00:96::%d", i+1))},
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
	case 2:
		svc.InternalTrafficPolicy = servicemap.Local
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
		s.Endpoints = append(s.Endpoints, endpoints.Endpoint{
			Addr: netip.AddrFrom4([4]byte{10, 244, byte(1 + r.IntN(2)), byte(10 + r.IntN(6))}), Ready: true,
			NodeName: []string{"node-a", "node-b"}[r.IntN(2)], Weight: uint16(r.IntN(3))})
	}
	if err := p.OnSliceUpdate(s); err != nil {
		t.Fatal(err)
	}
}

func abs(x int) int { return max(x, -x) }
