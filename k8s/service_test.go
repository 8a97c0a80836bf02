package k8s

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/proxykit/proxykit/affinity"
	"github.com/proxykit/proxykit/servicemap"
)

// service returns a ClusterIP Service default/web with one port, changed
// by the mutators.
func service(mut ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{
			ClusterIP:  "10.96.0.10",
			ClusterIPs: []string{"10.96.0.10"},
			Ports:      []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}},
		},
	}
	for _, m := range mut {
		m(s)
	}
	return s
}

// model returns the conversion of service() with no mutators, changed by
// the mutators.
func model(mut ...func(*servicemap.Service)) *servicemap.Service {
	s := &servicemap.Service{
		Namespace: "default", Name: "web", Type: servicemap.ClusterIP,
		ClusterIPs:            addrs("10.96.0.10"),
		Ports:                 []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80}},
		ExternalTrafficPolicy: servicemap.Cluster,
		InternalTrafficPolicy: servicemap.Cluster,
	}
	for _, m := range mut {
		m(s)
	}
	return s
}

func loadBalancer(s *corev1.Service) {
	s.Spec.Type = corev1.ServiceTypeLoadBalancer
	s.Spec.Ports[0].NodePort = 30080
}

func modelLB(s *servicemap.Service) {
	s.Type = servicemap.LoadBalancer
	s.Ports[0].NodePort = 30080
}

func ingress(ip, hostname string, mode *corev1.LoadBalancerIPMode) corev1.LoadBalancerIngress {
	return corev1.LoadBalancerIngress{IP: ip, Hostname: hostname, IPMode: mode}
}

func TestConvertService(t *testing.T) {
	tests := []struct {
		name    string
		in      *corev1.Service
		want    *servicemap.Service
		wantErr string
	}{
		{
			name: "ClusterIP with defaults filled in",
			in:   service(func(s *corev1.Service) { s.Spec.Ports[0].Protocol = "" }),
			want: model(),
		},
		{
			name: "dual-stack clusterIPs",
			in: service(func(s *corev1.Service) {
				s.Spec.ClusterIPs = []string{"fd00:10:96::a", "10.96.0.10"}
				s.Spec.ClusterIP = "fd00:10:96::a"
			}),
			want: model(func(s *servicemap.Service) { s.ClusterIPs = addrs("fd00:10:96::a", "10.96.0.10") }),
		},
		{
			name: "clusterIP used when clusterIPs is empty",
			in:   service(func(s *corev1.Service) { s.Spec.ClusterIPs = nil }),
			want: model(),
		},
		{
			name: "IPv4 with leading zeros read as kube-proxy reads it",
			in: service(func(s *corev1.Service) {
				s.Spec.ClusterIPs = []string{"010.096.000.010"}
				s.Spec.ExternalIPs = []string{"192.0.2.1", "192.000.2.1"}
			}),
			want: model(func(s *servicemap.Service) {
				s.ClusterIPs = addrs("10.96.0.10")
				s.ExternalIPs = addrs("192.0.2.1")
			}),
		},
		{
			name: "headless None: no rules, ports not needed",
			in: service(func(s *corev1.Service) {
				s.Spec.ClusterIP, s.Spec.ClusterIPs = corev1.ClusterIPNone, []string{corev1.ClusterIPNone}
				s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: 0})
			}),
			want: &servicemap.Service{Namespace: "default", Name: "web", Type: servicemap.ClusterIP},
		},
		{
			name: "headless without any cluster IP",
			in:   service(func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "", nil }),
			want: &servicemap.Service{Namespace: "default", Name: "web", Type: servicemap.ClusterIP},
		},
		{
			name: "ExternalName: no rules",
			in: service(func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeExternalName
				s.Spec.ExternalName = "example.com"
				s.Spec.ClusterIP, s.Spec.ClusterIPs = "", nil
			}),
			want: &servicemap.Service{Namespace: "default", Name: "web", Type: servicemap.ExternalName},
		},
		{
			name: "NodePort with UDP and SCTP ports",
			in: service(func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeNodePort
				s.Spec.Ports = []corev1.ServicePort{
					{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, NodePort: 30053},
					{Name: "sig", Protocol: corev1.ProtocolSCTP, Port: 3868, NodePort: 30868},
				}
			}),
			want: model(func(s *servicemap.Service) {
				s.Type = servicemap.NodePort
				s.Ports = []servicemap.Port{
					{Name: "dns", Protocol: servicemap.UDP, Port: 53, NodePort: 30053},
					{Name: "sig", Protocol: servicemap.SCTP, Port: 3868, NodePort: 30868},
				}
			}),
		},
		{
			name: "nodePort of a ClusterIP service is dropped",
			in:   service(func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30080 }),
			want: model(),
		},
		{
			name: "LoadBalancer: VIP ingress IPs kept, hostname-only and ipMode Proxy skipped, duplicates removed",
			in: service(loadBalancer, func(s *corev1.Service) {
				s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{
					ingress("203.0.113.1", "", nil),
					ingress("", "lb.example.com", nil),
					ingress("203.0.113.2", "", ptr(corev1.LoadBalancerIPModeProxy)),
					ingress("2001:db8::1", "", ptr(corev1.LoadBalancerIPModeVIP)),
					ingress("203.0.113.1", "lb.example.com", nil),
				}
			}),
			want: model(modelLB, func(s *servicemap.Service) { s.LoadBalancerIPs = addrs("203.0.113.1", "2001:db8::1") }),
		},
		{
			name: "LoadBalancer with only a hostname has no LB IPs",
			in: service(loadBalancer, func(s *corev1.Service) {
				s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{ingress("", "lb.example.com", nil)}
			}),
			want: model(modelLB),
		},
		{
			name: "ingress status of a non-LoadBalancer service is ignored",
			in: service(func(s *corev1.Service) {
				s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{ingress("203.0.113.1", "", nil)}
				s.Spec.LoadBalancerSourceRanges = []string{"10.0.0.0/8"}
			}),
			want: model(),
		},
		{
			name: "source ranges: trimmed, masked, deduplicated; the field wins over the annotation",
			in: service(loadBalancer, func(s *corev1.Service) {
				s.Spec.LoadBalancerSourceRanges = []string{" 10.1.2.3/8 ", "10.0.0.0/8", "2001:db8::/32"}
				s.Annotations = map[string]string{AnnotationLoadBalancerSourceRanges: "192.0.2.0/24"}
			}),
			want: model(modelLB, func(s *servicemap.Service) {
				s.LoadBalancerSourceRanges = prefixes("10.0.0.0/8", "2001:db8::/32")
			}),
		},
		{
			name: "source ranges from the annotation when the field is empty",
			in: service(loadBalancer, func(s *corev1.Service) {
				s.Annotations = map[string]string{AnnotationLoadBalancerSourceRanges: " 192.0.2.0/24, 198.51.100.0/24 ,"}
			}),
			want: model(modelLB, func(s *servicemap.Service) {
				s.LoadBalancerSourceRanges = prefixes("192.0.2.0/24", "198.51.100.0/24")
			}),
		},
		{
			name: "health-check node port with external policy Local",
			in: service(loadBalancer, func(s *corev1.Service) {
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
				s.Spec.HealthCheckNodePort = 32000
			}),
			want: model(modelLB, func(s *servicemap.Service) {
				s.ExternalTrafficPolicy = servicemap.Local
				s.HealthCheckNodePort = 32000
			}),
		},
		{
			name: "health-check node port ignored with external policy Cluster",
			in: service(loadBalancer, func(s *corev1.Service) {
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
				s.Spec.HealthCheckNodePort = 32000
			}),
			want: model(modelLB),
		},
		{
			name: "internal policy Local, external IPs with external policy Local",
			in: service(func(s *corev1.Service) {
				s.Spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyLocal)
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
				s.Spec.ExternalIPs = []string{"192.0.2.1", "2001:db8::2"}
			}),
			want: model(func(s *servicemap.Service) {
				s.InternalTrafficPolicy = servicemap.Local
				s.ExternalTrafficPolicy = servicemap.Local
				s.ExternalIPs = addrs("192.0.2.1", "2001:db8::2")
			}),
		},
		{
			name: "internal policy Cluster given explicitly",
			in: service(func(s *corev1.Service) {
				s.Spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyCluster)
			}),
			want: model(),
		},
		{
			name: "ClientIP affinity without config: default timeout",
			in:   service(func(s *corev1.Service) { s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP }),
			want: model(func(s *servicemap.Service) {
				s.Affinity = affinity.Config{ClientIP: true, Timeout: affinity.DefaultTimeout}
			}),
		},
		{
			name: "ClientIP affinity with config but nil timeout: default timeout",
			in: service(func(s *corev1.Service) {
				s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
				s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{}}
			}),
			want: model(func(s *servicemap.Service) {
				s.Affinity = affinity.Config{ClientIP: true, Timeout: 10800 * time.Second}
			}),
		},
		{
			name: "ClientIP affinity with timeout",
			in: service(func(s *corev1.Service) {
				s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
				s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr[int32](60)}}
			}),
			want: model(func(s *servicemap.Service) { s.Affinity = affinity.Config{ClientIP: true, Timeout: time.Minute} }),
		},
		{
			name: "affinity None ignores a leftover config",
			in: service(func(s *corev1.Service) {
				s.Spec.SessionAffinity = corev1.ServiceAffinityNone
				s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr[int32](60)}}
			}),
			want: model(),
		},
		{
			name: "trafficDistribution is carried by the slices' hints, not the service",
			in: service(func(s *corev1.Service) {
				s.Spec.TrafficDistribution = ptr(corev1.ServiceTrafficDistributionPreferSameNode)
			}),
			want: model(),
		},
		{
			name: "IPVS scheduler from the annotation",
			in:   service(func(s *corev1.Service) { s.Annotations = map[string]string{AnnotationScheduler: "wrr"} }),
			want: model(func(s *servicemap.Service) { s.Scheduler = "wrr" }),
		},

		// Errors.
		{
			name:    "nil",
			wantErr: `k8s: Service "": Service: invalid value <nil>: must not be nil`,
		},
		{
			name:    "cluster IP that does not parse",
			in:      service(func(s *corev1.Service) { s.Spec.ClusterIPs = []string{"10.96.0.x"} }),
			wantErr: `k8s: Service "default/web": spec.clusterIPs[0]: invalid value "10.96.0.x": not an IP address`,
		},
		{
			name:    "clusterIP fallback that does not parse",
			in:      service(func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "nope", nil }),
			wantErr: `spec.clusterIP: invalid value "nope": not an IP address`,
		},
		{
			name: "every conversion problem at once",
			in: service(loadBalancer, func(s *corev1.Service) {
				s.Spec.Ports[0].Port = 70000
				s.Spec.Ports[0].NodePort = -1
				s.Spec.ExternalIPs = []string{"192.0.2.1", "x"}
				s.Spec.LoadBalancerSourceRanges = []string{"10.0.0.0/33"}
				s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{ingress("y", "", nil)}
			}),
			wantErr: `spec.ports[0].port: invalid value 70000: must be 1-65535|` +
				`spec.ports[0].nodePort: invalid value -1|` +
				`spec.externalIPs[1]: invalid value "x"|` +
				`spec.loadBalancerSourceRanges[0]: invalid value "10.0.0.0/33": not a CIDR|` +
				`status.loadBalancer.ingress[0].ip: invalid value "y"`,
		},
		{
			name: "bad annotation source range",
			in: service(loadBalancer, func(s *corev1.Service) {
				s.Annotations = map[string]string{AnnotationLoadBalancerSourceRanges: "10.0.0.0/8,bad"}
			}),
			wantErr: `metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]: invalid value "bad": not a CIDR`,
		},
		{
			name:    "port 0",
			in:      service(func(s *corev1.Service) { s.Spec.Ports[0].Port = 0 }),
			wantErr: `spec.ports[0].port: invalid value 0: must be 1-65535`,
		},
		{
			name:    "unknown type",
			in:      service(func(s *corev1.Service) { s.Spec.Type = "Magic" }),
			wantErr: `spec.type: invalid value "Magic"`,
		},
		{
			name:    "unknown affinity",
			in:      service(func(s *corev1.Service) { s.Spec.SessionAffinity = "Cookie" }),
			wantErr: `spec.sessionAffinity: invalid value "Cookie"`,
		},
		{
			name: "affinity timeout 0",
			in: service(func(s *corev1.Service) {
				s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
				s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr[int32](0)}}
			}),
			wantErr: `spec.sessionAffinityConfig.clientIP.timeoutSeconds: invalid value 0: must be 1-86400`,
		},
		{
			name: "affinity timeout above a day",
			in: service(func(s *corev1.Service) {
				s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
				s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr[int32](86401)}}
			}),
			wantErr: `timeoutSeconds: invalid value 86401`,
		},
		{
			name: "unknown traffic policies",
			in: service(func(s *corev1.Service) {
				s.Spec.ExternalTrafficPolicy = "Global"
				s.Spec.InternalTrafficPolicy = ptr[corev1.ServiceInternalTrafficPolicy]("Node")
			}),
			wantErr: `spec.externalTrafficPolicy: invalid value "Global"|spec.internalTrafficPolicy: invalid value "Node"`,
		},
		{
			name: "model validation passed through: unnamed ports, loopback external IP",
			in: service(func(s *corev1.Service) {
				s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: 81})
				s.Spec.ExternalIPs = []string{"127.0.0.1"}
			}),
			wantErr: `k8s: Service "default/web": servicemap: service "default/web": 2 problems: Ports[1].Name|ExternalIPs[0]`,
		},
		{
			name:    "invalid scheduler annotation",
			in:      service(func(s *corev1.Service) { s.Annotations = map[string]string{AnnotationScheduler: "W R R"} }),
			wantErr: `Scheduler: invalid value "W R R"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ConvertService(tt.in)
			if !checkErr(t, err, tt.wantErr) {
				if got != nil {
					t.Errorf("got %+v with the error, want nil", got)
				}
				var e *Error
				if !errors.As(err, &e) || e.Kind != "Service" {
					t.Errorf("error %v is not a Service *Error", err)
				}
				return
			}
			if d := cmp.Diff(tt.want, got, cmpOpts); d != "" {
				t.Errorf("ConvertService() (-want +got):\n%s", d)
			}
		})
	}
}

func TestConvertServiceErrorTypes(t *testing.T) {
	_, err := ConvertService(service(func(s *corev1.Service) { s.Spec.Ports[0].Port = -5 }))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "spec.ports[0].port" || fe.Value != int32(-5) {
		t.Errorf("errors.As(%v, *FieldError) = %+v", err, fe)
	}
	_, err = ConvertService(service(func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"224.0.0.1"} }))
	var ve *servicemap.ValidationError
	if !errors.As(err, &ve) || ve.Service != (servicemap.ServiceName{Namespace: "default", Name: "web"}) {
		t.Errorf("errors.As(%v, *servicemap.ValidationError) = %+v", err, ve)
	}
}

func TestConvertServiceDoesNotModifyInput(t *testing.T) {
	in := service(loadBalancer, func(s *corev1.Service) {
		s.Spec.LoadBalancerSourceRanges = []string{" 10.1.2.3/8 "}
		s.Spec.ExternalIPs = []string{"192.0.2.1", "192.0.2.1"}
	})
	before := in.DeepCopy()
	if _, err := ConvertService(in); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(before, in); d != "" {
		t.Errorf("input modified (-before +after):\n%s", d)
	}
}
