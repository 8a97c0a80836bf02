package proxykit

import (
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/proxykit/proxykit/affinity"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// The node of the scenarios: two IPv4 addresses and one IPv6 address.
// Endpoints on "n1" are local, on "n2" remote.
var explainNode = Node{
	Name: "n1", Zone: "z1",
	Addresses: []netip.Addr{ip("192.168.0.1"), ip("172.16.0.1"), ip("fd00::1")},
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func ips(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = ip(s)
	}
	return out
}

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// svc returns Service ns/name with the ClusterIPs given and one port
// "http" 80/TCP, changed by the options.
func svc(name string, clusterIPs []netip.Addr, opts ...func(*servicemap.Service)) *servicemap.Service {
	s := &servicemap.Service{
		Namespace: "ns", Name: name, ClusterIPs: clusterIPs,
		Ports: []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80}},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func ports(ps ...servicemap.Port) func(*servicemap.Service) {
	return func(s *servicemap.Service) { s.Ports = ps }
}

// nodePort makes the service a NodePort service with np on its first port.
func nodePort(np uint16) func(*servicemap.Service) {
	return func(s *servicemap.Service) { s.Type, s.Ports[0].NodePort = servicemap.NodePort, np }
}

// loadBalancer makes the service a LoadBalancer with NodePort np.
func loadBalancer(np uint16, lbIPs ...string) func(*servicemap.Service) {
	return func(s *servicemap.Service) {
		s.Type, s.Ports[0].NodePort, s.LoadBalancerIPs = servicemap.LoadBalancer, np, ips(lbIPs...)
	}
}

func sourceRanges(rs ...string) func(*servicemap.Service) {
	return func(s *servicemap.Service) { s.LoadBalancerSourceRanges = prefixes(rs...) }
}

func externalIPs(as ...string) func(*servicemap.Service) {
	return func(s *servicemap.Service) { s.ExternalIPs = ips(as...) }
}

func externalLocal(s *servicemap.Service) { s.ExternalTrafficPolicy = servicemap.Local }
func internalLocal(s *servicemap.Service) { s.InternalTrafficPolicy = servicemap.Local }

func clientIP(timeout time.Duration) func(*servicemap.Service) {
	return func(s *servicemap.Service) { s.Affinity = affinity.Config{ClientIP: true, Timeout: timeout} }
}

// slice returns a slice of ns/service with the port "http" 8080/TCP.
func slice(service string, eps ...endpoints.Endpoint) *endpoints.Slice {
	return sliceWith(service, []endpoints.Port{{Name: "http", Protocol: servicemap.TCP, Port: 8080}}, eps...)
}

func sliceWith(service string, ps []endpoints.Port, eps ...endpoints.Endpoint) *endpoints.Slice {
	name := service + "-v4"
	if len(eps) > 0 && eps[0].Addr.Is6() {
		name = service + "-v6"
	}
	return &endpoints.Slice{Namespace: "ns", Service: service, Name: name, Ports: ps, Endpoints: eps}
}

func ready(addr, node string) endpoints.Endpoint {
	return endpoints.Endpoint{Addr: ip(addr), Ready: true, Serving: true, NodeName: node, Zone: "z1"}
}

func terminating(addr, node string) endpoints.Endpoint {
	return endpoints.Endpoint{Addr: ip(addr), Serving: true, Terminating: true, NodeName: node, Zone: "z1"}
}

func weighted(e endpoints.Endpoint, w uint16) endpoints.Endpoint { e.Weight = w; return e }

func tcp(src, dst string, port uint16, from Origin) Packet {
	return Packet{Src: ip(src), Dst: ip(dst), Port: port, From: from}
}

func udp(src, dst string, port uint16, from Origin) Packet {
	p := tcp(src, dst, port, from)
	p.Protocol = servicemap.UDP
	return p
}

func mustSnapshot(t testing.TB, services []*servicemap.Service, slices []*endpoints.Slice) *Snapshot {
	t.Helper()
	snap, err := NewSnapshot(explainNode, services, slices)
	if err != nil {
		t.Fatalf("NewSnapshot: %v", err)
	}
	return snap
}

// Services and slices shared by several scenarios.
var (
	webSvc   = svc("web", ips("10.96.0.10"))
	webSlice = slice("web", ready("10.1.0.5", "n1"), ready("10.1.1.6", "n2"))

	// npLocal has NodePort 30080 and external policy Local.
	npLocal = svc("np", ips("10.96.0.20"), nodePort(30080), externalLocal)
	// lbSvc has LB IP 198.51.100.10, source range 203.0.113.0/24 and a
	// range containing the node address 192.168.0.1.
	lbSvc   = svc("lb", ips("10.96.0.30"), loadBalancer(30090, "198.51.100.10"), sourceRanges("203.0.113.0/24", "192.168.0.0/24"))
	lbSlice = slice("lb", ready("10.1.0.7", "n1"))
)

// wantNoMatch is the String of a packet that hits no frontend.
const wantNoMatch = "no match\n  why: no service frontend matches"

// scenario is one packet against a snapshot made of services and slices,
// and the String of its expected verdict.
type scenario struct {
	name     string
	services []*servicemap.Service
	slices   []*endpoints.Slice
	policy   Policy
	pkt      Packet
	want     string // Verdict.String()
}

func runScenarios(t *testing.T, tests []scenario) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := mustSnapshot(t, tt.services, tt.slices)
			v := (&Oracle{Policy: tt.policy}).Explain(snap, tt.pkt)
			checkVerdict(t, snap, tt.pkt, v)
			if got := v.String(); got != tt.want {
				t.Errorf("Explain(%v) (-want +got):\n%s", tt.pkt, lineDiff(tt.want, got))
			}
		})
	}
}

// TestExplainClusterIP covers ClusterIP frontends (SEMANTICS §1–§3, §5 unknown ports, §7 hairpin).
func TestExplainClusterIP(t *testing.T) {
	runScenarios(t, []scenario{{
		// §2: internal traffic uses the Cluster set; §3: equal weights.
		// §7: internal traffic from a pod is not masqueraded.
		name:     "ClusterIP TCP from a remote pod",
		services: []*servicemap.Service{webSvc}, slices: []*endpoints.Slice{webSlice},
		pkt: tcp("10.2.0.9", "10.96.0.10", 80, FromRemotePod),
		want: `forward ns/web:http/TCP via ClusterIP (internal, Cluster set), masquerade=false
  why: §2: internal traffic with internal policy Cluster uses the Cluster set
  10.1.0.5:8080 p=0.500000 node=n1
  10.1.1.6:8080 p=0.500000 node=n2`,
	}, {
		// §1: UDP is programmed like TCP.
		name:     "ClusterIP UDP",
		services: []*servicemap.Service{svc("dns", ips("10.96.0.53"), ports(servicemap.Port{Name: "dns", Protocol: servicemap.UDP, Port: 53}))},
		slices: []*endpoints.Slice{sliceWith("dns", []endpoints.Port{{Name: "dns", Protocol: servicemap.UDP, Port: 5353}},
			ready("10.1.0.5", "n1"), ready("10.1.1.6", "n2"), ready("10.1.1.7", "n2"), ready("10.1.1.8", "n2"))},
		pkt: udp("10.2.0.9", "10.96.0.53", 53, FromLocalPod),
		want: `forward ns/dns:dns/UDP via ClusterIP (internal, Cluster set), masquerade=false
  why: §2: internal traffic with internal policy Cluster uses the Cluster set
  10.1.0.5:5353 p=0.250000 node=n1
  10.1.1.6:5353 p=0.250000 node=n2
  10.1.1.7:5353 p=0.250000 node=n2
  10.1.1.8:5353 p=0.250000 node=n2`,
	}, {
		// §5: a port the service does not have, here TCP on a UDP-only
		// service, "may be rejected ... not required": NoMatch with
		// UnknownPort.
		name:     "ClusterIP with the wrong protocol",
		services: []*servicemap.Service{svc("dns", ips("10.96.0.53"), ports(servicemap.Port{Name: "dns", Protocol: servicemap.UDP, Port: 53}))},
		pkt:      tcp("10.2.0.9", "10.96.0.53", 53, FromLocalPod),
		want:     "no match (a ClusterIP, but not a port of its service)\n  why: §5: the destination is a ClusterIP but its service has no such port and protocol: backends may reject it",
	}, {
		// §5: same, on a port number the service does not have.
		name:     "ClusterIP unknown port",
		services: []*servicemap.Service{webSvc}, slices: []*endpoints.Slice{webSlice},
		pkt:  tcp("10.2.0.9", "10.96.0.10", 81, FromRemotePod),
		want: "no match (a ClusterIP, but not a port of its service)\n  why: §5: the destination is a ClusterIP but its service has no such port and protocol: backends may reject it",
	}, {
		name:     "address of no service",
		services: []*servicemap.Service{webSvc}, slices: []*endpoints.Slice{webSlice},
		pkt:  tcp("10.2.0.9", "10.96.0.11", 80, FromRemotePod),
		want: wantNoMatch,
	}, {
		// §3: "picks endpoint i with probability weight_i / sum(weights)".
		name:     "weights 1 and 3",
		services: []*servicemap.Service{webSvc},
		slices:   []*endpoints.Slice{slice("web", weighted(ready("10.1.0.5", "n1"), 1), weighted(ready("10.1.1.6", "n2"), 3))},
		pkt:      tcp("10.2.0.9", "10.96.0.10", 80, FromRemotePod),
		want: `forward ns/web:http/TCP via ClusterIP (internal, Cluster set), masquerade=false
  why: §2: internal traffic with internal policy Cluster uses the Cluster set
  10.1.0.5:8080 p=0.250000 node=n1
  10.1.1.6:8080 p=0.750000 weight=3 node=n2`,
	}, {
		// §3: "Each endpoint has a weight (zero means 1)".
		name:     "zero weight means 1",
		services: []*servicemap.Service{webSvc},
		slices:   []*endpoints.Slice{slice("web", weighted(ready("10.1.0.5", "n1"), 0), weighted(ready("10.1.1.6", "n2"), 2))},
		pkt:      tcp("10.2.0.9", "10.96.0.10", 80, FromRemotePod),
		want: `forward ns/web:http/TCP via ClusterIP (internal, Cluster set), masquerade=false
  why: §2: internal traffic with internal policy Cluster uses the Cluster set
  10.1.0.5:8080 p=0.333333 node=n1
  10.1.1.6:8080 p=0.666667 weight=2 node=n2`,
	}, {
		// A service port is (name, protocol): the second port has its own
		// endpoint port.
		name: "multi-port: second port",
		services: []*servicemap.Service{svc("web", ips("10.96.0.10"), ports(
			servicemap.Port{Name: "http", Port: 80}, servicemap.Port{Name: "metrics", Port: 9090}))},
		slices: []*endpoints.Slice{sliceWith("web", []endpoints.Port{{Name: "http", Port: 8080}, {Name: "metrics", Port: 9100}},
			ready("10.1.0.5", "n1"))},
		pkt: tcp("10.2.0.9", "10.96.0.10", 9090, FromRemotePod),
		want: `forward ns/web:metrics/TCP via ClusterIP (internal, Cluster set), masquerade=false
  why: §2: internal traffic with internal policy Cluster uses the Cluster set
  10.1.0.5:9100 p=1.000000 node=n1`,
	}, {
		// §1: "v4 frontends use only v4 endpoints, v6 frontends only v6
		// endpoints".
		name:     "dual-stack: only IPv6 endpoints, IPv4 rejects",
		services: []*servicemap.Service{svc("web", ips("10.96.0.10", "fd00:96::10"))},
		slices:   []*endpoints.Slice{slice("web", ready("fd00:1::5", "n1"))},
		pkt:      tcp("10.2.0.9", "10.96.0.10", 80, FromRemotePod),
		want:     "reject ns/web:http/TCP via ClusterIP (internal, Cluster set)\n  why: §5: no endpoints in the Cluster set: reject",
	}, {
		name:     "dual-stack: only IPv6 endpoints, IPv6 forwards",
		services: []*servicemap.Service{svc("web", ips("10.96.0.10", "fd00:96::10"))},
		slices:   []*endpoints.Slice{slice("web", ready("fd00:1::5", "n1"))},
		pkt:      tcp("fd00:2::9", "fd00:96::10", 80, FromRemotePod),
		want: `forward ns/web:http/TCP via ClusterIP (internal, Cluster set), masquerade=false
  why: §2: internal traffic with internal policy Cluster uses the Cluster set
  [fd00:1::5]:8080 p=1.000000 node=n1`,
	}, {
		// §1: "Headless services ... get no rules at all" (its endpoints
		// are reached directly).
		name:     "headless service",
		services: []*servicemap.Service{svc("web", nil)},
		slices:   []*endpoints.Slice{webSlice},
		pkt:      tcp("10.2.0.9", "10.1.0.5", 8080, FromRemotePod),
		want:     wantNoMatch,
	}, {
		// §1: "... and ExternalName services get no rules at all."
		name: "ExternalName service",
		services: []*servicemap.Service{svc("web", nil, func(s *servicemap.Service) {
			s.Type = servicemap.ExternalName
		})},
		slices: []*endpoints.Slice{webSlice},
		pkt:    tcp("10.2.0.9", "10.1.0.5", 8080, FromRemotePod),
		want:   wantNoMatch,
	}, {
		// §7: "Hairpin: an endpoint that reaches its own service and lands
		// on itself is masqueraded."
		name:     "hairpin",
		services: []*servicemap.Service{webSvc}, slices: []*endpoints.Slice{webSlice},
		pkt: tcp("10.1.0.5", "10.96.0.10", 80, FromLocalPod),
		want: `forward ns/web:http/TCP via ClusterIP (internal, Cluster set), masquerade=false
  why: §2: internal traffic with internal policy Cluster uses the Cluster set
  10.1.0.5:8080 p=0.500000 node=n1 hairpin: masquerade
  10.1.1.6:8080 p=0.500000 node=n2`,
	}, {
		// §7: "Internal traffic is masqueraded ... always when
		// MasqueradeAll is set."
		name:     "MasqueradeAll",
		services: []*servicemap.Service{webSvc}, slices: []*endpoints.Slice{webSlice},
		policy: Policy{MasqueradeAll: true},
		pkt:    tcp("10.1.0.5", "10.96.0.10", 80, FromLocalPod),
		want: `forward ns/web:http/TCP via ClusterIP (internal, Cluster set), masquerade=true
  why: §2: internal traffic with internal policy Cluster uses the Cluster set
  10.1.0.5:8080 p=0.500000 node=n1
  10.1.1.6:8080 p=0.500000 node=n2`,
	}, {
		// Addresses shared between services: a ClusterIP wins over an
		// ExternalIP (see Oracle.match).
		name: "ClusterIP wins over another service's ExternalIP",
		services: []*servicemap.Service{
			svc("aaa", ips("10.96.0.99"), externalIPs("10.96.0.10")),
			webSvc,
		},
		slices: []*endpoints.Slice{slice("aaa", ready("10.1.1.9", "n2")), webSlice},
		pkt:    tcp("10.2.0.9", "10.96.0.10", 80, FromRemotePod),
		want: `forward ns/web:http/TCP via ClusterIP (internal, Cluster set), masquerade=false
  why: §2: internal traffic with internal policy Cluster uses the Cluster set
  10.1.0.5:8080 p=0.500000 node=n1
  10.1.1.6:8080 p=0.500000 node=n2`,
	}})
}

// TestExplainEndpointSets covers the endpoint set in use and an empty one (SEMANTICS §2, §5).
func TestExplainEndpointSets(t *testing.T) {
	runScenarios(t, []scenario{{
		// §5: "A frontend whose set in use is empty must fail fast: TCP
		// gets a reset".
		name:     "no endpoints: TCP reject",
		services: []*servicemap.Service{webSvc},
		pkt:      tcp("10.2.0.9", "10.96.0.10", 80, FromRemotePod),
		want:     "reject ns/web:http/TCP via ClusterIP (internal, Cluster set)\n  why: §5: no endpoints in the Cluster set: reject",
	}, {
		// §5: "UDP gets ICMP unreachable".
		name:     "no endpoints: UDP reject",
		services: []*servicemap.Service{svc("dns", ips("10.96.0.53"), ports(servicemap.Port{Name: "dns", Protocol: servicemap.UDP, Port: 53}))},
		pkt:      udp("10.2.0.9", "10.96.0.53", 53, FromRemotePod),
		want:     "reject ns/dns:dns/UDP via ClusterIP (internal, Cluster set)\n  why: §5: no endpoints in the Cluster set: reject",
	}, {
		// §2 step 3: no ready endpoint: fall back to serving and
		// terminating ones.
		name:     "terminating fallback",
		services: []*servicemap.Service{webSvc},
		slices:   []*endpoints.Slice{slice("web", terminating("10.1.0.5", "n1"), terminating("10.1.1.6", "n2"))},
		pkt:      tcp("10.2.0.9", "10.96.0.10", 80, FromRemotePod),
		want: `forward ns/web:http/TCP via ClusterIP (internal, Cluster set), masquerade=false
  why: §2: internal traffic with internal policy Cluster uses the Cluster set
  10.1.0.5:8080 p=0.500000 node=n1 terminating (fallback)
  10.1.1.6:8080 p=0.500000 node=n2 terminating (fallback)`,
	}, {
		// §2: the fallback is only for when no endpoint is ready.
		name:     "ready endpoints win over terminating ones",
		services: []*servicemap.Service{webSvc},
		slices:   []*endpoints.Slice{slice("web", terminating("10.1.0.5", "n1"), ready("10.1.1.6", "n2"))},
		pkt:      tcp("10.2.0.9", "10.96.0.10", 80, FromRemotePod),
		want: `forward ns/web:http/TCP via ClusterIP (internal, Cluster set), masquerade=false
  why: §2: internal traffic with internal policy Cluster uses the Cluster set
  10.1.1.6:8080 p=1.000000 node=n2`,
	}, {
		// §2: "Internal traffic uses the Local set when internal policy is
		// Local".
		name:     "internal policy Local",
		services: []*servicemap.Service{svc("web", ips("10.96.0.10"), internalLocal)},
		slices:   []*endpoints.Slice{webSlice},
		pkt:      tcp("10.2.0.9", "10.96.0.10", 80, FromLocalPod),
		want: `forward ns/web:http/TCP via ClusterIP (internal, Local set), masquerade=false
  why: §2: internal traffic with internal policy Local uses the Local set
  10.1.0.5:8080 p=1.000000 node=n1`,
	}, {
		// §5: internal policy Local without local endpoints is a reject,
		// not the drop of the external-policy exception.
		name:     "internal policy Local without local endpoints",
		services: []*servicemap.Service{svc("web", ips("10.96.0.10"), internalLocal)},
		slices:   []*endpoints.Slice{slice("web", ready("10.1.1.6", "n2"))},
		pkt:      tcp("10.2.0.9", "10.96.0.10", 80, FromLocalPod),
		want:     "reject ns/web:http/TCP via ClusterIP (internal, Local set)\n  why: §5: no endpoints in the Local set: reject",
	}})
}

// TestExplainExternalIPAndLoadBalancer covers ExternalIPs and LoadBalancer IPs with source ranges (SEMANTICS §2, §6, §7).
func TestExplainExternalIPAndLoadBalancer(t *testing.T) {
	runScenarios(t, []scenario{{
		// §2: an ExternalIP is external; §7: external policy Cluster is
		// masqueraded.
		name:     "ExternalIP",
		services: []*servicemap.Service{svc("web", ips("10.96.0.10"), externalIPs("203.0.113.10"))},
		slices:   []*endpoints.Slice{webSlice},
		pkt:      tcp("198.51.100.99", "203.0.113.10", 80, FromExternal),
		want: `forward ns/web:http/TCP via ExternalIP (external, Cluster set), masquerade=true
  why: §2: external traffic with external policy Cluster uses the Cluster set
  10.1.0.5:8080 p=0.500000 node=n1
  10.1.1.6:8080 p=0.500000 node=n2`,
	}, {
		// §2: ExternalIPs are carried on Port, not on the NodePort.
		name:     "ExternalIP on another port",
		services: []*servicemap.Service{svc("web", ips("10.96.0.10"), externalIPs("203.0.113.10"))},
		slices:   []*endpoints.Slice{webSlice},
		pkt:      tcp("198.51.100.99", "203.0.113.10", 81, FromExternal),
		want:     wantNoMatch,
	}, {
		// §6: a source inside a range reaches the LB IP.
		name:     "LoadBalancer: source inside a range",
		services: []*servicemap.Service{lbSvc}, slices: []*endpoints.Slice{lbSlice},
		pkt: tcp("203.0.113.7", "198.51.100.10", 80, FromExternal),
		want: `forward ns/lb:http/TCP via LoadBalancer (external, Cluster set), masquerade=true
  why: §2: external traffic with external policy Cluster uses the Cluster set
  10.1.0.7:8080 p=1.000000 node=n1`,
	}, {
		// §6: "traffic to the LoadBalancer IPs from a source outside every
		// range is dropped".
		name:     "LoadBalancer: source outside every range",
		services: []*servicemap.Service{lbSvc}, slices: []*endpoints.Slice{lbSlice},
		pkt:  tcp("198.51.100.99", "198.51.100.10", 80, FromExternal),
		want: "drop ns/lb:http/TCP via LoadBalancer (external)\n  why: §6: the source is outside every LoadBalancer source range: drop",
	}, {
		// §6: the drop comes first, even without endpoints.
		name:     "LoadBalancer: source outside, no endpoints",
		services: []*servicemap.Service{lbSvc},
		pkt:      tcp("198.51.100.99", "198.51.100.10", 80, FromExternal),
		want:     "drop ns/lb:http/TCP via LoadBalancer (external)\n  why: §6: the source is outside every LoadBalancer source range: drop",
	}, {
		// §6: "If one of the ranges contains a node's own address, traffic
		// from the node to the LB IP is allowed", whatever source address
		// the node picks (here its other address, outside the ranges).
		name:     "LoadBalancer: from the node, a range contains a node address",
		services: []*servicemap.Service{lbSvc}, slices: []*endpoints.Slice{lbSlice},
		pkt: tcp("172.16.0.1", "198.51.100.10", 80, FromNode),
		want: `forward ns/lb:http/TCP via LoadBalancer (external, Cluster set), masquerade=true
  why: §2: external traffic with external policy Cluster uses the Cluster set
  10.1.0.7:8080 p=1.000000 node=n1`,
	}, {
		// §6: no range contains a node address: the node is dropped too.
		name:     "LoadBalancer: from the node, no range contains a node address",
		services: []*servicemap.Service{svc("lb", ips("10.96.0.30"), loadBalancer(30090, "198.51.100.10"), sourceRanges("203.0.113.0/24"))},
		slices:   []*endpoints.Slice{lbSlice},
		pkt:      tcp("192.168.0.1", "198.51.100.10", 80, FromNode),
		want:     "drop ns/lb:http/TCP via LoadBalancer (external)\n  why: §6: the source is outside every LoadBalancer source range: drop",
	}, {
		// §6: "ClusterIP and NodePort are not restricted by source ranges."
		name:     "LoadBalancer: ClusterIP of the same service is not restricted",
		services: []*servicemap.Service{lbSvc}, slices: []*endpoints.Slice{lbSlice},
		pkt: tcp("198.51.100.99", "10.96.0.30", 80, FromExternal),
		want: `forward ns/lb:http/TCP via ClusterIP (internal, Cluster set), masquerade=true
  why: §2: internal traffic with internal policy Cluster uses the Cluster set
  10.1.0.7:8080 p=1.000000 node=n1`,
	}, {
		name:     "LoadBalancer: NodePort of the same service is not restricted",
		services: []*servicemap.Service{lbSvc}, slices: []*endpoints.Slice{lbSlice},
		pkt: tcp("198.51.100.99", "192.168.0.1", 30090, FromExternal),
		want: `forward ns/lb:http/TCP via NodePort (external, Cluster set), masquerade=true
  why: §2: external traffic with external policy Cluster uses the Cluster set
  10.1.0.7:8080 p=1.000000 node=n1`,
	}})
}

// TestExplainExternalPolicyLocal covers external policy Local: the Local set, the drop, and the short-circuit of local pods and the node (SEMANTICS §2, §5, §7).
func TestExplainExternalPolicyLocal(t *testing.T) {
	runScenarios(t, []scenario{{
		// §2: "External traffic uses the Local set when external policy is
		// Local"; §7: it keeps the client source address.
		name:     "external policy Local from outside",
		services: []*servicemap.Service{npLocal},
		slices:   []*endpoints.Slice{slice("np", ready("10.1.0.5", "n1"), ready("10.1.1.6", "n2"))},
		pkt:      tcp("198.51.100.99", "192.168.0.1", 30080, FromExternal),
		want: `forward ns/np:http/TCP via NodePort (external, Local set), masquerade=false
  why: §2: external traffic with external policy Local uses the Local set
  10.1.0.5:8080 p=1.000000 node=n1`,
	}, {
		// §2: a pod on another node is not short-circuited.
		name:     "external policy Local from a remote pod",
		services: []*servicemap.Service{npLocal},
		slices:   []*endpoints.Slice{slice("np", ready("10.1.0.5", "n1"), ready("10.1.1.6", "n2"))},
		pkt:      tcp("10.2.1.9", "192.168.0.1", 30080, FromRemotePod),
		want: `forward ns/np:http/TCP via NodePort (external, Local set), masquerade=false
  why: §2: external traffic with external policy Local uses the Local set
  10.1.0.5:8080 p=1.000000 node=n1`,
	}, {
		// §5: "external traffic with external policy Local and no local
		// endpoints is dropped".
		name:     "external policy Local without local endpoints",
		services: []*servicemap.Service{npLocal},
		slices:   []*endpoints.Slice{slice("np", ready("10.1.1.6", "n2"))},
		pkt:      tcp("198.51.100.99", "192.168.0.1", 30080, FromExternal),
		want:     "drop ns/np:http/TCP via NodePort (external, Local set)\n  why: §5: external traffic with external policy Local and no local endpoints: drop",
	}, {
		// §5, literally: dropped even when the service has no endpoints
		// at all.
		name:     "external policy Local without any endpoints",
		services: []*servicemap.Service{npLocal},
		pkt:      tcp("198.51.100.99", "192.168.0.1", 30080, FromExternal),
		want:     "drop ns/np:http/TCP via NodePort (external, Local set)\n  why: §5: external traffic with external policy Local and no local endpoints: drop",
	}, {
		// §2: "traffic to an external frontend that comes from a pod on
		// this node ... is treated as internal traffic to the Cluster set";
		// §7: internal traffic from a pod is not masqueraded.
		name:     "external policy Local short-circuit from a local pod",
		services: []*servicemap.Service{npLocal},
		slices:   []*endpoints.Slice{slice("np", ready("10.1.0.5", "n1"), ready("10.1.1.6", "n2"))},
		pkt:      tcp("10.1.0.9", "192.168.0.1", 30080, FromLocalPod),
		want: `forward ns/np:http/TCP via NodePort (external frontend treated as internal, Cluster set), masquerade=false
  why: §2: external policy Local, but traffic from the local pod to an external frontend is treated as internal traffic to the Cluster set
  10.1.0.5:8080 p=0.500000 node=n1
  10.1.1.6:8080 p=0.500000 node=n2`,
	}, {
		// §2: "... or from the node itself"; §7: "Traffic the node itself
		// originates to an external frontend is masqueraded."
		name:     "external policy Local short-circuit from the node",
		services: []*servicemap.Service{npLocal},
		slices:   []*endpoints.Slice{slice("np", ready("10.1.1.6", "n2"))},
		pkt:      tcp("192.168.0.1", "192.168.0.1", 30080, FromNode),
		want: `forward ns/np:http/TCP via NodePort (external frontend treated as internal, Cluster set), masquerade=true
  why: §2: external policy Local, but traffic from the node to an external frontend is treated as internal traffic to the Cluster set
  10.1.1.6:8080 p=1.000000 node=n2`,
	}, {
		// §2: the short-circuit uses the Cluster set, not the set of the
		// internal policy.
		name:     "external policy Local short-circuit ignores internal policy Local",
		services: []*servicemap.Service{svc("np", ips("10.96.0.20"), nodePort(30080), externalLocal, internalLocal)},
		slices:   []*endpoints.Slice{slice("np", ready("10.1.1.6", "n2"))},
		pkt:      tcp("10.1.0.9", "192.168.0.1", 30080, FromLocalPod),
		want: `forward ns/np:http/TCP via NodePort (external frontend treated as internal, Cluster set), masquerade=false
  why: §2: external policy Local, but traffic from the local pod to an external frontend is treated as internal traffic to the Cluster set
  10.1.1.6:8080 p=1.000000 node=n2`,
	}, {
		// §5: short-circuited traffic is internal: an empty Cluster set is
		// a reject.
		name:     "external policy Local short-circuit without endpoints",
		services: []*servicemap.Service{npLocal},
		pkt:      tcp("10.1.0.9", "192.168.0.1", 30080, FromLocalPod),
		want:     "reject ns/np:http/TCP via NodePort (external frontend treated as internal, Cluster set)\n  why: §5: no endpoints in the Cluster set: reject",
	}, {
		// §2: the ClusterIP of an external-policy-Local service uses the
		// internal policy.
		name:     "external policy Local: the ClusterIP uses the Cluster set",
		services: []*servicemap.Service{npLocal},
		slices:   []*endpoints.Slice{slice("np", ready("10.1.1.6", "n2"))},
		pkt:      tcp("10.2.1.9", "10.96.0.20", 80, FromRemotePod),
		want: `forward ns/np:http/TCP via ClusterIP (internal, Cluster set), masquerade=false
  why: §2: internal traffic with internal policy Cluster uses the Cluster set
  10.1.1.6:8080 p=1.000000 node=n2`,
	}})
}

// checkVerdict checks what must hold for every verdict.
func checkVerdict(t testing.TB, snap *Snapshot, pkt Packet, v Verdict) {
	t.Helper()
	if s1, s2 := v.String(), v.String(); s1 != s2 || s1 == "" {
		t.Errorf("String not deterministic or empty: %q, %q", s1, s2)
	}
	if v.Reason == "" {
		t.Errorf("no Reason: %v", v)
	}
	if v.Action != Forward {
		if len(v.Candidates) > 0 || v.Masquerade || v.AffinityApplied || v.Affinity != 0 {
			t.Errorf("%v with forward details: %v", v.Action, v)
		}
		if v.Action == NoMatch && (v.Port != servicemap.PortName{} || v.Frontend != NoFrontend || v.Set != "") {
			t.Errorf("NoMatch with a port: %#v", v)
		}
		return
	}
	ps, ok := snap.Family(FamilyOf(pkt.Dst)).Get(v.Port)
	if !ok {
		t.Fatalf("Forward to %v, not a port of the family of %v", v.Port, pkt.Dst)
	}
	if len(v.Candidates) == 0 {
		t.Fatalf("Forward without candidates: %v", v)
	}
	sum := 0.0
	for _, c := range v.Candidates {
		sum += c.Probability
		if c.Probability <= 0 {
			t.Errorf("candidate %v with probability %v", c.Endpoint.AddrPort(), c.Probability)
		}
		if !containsEndpoint(ps.Endpoints.All, c.Endpoint.AddrPort()) {
			t.Errorf("candidate %v not in the port's endpoints %v", c.Endpoint.AddrPort(), ps.Endpoints.All)
		}
		if want := v.Masquerade || c.Endpoint.Addr == pkt.Src; c.Masquerade != want {
			t.Errorf("candidate %v: Masquerade = %v, want %v", c.Endpoint.AddrPort(), c.Masquerade, want)
		}
		if v.Set == servicemap.Local && c.Endpoint.NodeName != snap.Node().Name {
			t.Errorf("Local set candidate %v on node %q", c.Endpoint.AddrPort(), c.Endpoint.NodeName)
		}
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Errorf("probabilities sum to %v: %v", sum, v)
	}
}

func containsEndpoint(eps []endpoints.Endpoint, ap netip.AddrPort) bool {
	for i := range eps {
		if eps[i].AddrPort() == ap {
			return true
		}
	}
	return false
}

// lineDiff returns the lines of want and got that differ, "-" for want
// and "+" for got, in order.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl == gl {
			b.WriteString("  " + wl + "\n")
			continue
		}
		if i < len(w) {
			b.WriteString("- " + wl + "\n")
		}
		if i < len(g) {
			b.WriteString("+ " + gl + "\n")
		}
	}
	return b.String()
}

// TestExplainNodePorts covers SEMANTICS §8: which destination addresses
// serve NodePorts.
func TestExplainNodePorts(t *testing.T) {
	snap := mustSnapshot(t,
		[]*servicemap.Service{svc("np", ips("10.96.0.20", "fd00:96::20"), nodePort(30080))},
		[]*endpoints.Slice{
			slice("np", ready("10.1.0.5", "n1")),
			slice("np", ready("fd00:1::5", "n1")),
		})
	v4only := Policy{NodePortAddresses: prefixes("192.168.0.0/24")}
	localhost := Policy{LocalhostNodePorts: true}
	tests := []struct {
		name   string
		policy Policy
		dst    string
		from   Origin
		want   Action
	}{
		// "NodePorts are served on node addresses only: by default every
		// local address except loopback".
		{"first node address", Policy{}, "192.168.0.1", FromExternal, Forward},
		{"second node address", Policy{}, "172.16.0.1", FromExternal, Forward},
		{"IPv6 node address", Policy{}, "fd00::1", FromExternal, Forward},
		{"from the node to its own address", Policy{}, "172.16.0.1", FromNode, Forward},
		{"not a node address", Policy{}, "192.168.0.2", FromExternal, NoMatch},
		{"the ClusterIP on the NodePort", Policy{}, "10.96.0.20", FromExternal, NoMatch},
		{"IPv4 loopback", Policy{}, "127.0.0.1", FromNode, NoMatch},
		{"IPv6 loopback", Policy{}, "::1", FromNode, NoMatch},
		// "NodePortAddresses (a list of prefixes) narrows it."
		{"NodePortAddresses: inside", v4only, "192.168.0.1", FromExternal, Forward},
		{"NodePortAddresses: outside", v4only, "172.16.0.1", FromExternal, NoMatch},
		{"NodePortAddresses: other family", v4only, "fd00::1", FromExternal, NoMatch},
		{"NodePortAddresses: inside but not a node address", v4only, "192.168.0.2", FromExternal, NoMatch},
		// "Localhost NodePorts are off unless asked for (iptables only)":
		// IPv4, and only the node can send to its loopback.
		{"LocalhostNodePorts: 127.0.0.1 from the node", localhost, "127.0.0.1", FromNode, Forward},
		{"LocalhostNodePorts: all of 127.0.0.0/8", localhost, "127.1.2.3", FromNode, Forward},
		{"LocalhostNodePorts: from outside", localhost, "127.0.0.1", FromExternal, NoMatch},
		{"LocalhostNodePorts: from a local pod", localhost, "127.0.0.1", FromLocalPod, NoMatch},
		{"LocalhostNodePorts: not IPv6", localhost, "::1", FromNode, NoMatch},
		{"LocalhostNodePorts: outside NodePortAddresses", Policy{LocalhostNodePorts: true, NodePortAddresses: prefixes("192.168.0.0/24")}, "127.0.0.1", FromNode, NoMatch},
		{"LocalhostNodePorts: inside NodePortAddresses", Policy{LocalhostNodePorts: true, NodePortAddresses: prefixes("127.0.0.0/8")}, "127.0.0.1", FromNode, Forward},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "198.51.100.99"
			if ip(tt.dst).Is6() {
				src = "2001:db8::99"
			}
			if tt.from == FromNode {
				src = tt.dst
			}
			pkt := tcp(src, tt.dst, 30080, tt.from)
			v := (&Oracle{Policy: tt.policy}).Explain(snap, pkt)
			checkVerdict(t, snap, pkt, v)
			if v.Action != tt.want {
				t.Fatalf("Explain(%v) = %v, want %v", pkt, v, tt.want)
			}
			if v.Action == Forward && (v.Frontend != NodePortFrontend || !v.External) {
				t.Errorf("Explain(%v) = %v, want the NodePort, external", pkt, v)
			}
			// The service port, not the NodePort, on a node address is no
			// frontend.
			pkt.Port = 80
			if v := (&Oracle{Policy: tt.policy}).Explain(snap, pkt); v.Action != NoMatch && v.Frontend != ClusterIPFrontend {
				t.Errorf("Explain(%v) = %v, want no match", pkt, v)
			}
		})
	}
}

// TestExplainMasquerade is the matrix of SEMANTICS §7 over frontends,
// origins, external policies and MasqueradeAll.
func TestExplainMasquerade(t *testing.T) {
	both := slice("m", ready("10.1.0.5", "n1"), ready("10.1.1.6", "n2"))
	snaps := map[servicemap.TrafficPolicy]*Snapshot{
		servicemap.Cluster: mustSnapshot(t, []*servicemap.Service{svc("m", ips("10.96.0.40"), nodePort(30040), externalIPs("203.0.113.40"))}, []*endpoints.Slice{both}),
		servicemap.Local:   mustSnapshot(t, []*servicemap.Service{svc("m", ips("10.96.0.40"), nodePort(30040), externalIPs("203.0.113.40"), externalLocal)}, []*endpoints.Slice{both}),
	}
	srcs := map[Origin]string{FromExternal: "198.51.100.99", FromLocalPod: "10.1.0.99", FromRemotePod: "10.1.1.99", FromNode: "192.168.0.1"}
	frontends := []struct {
		f        Frontend
		dst      string
		port     uint16
		internal bool
	}{
		{ClusterIPFrontend, "10.96.0.40", 80, true},
		{ExternalIPFrontend, "203.0.113.40", 80, false},
		{NodePortFrontend, "192.168.0.1", 30040, false},
	}
	// want[internal/external][policy][masqueradeAll][origin]
	type key struct {
		internal bool
		etp      servicemap.TrafficPolicy
		all      bool
		from     Origin
	}
	want := func(k key) bool {
		switch {
		case k.internal:
			// "Internal traffic is masqueraded when it comes from outside
			// the configured cluster (pod) CIDRs, or always when
			// MasqueradeAll is set."
			return k.all || k.from == FromExternal || k.from == FromNode
		case k.etp == servicemap.Cluster:
			// "External traffic with external policy Cluster is
			// masqueraded."
			return true
		case k.from == FromNode:
			// "Traffic the node itself originates to an external frontend
			// is masqueraded."
			return true
		case k.from == FromLocalPod:
			// Short-circuited: treated as internal traffic from a pod.
			return k.all
		}
		// "External traffic with external policy Local keeps the client
		// source address."
		return false
	}
	for _, etp := range []servicemap.TrafficPolicy{servicemap.Cluster, servicemap.Local} {
		for _, fe := range frontends {
			for _, all := range []bool{false, true} {
				for from := FromExternal; from <= FromNode; from++ {
					k := key{fe.internal, etp, all, from}
					pkt := tcp(srcs[from], fe.dst, fe.port, from)
					v := (&Oracle{Policy: Policy{MasqueradeAll: all}}).Explain(snaps[etp], pkt)
					checkVerdict(t, snaps[etp], pkt, v)
					if v.Action != Forward || v.Frontend != fe.f {
						t.Errorf("eTP %s, MasqueradeAll=%v: Explain(%v) = %v, want a forward via %v", etp, all, pkt, v, fe.f)
						continue
					}
					if v.Masquerade != want(k) {
						t.Errorf("eTP %s, MasqueradeAll=%v: Explain(%v).Masquerade = %v, want %v\n%v", etp, all, pkt, v.Masquerade, want(k), v)
					}
				}
			}
		}
	}
}

// fakeClock is a settable Now for an Oracle.
