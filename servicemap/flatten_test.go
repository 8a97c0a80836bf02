package servicemap

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/proxykit/proxykit/affinity"
)

func TestFlatten(t *testing.T) {
	lb := loadBalancerService()
	lbPort := func(name string, proto Protocol, port, nodePort uint16) *ServicePort {
		return &ServicePort{
			Name:     PortName{"ns", "lb", name, proto},
			Type:     LoadBalancer,
			Protocol: proto, Port: port, NodePort: nodePort,
			ClusterIPs: lb.ClusterIPs, ExternalIPs: lb.ExternalIPs, LoadBalancerIPs: lb.LoadBalancerIPs,
			LoadBalancerSourceRanges: lb.LoadBalancerSourceRanges,
			Affinity:                 affinity.Config{ClientIP: true, Timeout: 600 * time.Second},
			ExternalTrafficPolicy:    Local, InternalTrafficPolicy: Cluster,
			HealthCheckNodePort: 32000, Scheduler: "wrr",
		}
	}
	tests := []struct {
		name string
		svc  *Service
		want []*ServicePort
	}{
		{"defaults", &Service{Namespace: "ns", Name: "web", ClusterIPs: ips("10.0.0.1"), Ports: []Port{{Port: 80}}},
			[]*ServicePort{{
				Name: PortName{"ns", "web", "", TCP}, Type: ClusterIP, Protocol: TCP, Port: 80,
				ClusterIPs: ips("10.0.0.1"), ExternalTrafficPolicy: Cluster, InternalTrafficPolicy: Cluster,
			}}},
		{"every field, ports in order", lb, []*ServicePort{
			lbPort("http", TCP, 80, 30080),
			lbPort("dns", UDP, 53, 30053),
			lbPort("dns-tcp", TCP, 53, 30054),
			lbPort("assoc", SCTP, 9999, 0),
		}},
		{"headless", &Service{Namespace: "ns", Name: "h", Ports: []Port{{Port: 80}}}, nil},
		{"external name", &Service{Namespace: "ns", Name: "e", Type: ExternalName, ClusterIPs: ips("10.0.0.1"),
			Ports: []Port{{Port: 80}}}, nil},
		{"no ports", &Service{Namespace: "ns", Name: "e", ClusterIPs: ips("10.0.0.1")}, nil},
		{"nil service", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.svc.Flatten()
			if d := diff(tt.want, got); d != "" {
				t.Errorf("Flatten() (-want +got):\n%s", d)
			}
			if (tt.want == nil) != (got == nil) {
				t.Errorf("Flatten() = %#v, want nil: %v", got, tt.want == nil)
			}
		})
	}
}

func TestFlattenSharesSlices(t *testing.T) {
	svc := loadBalancerService()
	for _, p := range svc.Flatten() {
		if &p.ClusterIPs[0] != &svc.ClusterIPs[0] || &p.ExternalIPs[0] != &svc.ExternalIPs[0] ||
			&p.LoadBalancerIPs[0] != &svc.LoadBalancerIPs[0] ||
			&p.LoadBalancerSourceRanges[0] != &svc.LoadBalancerSourceRanges[0] {
			t.Errorf("%v: slices are copies, want shared with the Service", p.Name)
		}
	}
}

func TestServicePortEqual(t *testing.T) {
	base := func() *ServicePort { return loadBalancerService().Flatten()[0] }
	tests := []struct {
		name string
		mut  func(p *ServicePort)
		want bool
	}{
		{"same", func(p *ServicePort) {}, true},
		{"copied slices", func(p *ServicePort) { p.ClusterIPs = ips("10.0.0.2", "fd00::2") }, true},
		{"nil and empty", func(p *ServicePort) { p.ExternalIPs = nil }, false},
		{"name", func(p *ServicePort) { p.Name.Port = "x" }, false},
		{"type", func(p *ServicePort) { p.Type = NodePort }, false},
		{"protocol", func(p *ServicePort) { p.Protocol = UDP }, false},
		{"port", func(p *ServicePort) { p.Port++ }, false},
		{"node port", func(p *ServicePort) { p.NodePort++ }, false},
		{"cluster IPs", func(p *ServicePort) { p.ClusterIPs = ips("10.0.0.2") }, false},
		{"external IPs", func(p *ServicePort) { p.ExternalIPs = ips("192.0.2.1", "2001:db8::2") }, false},
		{"load balancer IPs", func(p *ServicePort) { p.LoadBalancerIPs = nil }, false},
		{"source ranges", func(p *ServicePort) { p.LoadBalancerSourceRanges = prefixes("0.0.0.0/0") }, false},
		{"affinity", func(p *ServicePort) { p.Affinity.Timeout = 0 }, false},
		{"external policy", func(p *ServicePort) { p.ExternalTrafficPolicy = Cluster }, false},
		{"internal policy", func(p *ServicePort) { p.InternalTrafficPolicy = Local }, false},
		{"health check node port", func(p *ServicePort) { p.HealthCheckNodePort = 0 }, false},
		{"scheduler", func(p *ServicePort) { p.Scheduler = "rr" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, o := base(), base()
			tt.mut(o)
			if got := p.Equal(o); got != tt.want {
				t.Errorf("Equal() = %v, want %v", got, tt.want)
			}
			if got := o.Equal(p); got != tt.want {
				t.Errorf("Equal() reversed = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("nil versus empty slices", func(t *testing.T) {
		p, o := &ServicePort{}, &ServicePort{ClusterIPs: []netip.Addr{}, LoadBalancerSourceRanges: []netip.Prefix{}}
		if !p.Equal(o) {
			t.Error("Equal() = false, want true")
		}
	})
	t.Run("nil ports", func(t *testing.T) {
		var p *ServicePort
		if !p.Equal(nil) || p.Equal(base()) || base().Equal(nil) {
			t.Error("nil ServicePorts must equal only each other")
		}
	})
}

// flattenedSetsEqual is the definition sameProgram implements: flatten
// both, key by PortName (last wins), compare with Equal.
func flattenedSetsEqual(a, b *Service) bool {
	set := func(s *Service) map[PortName]*ServicePort {
		m := map[PortName]*ServicePort{}
		for _, p := range s.Flatten() {
			m[p.Name] = p
		}
		return m
	}
	sa, sb := set(a), set(b)
	if len(sa) != len(sb) {
		return false
	}
	for n, p := range sa {
		if !p.Equal(sb[n]) {
			return false
		}
	}
	return true
}

// randomVariant returns a copy of base with a few fields changed in ways
// that may or may not change what it flattens to.
func randomVariant(r *rand.Rand, base *Service) *Service {
	s := *base
	s.Ports = append([]Port(nil), base.Ports...)
	for range r.IntN(3) {
		switch r.IntN(12) {
		case 0:
			r.Shuffle(len(s.Ports), func(i, j int) { s.Ports[i], s.Ports[j] = s.Ports[j], s.Ports[i] })
		case 1:
			if len(s.Ports) > 0 {
				i := r.IntN(len(s.Ports))
				s.Ports[i].Protocol = []Protocol{"", TCP, UDP}[r.IntN(3)]
			}
		case 2:
			if len(s.Ports) > 0 {
				s.Ports = s.Ports[:len(s.Ports)-1]
			}
		case 3:
			s.Type = []Type{"", ClusterIP, NodePort, LoadBalancer, ExternalName}[r.IntN(5)]
		case 4:
			s.ClusterIPs = [][]netip.Addr{nil, ips("10.0.0.2"), ips("10.0.0.2", "fd00::2")}[r.IntN(3)]
		case 5:
			s.ExternalTrafficPolicy = []TrafficPolicy{"", Cluster, Local}[r.IntN(3)]
		case 6:
			s.InternalTrafficPolicy = []TrafficPolicy{"", Cluster, Local}[r.IntN(3)]
		case 7:
			s.Affinity = affinity.Config{ClientIP: r.IntN(2) == 0}
		case 8:
			s.Scheduler = []string{"", "rr", "wrr"}[r.IntN(3)]
		case 9:
			s.Ports = append(s.Ports, Port{Name: "http", Port: 80}) // maybe a duplicate key
		case 10:
			s.ExternalIPs = nil
		case 11:
			s.Name = []string{"lb", "other"}[r.IntN(2)]
		}
	}
	return &s
}

func TestSameProgramMatchesFlatten(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	base := loadBalancerService()
	var same, differ int
	for range 20000 {
		a, b := randomVariant(r, base), randomVariant(r, base)
		if r.IntN(10) == 0 {
			a = nil
		}
		got, want := sameProgram(a, b), flattenedSetsEqual(a, b)
		if got != want {
			t.Fatalf("sameProgram(\n%+v,\n%+v) = %v, want %v", a, b, got, want)
		}
		if got != sameProgram(b, a) {
			t.Fatalf("sameProgram is not symmetric for\n%+v\n%+v", a, b)
		}
		if got {
			same++
		} else {
			differ++
		}
	}
	if same < 1000 || differ < 1000 {
		t.Errorf("weak test: %d same, %d different pairs", same, differ)
	}
}

func TestFlattenDoesNotAliasPorts(t *testing.T) {
	svc := loadBalancerService()
	ps := svc.Flatten()
	ps[0].Port = 1
	if svc.Ports[0].Port != 80 || reflect.DeepEqual(ps[0], svc.Flatten()[0]) {
		t.Error("ServicePorts must be fresh values")
	}
}
