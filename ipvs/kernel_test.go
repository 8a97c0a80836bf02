//go:build linux

package ipvs_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/internal/netnstest"
	"github.com/proxykit/proxykit/ipvs"
	"github.com/proxykit/proxykit/servicemap"
)

var vip = netip.MustParseAddr("10.96.0.10")

// kernelTopology builds a topology, a Syncer on node1 and a Handle to
// read node1's IPVS back.
func kernelTopology(t *testing.T, cfg ipvs.Config) (*netnstest.Topology, *ipvs.Syncer, ipvs.Handle) {
	t.Helper()
	requireKernel(t)
	netnstest.Require(t)
	tp := netnstest.New(t)
	cfg.ClusterCIDRs = tp.ClusterCIDRs
	s := kernelSyncer(t, tp, cfg)
	h, err := ipvs.NewHandle(tp.Node1.Fd())
	if err != nil {
		t.Fatal(err)
	}
	return tp, s, h
}

// webService is a ClusterIP service on vip:80 with the given scheduler,
// endpoints on the pods' TCP responders with weights (0 means 1).
func webService(sched string, pods map[string]uint16, tp *netnstest.Topology) ([]*servicemap.Service, []*endpoints.Slice) {
	svc := &servicemap.Service{Namespace: "ns", Name: "web", ClusterIPs: []netip.Addr{vip},
		Ports: []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80}}, Scheduler: sched}
	sl := &endpoints.Slice{Namespace: "ns", Service: "web", Name: "web-1",
		Ports: []endpoints.Port{{Name: "http", Protocol: servicemap.TCP, Port: netnstest.TCPPort}}}
	for _, p := range tp.Pods {
		if w, ok := pods[p.Name]; ok {
			sl.Endpoints = append(sl.Endpoints, endpoints.Endpoint{Addr: p.V4, Ready: true, Serving: true, NodeName: p.Node, Weight: w})
		}
	}
	return []*servicemap.Service{svc}, []*endpoints.Slice{sl}
}

// syncWeb syncs webService(sched, pods).
func syncWeb(t *testing.T, s *ipvs.Syncer, tp *netnstest.Topology, sched string, pods map[string]uint16) {
	t.Helper()
	svcs, sls := webService(sched, pods, tp)
	snap, err := proxykit.NewSnapshot(proxykit.Node{Name: "node1", Addresses: tp.Node1Addrs}, svcs, sls)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(t.Context(), snap); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// counts probes the service n times from the client and counts the pods
// that answered.
func counts(t *testing.T, tp *netnstest.Topology, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	dst := netip.AddrPortFrom(vip, 80)
	for range n {
		r := tp.Client.Probe(t.Context(), "tcp", dst, netnstest.ProbeOptions{})
		if r.Outcome != netnstest.Reply {
			t.Fatalf("probe %s: %v", dst, r)
		}
		got[r.Server]++
	}
	return got
}

func realsOf(t *testing.T, h ipvs.Handle) map[string]ipvs.RealStats {
	t.Helper()
	rs, err := h.Reals(t.Context(), ipvs.Key{Addr: vip, Proto: servicemap.TCP, Port: 80})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]ipvs.RealStats{}
	for _, r := range rs {
		out[r.Addr.String()] = r
	}
	return out
}

// An established TCP connection keeps working after its endpoint is
// removed, new connections avoid the quiesced server, and the real server
// is deleted once the connection has closed (SEMANTICS §10).
func TestKernelGracefulTermination(t *testing.T) {
	tp, s, h := kernelTopology(t, ipvs.Config{})
	syncWeb(t, s, tp, "", map[string]uint16{"pod-a": 0, "pod-c": 0})
	ctx := t.Context()
	c, err := tp.Client.Dial(ctx, netip.AddrPortFrom(vip, 80))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first := netnstest.Exchange(ctx, c, 0)
	if first.Outcome != netnstest.Reply {
		t.Fatalf("first exchange: %v", first)
	}
	gone, stays := first.Server, map[string]string{"pod-a": "pod-c", "pod-c": "pod-a"}[first.Server]
	syncWeb(t, s, tp, "", map[string]uint16{stays: 0})

	goneAddr := tp.Pod(gone).V4.String()
	if r, ok := realsOf(t, h)[goneAddr]; !ok || r.Weight != 0 || r.ActiveConns != 1 {
		t.Fatalf("real server %s of the removed endpoint: %+v (present %v), want weight 0 and 1 active connection", goneAddr, r, ok)
	}
	if r := netnstest.Exchange(ctx, c, 0); r.Outcome != netnstest.Reply || r.Server != gone {
		t.Fatalf("established connection after the removal: %v, want a reply from %s", r, gone)
	}
	if got := counts(t, tp, 20); got[stays] != 20 {
		t.Fatalf("new connections: %v, want all 20 on %s", got, stays)
	}
	// Close with a RST: IPVS then forgets the connection after its CLOSE
	// timeout (10 s) rather than TIME_WAIT's 2 minutes.
	_ = c.(*net.TCPConn).SetLinger(0)
	c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		syncWeb(t, s, tp, "", map[string]uint16{stays: 0})
		if _, ok := realsOf(t, h)[goneAddr]; !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("real server %s still there 30 s after its connection closed: %+v", goneAddr, realsOf(t, h)[goneAddr])
		}
		time.Sleep(time.Second)
	}
	if s.Pending() != 0 {
		t.Errorf("Pending = %d after the deletion", s.Pending())
	}
}

// sh gives a client the same backend, connection after connection.
func TestKernelSchedulerSH(t *testing.T) {
	tp, s, _ := kernelTopology(t, ipvs.Config{})
	syncWeb(t, s, tp, "sh", map[string]uint16{"pod-a": 0, "pod-b": 0, "pod-c": 0, "pod-d": 0})
	if got := counts(t, tp, 40); len(got) != 1 {
		t.Errorf("sh spread one client over %v, want one backend", got)
	}
}

// wrr follows the weights: 1:3 over 400 connections fits a chi-square
// test at p < 1e-6.
func TestKernelSchedulerWRR(t *testing.T) {
	tp, s, _ := kernelTopology(t, ipvs.Config{})
	syncWeb(t, s, tp, "wrr", map[string]uint16{"pod-a": 1, "pod-c": 3})
	const n = 400
	got := counts(t, tp, n)
	chi2 := 0.0
	for pod, p := range map[string]float64{"pod-a": 0.25, "pod-c": 0.75} {
		d := float64(got[pod]) - p*n
		chi2 += d * d / (p * n)
	}
	if chi2 > 23.9 { // df 1, p < 1e-6
		t.Errorf("wrr 1:3 over %d connections: %v, chi-square %.1f > 23.9", n, got, chi2)
	}
}

// The kernel accepts every scheduler and flag the backend offers.
func TestKernelSchedulers(t *testing.T) {
	requireKernel(t)
	netnstest.Require(t)
	tp := netnstest.New(t)
	h, err := ipvs.NewHandle(tp.Node1.Fd())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, sched := range ipvs.Schedulers {
		v := &ipvs.VirtualServer{Key: ipvs.Key{Addr: vip, Proto: servicemap.TCP, Port: uint16(1000 + i)}, Scheduler: sched}
		if sched == "sh" || sched == "mh" {
			v.Flags = ipvs.SchedulerFlags[sched+"-fallback"] | ipvs.SchedulerFlags[sched+"-port"]
		}
		if err := h.AddService(ctx, v); err != nil {
			t.Errorf("scheduler %s: %v", sched, err)
			continue
		}
		got, err := h.Service(ctx, v.Key)
		if err != nil || got.Scheduler != sched || got.Flags != v.Flags {
			t.Errorf("scheduler %s: read back %+v, %v; want flags %#x", sched, got, err, v.Flags)
		}
	}
}
