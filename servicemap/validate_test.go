package servicemap

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/proxykit/proxykit/affinity"
)

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name string
		svc  *Service
	}{
		{"cluster IP", clusterIPService("default", "web")},
		{"load balancer with every field", loadBalancerService()},
		{"headless without ports", &Service{Namespace: "ns", Name: "headless"}},
		{"headless with ports", &Service{Namespace: "ns", Name: "headless", Ports: []Port{{Port: 80}}}},
		{"external name", &Service{Namespace: "ns", Name: "ext", Type: ExternalName}},
		{"external name with ports", &Service{Namespace: "ns", Name: "ext", Type: ExternalName, Ports: []Port{{Port: 80}}}},
		{"unnamed single port", &Service{Namespace: "ns", Name: "a", ClusterIPs: ips("fd00::1"), Ports: []Port{{Port: 1}}}},
		{"max port and 63-char names", &Service{
			Namespace: strings.Repeat("a", 63), Name: "z" + strings.Repeat("9", 62), ClusterIPs: ips("10.0.0.1"),
			Ports: []Port{{Name: "p-" + strings.Repeat("1", 61), Port: 65535}},
		}},
		{"namespace starting with digit", &Service{Namespace: "1ns", Name: "svc"}},
		{"same name different protocol", &Service{Namespace: "ns", Name: "dns", ClusterIPs: ips("10.0.0.10"),
			Ports: []Port{{Name: "dns", Protocol: UDP, Port: 53}, {Name: "dns", Port: 53}}}},
		{"same node port different protocol", &Service{Namespace: "ns", Name: "np", Type: NodePort, ClusterIPs: ips("10.0.0.1"),
			Ports: []Port{{Name: "a", Protocol: UDP, Port: 53, NodePort: 30053}, {Name: "b", Protocol: TCP, Port: 53, NodePort: 30053}}}},
		{"external IPs on cluster IP service", &Service{Namespace: "ns", Name: "x", ClusterIPs: ips("10.0.0.1"),
			Ports: []Port{{Port: 80}}, ExternalIPs: ips("192.0.2.1")}},
		{"external policy local on internal service", &Service{Namespace: "ns", Name: "x", ClusterIPs: ips("10.0.0.1"),
			Ports: []Port{{Port: 80}}, ExternalTrafficPolicy: Local, InternalTrafficPolicy: Local}},
		{"affinity default timeout", &Service{Namespace: "ns", Name: "x", ClusterIPs: ips("10.0.0.1"),
			Ports: []Port{{Port: 80}}, Affinity: affinity.Config{ClientIP: true}}},
		{"affinity max timeout", &Service{Namespace: "ns", Name: "x", ClusterIPs: ips("10.0.0.1"),
			Ports: []Port{{Port: 80}}, Affinity: affinity.Config{ClientIP: true, Timeout: affinity.MaxTimeout}}},
		{"many ports without duplicates", &Service{Namespace: "ns", Name: "x", ClusterIPs: ips("10.0.0.1"), Ports: manyPorts(40)}},
		{"node port service without node ports", &Service{Namespace: "ns", Name: "x", Type: NodePort, ClusterIPs: ips("10.0.0.1"),
			Ports: []Port{{Port: 80}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.svc.Validate(); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
		})
	}
}

func manyPorts(n int) []Port {
	ports := make([]Port, n)
	for i := range ports {
		ports[i] = Port{Name: "p" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Port: uint16(1000 + i), NodePort: 0}
	}
	return ports
}

// rejectTest changes a valid LoadBalancer service and lists the problems
// Validate must report.
type rejectTest struct {
	name string
	mut  func(s *Service) // applied to loadBalancerService()
	want []string
}

func runRejectTests(t *testing.T, tests []rejectTest) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := loadBalancerService()
			tt.mut(svc)
			got := problems(svc.Validate())
			if d := diff(tt.want, got); d != "" {
				t.Errorf("Validate() problems (-want +got):\n%s", d)
			}
		})
	}
}

// TestValidateRejectsNamesAndClusterIPs covers names, type and cluster IPs.
func TestValidateRejectsNamesAndClusterIPs(t *testing.T) {
	runRejectTests(t, []rejectTest{
		{"empty namespace", func(s *Service) { s.Namespace = "" },
			[]string{`Namespace: invalid value "": must not be empty`}},
		{"upper-case namespace", func(s *Service) { s.Namespace = "Prod" },
			[]string{`Namespace: invalid value "Prod": ` + reasonDNS1123}},
		{"namespace ending with dash", func(s *Service) { s.Namespace = "ns-" },
			[]string{`Namespace: invalid value "ns-": ` + reasonDNS1123}},
		{"namespace too long", func(s *Service) { s.Namespace = strings.Repeat("n", 64) },
			[]string{`Namespace: invalid value "` + strings.Repeat("n", 64) + `": ` + reasonDNS1123}},
		{"empty name", func(s *Service) { s.Name = "" },
			[]string{`Name: invalid value "": must not be empty`}},
		{"name starting with digit", func(s *Service) { s.Name = "1lb" },
			[]string{`Name: invalid value "1lb": ` + reasonDNS1035}},
		{"name with dot", func(s *Service) { s.Name = "lb.x" },
			[]string{`Name: invalid value "lb.x": ` + reasonDNS1035}},
		{"unknown type skips type rules", func(s *Service) { s.Type = "Balancer" },
			[]string{`Type: invalid value "Balancer": must be "ClusterIP", "NodePort", "LoadBalancer" or "ExternalName" (empty means ClusterIP)`}},
		{"zero cluster IP", func(s *Service) { s.ClusterIPs = []netip.Addr{{}} },
			[]string{`ClusterIPs[0]: invalid value <zero Addr>: must be a valid IP address`}},
		{"zoned cluster IP", func(s *Service) { s.ClusterIPs = ips("10.0.0.1", "fe80::1%eth0") },
			[]string{`ClusterIPs[1]: invalid value fe80::1%eth0: must not have an IPv6 zone`}},
		{"IPv4-mapped cluster IP", func(s *Service) { s.ClusterIPs = ips("::ffff:1.2.3.4") },
			[]string{`ClusterIPs[0]: invalid value ::ffff:1.2.3.4: IPv4-mapped IPv6 address mixes up the IP families; use 1.2.3.4`}},
		{"unspecified cluster IPs", func(s *Service) { s.ClusterIPs = ips("0.0.0.0", "::") },
			[]string{
				`ClusterIPs[0]: invalid value 0.0.0.0: must not be the unspecified address`,
				`ClusterIPs[1]: invalid value ::: must not be the unspecified address`,
			}},
		{"loopback cluster IPs", func(s *Service) { s.ClusterIPs = ips("127.0.0.1", "::1") },
			[]string{
				`ClusterIPs[0]: invalid value 127.0.0.1: must not be a loopback address`,
				`ClusterIPs[1]: invalid value ::1: must not be a loopback address`,
			}},
		{"multicast cluster IPs", func(s *Service) { s.ClusterIPs = ips("224.0.0.1", "ff02::1") },
			[]string{
				`ClusterIPs[0]: invalid value 224.0.0.1: must not be a multicast address`,
				`ClusterIPs[1]: invalid value ff02::1: must not be a multicast address`,
			}},
		{"link-local cluster IPs", func(s *Service) { s.ClusterIPs = ips("169.254.0.1", "fe80::1") },
			[]string{
				`ClusterIPs[0]: invalid value 169.254.0.1: must not be a link-local address`,
				`ClusterIPs[1]: invalid value fe80::1: must not be a link-local address`,
			}},
		{"two IPv4 cluster IPs", func(s *Service) { s.ClusterIPs = ips("10.0.0.1", "10.0.0.2") },
			[]string{`ClusterIPs[1]: invalid value 10.0.0.2: second IPv4 address (the first is ClusterIPs[0]); at most one per IP family`}},
		{"two IPv6 cluster IPs", func(s *Service) { s.ClusterIPs = ips("fd00::1", "fd00::2") },
			[]string{`ClusterIPs[1]: invalid value fd00::2: second IPv6 address (the first is ClusterIPs[0]); at most one per IP family`}},
		// Kubernetes allows clusterIP None only on ClusterIP services; a
		// headless NodePort would silently get no rules.
		{"headless NodePort", func(s *Service) {
			s.ClusterIPs, s.Type = nil, NodePort
			s.LoadBalancerIPs, s.LoadBalancerSourceRanges, s.HealthCheckNodePort = nil, nil, 0
		},
			[]string{`ClusterIPs: invalid value []: must not be empty for a NodePort service: only ClusterIP services may be headless`}},
		{"headless LoadBalancer", func(s *Service) { s.ClusterIPs = nil; s.Type = LoadBalancer },
			[]string{`ClusterIPs: invalid value []: must not be empty for a LoadBalancer service: only ClusterIP services may be headless`}},
		{"three cluster IPs", func(s *Service) { s.ClusterIPs = ips("10.0.0.1", "fd00::1", "10.0.0.2") },
			[]string{
				`ClusterIPs: invalid value [10.0.0.1 fd00::1 10.0.0.2]: must hold at most 2 addresses, one per IP family`,
				`ClusterIPs[2]: invalid value 10.0.0.2: second IPv4 address (the first is ClusterIPs[0]); at most one per IP family`,
			}},
	})
}

// TestValidateRejectsPorts covers the port rules.
func TestValidateRejectsPorts(t *testing.T) {
	runRejectTests(t, []rejectTest{
		{"no ports", func(s *Service) { s.Ports = nil },
			[]string{`Ports: invalid value []: must have at least one port unless the service is headless (no ClusterIPs) or ExternalName`}},
		{"port zero", func(s *Service) { s.Ports[1].Port = 0 },
			[]string{`Ports[1].Port: invalid value 0: must be 1-65535`}},
		{"unknown protocol", func(s *Service) { s.Ports[0].Protocol = "tcp" },
			[]string{`Ports[0].Protocol: invalid value "tcp": must be "TCP", "UDP" or "SCTP" (empty means TCP)`}},
		{"duplicate name and protocol", func(s *Service) { s.Ports[2].Name = "http"; s.Ports[2].Protocol = "" },
			[]string{`Ports[2].Name: invalid value "http": duplicate of Ports[0] (same name and protocol TCP)`}},
		{"duplicate port and protocol", func(s *Service) { s.Ports[2].Port = 80 },
			[]string{`Ports[2].Port: invalid value 80: duplicate of Ports[0] (same port and protocol TCP)`}},
		{"missing port names", func(s *Service) { s.Ports[0].Name = ""; s.Ports[3].Name = "" },
			[]string{
				`Ports[0].Name: invalid value "": must be set when the service has more than one port`,
				`Ports[3].Name: invalid value "": must be set when the service has more than one port`,
			}},
		{"bad port names", func(s *Service) { s.Ports[0].Name = "HTTP"; s.Ports[1].Name = strings.Repeat("d", 64) },
			[]string{
				`Ports[0].Name: invalid value "HTTP": ` + reasonDNS1123,
				`Ports[1].Name: invalid value "` + strings.Repeat("d", 64) + `": ` + reasonDNS1123,
			}},
		{"duplicate node port", func(s *Service) { s.Ports[2].NodePort = 30080 },
			[]string{`Ports[2].NodePort: invalid value 30080: duplicate of Ports[0].NodePort (same node port and protocol TCP)`}},
		{"node port on cluster IP service", func(s *Service) { *s = *clusterIPService("ns", "lb"); s.Ports[0].NodePort = 30000 },
			[]string{`Ports[0].NodePort: invalid value 30000: only NodePort and LoadBalancer services may have one (type is ClusterIP)`}},
		{"node port on external name service", func(s *Service) {
			*s = Service{Namespace: "ns", Name: "x", Type: ExternalName, Ports: []Port{{Port: 80, NodePort: 30000}}}
		}, []string{`Ports[0].NodePort: invalid value 30000: only NodePort and LoadBalancer services may have one (type is ExternalName)`}},
		{"duplicates among many ports", func(s *Service) {
			s.Type = ClusterIP
			s.LoadBalancerIPs, s.LoadBalancerSourceRanges, s.HealthCheckNodePort = nil, nil, 0
			s.Ports = manyPorts(20)
			s.Ports[17].Name = s.Ports[3].Name
			s.Ports[18].Port = s.Ports[4].Port
		}, []string{
			`Ports[17].Name: invalid value "pda": duplicate of Ports[3] (same name and protocol TCP)`,
			`Ports[18].Port: invalid value 1004: duplicate of Ports[4] (same port and protocol TCP)`,
		}},
	})
}

// TestValidateRejectsServiceWideFields covers external and load-balancer
// addresses, source ranges, affinity, traffic policies and the scheduler.
func TestValidateRejectsServiceWideFields(t *testing.T) {
	runRejectTests(t, []rejectTest{
		{"cluster and external IPs on external name service", func(s *Service) {
			*s = Service{Namespace: "ns", Name: "x", Type: ExternalName, ClusterIPs: ips("10.0.0.1"), ExternalIPs: ips("192.0.2.1")}
		}, []string{
			`ClusterIPs: invalid value [10.0.0.1]: must be empty for an ExternalName service`,
			`ExternalIPs: invalid value [192.0.2.1]: must be empty for an ExternalName service`,
		}},
		{"bad external IPs", func(s *Service) { s.ExternalIPs = ips("192.0.2.1", "127.0.0.2", "::ffff:192.0.2.1") },
			[]string{
				`ExternalIPs[1]: invalid value 127.0.0.2: must not be a loopback address`,
				`ExternalIPs[2]: invalid value ::ffff:192.0.2.1: IPv4-mapped IPv6 address mixes up the IP families; use 192.0.2.1`,
			}},
		{"bad load balancer IP", func(s *Service) { s.LoadBalancerIPs = []netip.Addr{{}} },
			[]string{`LoadBalancerIPs[0]: invalid value <zero Addr>: must be a valid IP address`}},
		{"load balancer fields on node port service", func(s *Service) {
			s.Type = NodePort
			s.HealthCheckNodePort = 0
		}, []string{
			`LoadBalancerIPs: invalid value [198.51.100.1]: only LoadBalancer services may have them (type is NodePort)`,
			`LoadBalancerSourceRanges: invalid value [203.0.113.0/24 2001:db8:1::/48 0.0.0.0/0]: only LoadBalancer services may have them (type is NodePort)`,
		}},
		{"bad source ranges", func(s *Service) {
			s.LoadBalancerSourceRanges = []netip.Prefix{
				{},
				netip.PrefixFrom(netip.MustParseAddr("10.0.0.0"), 33),
				netip.MustParsePrefix("10.0.0.1/8"),
				netip.MustParsePrefix("::ffff:10.1.0.0/112"),
				netip.MustParsePrefix("::ffff:0.0.0.0/64"),
				netip.MustParsePrefix("2001:db8::1/32"),
			}
		}, []string{
			`LoadBalancerSourceRanges[0]: invalid value <zero Prefix>: must be a valid prefix`,
			`LoadBalancerSourceRanges[1]: invalid value 10.0.0.0/<invalid length>: prefix length must be 0-32`,
			`LoadBalancerSourceRanges[2]: invalid value 10.0.0.1/8: host bits are set; the masked form is 10.0.0.0/8`,
			`LoadBalancerSourceRanges[3]: invalid value ::ffff:10.1.0.0/112: IPv4-mapped IPv6 prefix mixes up the IP families; use 10.1.0.0/16`,
			`LoadBalancerSourceRanges[4]: invalid value ::ffff:0.0.0.0/64: IPv4-mapped IPv6 prefix mixes up the IP families; use an IPv4 prefix`,
			`LoadBalancerSourceRanges[5]: invalid value 2001:db8::1/32: host bits are set; the masked form is 2001:db8::/32`,
		}},
		{"affinity timeout too long", func(s *Service) { s.Affinity.Timeout = 90000 * time.Second },
			[]string{`Affinity.Timeout: invalid value 25h0m0s: must be between 1s and 86400s`}},
		{"affinity timeout not whole seconds", func(s *Service) { s.Affinity.Timeout = 1500 * time.Millisecond },
			[]string{`Affinity.Timeout: invalid value 1.5s: must be a whole number of seconds`}},
		{"affinity timeout without client IP", func(s *Service) { s.Affinity = affinity.Config{Timeout: time.Second} },
			[]string{`Affinity.Timeout: invalid value 1s: timeout is set but ClientIP affinity is off`}},
		{"unknown traffic policies", func(s *Service) { s.ExternalTrafficPolicy = "local"; s.InternalTrafficPolicy = "Node" },
			[]string{
				`ExternalTrafficPolicy: invalid value "local": ` + reasonPolicy,
				`InternalTrafficPolicy: invalid value "Node": ` + reasonPolicy,
			}},
		{"health check node port without local policy", func(s *Service) { s.ExternalTrafficPolicy = "" },
			[]string{`HealthCheckNodePort: invalid value 32000: requires ExternalTrafficPolicy Local`}},
		{"health check node port on node port service", func(s *Service) {
			s.Type, s.LoadBalancerIPs, s.LoadBalancerSourceRanges = NodePort, nil, nil
		}, []string{`HealthCheckNodePort: invalid value 32000: only LoadBalancer services may have one (type is NodePort)`}},
		{"health check node port on cluster policy node port service", func(s *Service) {
			s.Type, s.LoadBalancerIPs, s.LoadBalancerSourceRanges, s.ExternalTrafficPolicy = NodePort, nil, nil, Cluster
		}, []string{
			`HealthCheckNodePort: invalid value 32000: requires ExternalTrafficPolicy Local`,
			`HealthCheckNodePort: invalid value 32000: only LoadBalancer services may have one (type is NodePort)`,
		}},
		{"scheduler with space", func(s *Service) { s.Scheduler = "w rr" },
			[]string{`Scheduler: invalid value "w rr": must contain only lower-case letters and digits`}},
		{"scheduler with rule injection", func(s *Service) { s.Scheduler = "rr\n-A" },
			[]string{`Scheduler: invalid value "rr\n-A": must contain only lower-case letters and digits`}},
	})
}

func TestValidateNil(t *testing.T) {
	var s *Service
	want := []string{"Service: invalid value <nil>: must not be nil"}
	if d := diff(want, problems(s.Validate())); d != "" {
		t.Errorf("Validate() problems (-want +got):\n%s", d)
	}
}

func TestValidateReportsAllProblems(t *testing.T) {
	svc := &Service{
		Namespace:  "NS",                                                  // 1
		Name:       "web",                                                 //
		ClusterIPs: ips("10.0.0.1", "127.0.0.1"),                          // 2: loopback (not also a second IPv4)
		Ports:      []Port{{Name: "a", Port: 0}, {Port: 81, NodePort: 1}}, // 3: port 0, 4: no name, 5: node port
		Scheduler:  "RR",                                                  // 6
	}
	err := svc.Validate()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate() = %v, want a *ValidationError", err)
	}
	if len(ve.Errors) != 6 {
		t.Errorf("Validate() found %d problems, want 6:\n%s", len(ve.Errors), strings.Join(problems(err), "\n"))
	}
	if want := (ServiceName{"NS", "web"}); ve.Service != want {
		t.Errorf("ValidationError.Service = %v, want %v", ve.Service, want)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "Namespace" || fe.Value != "NS" {
		t.Errorf("errors.As(err, *FieldError) = %+v, want the Namespace problem", fe)
	}
	wantMsg := `servicemap: service "NS/web": 6 problems: Namespace: invalid value "NS": ` + reasonDNS1123 +
		`; ClusterIPs[1]: invalid value 127.0.0.1: must not be a loopback address` +
		`; Ports[0].Port: invalid value 0: must be 1-65535` +
		`; Ports[1].Name: invalid value "": must be set when the service has more than one port` +
		`; Ports[1].NodePort: invalid value 1: only NodePort and LoadBalancer services may have one (type is ClusterIP)` +
		`; Scheduler: invalid value "RR": must contain only lower-case letters and digits`
	if got := err.Error(); got != wantMsg {
		t.Errorf("Error() =\n%s\nwant\n%s", got, wantMsg)
	}
}

func TestErrorMessages(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"field error", &FieldError{Field: "Ports[1].Port", Value: uint16(0), Reason: "must be 1-65535"},
			"servicemap: Ports[1].Port: invalid value 0: must be 1-65535"},
		{"one problem", &ValidationError{Service: ServiceName{"ns", "a"}, Errors: []*FieldError{{Field: "Scheduler", Value: "A", Reason: "bad"}}},
			`servicemap: service "ns/a": Scheduler: invalid value "A": bad`},
		{"no problems listed", &ValidationError{Service: ServiceName{"ns", "a"}},
			`servicemap: service "ns/a": invalid`},
		{"typed string values are quoted", &FieldError{Field: "Type", Value: Type("x"), Reason: "r"},
			`servicemap: Type: invalid value "x": r`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}
