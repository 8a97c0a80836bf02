package servicemap

import (
	"net/netip"
	"strings"

	"github.com/proxykit/proxykit/affinity"
)

// Protocol is a transport protocol of a service port.
type Protocol string

// The protocols a service port may use.
const (
	TCP  Protocol = "TCP"
	UDP  Protocol = "UDP"
	SCTP Protocol = "SCTP"
)

// OrTCP returns p, or TCP when p is empty: the zero Protocol means TCP
// wherever a protocol is given.
func (p Protocol) OrTCP() Protocol {
	if p == "" {
		return TCP
	}
	return p
}

// Type is a Service's type.
type Type string

// Service types. The zero value means ClusterIP.
const (
	ClusterIP    Type = "ClusterIP"
	NodePort     Type = "NodePort"
	LoadBalancer Type = "LoadBalancer"
	// ExternalName services are accepted and ignored: they get no rules.
	ExternalName Type = "ExternalName"
)

// TrafficPolicy says which endpoints serve traffic (SEMANTICS §2).
type TrafficPolicy string

// Traffic policies. The zero value means Cluster.
const (
	Cluster TrafficPolicy = "Cluster"
	Local   TrafficPolicy = "Local"
)

// Port is one port of a Service.
type Port struct {
	// Name tells the ports of a service apart; it may be empty when the
	// service has one port.
	Name     string
	Protocol Protocol // zero means TCP
	Port     uint16
	// NodePort is the port on node addresses; zero means none. Only
	// NodePort and LoadBalancer services may have one.
	NodePort uint16
}

// Service is a Kubernetes-style Service, reduced to what a service proxy
// needs. A Service handed to this package is treated as immutable: the
// package keeps references to it and its slices and never modifies them,
// and the caller must not modify them either.
type Service struct {
	Namespace, Name string
	Type            Type // zero means ClusterIP
	// ClusterIPs holds at most one address per IP family. None means a
	// headless service, which gets no rules.
	ClusterIPs                   []netip.Addr
	Ports                        []Port
	ExternalIPs, LoadBalancerIPs []netip.Addr
	LoadBalancerSourceRanges     []netip.Prefix
	Affinity                     affinity.Config
	ExternalTrafficPolicy        TrafficPolicy
	InternalTrafficPolicy        TrafficPolicy
	HealthCheckNodePort          uint16
	// Scheduler is an optional per-service IPVS scheduler; other backends
	// ignore it.
	Scheduler string
}

// ServiceName identifies a Service.
type ServiceName struct {
	Namespace, Name string
}

func (n ServiceName) String() string { return n.Namespace + "/" + n.Name }

// Compare orders service names by namespace, then name.
func (n ServiceName) Compare(o ServiceName) int {
	if c := strings.Compare(n.Namespace, o.Namespace); c != 0 {
		return c
	}
	return strings.Compare(n.Name, o.Name)
}

// PortName identifies one service port: a (namespace, name, port name,
// protocol).
type PortName struct {
	Namespace, Name, Port string
	Protocol              Protocol
}

// String returns "ns/name:port/TCP", or "ns/name/TCP" for an unnamed port.
func (p PortName) String() string {
	s := p.Namespace + "/" + p.Name
	if p.Port != "" {
		s += ":" + p.Port
	}
	return s + "/" + string(p.Protocol)
}

// Service returns the name of the port's Service.
func (p PortName) Service() ServiceName { return ServiceName{p.Namespace, p.Name} }

// Compare orders port names by namespace, name, port name, protocol. It is
// the order of ports in a snapshot.
// It is on the hot path of every sorted map, so it stops at the first
// difference.
func (p PortName) Compare(o PortName) int {
	if c := strings.Compare(p.Namespace, o.Namespace); c != 0 {
		return c
	}
	if c := strings.Compare(p.Name, o.Name); c != 0 {
		return c
	}
	if c := strings.Compare(p.Port, o.Port); c != 0 {
		return c
	}
	return strings.Compare(string(p.Protocol), string(o.Protocol))
}

// ServicePort is one port of a Service, flattened with the Service-wide
// settings that apply to it. It is what backends program. Its slices are
// shared with the Service and must not be modified.
type ServicePort struct {
	Name                     PortName
	Type                     Type
	Protocol                 Protocol
	Port                     uint16
	NodePort                 uint16
	ClusterIPs               []netip.Addr
	ExternalIPs              []netip.Addr
	LoadBalancerIPs          []netip.Addr
	LoadBalancerSourceRanges []netip.Prefix
	Affinity                 affinity.Config
	ExternalTrafficPolicy    TrafficPolicy // never empty: Cluster or Local
	InternalTrafficPolicy    TrafficPolicy // never empty: Cluster or Local
	HealthCheckNodePort      uint16
	Scheduler                string
}

// ExternallyAccessible reports whether the port has external frontends: a
// NodePort, ExternalIPs or LoadBalancer IPs.
func (p *ServicePort) ExternallyAccessible() bool {
	return p.NodePort != 0 || len(p.ExternalIPs) > 0 || len(p.LoadBalancerIPs) > 0
}

// UsesClusterEndpoints reports whether the Cluster set is in use: internal
// policy Cluster, or any external frontend (even with external policy
// Local, local pods and the node reach external frontends through the
// Cluster set). SEMANTICS §2.
func (p *ServicePort) UsesClusterEndpoints() bool {
	return p.InternalTrafficPolicy != Local || p.ExternallyAccessible()
}

// UsesLocalEndpoints reports whether the Local set is in use: internal
// policy Local, or external policy Local on an externally accessible
// port. SEMANTICS §2.
func (p *ServicePort) UsesLocalEndpoints() bool {
	return p.InternalTrafficPolicy == Local || (p.ExternalTrafficPolicy == Local && p.ExternallyAccessible())
}
