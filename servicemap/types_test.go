package servicemap

import (
	"testing"
)

func TestNames(t *testing.T) {
	tests := []struct {
		name       string
		a, b       PortName
		want       int
		wantString string
	}{
		{"equal", PortName{"ns", "a", "http", TCP}, PortName{"ns", "a", "http", TCP}, 0, "ns/a:http/TCP"},
		{"namespace first", PortName{"a", "z", "", TCP}, PortName{"b", "a", "", TCP}, -1, "a/z/TCP"},
		{"then name", PortName{"ns", "b", "", TCP}, PortName{"ns", "a", "z", TCP}, 1, "ns/b/TCP"},
		{"then port", PortName{"ns", "a", "a", UDP}, PortName{"ns", "a", "b", TCP}, -1, "ns/a:a/UDP"},
		{"then protocol", PortName{"ns", "a", "", UDP}, PortName{"ns", "a", "", TCP}, 1, "ns/a/UDP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Compare(tt.b); got != tt.want {
				t.Errorf("PortName.Compare() = %d, want %d", got, tt.want)
			}
			if got := tt.a.String(); got != tt.wantString {
				t.Errorf("PortName.String() = %q, want %q", got, tt.wantString)
			}
			sa, sb := tt.a.Service(), tt.b.Service()
			if got, want := sa.Compare(sb), tt.want; (got == 0) != (sa == sb) || (got != 0 && got != want) {
				t.Errorf("ServiceName.Compare(%v, %v) = %d", sa, sb, got)
			}
		})
	}
}

// TestEndpointSetsInUse checks SEMANTICS §2: which endpoint sets a port
// uses.
func TestEndpointSetsInUse(t *testing.T) {
	tests := []struct {
		name                   string
		mut                    func(s *Service)
		wantExternal           bool
		wantCluster, wantLocal bool
	}{
		{"cluster IP", func(s *Service) {}, false, true, false},
		{"internal local", func(s *Service) { s.InternalTrafficPolicy = Local }, false, false, true},
		{"external local without external frontends", func(s *Service) { s.ExternalTrafficPolicy = Local }, false, true, false},
		{"external IP, external local", func(s *Service) {
			s.ExternalIPs, s.ExternalTrafficPolicy = ips("192.0.2.1"), Local
		}, true, true, true},
		{"node port, both local", func(s *Service) {
			s.Type, s.Ports[0].NodePort = NodePort, 30000
			s.ExternalTrafficPolicy, s.InternalTrafficPolicy = Local, Local
		}, true, true, true},
		{"load balancer IP, internal local", func(s *Service) {
			s.Type, s.LoadBalancerIPs, s.InternalTrafficPolicy = LoadBalancer, ips("198.51.100.1"), Local
		}, true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := clusterIPService("ns", "web")
			tt.mut(s)
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
			p := s.Flatten()[0]
			if got := p.ExternallyAccessible(); got != tt.wantExternal {
				t.Errorf("ExternallyAccessible() = %v, want %v", got, tt.wantExternal)
			}
			if got := p.UsesClusterEndpoints(); got != tt.wantCluster {
				t.Errorf("UsesClusterEndpoints() = %v, want %v", got, tt.wantCluster)
			}
			if got := p.UsesLocalEndpoints(); got != tt.wantLocal {
				t.Errorf("UsesLocalEndpoints() = %v, want %v", got, tt.wantLocal)
			}
		})
	}
}

func TestEmptyMap(t *testing.T) {
	var m Map
	if _, ok := m.Get(PortName{"ns", "a", "", TCP}); ok || m.Len() != 0 {
		t.Error("the zero Map is not empty")
	}
	for n := range m.Service(ServiceName{"ns", "a"}) {
		t.Errorf("the zero Map yields %v", n)
	}
}
