package k8s_test

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/proxykit/proxykit/k8s"
)

func ptr[T any](v T) *T { return &v }

// A dual-stack LoadBalancer Service as the API server stores it, and what
// the proxy gets of it.
func ExampleConvertService() {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{
			Type:       corev1.ServiceTypeLoadBalancer,
			ClusterIP:  "10.96.0.10",
			ClusterIPs: []string{"10.96.0.10", "fd00:10:96::a"},
			Ports: []corev1.ServicePort{
				{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, NodePort: 30080},
			},
			ExternalTrafficPolicy:    corev1.ServiceExternalTrafficPolicyLocal,
			HealthCheckNodePort:      32000,
			LoadBalancerSourceRanges: []string{"192.0.2.0/24"},
			SessionAffinity:          corev1.ServiceAffinityClientIP,
		},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{
			{IP: "203.0.113.1"},
			{Hostname: "lb.example.com"}, // no IP: skipped
			{IP: "203.0.113.2", IPMode: ptr(corev1.LoadBalancerIPModeProxy)}, // proxying LB: skipped
		}}},
	}
	s, err := k8s.ConvertService(svc)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Type, s.ClusterIPs, s.Ports)
	fmt.Println("LB IPs:", s.LoadBalancerIPs, "source ranges:", s.LoadBalancerSourceRanges)
	fmt.Println("policies:", s.ExternalTrafficPolicy, s.InternalTrafficPolicy, "health check:", s.HealthCheckNodePort)
	fmt.Println("affinity:", s.Affinity.ClientIP, s.Affinity.Timeout)

	// A mistake is reported with the object, the field and the value.
	svc.Spec.ClusterIPs[1] = "fd00:10:96::zz"
	_, err = k8s.ConvertService(svc)
	fmt.Println(err)
	// Output:
	// LoadBalancer [10.96.0.10 fd00:10:96::a] [{http TCP 80 30080}]
	// LB IPs: [203.0.113.1] source ranges: [192.0.2.0/24]
	// policies: Local Cluster health check: 32000
	// affinity: true 3h0m0s
	// k8s: Service "default/web": spec.clusterIPs[1]: invalid value "fd00:10:96::zz": not an IP address
}

// EndpointSlice conditions take the API's defaults when nil.
func ExampleConvertSlice() {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "default", Name: "web-abc12",
			Labels: map[string]string{discoveryv1.LabelServiceName: "web"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr[int32](8080)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.1.5"}, NodeName: ptr("node-a"),
				Hints: &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: "zone-1"}}}},
			{Addresses: []string{"10.244.2.7"}, Conditions: discoveryv1.EndpointConditions{
				Ready: ptr(false), Serving: ptr(true), Terminating: ptr(true)}},
		},
	}
	s, err := k8s.ConvertSlice(es)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Namespace, s.Service, s.Name, s.Ports)
	for _, e := range s.Endpoints {
		fmt.Printf("%v ready=%v serving=%v terminating=%v node=%q zones=%v\n",
			e.Addr, e.Ready, e.Serving, e.Terminating, e.NodeName, e.ZoneHints)
	}
	// Output:
	// default web web-abc12 [{http TCP 8080}]
	// 10.244.1.5 ready=true serving=true terminating=false node="node-a" zones=[zone-1]
	// 10.244.2.7 ready=false serving=true terminating=true node="" zones=[]
}
