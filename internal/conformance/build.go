//go:build linux

package conformance

import (
	"net/netip"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// Helpers that build the scenarios' services, slices and probes. Every
// service lives in namespace "default"; every endpoint is a pod's address
// on the responders' port, 8080 (TCP and UDP).

const (
	ns         = "default"
	targetPort = 8080
)

var famNames = [2]string{"v4", "v6"}

// service returns a ClusterIP service with one ClusterIP of family f and
// the given ports; mods adjust it.
func service(name string, f, n int, ports []servicemap.Port, mods ...func(*servicemap.Service)) *servicemap.Service {
	s := &servicemap.Service{Namespace: ns, Name: name, ClusterIPs: []netip.Addr{clusterIP(f, n)}, Ports: ports}
	for _, m := range mods {
		m(s)
	}
	return s
}

func tcp(port uint16) servicemap.Port { return servicemap.Port{Protocol: servicemap.TCP, Port: port} }
func udp(port uint16) servicemap.Port { return servicemap.Port{Protocol: servicemap.UDP, Port: port} }

// withNodePort gives a port a NodePort.
func withNodePort(p servicemap.Port, nodePort uint16) servicemap.Port {
	p.NodePort = nodePort
	return p
}

// named gives a port a name.
func named(name string, p servicemap.Port) servicemap.Port {
	p.Name = name
	return p
}

func nodePortType(s *servicemap.Service) { s.Type = servicemap.NodePort }

func externalIPs(f int) func(*servicemap.Service) {
	return func(s *servicemap.Service) { s.ExternalIPs = []netip.Addr{externalIP[f]} }
}

func loadBalancer(f int, ranges ...netip.Prefix) func(*servicemap.Service) {
	return func(s *servicemap.Service) {
		s.Type = servicemap.LoadBalancer
		s.LoadBalancerIPs = []netip.Addr{lbIP[f]}
		s.LoadBalancerSourceRanges = ranges
	}
}

func externalLocal(s *servicemap.Service) { s.ExternalTrafficPolicy = servicemap.Local }
func internalLocal(s *servicemap.Service) { s.InternalTrafficPolicy = servicemap.Local }

// slicePorts returns the slice ports matching a service's ports, all on
// the target port.
func slicePorts(ports []servicemap.Port) []endpoints.Port {
	out := make([]endpoints.Port, len(ports))
	for i, p := range ports {
		out[i] = endpoints.Port{Name: p.Name, Protocol: p.Protocol, Port: targetPort}
	}
	return out
}

// slice returns the one slice of family f of svc, with eps.
func slice(svc *servicemap.Service, f int, eps ...endpoints.Endpoint) *endpoints.Slice {
	return &endpoints.Slice{
		Namespace: ns, Service: svc.Name, Name: svc.Name + "-" + famNames[f],
		Ports: slicePorts(svc.Ports), Endpoints: eps,
	}
}

// ep returns a ready endpoint for a pod, in family f; mods adjust it.
func ep(pod string, f int, mods ...func(*endpoints.Endpoint)) endpoints.Endpoint {
	e := endpoints.Endpoint{Addr: podAddr[pod][f], Ready: true, Serving: true, NodeName: podNode[pod]}
	for _, m := range mods {
		m(&e)
	}
	return e
}

func weight(w uint16) func(*endpoints.Endpoint) {
	return func(e *endpoints.Endpoint) { e.Weight = w }
}

// terminating makes an endpoint terminating; serving says whether it still
// serves (and so may be a fallback).
func terminating(serving bool) func(*endpoints.Endpoint) {
	return func(e *endpoints.Endpoint) { e.Ready, e.Serving, e.Terminating = false, serving, true }
}

func zoneHints(zones ...string) func(*endpoints.Endpoint) {
	return func(e *endpoints.Endpoint) { e.ZoneHints = zones }
}

func nodeHints(nodes ...string) func(*endpoints.Endpoint) {
	return func(e *endpoints.Endpoint) { e.NodeHints = nodes }
}

// to returns addr:port.
func to(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

// Probe constructors, by expected action.
func forward(from string, proto servicemap.Protocol, dst netip.AddrPort, count int) Probe {
	return Probe{From: from, Proto: proto, Dst: dst, Count: count, Want: proxykit.Forward}
}

func reject(from string, proto servicemap.Protocol, dst netip.AddrPort) Probe {
	return Probe{From: from, Proto: proto, Dst: dst, Want: proxykit.Reject}
}

func drop(from string, proto servicemap.Protocol, dst netip.AddrPort) Probe {
	return Probe{From: from, Proto: proto, Dst: dst, Want: proxykit.Drop}
}

func noMatch(from string, proto servicemap.Protocol, dst netip.AddrPort) Probe {
	return Probe{From: from, Proto: proto, Dst: dst, Want: proxykit.NoMatch}
}

// perFamily makes one scenario per IP family, named name + "/v4" and
// "/v6".
func perFamily(name, section string, mk func(f int) Scenario) []Scenario {
	var out []Scenario
	for f := range 2 {
		sc := mk(f)
		sc.Name, sc.Section = name+"/"+famNames[f], section
		out = append(out, sc)
	}
	return out
}
