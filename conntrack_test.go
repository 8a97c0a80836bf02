package proxykit

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

var dnsUDP = servicemap.PortName{Namespace: "kube-system", Name: "dns", Port: "dns", Protocol: servicemap.UDP}

func dnsService(mod ...func(*servicemap.Service)) *servicemap.Service {
	s := &servicemap.Service{
		Namespace: "kube-system", Name: "dns",
		ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10"), netip.MustParseAddr("fd00:96::a")},
		Ports:      []servicemap.Port{{Name: "dns", Protocol: servicemap.UDP, Port: 53}},
	}
	for _, m := range mod {
		m(s)
	}
	return s
}

func dnsSlice(eps ...endpoints.Endpoint) *endpoints.Slice {
	return &endpoints.Slice{Namespace: "kube-system", Service: "dns", Name: "dns-1",
		Ports: []endpoints.Port{{Name: "dns", Protocol: servicemap.UDP, Port: 53}}, Endpoints: eps}
}

func ep(addr, node string) endpoints.Endpoint {
	return endpoints.Endpoint{Addr: netip.MustParseAddr(addr), Ready: true, Serving: true, NodeName: node}
}

// step feeds one change and returns the snapshot after it, as if the
// previous sync succeeded.
func step(t *testing.T, p *Proxy, change func()) *Snapshot {
	t.Helper()
	change()
	snap := p.next(false)
	p.applied(snap)
	return snap
}

// §9, decided per family (§1) and on the set in use on this node (§2).
func TestConntrackCleanupPerFamilyAndNode(t *testing.T) {
	tests := []struct {
		name   string
		svc    *servicemap.Service
		before []endpoints.Endpoint
		after  []endpoints.Endpoint
		want   bool
	}{{
		// §9: "this also clears flows that were created while the port
		// had no endpoints", for the IPv6 side on its own.
		name:   "first IPv6 endpoint while IPv4 already had one",
		svc:    dnsService(),
		before: []endpoints.Endpoint{ep("10.0.0.1", "n2")},
		after:  []endpoints.Endpoint{ep("10.0.0.1", "n2"), ep("fd00::1", "n2")},
		want:   true,
	}, {
		name:   "another endpoint where one was usable",
		svc:    dnsService(),
		before: []endpoints.Endpoint{ep("10.0.0.1", "n2")},
		after:  []endpoints.Endpoint{ep("10.0.0.1", "n2"), ep("10.0.0.2", "n2")},
		want:   false,
	}, {
		// §9: reply source "not one of the endpoints now usable for it".
		name:   "an endpoint leaves",
		svc:    dnsService(),
		before: []endpoints.Endpoint{ep("10.0.0.1", "n2"), ep("10.0.0.2", "n2")},
		after:  []endpoints.Endpoint{ep("10.0.0.2", "n2")},
		want:   true,
	}, {
		// The set in use is the node's Local set: its first endpoint
		// counts even though the port had endpoints elsewhere.
		name: "internal policy Local: first local endpoint",
		svc: dnsService(func(s *servicemap.Service) {
			s.InternalTrafficPolicy = servicemap.Local
		}),
		before: []endpoints.Endpoint{ep("10.0.0.1", "n2")},
		after:  []endpoints.Endpoint{ep("10.0.0.1", "n2"), ep("10.0.0.9", "n1")},
		want:   true,
	}, {
		name: "internal policy Local: a remote endpoint leaves",
		svc: dnsService(func(s *servicemap.Service) {
			s.InternalTrafficPolicy = servicemap.Local
		}),
		before: []endpoints.Endpoint{ep("10.0.0.1", "n2"), ep("10.0.0.9", "n1")},
		after:  []endpoints.Endpoint{ep("10.0.0.9", "n1")},
		want:   false,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(Node{Name: "n1"}, nopSyncer())
			step(t, p, func() {
				_ = p.OnServiceUpdate(nil, tt.svc)
				_ = p.OnSliceUpdate(dnsSlice(tt.before...))
			})
			snap := step(t, p, func() { _ = p.OnSliceUpdate(dnsSlice(tt.after...)) })
			if got := slices.Contains(snap.ConntrackCleanup(), dnsUDP); got != tt.want {
				t.Errorf("cleanup = %v, want %v", got, tt.want)
			}
			if !snap.IsChanged(dnsUDP) {
				t.Error("the port is not in Changed()")
			}
		})
	}
}

// A TCP port never needs conntrack cleanup, and a deleted UDP port does.
func TestConntrackCleanupProtocolAndDelete(t *testing.T) {
	p := New(Node{Name: "n1"}, nopSyncer())
	tcp := dnsService(func(s *servicemap.Service) { s.Name = "web"; s.Ports[0].Protocol = servicemap.TCP })
	snap := step(t, p, func() {
		_ = p.OnServiceUpdate(nil, tcp)
		_ = p.OnSliceUpdate(&endpoints.Slice{Namespace: "kube-system", Service: "web", Name: "web-1",
			Ports: []endpoints.Port{{Name: "dns", Protocol: servicemap.TCP, Port: 53}}, Endpoints: []endpoints.Endpoint{ep("10.0.0.1", "n2")}})
		_ = p.OnServiceUpdate(nil, dnsService())
		_ = p.OnSliceUpdate(dnsSlice(ep("10.0.0.1", "n2")))
	})
	if got := snap.ConntrackCleanup(); !slices.Equal(got, []servicemap.PortName{dnsUDP}) {
		t.Errorf("ConntrackCleanup() = %v, want only the UDP port", got)
	}
	snap = step(t, p, func() { p.OnServiceDelete(dnsService()) })
	if got := snap.ConntrackCleanup(); !slices.Equal(got, []servicemap.PortName{dnsUDP}) {
		t.Errorf("after delete: ConntrackCleanup() = %v", got)
	}
}

// A node change recategorises every port: they are all reported changed,
// and an endpoint leaving the node's set is a cleanup.
func TestNodeChangeReportsChanges(t *testing.T) {
	hinted := func(addr, zone string) endpoints.Endpoint {
		e := ep(addr, "n2")
		e.ZoneHints = []string{zone}
		return e
	}
	p := New(Node{Name: "n1", Zone: "z1"}, nopSyncer())
	step(t, p, func() {
		_ = p.OnServiceUpdate(nil, dnsService())
		_ = p.OnSliceUpdate(dnsSlice(hinted("10.0.0.1", "z1"), hinted("10.0.0.2", "z2")))
	})
	snap := step(t, p, func() { p.SetNode(Node{Name: "n1", Zone: "z2"}) })
	if !snap.Full() || !snap.IsChanged(dnsUDP) || !slices.Contains(snap.ConntrackCleanup(), dnsUDP) {
		t.Errorf("node change: full=%v changed=%v cleanup=%v", snap.Full(), snap.Changed(), snap.ConntrackCleanup())
	}
	st, _ := snap.Family(IPv4).Get(dnsUDP)
	if got := addrsOf(st.Endpoints.Cluster); !slices.Equal(got, []string{"10.0.0.2:53"}) {
		t.Errorf("zone z2 should use the z2 endpoint, got %v", got)
	}
	// The same addresses in another order are no change.
	p.SetNode(Node{Name: "n1", Zone: "z2"})
	if snap := p.next(false); snap.Full() {
		t.Error("an identical node forced a full snapshot")
	}
}

// §1: whether a port is externally accessible is decided per family: an
// IPv4-only ExternalIP does not make the IPv6 side use the Cluster set.
func TestExternalAccessPerFamily(t *testing.T) {
	svc := dnsService(func(s *servicemap.Service) {
		s.InternalTrafficPolicy = servicemap.Local
		s.ExternalIPs = []netip.Addr{netip.MustParseAddr("192.0.2.53")}
	})
	snap, err := NewSnapshot(Node{Name: "n1"}, []*servicemap.Service{svc}, []*endpoints.Slice{dnsSlice(ep("10.0.0.1", "n2"), ep("fd00::1", "n2"))})
	if err != nil {
		t.Fatal(err)
	}
	v4, _ := snap.Family(IPv4).Get(dnsUDP)
	v6, _ := snap.Family(IPv6).Get(dnsUDP)
	if v4.Endpoints.Cluster == nil || !v4.Port.ExternallyAccessible() {
		t.Errorf("IPv4 has an ExternalIP: the Cluster set must be in use")
	}
	if v6.Endpoints.Cluster != nil || v6.Endpoints.HasAny || v6.Port.ExternallyAccessible() {
		t.Errorf("IPv6 has no external frontend: Cluster=%v HasAny=%v", addrsOf(v6.Endpoints.Cluster), v6.Endpoints.HasAny)
	}
	if v := Explain(snap, Packet{Src: netip.MustParseAddr("fd00::99"), Dst: netip.MustParseAddr("fd00:96::a"), Protocol: servicemap.UDP, Port: 53, From: FromRemotePod}); v.Action != Reject {
		t.Errorf("oracle and snapshot disagree: %v", v)
	}
}

func TestFamilyUnknown(t *testing.T) {
	snap, _ := NewSnapshot(Node{}, []*servicemap.Service{dnsService()}, nil)
	if n := snap.Family(Family(5)).Len(); n != 0 {
		t.Errorf("an unknown family has %d ports", n)
	}
	if Family(12).String() != "Family(12)" {
		t.Errorf("String() = %q", Family(12).String())
	}
}
