package topology

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// Service ports. Every field Categorize looks at is set explicitly.
var (
	clusterIP = netip.MustParseAddr("172.16.0.1")

	// internal Cluster, no external frontends
	internalCluster = svcPort(servicemap.Cluster, servicemap.Cluster, 0, nil, nil)
	// internal Local, no external frontends
	internalLocal = svcPort(servicemap.Local, servicemap.Cluster, 0, nil, nil)
	// external Local with a NodePort: both sets
	externalLocalNodePort = svcPort(servicemap.Cluster, servicemap.Local, 30080, nil, nil)
	// external Local without external frontends: Local unused
	externalLocalNoFrontends = svcPort(servicemap.Cluster, servicemap.Local, 0, nil, nil)
	// internal Local, external Cluster, externally accessible
	internalLocalNodePort   = svcPort(servicemap.Local, servicemap.Cluster, 30080, nil, nil)
	internalLocalExternalIP = svcPort(servicemap.Local, servicemap.Cluster, 0,
		[]netip.Addr{netip.MustParseAddr("192.0.2.1")}, nil)
	internalLocalLBIP = svcPort(servicemap.Local, servicemap.Cluster, 0,
		nil, []netip.Addr{netip.MustParseAddr("198.51.100.1")})
	// both policies Local, externally accessible
	bothLocalLBIP = svcPort(servicemap.Local, servicemap.Local, 0,
		nil, []netip.Addr{netip.MustParseAddr("198.51.100.1")})

	node1 = Node{Name: "n1", Zone: "z1"}
)

func svcPort(itp, etp servicemap.TrafficPolicy, nodePort uint16, externalIPs, lbIPs []netip.Addr) *servicemap.ServicePort {
	typ := servicemap.ClusterIP
	if nodePort != 0 {
		typ = servicemap.NodePort
	}
	if len(lbIPs) > 0 {
		typ = servicemap.LoadBalancer
	}
	return &servicemap.ServicePort{
		Name:                  servicemap.PortName{Namespace: "ns", Name: "svc", Port: "http", Protocol: servicemap.TCP},
		Type:                  typ,
		Protocol:              servicemap.TCP,
		Port:                  80,
		NodePort:              nodePort,
		ClusterIPs:            []netip.Addr{clusterIP},
		ExternalIPs:           externalIPs,
		LoadBalancerIPs:       lbIPs,
		InternalTrafficPolicy: itp,
		ExternalTrafficPolicy: etp,
	}
}

// ep returns endpoint 10.0.0.n:80, changed by the options.
func ep(n byte, opts ...func(*endpoints.Endpoint)) endpoints.Endpoint {
	e := endpoints.Endpoint{Addr: netip.AddrFrom4([4]byte{10, 0, 0, n}), Port: 80}
	for _, o := range opts {
		o(&e)
	}
	return e
}

// Conditions.
func ready(e *endpoints.Endpoint)       { e.Ready, e.Serving = true, true }
func termServing(e *endpoints.Endpoint) { e.Serving, e.Terminating = true, true }
func termOnly(e *endpoints.Endpoint)    { e.Terminating = true }
func servingOnly(e *endpoints.Endpoint) { e.Serving = true }

func on(node string) func(*endpoints.Endpoint) {
	return func(e *endpoints.Endpoint) { e.NodeName = node }
}

func zh(zones ...string) func(*endpoints.Endpoint) {
	return func(e *endpoints.Endpoint) { e.ZoneHints = zones }
}

func nh(nodes ...string) func(*endpoints.Endpoint) {
	return func(e *endpoints.Endpoint) { e.NodeHints = nodes }
}

func eps(es ...endpoints.Endpoint) []endpoints.Endpoint { return es }

// fmtSet renders a set: "unused" (nil), "none" (empty) or the last octets
// of its IPv4 addresses ("1 3").
func fmtSet(set []endpoints.Endpoint) string {
	if set == nil {
		return "unused"
	}
	if len(set) == 0 {
		return "none"
	}
	var parts []string
	for _, e := range set {
		s := e.Addr.String()
		if e.Addr.Is4() {
			s = fmt.Sprint(e.Addr.As4()[3])
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func fmtResult(r Result) []string {
	return []string{
		"cluster: " + fmtSet(r.Cluster),
		"local: " + fmtSet(r.Local),
		"all: " + fmtSet(r.All),
		fmt.Sprintf("hasAny: %v", r.HasAny),
	}
}

// diff returns "" when want and got are equal, else both, line by line,
// as (-want +got).
func diff(want, got []string) string {
	var b strings.Builder
	for i := range max(len(want), len(got)) {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w == g {
			b.WriteString("  " + w + "\n")
			continue
		}
		b.WriteString("- " + w + "\n+ " + g + "\n")
	}
	if !strings.Contains(b.String(), "\n- ") && !strings.HasPrefix(b.String(), "- ") {
		return ""
	}
	return "(-want +got):\n" + b.String()
}
