package nftables

import (
	"strings"
	"testing"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/affinity"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

func TestSlotCount(t *testing.T) {
	for _, tc := range []struct {
		name    string
		weights []uint16
		g, n    uint32
		ok      bool
	}{
		{"no endpoints", nil, 0, 0, true},
		{"weight 0 counts as 1", []uint16{0, 0, 1}, 1, 3, true},
		{"common divisor", []uint16{2, 4, 6}, 2, 6, true},
		{"exactly the maximum", []uint16{128, 128}, 128, 2, true},
		{"256 slots", []uint16{255, 1}, 1, 256, true},
		{"257 slots", []uint16{256, 1}, 1, 257, false},
		{"prime weights", []uint16{100, 201, 300}, 1, 601, false},
		{"large weights", []uint16{65535, 65535, 65535}, 65535, 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var eps []endpoints.Endpoint
			for _, w := range tc.weights {
				eps = append(eps, endpoints.Endpoint{Weight: w})
			}
			g, n, ok := slotCount(eps)
			if g != tc.g || n != tc.n || ok != tc.ok {
				t.Errorf("slotCount(%v) = %d, %d, %v; want %d, %d, %v", tc.weights, g, n, ok, tc.g, tc.n, tc.ok)
			}
		})
	}
}

// Each endpoint holds slots in proportion to its weight (SEMANTICS §3),
// consecutive, and the frontend goes to the pick chain of that many
// slots.
func TestMapModeSlots(t *testing.T) {
	svc := &servicemap.Service{Namespace: "ns", Name: "w", ClusterIPs: addrs("10.96.0.1"),
		Ports: []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80}}}
	sl := slice("w", endpoints.Port{Name: "http", Protocol: servicemap.TCP, Port: 8080},
		ep("10.244.2.1", "node-b", 2), ep("10.244.2.2", "node-b", 4), ep("10.244.2.3", "node-b", 6))
	tb := renderTable(t, testConfig, []*servicemap.Service{svc}, []*endpoints.Slice{sl})
	want := []string{
		"10.96.0.1 . tcp . 80 . 0 : 10.244.2.1 . 8080",
		"10.96.0.1 . tcp . 80 . 1 : 10.244.2.2 . 8080",
		"10.96.0.1 . tcp . 80 . 2 : 10.244.2.2 . 8080",
		"10.96.0.1 . tcp . 80 . 3 : 10.244.2.3 . 8080",
		"10.96.0.1 . tcp . 80 . 4 : 10.244.2.3 . 8080",
		"10.96.0.1 . tcp . 80 . 5 : 10.244.2.3 . 8080",
	}
	if got := elementStrings(findSet(t, tb, mapBackends)); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("backends:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := elementStrings(findSet(t, tb, mapServiceIPs)); len(got) != 1 || got[0] != "10.96.0.1 . tcp . 80 : goto pick-int-6" {
		t.Errorf("service-ips = %q", got)
	}
	pick := findChain(t, tb, "pick-int-6")
	if got := pick.Rules[1].text(IPv4); got != "dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 6 map @backends" {
		t.Errorf("pick-int-6 DNAT: %s", got)
	}
}

// Ports that map mode cannot express keep their own chains; the others
// have none.
func TestMapModeChoice(t *testing.T) {
	http := endpoints.Port{Name: "http", Protocol: servicemap.TCP, Port: 8080}
	port := []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80, NodePort: 30080}}
	mk := func(name, ip string, mod func(*servicemap.Service)) *servicemap.Service {
		s := &servicemap.Service{Namespace: "ns", Name: name, Type: servicemap.NodePort, ClusterIPs: addrs(ip), Ports: port}
		if mod != nil {
			mod(s)
		}
		return s
	}
	eps := []endpoints.Endpoint{ep("10.244.1.10", "node-a", 1), ep("10.244.2.10", "node-b", 1)}
	heavy := []endpoints.Endpoint{ep("10.244.1.10", "node-a", 100), ep("10.244.2.10", "node-b", 201)}
	for _, tc := range []struct {
		name   string
		svc    *servicemap.Service
		eps    []endpoints.Endpoint
		mapped bool
	}{
		{"NodePort, policies Cluster", mk("plain", "10.96.0.1", nil), eps, true},
		{"internal policy Local", mk("itp", "10.96.0.2", func(s *servicemap.Service) { s.InternalTrafficPolicy = servicemap.Local }), eps, true},
		{"ClientIP affinity", mk("aff", "10.96.0.3", func(s *servicemap.Service) {
			s.Affinity = affinity.Config{ClientIP: true, Timeout: time.Hour}
		}), eps, false},
		{"external policy Local", mk("etp", "10.96.0.4", func(s *servicemap.Service) { s.ExternalTrafficPolicy = servicemap.Local }), eps, false},
		{"external policy Local without external frontends", mk("etp-cip", "10.96.0.5", func(s *servicemap.Service) {
			s.Type, s.Ports = servicemap.ClusterIP, []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80}}
			s.ExternalTrafficPolicy = ""
		}), eps, true},
		{"601 slots", mk("heavy", "10.96.0.6", nil), heavy, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := renderTable(t, testConfig, []*servicemap.Service{tc.svc}, []*endpoints.Slice{slice(tc.svc.Name, http, tc.eps...)})
			own := 0
			for _, c := range tb.Chains {
				if strings.HasPrefix(c.Name, "svc-") || strings.HasPrefix(c.Name, "ext-") {
					own++
				}
			}
			verdicts := strings.Join(elementStrings(findSet(t, tb, mapServiceIPs)), " ")
			if tc.mapped && (own != 0 || !strings.Contains(verdicts, "goto pick-int-")) {
				t.Errorf("want map mode; chains of its own: %d, service-ips: %s", own, verdicts)
			}
			if !tc.mapped && (own == 0 || strings.Contains(verdicts, "pick-")) {
				t.Errorf("want chain mode; chains of its own: %d, service-ips: %s", own, verdicts)
			}
		})
	}
}

// Two ports claiming one frontend: the first kind wins, and only the
// winner's slots are in backends.
func TestMapModeSharedFrontend(t *testing.T) {
	http := endpoints.Port{Name: "http", Protocol: servicemap.TCP, Port: 8080}
	a := &servicemap.Service{Namespace: "ns", Name: "a", ClusterIPs: addrs("10.96.0.1"),
		Ports: []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80}}}
	b := &servicemap.Service{Namespace: "ns", Name: "b", ClusterIPs: addrs("10.96.0.2"), ExternalIPs: addrs("10.96.0.1"),
		Ports: []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80}}}
	tb := renderTable(t, testConfig, []*servicemap.Service{a, b}, []*endpoints.Slice{
		slice("a", http, ep("10.244.2.1", "node-b", 1)),
		slice("b", http, ep("10.244.2.2", "node-b", 1), ep("10.244.2.3", "node-b", 1)),
	})
	got := strings.Join(elementStrings(findSet(t, tb, mapBackends)), "\n")
	want := strings.Join([]string{
		"10.96.0.1 . tcp . 80 . 0 : 10.244.2.1 . 8080",
		"10.96.0.2 . tcp . 80 . 0 : 10.244.2.2 . 8080",
		"10.96.0.2 . tcp . 80 . 1 : 10.244.2.3 . 8080",
	}, "\n")
	if got != want {
		t.Errorf("backends:\n%s\nwant:\n%s", got, want)
	}
}

func renderTable(t *testing.T, cfg Config, svcs []*servicemap.Service, slices []*endpoints.Slice) *Table {
	t.Helper()
	snap, err := proxykit.NewSnapshot(testNode, svcs, slices)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Render(snap, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rs.Tables[0]
}

func findSet(t *testing.T, tb *Table, name string) *Set {
	t.Helper()
	for _, s := range tb.Sets {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no set %q", name)
	return nil
}

func findChain(t *testing.T, tb *Table, name string) *Chain {
	t.Helper()
	for _, c := range tb.Chains {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no chain %q", name)
	return nil
}

func elementStrings(s *Set) []string {
	out := make([]string, len(s.Elements))
	for i, e := range s.Elements {
		out[i] = e.String()
	}
	return out
}
