package ipvs

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
	"github.com/proxykit/proxykit/nftables"
	"github.com/proxykit/proxykit/servicemap"
)

// partialRig is a Proxy syncing into Fakes through an ipvs Syncer.
type partialRig struct {
	p     *proxykit.Proxy
	s     *Syncer
	h     *Fake
	nft   *nftables.Fake
	snaps []*proxykit.Snapshot
}

func newPartialRig(t testing.TB, node proxykit.Node, c *clock, cfg Config) *partialRig {
	t.Helper()
	r := &partialRig{h: NewFake(), nft: nftables.NewFake()}
	r.s = newFakeSyncer(t, r.h, r.nft, c, cfg)
	r.p = proxykit.New(node, proxykit.SyncerFunc(func(ctx context.Context, snap *proxykit.Snapshot) error {
		r.snaps = append(r.snaps, snap)
		return r.s.Sync(ctx, snap)
	}))
	return r
}

func (r *partialRig) last() *proxykit.Snapshot { return r.snaps[len(r.snaps)-1] }

// tablesText prints the companion tables an nftables.Fake holds.
func tablesText(nft *nftables.Fake) string {
	rs := &nftables.Ruleset{}
	for _, fam := range []nftables.Family{nftables.IPv4, nftables.IPv6} {
		if t := nft.Table(fam, DefaultTable); t != nil {
			rs.Tables = append(rs.Tables, t)
		}
	}
	return rs.String()
}

// fullText is what a fresh Syncer's full sync of snap leaves in Fakes.
func fullText(t *testing.T, snap *proxykit.Snapshot, cfg Config) (ipvs, nft string) {
	t.Helper()
	h, f := NewFake(), nftables.NewFake()
	mustSync(t, newFakeSyncer(t, h, f, &clock{}, cfg), snap)
	return h.Dump(), tablesText(f)
}

// A partial sync after N services reads back, changes and sends an
// amount that does not depend on N: one endpoint replaced (on this node:
// the hairpin set changes), a service added, one deleted, one emptied.
func TestPartialSyncCostIndependentOfServices(t *testing.T) {
	type cost struct{ reads, ops, nftRuns, nftOps, nftElems int }
	costs := map[int]cost{}
	node := proxykit.Node{Name: "node-0"}
	for _, n := range []int{1000, 10000} {
		r := newPartialRig(t, node, &clock{}, Config{MasqueradeAll: true})
		svcs, slices := benchCluster(n, 10)
		for i := range svcs {
			_ = r.p.OnServiceUpdate(nil, svcs[i])
			_ = r.p.OnSliceUpdate(slices[i])
		}
		if err := r.p.SyncNow(t.Context()); err != nil {
			t.Fatal(err)
		}
		changed := *slices[n/2]
		changed.Endpoints = append([]endpoints.Endpoint(nil), changed.Endpoints...)
		changed.Endpoints[0].Addr = netip.MustParseAddr("10.200.0.1")
		_ = r.p.OnSliceUpdate(&changed)
		emptied := *slices[2]
		emptied.Endpoints = nil
		_ = r.p.OnSliceUpdate(&emptied)
		r.p.OnServiceDelete(svcs[1])
		added := &servicemap.Service{Namespace: "bench", Name: "added", ClusterIPs: addrs("10.97.0.1"),
			Ports: []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80}}}
		_ = r.p.OnServiceUpdate(nil, added)
		addedSlice := slice("added", endpoints.Port{Name: "http", Protocol: servicemap.TCP, Port: 8080},
			ep("10.201.0.1", "node-0", 0), ep("10.201.0.2", "node-1", 2))
		addedSlice.Namespace = "bench"
		_ = r.p.OnSliceUpdate(addedSlice)
		reads, ops, nftRuns, nftOps := r.h.Reads(), r.h.Ops(), r.nft.Transactions, r.nft.Ops
		partials := r.s.partials
		if err := r.p.SyncNow(t.Context()); err != nil {
			t.Fatal(err)
		}
		if r.last().Full() || r.s.partials != partials+1 {
			t.Fatalf("%d services: the sync was not partial", n)
		}
		c := cost{reads: r.h.Reads() - reads, ops: r.h.Ops() - ops, nftRuns: r.nft.Transactions - nftRuns, nftOps: r.nft.Ops - nftOps}
		for _, op := range r.nft.LastOps {
			c.nftElems += len(op.Elements)
		}
		costs[n] = c
		t.Logf("%d services: %+v", n, c)
		st, err := Plan(r.last(), r.s.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := r.h.Dump(), planDump(st, r.s.cfg); got != want {
			t.Errorf("%d services: kernel differs from the plan", n)
		}
		sameElements(t, r.nft, rules(r.last(), r.s.cfg))
	}
	if costs[1000] != costs[10000] {
		t.Errorf("the cost of a partial sync depends on the number of services: %+v", costs)
	}
	// 4 virtual servers read back (the real servers too of the 2 that
	// stay), 1 real server replaced (2 changes), 1 emptied (10), 1
	// service deleted and 1 added with 2 real servers (4), their 2
	// addresses; one nftables transaction.
	if c := costs[1000]; c.reads != 6 || c.ops != 18 || c.nftRuns != 1 {
		t.Errorf("cost %+v, want 6 reads, 18 changes, 1 transaction", c)
	}
}

// randomService returns service i of a small, random cluster with the
// features that shape the plan and the companion rules; the ExternalIP
// 192.0.2.50 and port 80 are shared between services, so that a key has
// two claims now and then.
func randomService(r *rand.Rand, i int) (*servicemap.Service, *endpoints.Slice) {
	name := fmt.Sprintf("svc%d", i)
	proto := []servicemap.Protocol{servicemap.TCP, servicemap.UDP}[i%2]
	svc := &servicemap.Service{Namespace: "ns", Name: name,
		ClusterIPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 96, 0, byte(i + 1)})},
		Ports:      []servicemap.Port{{Name: "p", Protocol: proto, Port: 80}},
		Scheduler:  []string{"", "wrr", "sh"}[r.IntN(3)]}
	if r.IntN(3) == 0 {
		svc.ClusterIPs = append(svc.ClusterIPs, netip.MustParseAddr(fmt.Sprintf("fd00:96::%d", i+1)))
	}
	switch r.IntN(4) {
	case 0:
		svc.Type = servicemap.LoadBalancer
		svc.Ports[0].NodePort = uint16(30000 + i)
		svc.LoadBalancerIPs = []netip.Addr{netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)})}
		if r.IntN(2) == 0 {
			svc.ExternalTrafficPolicy = servicemap.Local
		}
		if r.IntN(2) == 0 {
			svc.LoadBalancerSourceRanges = []netip.Prefix{netip.MustParsePrefix([]string{"198.51.100.0/24", "192.0.2.0/24"}[r.IntN(2)])}
		}
	case 1:
		svc.Affinity = affinity.Config{ClientIP: true, Timeout: time.Duration(1+r.IntN(2)) * time.Hour}
	case 2:
		svc.ExternalIPs = addrs("192.0.2.50")
	}
	if r.IntN(3) == 0 {
		svc.Ports = append(svc.Ports, servicemap.Port{Name: "q", Protocol: servicemap.TCP, Port: 443})
	}
	s := &endpoints.Slice{Namespace: "ns", Service: name, Name: name + "-1"}
	for _, p := range svc.Ports {
		s.Ports = append(s.Ports, endpoints.Port{Name: p.Name, Protocol: p.Protocol, Port: 8000 + p.Port})
	}
	for range r.IntN(4) {
		// Shared endpoints across services exercise the claims of the
		// hairpin set.
		e := endpoints.Endpoint{Addr: netip.AddrFrom4([4]byte{10, 244, byte(1 + r.IntN(2)), byte(10 + r.IntN(6))}),
			Ready: true, NodeName: []string{"node-a", "node-b"}[r.IntN(2)], Weight: uint16(r.IntN(3))}
		if r.IntN(4) == 0 {
			e.Addr = netip.MustParseAddr(fmt.Sprintf("fd00:244:1::%d", 10+r.IntN(6)))
		}
		s.Endpoints = append(s.Endpoints, e)
	}
	return svc, s
}

// Random changes, each synced partially, always leave the Fakes as a
// Syncer that syncs fully each time leaves its own: the same virtual and
// real servers, weights (quiesced ones too), addresses and companion
// rules, with connections opened and closed and the clock moving so that
// graceful termination runs in both.
func TestPartialSyncMatchesFullSync(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 11))
	c := &clock{time.Unix(1000, 0)}
	cfg := testConfig
	cfg.GracePeriod = 10 * time.Minute
	r := newPartialRig(t, testNode, c, cfg)
	refH, refNFT := NewFake(), nftables.NewFake()
	ref := newFakeSyncer(t, refH, refNFT, c, cfg)
	r.p = proxykit.New(testNode, proxykit.SyncerFunc(func(ctx context.Context, snap *proxykit.Snapshot) error {
		r.snaps = append(r.snaps, snap)
		if err := r.s.Sync(ctx, snap); err != nil {
			return err
		}
		ref.prev = nil // full, every time
		return ref.Sync(ctx, snap)
	}))
	const steps = 300
	for step := range steps {
		for range 1 + rnd.IntN(2) {
			svc, sl := randomService(rnd, rnd.IntN(8))
			if rnd.IntN(8) == 0 {
				r.p.OnServiceDelete(svc)
				continue
			}
			if err := r.p.OnServiceUpdate(nil, svc); err != nil {
				t.Fatal(err)
			}
			if err := r.p.OnSliceUpdate(sl); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.p.SyncNow(t.Context()); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if got, want := r.h.Dump(), refH.Dump(); got != want {
			t.Fatalf("step %d: IPVS differs from a full sync's (-want +got):\n-%s\n+%s", step, want, got)
		}
		if got, want := tablesText(r.nft), tablesText(refNFT); got != want {
			t.Fatalf("step %d: companion rules differ from a full sync's (-want +got):\n-%s\n+%s", step, want, got)
		}
		if got, want := r.s.Pending(), ref.Pending(); got != want {
			t.Fatalf("step %d: %d quiesced real servers, a full sync has %d", step, got, want)
		}
		// Traffic: connections open and close on some real servers.
		vss, _ := r.h.Services(t.Context())
		for range rnd.IntN(3) {
			if len(vss) == 0 {
				break
			}
			k := vss[rnd.IntN(len(vss))].Key
			rs, _ := r.h.Reals(t.Context(), k)
			if len(rs) == 0 {
				continue
			}
			ap := rs[rnd.IntN(len(rs))].AddrPort()
			active := rnd.IntN(3)
			_ = r.h.SetConns(k, ap, active, 0)
			_ = refH.SetConns(k, ap, active, 0)
		}
		c.advance(time.Duration(rnd.IntN(4)) * time.Minute)
	}
	if r.s.partials < steps*2/3 {
		t.Errorf("only %d of %d syncs were partial", r.s.partials, steps)
	}
	t.Logf("%d of %d syncs partial", r.s.partials, steps)
}

// A fault at any point of a partial sync (an IPVS operation, or the
// companion rules' transaction) fails it; the next sync is full and
// leaves what a clean sync leaves.
func TestPartialSyncFaultRepaired(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	var base [8]*servicemap.Service
	var baseSlices [8]*endpoints.Slice
	for i := range base {
		base[i], baseSlices[i] = randomService(rnd, i)
		base[i].ExternalIPs = nil // no shared keys: the sync is partial
		baseSlices[i].Endpoints = append(baseSlices[i].Endpoints, ep(fmt.Sprintf("10.244.3.%d", i), "node-b", 1))
	}
	next := rand.New(rand.NewPCG(9, 9))
	var changes [4]*servicemap.Service
	var changeSlices [4]*endpoints.Slice
	for i := range changes {
		changes[i], changeSlices[i] = randomService(next, 2*i)
		changes[i].ExternalIPs = nil
	}
	// setup syncs the base fully, with connections on every real server,
	// and queues the changes: four services change, one goes.
	setup := func(t *testing.T) *partialRig {
		r := newPartialRig(t, testNode, &clock{time.Unix(1000, 0)}, testConfig)
		for i := range base {
			_ = r.p.OnServiceUpdate(nil, base[i])
			_ = r.p.OnSliceUpdate(baseSlices[i])
		}
		if err := r.p.SyncNow(t.Context()); err != nil {
			t.Fatal(err)
		}
		vss, _ := r.h.Services(t.Context())
		for _, v := range vss {
			rs, _ := r.h.Reals(t.Context(), v.Key)
			for _, rr := range rs {
				_ = r.h.SetConns(v.Key, rr.AddrPort(), 1, 0)
			}
		}
		for i := range changes {
			_ = r.p.OnServiceUpdate(nil, changes[i])
			_ = r.p.OnSliceUpdate(changeSlices[i])
		}
		r.p.OnServiceDelete(base[7])
		return r
	}
	clean := setup(t)
	before := clean.h.Ops()
	if err := clean.p.SyncNow(t.Context()); err != nil {
		t.Fatal(err)
	}
	if clean.s.partials != 1 {
		t.Fatal("the clean sync of the changes was not partial")
	}
	total := clean.h.Ops() - before
	wantIPVS, wantNFT := clean.h.Dump(), tablesText(clean.nft)
	if total < 5 {
		t.Fatalf("the partial sync made only %d changes", total)
	}
	check := func(t *testing.T, r *partialRig, what string) {
		t.Helper()
		if err := r.p.SyncNow(t.Context()); err == nil {
			t.Fatalf("%s: the sync did not fail", what)
		}
		partials := r.s.partials
		if err := r.p.SyncNow(t.Context()); err != nil {
			t.Fatalf("%s: the repair: %v", what, err)
		}
		if r.s.partials != partials {
			t.Errorf("%s: the sync after the error was partial", what)
		}
		if got := r.h.Dump(); got != wantIPVS {
			t.Fatalf("%s: IPVS not repaired (-want +got):\n-%s\n+%s", what, wantIPVS, got)
		}
		if got := tablesText(r.nft); got != wantNFT {
			t.Fatalf("%s: companion rules not repaired (-want +got):\n-%s\n+%s", what, wantNFT, got)
		}
		// And the one after is partial again, and changes nothing.
		ops := r.h.Ops()
		if err := r.p.SyncNow(t.Context()); err != nil {
			t.Fatal(err)
		}
		if r.h.Ops() != ops || r.s.partials != partials+1 {
			t.Errorf("%s: the sync after the repair made %d changes, partial %v", what, r.h.Ops()-ops, r.s.partials == partials+1)
		}
	}
	for at := 1; at <= total; at++ {
		r := setup(t)
		r.h.FailAt(at)
		check(t, r, fmt.Sprintf("IPVS fault at op %d", at))
	}
	r := setup(t)
	r.nft.FailOn = func(i int, op nftables.Op) error {
		r.nft.FailOn = nil
		return fmt.Errorf("injected")
	}
	check(t, r, "companion rules fault")
}
