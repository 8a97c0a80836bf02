package iptables

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/affinity"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/internal/golden"
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

type scenario struct {
	cfg    Config
	svcs   []*servicemap.Service
	slices []*endpoints.Slice
}

// goldenScenarios are representative snapshots; each renders to
// testdata/<name>.rules.
func goldenScenarios() map[string]scenario {
	http := endpoints.Port{Name: "http", Protocol: servicemap.TCP, Port: 8080}
	dns := endpoints.Port{Name: "dns", Protocol: servicemap.UDP, Port: 53}
	web := &servicemap.Service{Namespace: "ns", Name: "web", ClusterIPs: addrs("10.96.0.10"),
		Ports: []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80}}}
	kdns := &servicemap.Service{Namespace: "ns", Name: "dns", ClusterIPs: addrs("10.96.0.53"),
		Ports: []servicemap.Port{{Name: "dns", Protocol: servicemap.UDP, Port: 53}}}
	sctp := &servicemap.Service{Namespace: "ns", Name: "sigtran", ClusterIPs: addrs("10.96.0.36"),
		Ports: []servicemap.Port{{Name: "m3ua", Protocol: servicemap.SCTP, Port: 2905}}}
	empty := &servicemap.Service{Namespace: "ns", Name: "empty", ClusterIPs: addrs("10.96.0.99"),
		Ports: []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80}}}
	lb := &servicemap.Service{Namespace: "ns", Name: "lb", Type: servicemap.LoadBalancer, ClusterIPs: addrs("10.96.1.1", "fd00:96::1"),
		Ports:           []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80, NodePort: 30080}},
		ExternalIPs:     addrs("192.0.2.50"),
		LoadBalancerIPs: addrs("203.0.113.7", "2001:db8:7::7"),
		LoadBalancerSourceRanges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"),
			netip.MustParsePrefix("203.0.113.128/25")},
		ExternalTrafficPolicy: servicemap.Local, HealthCheckNodePort: 32000}
	np := &servicemap.Service{Namespace: "ns", Name: "np", Type: servicemap.NodePort, ClusterIPs: addrs("10.96.1.2"),
		Ports: []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80, NodePort: 30081}}, InternalTrafficPolicy: servicemap.Local}
	sticky := &servicemap.Service{Namespace: "ns", Name: "sticky", ClusterIPs: addrs("10.96.2.1", "fd00:96::2"),
		Ports:    []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80}},
		Affinity: affinity.Config{ClientIP: true, Timeout: 30 * time.Minute}}
	return map[string]scenario{
		"clusterip": {testConfig, []*servicemap.Service{web, kdns, empty, sctp}, []*endpoints.Slice{
			slice("sigtran", endpoints.Port{Name: "m3ua", Protocol: servicemap.SCTP, Port: 2905},
				ep("10.244.2.36", "node-b", 0), ep("10.244.2.37", "node-b", 0)),
			slice("web", http, ep("10.244.1.10", "node-a", 1), ep("10.244.2.10", "node-b", 2), ep("10.244.2.11", "node-b", 0)),
			slice("dns", dns, ep("10.244.2.53", "node-b", 0)),
		}},
		"external": {testConfig, []*servicemap.Service{lb, np}, []*endpoints.Slice{
			slice("lb", http, ep("10.244.1.10", "node-a", 0), ep("10.244.2.10", "node-b", 0), ep("fd00:244:2::10", "node-b", 0)),
			slice("np", http, ep("10.244.2.12", "node-b", 0)),
		}},
		"affinity": {testConfig, []*servicemap.Service{sticky}, []*endpoints.Slice{
			slice("sticky", http, ep("10.244.1.10", "node-a", 0), ep("10.244.2.10", "node-b", 0), ep("fd00:244:1::10", "node-a", 0)),
		}},
		"masquerade-all": {Config{MasqueradeAll: true, NodePortAddresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
			[]*servicemap.Service{np}, []*endpoints.Slice{slice("np", http, ep("10.244.1.10", "node-a", 0))}},
		"two-cluster-cidrs-large": {Config{ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("10.245.0.0/16")},
			LargeClusterEndpoints: 2, LocalhostNodePorts: true},
			[]*servicemap.Service{web, np}, []*endpoints.Slice{
				slice("web", http, ep("10.244.1.10", "node-a", 1), ep("10.244.2.10", "node-b", 2), ep("10.244.2.11", "node-b", 0)),
				slice("np", http, ep("10.244.1.12", "node-a", 0))}},
	}
}

// scenarioSnapshot builds one of the golden scenarios' snapshots.
func scenarioSnapshot(t testing.TB, name string) (*proxykit.Snapshot, Config) {
	t.Helper()
	sc, ok := goldenScenarios()[name]
	if !ok {
		t.Fatalf("no scenario %q", name)
	}
	snap, err := proxykit.NewSnapshot(testNode, sc.svcs, sc.slices)
	if err != nil {
		t.Fatal(err)
	}
	return snap, sc.cfg
}

func renderScenario(t testing.TB, name string) (*Ruleset, Config) {
	t.Helper()
	snap, cfg := scenarioSnapshot(t, name)
	rs, err := Render(snap, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rs, cfg
}

func TestRenderGolden(t *testing.T) {
	for name := range goldenScenarios() {
		t.Run(name, func(t *testing.T) {
			snap, cfg := scenarioSnapshot(t, name)
			rs, err := Render(snap, cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := rs.String()
			again, _ := Render(snap, cfg)
			if again.String() != got {
				t.Fatal("Render is not deterministic")
			}
			golden.Check(t, filepath.Join("testdata", name+".rules"), got)
			for _, tb := range rs.Tables {
				for _, c := range tb.Chains() {
					if len(c) > maxChainName {
						t.Errorf("chain %s is longer than %d characters", c, maxChainName)
					}
				}
			}
		})
	}
}
