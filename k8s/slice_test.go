package k8s

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// endpointSlice returns an IPv4 slice default/web-abc of service web
// with port http 8080 and one endpoint without conditions, changed by the
// mutators.
func endpointSlice(mut ...func(*discoveryv1.EndpointSlice)) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "default", Name: "web-abc",
			Labels: map[string]string{discoveryv1.LabelServiceName: "web"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Protocol: ptr(corev1.ProtocolTCP), Port: ptr[int32](8080)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.1.5"}}},
	}
	for _, m := range mut {
		m(es)
	}
	return es
}

// modelSlice is the conversion of endpointSlice(), changed by the
// mutators.
func modelSlice(mut ...func(*endpoints.Slice)) *endpoints.Slice {
	s := &endpoints.Slice{
		Namespace: "default", Service: "web", Name: "web-abc",
		Ports:     []endpoints.Port{{Name: "http", Protocol: servicemap.TCP, Port: 8080}},
		Endpoints: []endpoints.Endpoint{{Addr: addrs("10.244.1.5")[0], Ready: true, Serving: true}},
	}
	for _, m := range mut {
		m(s)
	}
	return s
}

func conditions(ready, serving, terminating *bool) func(*discoveryv1.EndpointSlice) {
	return func(es *discoveryv1.EndpointSlice) {
		es.Endpoints[0].Conditions = discoveryv1.EndpointConditions{Ready: ready, Serving: serving, Terminating: terminating}
	}
}

func modelConditions(ready, serving, terminating bool) func(*endpoints.Slice) {
	return func(s *endpoints.Slice) {
		e := &s.Endpoints[0]
		e.Ready, e.Serving, e.Terminating = ready, serving, terminating
	}
}

func TestConvertSlice(t *testing.T) {
	yes, no := ptr(true), ptr(false)
	tests := []struct {
		name    string
		in      *discoveryv1.EndpointSlice
		want    *endpoints.Slice
		wantErr string
		ignored bool
	}{
		{name: "nil conditions: ready, serving, not terminating", in: endpointSlice(), want: modelSlice()},
		{
			name: "not ready, serving nil is true (as kube-proxy reads it)",
			in:   endpointSlice(conditions(no, nil, nil)),
			want: modelSlice(modelConditions(false, true, false)),
		},
		{
			name: "terminating and serving, not ready",
			in:   endpointSlice(conditions(no, yes, yes)),
			want: modelSlice(modelConditions(false, true, true)),
		},
		{
			name: "terminating, not serving",
			in:   endpointSlice(conditions(no, no, yes)),
			want: modelSlice(modelConditions(false, false, true)),
		},
		{
			name: "ready nil with serving false",
			in:   endpointSlice(conditions(nil, no, no)),
			want: modelSlice(modelConditions(true, false, false)),
		},
		{
			name: "node name, zone, zone and node hints",
			in: endpointSlice(func(es *discoveryv1.EndpointSlice) {
				e := &es.Endpoints[0]
				e.NodeName, e.Zone = ptr("node-a"), ptr("zone-1")
				e.Hints = &discoveryv1.EndpointHints{
					ForZones: []discoveryv1.ForZone{{Name: "zone-1"}, {Name: "zone-2"}},
					ForNodes: []discoveryv1.ForNode{{Name: "node-a"}},
				}
			}),
			want: modelSlice(func(s *endpoints.Slice) {
				e := &s.Endpoints[0]
				e.NodeName, e.Zone = "node-a", "zone-1"
				e.ZoneHints, e.NodeHints = []string{"zone-1", "zone-2"}, []string{"node-a"}
			}),
		},
		{
			name: "empty hints",
			in: endpointSlice(func(es *discoveryv1.EndpointSlice) {
				es.Endpoints[0].Hints = &discoveryv1.EndpointHints{}
			}),
			want: modelSlice(),
		},
		{
			name: "port defaults: nil name and protocol; nil and zero ports skipped",
			in: endpointSlice(func(es *discoveryv1.EndpointSlice) {
				es.Ports = []discoveryv1.EndpointPort{
					{Port: ptr[int32](8080)},
					{Name: ptr("none")},
					{Name: ptr("zero"), Port: ptr[int32](0)},
					{Name: ptr("dns"), Protocol: ptr(corev1.ProtocolUDP), Port: ptr[int32](53)},
				}
			}),
			want: modelSlice(func(s *endpoints.Slice) {
				s.Ports = []endpoints.Port{
					{Protocol: servicemap.TCP, Port: 8080},
					{Name: "dns", Protocol: servicemap.UDP, Port: 53},
				}
			}),
		},
		{
			name: "first address only; endpoint without addresses skipped",
			in: endpointSlice(func(es *discoveryv1.EndpointSlice) {
				es.Endpoints = []discoveryv1.Endpoint{
					{Addresses: []string{"10.244.1.5", "10.244.1.6"}},
					{},
				}
			}),
			want: modelSlice(),
		},
		{
			name: "IPv6 slice",
			in: endpointSlice(func(es *discoveryv1.EndpointSlice) {
				es.AddressType = discoveryv1.AddressTypeIPv6
				es.Endpoints[0].Addresses = []string{"fd00:244::5"}
			}),
			want: modelSlice(func(s *endpoints.Slice) { s.Endpoints[0].Addr = addrs("fd00:244::5")[0] }),
		},
		{
			name: "no ports",
			in:   endpointSlice(func(es *discoveryv1.EndpointSlice) { es.Ports = nil }),
			want: modelSlice(func(s *endpoints.Slice) { s.Ports = []endpoints.Port{} }),
		},
		{
			name:    "FQDN slice is ignored",
			in:      endpointSlice(func(es *discoveryv1.EndpointSlice) { es.AddressType = discoveryv1.AddressTypeFQDN }),
			wantErr: `k8s: EndpointSlice "default/web-abc": addressType FQDN: ignored by the service proxy`,
			ignored: true,
		},

		// Errors.
		{name: "nil", wantErr: `k8s: EndpointSlice "": EndpointSlice: invalid value <nil>: must not be nil`},
		{
			name:    "no service-name label",
			in:      endpointSlice(func(es *discoveryv1.EndpointSlice) { es.Labels = nil }),
			wantErr: `metadata.labels[kubernetes.io/service-name]: invalid value "": must name the Service`,
		},
		{
			name:    "unknown address type",
			in:      endpointSlice(func(es *discoveryv1.EndpointSlice) { es.AddressType = "IPX" }),
			wantErr: `addressType: invalid value "IPX"`,
		},
		{
			name: "address that does not parse, address of the wrong family, port out of range",
			in: endpointSlice(func(es *discoveryv1.EndpointSlice) {
				es.Endpoints = append(es.Endpoints,
					discoveryv1.Endpoint{Addresses: []string{"10.244.1.x"}},
					discoveryv1.Endpoint{Addresses: []string{"fd00::1"}})
				es.Ports[0].Port = ptr[int32](65536)
			}),
			wantErr: `ports[0].port: invalid value 65536: must be 1-65535|` +
				`endpoints[1].addresses[0]: invalid value "10.244.1.x": not an IP address|` +
				`endpoints[2].addresses[0]: invalid value "fd00::1": not an IPv4 address`,
		},
		{
			name: "model validation passed through: duplicate ports, loopback address",
			in: endpointSlice(func(es *discoveryv1.EndpointSlice) {
				es.Ports = append(es.Ports, discoveryv1.EndpointPort{Name: ptr("http"), Port: ptr[int32](9090)})
				es.Endpoints[0].Addresses = []string{"127.0.0.1"}
			}),
			wantErr: `k8s: EndpointSlice "default/web-abc": endpoints: slice "default/web/web-abc": 2 problems: Ports[1].Name|Endpoints[0].Addr`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ConvertSlice(tt.in)
			if !checkErr(t, err, tt.wantErr) {
				if got != nil {
					t.Errorf("got %+v with the error, want nil", got)
				}
				if errors.Is(err, ErrIgnored) != tt.ignored {
					t.Errorf("errors.Is(%v, ErrIgnored) = %v, want %v", err, !tt.ignored, tt.ignored)
				}
				return
			}
			if d := cmp.Diff(tt.want, got, cmpOpts); d != "" {
				t.Errorf("ConvertSlice() (-want +got):\n%s", d)
			}
		})
	}
}

func TestConvertSliceValidationErrorType(t *testing.T) {
	_, err := ConvertSlice(endpointSlice(func(es *discoveryv1.EndpointSlice) {
		es.Endpoints[0].Addresses = []string{"169.254.0.1"}
	}))
	var ve *endpoints.ValidationError
	if !errors.As(err, &ve) || ve.Slice.Name != "web-abc" {
		t.Errorf("errors.As(%v, *endpoints.ValidationError) = %+v", err, ve)
	}
}
