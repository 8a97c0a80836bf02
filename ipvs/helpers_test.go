package ipvs

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/affinity"
	"github.com/proxykit/proxykit/endpoints"
	goldenfile "github.com/proxykit/proxykit/internal/golden"
	"github.com/proxykit/proxykit/internal/synthetic"
	"github.com/proxykit/proxykit/servicemap"
)

// The shared fixtures of the backends' tests.
var (
	testNode   = synthetic.Node
	testConfig = Config{ClusterCIDRs: synthetic.ClusterCIDRs, LocalPodCIDRs: synthetic.LocalPodCIDRs}
	addrs      = synthetic.Addrs
	ep         = synthetic.Endpoint
	slice      = synthetic.Slice
)

func snapshot(t testing.TB, svcs []*servicemap.Service, slices []*endpoints.Slice) *proxykit.Snapshot {
	t.Helper()
	snap, err := proxykit.NewSnapshot(testNode, svcs, slices)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

type scenario struct {
	cfg    Config
	svcs   []*servicemap.Service
	slices []*endpoints.Slice
}

// goldenScenarios are representative snapshots; each plans to
// testdata/<name>.ipvs and its companion rules to testdata/<name>.nft.
func goldenScenarios() map[string]scenario {
	http := endpoints.Port{Name: "http", Protocol: servicemap.TCP, Port: 8080}
	dns := endpoints.Port{Name: "dns", Protocol: servicemap.UDP, Port: 53}
	web := &servicemap.Service{Namespace: "ns", Name: "web", ClusterIPs: addrs("10.96.0.10"),
		Ports: []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80}}, Scheduler: "wrr"}
	kdns := &servicemap.Service{Namespace: "ns", Name: "dns", ClusterIPs: addrs("10.96.0.53"),
		Ports: []servicemap.Port{{Name: "dns", Protocol: servicemap.UDP, Port: 53}}}
	empty := &servicemap.Service{Namespace: "ns", Name: "empty", ClusterIPs: addrs("10.96.0.99"),
		Ports: []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80}}}
	lb := &servicemap.Service{Namespace: "ns", Name: "lb", Type: servicemap.LoadBalancer, ClusterIPs: addrs("10.96.1.1", "fd00:96::1"),
		Ports:           []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80, NodePort: 30080}},
		ExternalIPs:     addrs("192.0.2.50"),
		LoadBalancerIPs: addrs("203.0.113.7", "2001:db8:7::7"),
		LoadBalancerSourceRanges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"),
			netip.MustParsePrefix("203.0.113.128/25")},
		ExternalTrafficPolicy: servicemap.Local, HealthCheckNodePort: 32000, Scheduler: "sh"}
	sticky := &servicemap.Service{Namespace: "ns", Name: "sticky", ClusterIPs: addrs("10.96.2.1"),
		Ports:    []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80}},
		Affinity: affinity.Config{ClientIP: true, Timeout: 30 * time.Minute}}
	slices := []*endpoints.Slice{
		slice("web", http, ep("10.244.1.10", "node-a", 3), ep("10.244.2.10", "node-b", 1)),
		slice("dns", dns, ep("10.244.1.11", "node-a", 0), ep("10.244.2.11", "node-b", 0)),
		slice("lb", http, ep("10.244.1.12", "node-a", 0), ep("10.244.2.12", "node-b", 0),
			ep("fd00:244:2::12", "node-b", 0)),
		slice("sticky", http, ep("10.244.2.13", "node-b", 0)),
	}
	flagged := testConfig
	flagged.SchedulerFlags = []string{"sh-fallback", "sh-port", "mh-port"}
	flagged.Scheduler = "wlc"
	flagged.MasqueradeAll = true
	return map[string]scenario{
		"clusterip": {testConfig, []*servicemap.Service{web, kdns, empty}, slices},
		"external":  {testConfig, []*servicemap.Service{lb}, slices},
		"affinity":  {testConfig, []*servicemap.Service{sticky}, slices},
		"flags":     {flagged, []*servicemap.Service{web, lb, empty}, slices},
	}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	goldenfile.Check(t, filepath.Join("testdata", name), got)
}
