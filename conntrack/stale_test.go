package conntrack

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

func addrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// flow is a flow client → frontend translated to endpoint (reply to the
// client).
func flow(proto Proto, client, frontend, endpoint string) Flow {
	c, e := addrPort(client), addrPort(endpoint)
	return Flow{Proto: proto, Orig: Tuple{Src: c, Dst: addrPort(frontend)}, Reply: Tuple{Src: e, Dst: c}}
}

var testNode = proxykit.Node{Name: "n1", Zone: "z1", Addresses: []netip.Addr{
	netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("2001:db8::1")}}

// svc returns a UDP service "ns/dns" with port dns 53 → 5353, modified.
func svc(mod ...func(*servicemap.Service)) *servicemap.Service {
	s := &servicemap.Service{Namespace: "ns", Name: "dns",
		ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10"), netip.MustParseAddr("fd00:96::a")},
		Ports:      []servicemap.Port{{Name: "dns", Protocol: servicemap.UDP, Port: 53}}}
	for _, m := range mod {
		m(s)
	}
	return s
}

// slice returns the service's slice with eps, on port 5353.
func slice(eps ...endpoints.Endpoint) *endpoints.Slice {
	return &endpoints.Slice{Namespace: "ns", Service: "dns", Name: "dns-1",
		Ports:     []endpoints.Port{{Name: "dns", Protocol: servicemap.UDP, Port: 5353}},
		Endpoints: eps}
}

func ready(addr, node string) endpoints.Endpoint {
	return endpoints.Endpoint{Addr: netip.MustParseAddr(addr), Ready: true, Serving: true, NodeName: node}
}

func snapshot(t testing.TB, svcs []*servicemap.Service, slices ...*endpoints.Slice) *proxykit.Snapshot {
	t.Helper()
	snap, err := proxykit.NewSnapshot(testNode, svcs, slices)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// SEMANTICS §9, bullet by bullet, on the pure computation.
func TestStaleFlows(t *testing.T) {
	const (
		client = "192.0.2.100:40000"
		vip    = "10.96.0.10:53"
		epA    = "10.244.1.10:5353" // on n1
		epC    = "10.244.2.10:5353" // on n2
		gone   = "10.244.9.9:5353"
	)
	nodePort := func(s *servicemap.Service) { s.Type = servicemap.NodePort; s.Ports[0].NodePort = 30053 }
	external := func(s *servicemap.Service) {
		s.Type = servicemap.LoadBalancer
		s.ExternalIPs = []netip.Addr{netip.MustParseAddr("203.0.113.10")}
		s.LoadBalancerIPs = []netip.Addr{netip.MustParseAddr("203.0.113.20")}
	}
	etpLocal := func(s *servicemap.Service) { s.ExternalTrafficPolicy = servicemap.Local }
	tests := []struct {
		name  string
		cfg   Config
		svc   *servicemap.Service
		eps   []endpoints.Endpoint
		flow  Flow
		stale bool
	}{
		// Bullet 1: original destination is a frontend, reply source not
		// an endpoint in use.
		{name: "ClusterIP, endpoint in use", svc: svc(), eps: []endpoints.Endpoint{ready("10.244.2.10", "n2")},
			flow: flow(UDP, client, vip, epC)},
		{name: "ClusterIP, endpoint gone", svc: svc(), eps: []endpoints.Endpoint{ready("10.244.2.10", "n2")},
			flow: flow(UDP, client, vip, gone), stale: true},
		{name: "ClusterIP, endpoint's port changed", svc: svc(), eps: []endpoints.Endpoint{ready("10.244.2.10", "n2")},
			flow: flow(UDP, client, vip, "10.244.2.10:53"), stale: true},
		{name: "ClusterIP, endpoint not ready", svc: svc(),
			eps:  []endpoints.Endpoint{ready("10.244.1.10", "n1"), {Addr: netip.MustParseAddr("10.244.2.10"), NodeName: "n2"}},
			flow: flow(UDP, client, vip, epC), stale: true},
		{name: "ClusterIP, serving-terminating fallback in use", svc: svc(),
			eps:  []endpoints.Endpoint{{Addr: netip.MustParseAddr("10.244.2.10"), Serving: true, Terminating: true, NodeName: "n2"}},
			flow: flow(UDP, client, vip, epC)},
		{name: "IPv6 ClusterIP, endpoint gone", svc: svc(), eps: []endpoints.Endpoint{ready("fd00:244:2::10", "n2")},
			flow: flow(UDP, "[2001:db8:c::100]:40000", "[fd00:96::a]:53", "[fd00:244:9::9]:5353"), stale: true},
		{name: "IPv6 ClusterIP, endpoint in use", svc: svc(), eps: []endpoints.Endpoint{ready("fd00:244:2::10", "n2")},
			flow: flow(UDP, "[2001:db8:c::100]:40000", "[fd00:96::a]:53", "[fd00:244:2::10]:5353")},
		{name: "ExternalIP, endpoint gone", svc: svc(external), eps: []endpoints.Endpoint{ready("10.244.2.10", "n2")},
			flow: flow(UDP, client, "203.0.113.10:53", gone), stale: true},
		{name: "LB IP, endpoint gone", svc: svc(external), eps: []endpoints.Endpoint{ready("10.244.2.10", "n2")},
			flow: flow(UDP, client, "203.0.113.20:53", gone), stale: true},
		{name: "LB IP, endpoint in use", svc: svc(external), eps: []endpoints.Endpoint{ready("10.244.2.10", "n2")},
			flow: flow(UDP, client, "203.0.113.20:53", epC)},
		{name: "NodePort on a node address, endpoint gone", svc: svc(nodePort), eps: []endpoints.Endpoint{ready("10.244.2.10", "n2")},
			flow: flow(UDP, client, "198.51.100.1:30053", gone), stale: true},
		{name: "NodePort on a node address, endpoint in use", svc: svc(nodePort), eps: []endpoints.Endpoint{ready("10.244.2.10", "n2")},
			flow: flow(UDP, client, "192.0.2.1:30053", epC)},
		{name: "NodePort on an IPv6 node address, endpoint gone", svc: svc(nodePort), eps: []endpoints.Endpoint{ready("fd00:244:2::10", "n2")},
			flow: flow(UDP, "[2001:db8::100]:4000", "[2001:db8::1]:30053", "[fd00:244:9::9]:5353"), stale: true},
		{name: "NodePort outside NodePortAddresses", svc: svc(nodePort), eps: []endpoints.Endpoint{ready("10.244.2.10", "n2")},
			cfg:  Config{NodePortAddresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
			flow: flow(UDP, client, "198.51.100.1:30053", gone)},
		{name: "NodePort inside NodePortAddresses", svc: svc(nodePort), eps: []endpoints.Endpoint{ready("10.244.2.10", "n2")},
			cfg:  Config{NodePortAddresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
			flow: flow(UDP, client, "192.0.2.1:30053", gone), stale: true},
		// eTP Local: outside clients use the Local set, the node and its
		// pods the Cluster set; a flow in either stays.
		{name: "eTP Local, NodePort to a local endpoint", svc: svc(nodePort, etpLocal),
			eps:  []endpoints.Endpoint{ready("10.244.1.10", "n1"), ready("10.244.2.10", "n2")},
			flow: flow(UDP, client, "192.0.2.1:30053", epA)},
		{name: "eTP Local, NodePort to a remote endpoint (Cluster set, node's own traffic)", svc: svc(nodePort, etpLocal),
			eps:  []endpoints.Endpoint{ready("10.244.1.10", "n1"), ready("10.244.2.10", "n2")},
			flow: flow(UDP, client, "192.0.2.1:30053", epC)},
		{name: "iTP Local, ClusterIP to a remote endpoint", svc: svc(func(s *servicemap.Service) { s.InternalTrafficPolicy = servicemap.Local }),
			eps:  []endpoints.Endpoint{ready("10.244.1.10", "n1"), ready("10.244.2.10", "n2")},
			flow: flow(UDP, client, vip, epC), stale: true},
		// Bullet 2: flows made while the port had no endpoints.
		{name: "untranslated flow, port has an endpoint now", svc: svc(), eps: []endpoints.Endpoint{ready("10.244.2.10", "n2")},
			flow: flow(UDP, client, vip, vip), stale: true},
		{name: "untranslated flow, port still without endpoints", svc: svc(), flow: flow(UDP, client, vip, vip), stale: true},
		// Bullet 3: other protocols and addresses are never touched.
		{name: "TCP to the ClusterIP and port", svc: svc(), eps: []endpoints.Endpoint{ready("10.244.2.10", "n2")},
			flow: flow(TCP, client, vip, gone)},
		{name: "SCTP, not configured", svc: svc(), eps: []endpoints.Endpoint{ready("10.244.2.10", "n2")},
			flow: flow(SCTP, client, vip, gone)},
		{name: "UDP to the ClusterIP, other port", svc: svc(), eps: []endpoints.Endpoint{ready("10.244.2.10", "n2")},
			flow: flow(UDP, client, "10.96.0.10:54", gone)},
		{name: "UDP to another address", svc: svc(), eps: []endpoints.Endpoint{ready("10.244.2.10", "n2")},
			flow: flow(UDP, client, "10.96.0.11:53", gone)},
		{name: "UDP to a pod directly", svc: svc(), eps: []endpoints.Endpoint{ready("10.244.2.10", "n2")},
			flow: flow(UDP, client, epC, epC)},
		{name: "NodePort on an address that is not the node's", svc: svc(nodePort), eps: []endpoints.Endpoint{ready("10.244.2.10", "n2")},
			flow: flow(UDP, client, "198.51.100.9:30053", gone)},
		{name: "node address, not the NodePort", svc: svc(nodePort), eps: []endpoints.Endpoint{ready("10.244.2.10", "n2")},
			flow: flow(UDP, client, "192.0.2.1:53", gone)},
		{name: "TCP service", svc: svc(func(s *servicemap.Service) { s.Ports[0].Protocol = servicemap.TCP }),
			flow: flow(TCP, client, vip, gone)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sl := slice(tt.eps...)
			if tt.svc.Ports[0].Protocol == servicemap.TCP {
				sl.Ports[0].Protocol = servicemap.TCP
			}
			snap := snapshot(t, []*servicemap.Service{tt.svc}, sl)
			got := len(StaleFlows(snap, tt.cfg, []Flow{tt.flow})) == 1
			if got != tt.stale {
				t.Errorf("stale = %v, want %v for %v", got, tt.stale, tt.flow)
			}
		})
	}
}

// SCTP ports are reconciled when configured.
func TestStaleFlowsSCTP(t *testing.T) {
	s := svc(func(s *servicemap.Service) { s.Ports[0].Protocol = servicemap.SCTP })
	sl := slice(ready("10.244.2.10", "n2"))
	sl.Ports[0].Protocol = servicemap.SCTP
	snap := snapshot(t, []*servicemap.Service{s}, sl)
	f := flow(SCTP, "192.0.2.100:4000", "10.96.0.10:53", "10.244.9.9:5353")
	if n := len(StaleFlows(snap, Config{}, []Flow{f})); n != 0 {
		t.Errorf("SCTP off: %d stale", n)
	}
	if n := len(StaleFlows(snap, Config{SCTP: true}, []Flow{f})); n != 1 {
		t.Errorf("SCTP on: %d stale, want 1", n)
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{NodePortAddresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
	if err := good.Validate(); err != nil {
		t.Error(err)
	}
	bad := Config{NodePortAddresses: []netip.Prefix{{}, netip.MustParsePrefix("192.0.2.1/24")}}
	err := bad.Validate()
	if err == nil {
		t.Fatal("invalid prefixes accepted")
	}
	for _, want := range []string{"NodePortAddresses[0]", "NodePortAddresses[1]", "192.0.2.0/24"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := NewSyncer(bad, WithConn(NewFake())); err == nil {
		t.Error("NewSyncer accepted an invalid Config")
	}
}
