package k8s

import (
	"fmt"
	"net/netip"

	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// ConvertSlice converts an EndpointSlice as kube-proxy reads it. The
// result is valid (endpoints.Slice.Validate passed); otherwise the error
// is an *Error naming the slice, holding *FieldError values with the API
// field paths, or the model's *endpoints.ValidationError.
//
//   - The owning Service is the label discoveryv1.LabelServiceName
//     ("kubernetes.io/service-name"); a slice without it is an error.
//   - A slice of addressType FQDN is not converted: the error wraps
//     ErrIgnored.
//   - Ports: a nil name means "" and a nil protocol TCP (the API
//     server's defaults); a port whose number is nil or 0 is skipped, as
//     kube-proxy skips it.
//   - Endpoints: the first address only (kube-proxy uses addresses[0]);
//     it must belong to the slice's addressType. An endpoint without
//     addresses is skipped, as kube-proxy skips it.
//   - Conditions with the API's nil defaults, as kube-proxy reads them:
//     ready nil is true, serving nil is true, terminating nil is false.
//   - nodeName, zone, hints.forZones[].name and hints.forNodes[].name.
//     Hints are converted whatever the Service's trafficDistribution:
//     the EndpointSlice controller writes them from it, and the model
//     honours them when every ready endpoint has them (SEMANTICS §2).
//
// The label filter is not applied here; see Accept.
func ConvertSlice(es *discoveryv1.EndpointSlice) (*endpoints.Slice, error) {
	if es == nil {
		return nil, &Error{Kind: "EndpointSlice", Err: &FieldError{Field: "EndpointSlice", Value: nil, Reason: "must not be nil"}}
	}
	wrap := func(err error) error {
		return &Error{Kind: "EndpointSlice", Namespace: es.Namespace, Name: es.Name, Err: err}
	}
	var p problems
	switch es.AddressType {
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6:
	case discoveryv1.AddressTypeFQDN:
		return nil, wrap(fmt.Errorf("addressType FQDN: %w", ErrIgnored))
	default:
		p.add("addressType", string(es.AddressType), `must be "IPv4", "IPv6" or "FQDN"`)
	}
	svc := es.Labels[discoveryv1.LabelServiceName]
	if svc == "" {
		p.add("metadata.labels["+discoveryv1.LabelServiceName+"]", svc, "must name the Service the slice belongs to")
	}
	out := &endpoints.Slice{
		Namespace: es.Namespace,
		Service:   svc,
		Name:      es.Name,
		Ports:     slicePorts(es.Ports, &p),
		Endpoints: sliceEndpoints(es, &p),
	}
	if err := p.err(); err != nil {
		return nil, wrap(err)
	}
	if err := out.Validate(); err != nil {
		return nil, wrap(err)
	}
	return out, nil
}

func slicePorts(ports []discoveryv1.EndpointPort, p *problems) []endpoints.Port {
	out := make([]endpoints.Port, 0, len(ports))
	for i, ep := range ports {
		if ep.Port == nil || *ep.Port == 0 {
			continue
		}
		n, ok := portNumber(*ep.Port)
		if !ok {
			p.add(fmt.Sprintf("ports[%d].port", i), *ep.Port, "must be 1-65535")
			continue
		}
		port := endpoints.Port{Protocol: servicemap.TCP, Port: n}
		if ep.Name != nil {
			port.Name = *ep.Name
		}
		if ep.Protocol != nil && *ep.Protocol != "" {
			port.Protocol = servicemap.Protocol(*ep.Protocol)
		}
		out = append(out, port)
	}
	return out
}

func sliceEndpoints(es *discoveryv1.EndpointSlice, p *problems) []endpoints.Endpoint {
	want6 := es.AddressType == discoveryv1.AddressTypeIPv6
	out := make([]endpoints.Endpoint, 0, len(es.Endpoints))
	for i := range es.Endpoints {
		ep := &es.Endpoints[i]
		if len(ep.Addresses) == 0 {
			continue
		}
		a, ok := parseAddr(ep.Addresses[0])
		switch {
		case !ok:
			p.add(fmt.Sprintf("endpoints[%d].addresses[0]", i), ep.Addresses[0], "not an IP address")
			continue
		case a.Is6() != want6:
			p.add(fmt.Sprintf("endpoints[%d].addresses[0]", i), ep.Addresses[0], "not an "+string(es.AddressType)+" address (the slice's addressType)")
			continue
		}
		out = append(out, convertEndpoint(a, ep))
	}
	return out
}

func convertEndpoint(a netip.Addr, ep *discoveryv1.Endpoint) endpoints.Endpoint {
	cond := ep.Conditions
	ready := cond.Ready == nil || *cond.Ready
	e := endpoints.Endpoint{
		Addr:        a,
		Ready:       ready,
		Serving:     cond.Serving == nil || *cond.Serving,
		Terminating: cond.Terminating != nil && *cond.Terminating,
	}
	if ep.NodeName != nil {
		e.NodeName = *ep.NodeName
	}
	if ep.Zone != nil {
		e.Zone = *ep.Zone
	}
	if h := ep.Hints; h != nil {
		for _, z := range h.ForZones {
			e.ZoneHints = append(e.ZoneHints, z.Name)
		}
		for _, n := range h.ForNodes {
			e.NodeHints = append(e.NodeHints, n.Name)
		}
	}
	return e
}
