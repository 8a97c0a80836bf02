//go:build linux

package conntrack

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/internal/netnstest"
	"github.com/proxykit/proxykit/nftables"
	"github.com/proxykit/proxykit/servicemap"
)

// The real-kernel tests program node1 of a netnstest topology with the
// nftables backend, sequenced with this package's Syncer, through a
// proxykit.Proxy: exactly what a user builds. Each runs twice, with and
// without the conntrack Syncer: without it, the same step must fail, which
// proves that the test can.

// Addresses and ports of the tests' service.
var (
	vip        = netip.MustParseAddr("10.96.0.53")
	vipPort    = uint16(53)
	nodePort   = uint16(30053)
	clientPort = uint16(40053) // the client's fixed source port
	goneEP     = netip.MustParseAddr("10.244.9.9")
)

// localPodCIDRs are node1's pod CIDRs in the topology.
var localPodCIDRs = []netip.Prefix{netip.MustParsePrefix("10.244.1.0/24"), netip.MustParsePrefix("fd00:244:1::/64")}

// rig is a topology whose node1 a Proxy programs.
type rig struct {
	tp *netnstest.Topology
	p  *proxykit.Proxy

	mu      sync.Mutex
	results []Result
}

// newRig builds a topology and a Proxy for node1 that syncs the nftables
// backend and, with cleanup, this package's Syncer after it.
func newRig(t *testing.T, cleanup bool) *rig {
	t.Helper()
	r := &rig{tp: netnstest.New(t)}
	r.p = proxykit.New(proxykit.Node{Name: "node1", Addresses: r.tp.Node1Addrs}, r.syncer(t, cleanup))
	return r
}

// syncer returns a fresh rules backend, followed by a fresh conntrack
// Syncer when cleanup is set: what a (re)started program makes.
func (r *rig) syncer(t *testing.T, cleanup bool) proxykit.Syncer {
	t.Helper()
	nconn, err := nftables.NewConn(r.tp.Node1.Fd())
	if err != nil {
		t.Fatal(err)
	}
	rules, err := nftables.NewSyncer(nftables.Config{ClusterCIDRs: r.tp.ClusterCIDRs, LocalPodCIDRs: localPodCIDRs}, nftables.WithConn(nconn))
	if err != nil {
		t.Fatal(err)
	}
	if !cleanup {
		return rules
	}
	ct, err := NewSyncer(Config{}, WithConn(kernelConn(t, r.tp.Node1)), WithObserver(func(res Result) {
		r.mu.Lock()
		r.results = append(r.results, res)
		r.mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	return proxykit.Sequence(rules, ct)
}

// sync applies the pending changes; it returns the results of the
// reconciles it ran (none when cleanup was not needed).
func (r *rig) sync(t *testing.T) []Result {
	t.Helper()
	r.mu.Lock()
	n := len(r.results)
	r.mu.Unlock()
	if err := r.p.SyncNow(t.Context()); err != nil {
		t.Fatalf("sync: %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Result(nil), r.results[n:]...)
}

// probe sends one datagram from the client's fixed source port.
func (r *rig) probe(t *testing.T, dst netip.AddrPort, timeout time.Duration) netnstest.Result {
	t.Helper()
	return r.tp.Client.Probe(t.Context(), "udp", dst, netnstest.ProbeOptions{LocalPort: clientPort, Timeout: timeout})
}

// reach probes dst until a pod answers (the topology may need a moment)
// and returns the pod's name.
func (r *rig) reach(t *testing.T, dst netip.AddrPort) string {
	t.Helper()
	var res netnstest.Result
	for range 10 {
		if res = r.probe(t, dst, 500*time.Millisecond); res.Outcome == netnstest.Reply {
			return res.Server
		}
	}
	t.Fatalf("client -> %v: %v", dst, res)
	return ""
}

// podDown takes a pod's veth down on its node: the pod is gone.
func (r *rig) podDown(t *testing.T, name string) {
	t.Helper()
	p := r.tp.Pod(name)
	err := r.tp.Node2.Do(func() error {
		l, err := netlink.LinkByName(p.HostLink)
		if err != nil {
			return err
		}
		return netlink.LinkSetDown(l)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// dnsService is a UDP service on vip:53 (and nodePort, for NodePort).
func dnsService(typ servicemap.Type) *servicemap.Service {
	s := &servicemap.Service{Namespace: "ns", Name: "dns", Type: typ, ClusterIPs: []netip.Addr{vip},
		Ports: []servicemap.Port{{Name: "dns", Protocol: servicemap.UDP, Port: vipPort}}}
	if typ == servicemap.NodePort {
		s.Ports[0].NodePort = nodePort
	}
	return s
}

// dnsSlice is the service's endpoint slice with the named pods, on the
// responders' UDP port.
func (r *rig) dnsSlice(pods ...string) *endpoints.Slice {
	s := &endpoints.Slice{Namespace: "ns", Service: "dns", Name: "dns-1",
		Ports:     []endpoints.Port{{Name: "dns", Protocol: servicemap.UDP, Port: netnstest.UDPPort}},
		Endpoints: []endpoints.Endpoint{}}
	for _, name := range pods {
		p := r.tp.Pod(name)
		s.Endpoints = append(s.Endpoints, endpoints.Endpoint{Addr: p.V4, Ready: true, Serving: true, NodeName: p.Node})
	}
	return s
}

// probeTimeout is how long the decisive probe waits: a reply must come
// within 2 s; a control's loss is called after 300 ms (TESTING.md).
func probeTimeout(cleanup bool) time.Duration {
	if cleanup {
		return 2 * time.Second
	}
	return 300 * time.Millisecond
}

// modes runs fn with cleanup and, as the control, without.
func modes(t *testing.T, fn func(t *testing.T, cleanup bool)) {
	t.Run("cleanup", func(t *testing.T) { t.Parallel(); fn(t, true) })
	t.Run("control-no-cleanup", func(t *testing.T) { t.Parallel(); fn(t, false) })
}

// SEMANTICS §9: a UDP client with a fixed source port talks to a service
// whose endpoint is then replaced; its next datagram must reach the new
// endpoint. Without cleanup it keeps going to the old, gone, endpoint and
// is lost. Through the ClusterIP and through a NodePort.
func TestEndpointReplaced(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  servicemap.Type
		dst  func(*netnstest.Topology) netip.AddrPort
	}{
		{"ClusterIP", servicemap.ClusterIP, func(*netnstest.Topology) netip.AddrPort { return netip.AddrPortFrom(vip, vipPort) }},
		{"NodePort", servicemap.NodePort, func(tp *netnstest.Topology) netip.AddrPort {
			return netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), nodePort) // node1 on the client's link
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			modes(t, func(t *testing.T, cleanup bool) {
				r := newRig(t, cleanup)
				dst := tc.dst(r.tp)
				must(t, r.p.OnServiceUpdate(nil, dnsService(tc.typ)))
				must(t, r.p.OnSliceUpdate(r.dnsSlice("pod-c")))
				r.sync(t)
				if got := r.reach(t, dst); got != "pod-c" {
					t.Fatalf("before: answered by %s, want pod-c", got)
				}
				r.podDown(t, "pod-c") // the pod is deleted …
				must(t, r.p.OnSliceUpdate(r.dnsSlice("pod-d")))
				res := r.sync(t) // … and replaced
				got := r.probe(t, dst, probeTimeout(cleanup))
				if !cleanup {
					if got.Outcome == netnstest.Reply {
						t.Fatalf("control: without cleanup the datagram still reached %s; the test cannot fail", got.Server)
					}
					t.Logf("control: without cleanup the datagram is lost: %v", got)
					return
				}
				if got.Outcome != netnstest.Reply || got.Server != "pod-d" {
					t.Errorf("after the endpoint change: %v, want a reply from pod-d", got)
				}
				if len(res) != 1 || res[0].Deleted != 1 || res[0].Full {
					t.Errorf("reconciles of the endpoint change: %+v, want one partial deleting 1 flow", res)
				}
			})
		})
	}
}

// SEMANTICS §9 bullet 2: a flow made while the port had no endpoints (it
// was not translated) must go when the port gains one, so that a client
// that kept sending from the same source port recovers. The flow is made
// by real datagrams sent before the service had rules: node1 routes the
// service range upstream (to node2, which drops it), as a node's default
// route would.
func TestNoEndpointsThenOne(t *testing.T) {
	modes(t, func(t *testing.T, cleanup bool) {
		r := newRig(t, cleanup)
		routeUpstream(t, r.tp)
		dst := netip.AddrPortFrom(vip, vipPort)
		r.sync(t) // no services yet
		if got := r.probe(t, dst, 300*time.Millisecond); got.Outcome == netnstest.Reply {
			t.Fatalf("before the service: %v", got)
		}
		if n := countBy(tiDump(t, r.tp.Node1), untranslatedTo(dst)); n != 1 {
			t.Fatalf("%d untranslated flows to %v, want 1", n, dst)
		}
		must(t, r.p.OnServiceUpdate(nil, dnsService(servicemap.ClusterIP)))
		must(t, r.p.OnSliceUpdate(r.dnsSlice()))
		if res := r.sync(t); len(res) != 0 {
			t.Errorf("a port without endpoints needs no cleanup, got reconciles %+v", res)
		}
		if got := r.probe(t, dst, 300*time.Millisecond); got.Outcome == netnstest.Reply {
			t.Fatalf("without endpoints: %v", got)
		}
		must(t, r.p.OnSliceUpdate(r.dnsSlice("pod-c")))
		res := r.sync(t)
		got := r.probe(t, dst, probeTimeout(cleanup))
		if !cleanup {
			if got.Outcome == netnstest.Reply {
				t.Fatalf("control: without cleanup the client recovered (%v); the test cannot fail", got)
			}
			t.Logf("control: without cleanup the client does not recover: %v", got)
			return
		}
		if got.Outcome != netnstest.Reply || got.Server != "pod-c" {
			t.Errorf("after the first endpoint: %v, want a reply from pod-c", got)
		}
		if len(res) != 1 || res[0].Deleted != 1 {
			t.Errorf("reconciles: %+v, want one deleting the untranslated flow", res)
		}
	})
}

// untranslatedTo matches UDP flows to dst that were not translated.
func untranslatedTo(dst netip.AddrPort) func(Flow) bool {
	return func(f Flow) bool { return f.Proto == UDP && f.Orig.Dst == dst && f.Reply.Src == dst }
}

// routeUpstream makes node1 route the service range 10.96.0.0/16 to node2,
// and node2 drop it.
func routeUpstream(t *testing.T, tp *netnstest.Topology) {
	t.Helper()
	_, svcNet, _ := net.ParseCIDR("10.96.0.0/16")
	must(t, tp.Node1.Do(func() error {
		return netlink.RouteAdd(&netlink.Route{Dst: svcNet, Gw: net.ParseIP("198.51.100.2")})
	}))
	must(t, tp.Node2.Do(func() error {
		return netlink.RouteAdd(&netlink.Route{Dst: svcNet, Type: 6 /* RTN_BLACKHOLE */})
	}))
}
