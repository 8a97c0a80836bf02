package k8s

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// FuzzConvert feeds arbitrary strings into the fields the conversions
// parse: they must never panic, and whatever they return without an
// error must be valid.
func FuzzConvert(f *testing.F) {
	f.Add("10.96.0.10", "192.0.2.1", "203.0.113.1", "10.0.0.0/8", "192.0.2.0/24,", "10.244.1.5", int32(80))
	f.Add("fd00::a", "010.0.0.1", "", " 10.1.2.3/8 ", "", "fd00::5", int32(0))
	f.Add("None", "::ffff:1.2.3.4", "x", "::ffff:10.0.0.0/104", "a,b", "", int32(-1))
	f.Fuzz(func(t *testing.T, clusterIP, extIP, lbIP, srcRange, annotation, epAddr string, port int32) {
		svc := service(loadBalancer, func(s *corev1.Service) {
			s.Spec.ClusterIPs = []string{clusterIP}
			s.Spec.ExternalIPs = []string{extIP}
			s.Spec.LoadBalancerSourceRanges = []string{srcRange}
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: lbIP}}
			s.Annotations = map[string]string{AnnotationLoadBalancerSourceRanges: annotation, AnnotationScheduler: annotation}
			s.Spec.Ports[0].Port = port
		})
		if got, err := ConvertService(svc); err == nil {
			if verr := got.Validate(); verr != nil {
				t.Fatalf("ConvertService returned an invalid service: %v", verr)
			}
		}
		svc.Spec.LoadBalancerSourceRanges = nil
		_, _ = ConvertService(svc)

		es := endpointSlice(func(es *discoveryv1.EndpointSlice) {
			es.Endpoints[0].Addresses = []string{epAddr}
			es.Ports[0].Port = &port
		})
		for _, typ := range []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6} {
			es.AddressType = typ
			if got, err := ConvertSlice(es); err == nil {
				if verr := got.Validate(); verr != nil {
					t.Fatalf("ConvertSlice returned an invalid slice: %v", verr)
				}
			}
		}
	})
}
