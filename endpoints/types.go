package endpoints

import (
	"cmp"
	"net/netip"

	"github.com/proxykit/proxykit/servicemap"
)

// Endpoint is one backend of a service port.
type Endpoint struct {
	Addr netip.Addr
	// Port is the endpoint's port. In a Slice it is normally zero and
	// taken from the slice's Ports; a non-zero Port overrides that and is
	// only allowed in a slice with one port. In merged endpoints (Map,
	// Merge) it is always set.
	Port uint16
	// Weight is the relative share of new connections; zero means 1.
	Weight uint16
	// Conditions, as in an EndpointSlice: a ready endpoint takes new
	// connections; a serving and terminating one only as a fallback
	// (SEMANTICS §2).
	Ready, Serving, Terminating bool
	NodeName, Zone              string
	// ZoneHints and NodeHints are topology hints: the zones and nodes
	// that should use this endpoint.
	ZoneHints, NodeHints []string
}

// AddrPort returns the endpoint's address and port.
func (e *Endpoint) AddrPort() netip.AddrPort { return netip.AddrPortFrom(e.Addr, e.Port) }

// EffectiveWeight returns Weight, or 1 when it is zero.
func (e *Endpoint) EffectiveWeight() uint32 {
	if e.Weight == 0 {
		return 1
	}
	return uint32(e.Weight)
}

// Usable reports whether the endpoint may take new connections at all:
// ready, or serving and terminating (the fallback). SEMANTICS §2.
func (e *Endpoint) Usable() bool { return e.Ready || (e.Serving && e.Terminating) }

// Compare orders endpoints as merged lists are sorted: IPv4 before IPv6,
// then by address, then by port. Within a merged list no two endpoints
// compare equal.
func Compare(a, b *Endpoint) int {
	return cmp.Or(
		cmp.Compare(family(a.Addr), family(b.Addr)),
		a.Addr.Compare(b.Addr),
		cmp.Compare(a.Port, b.Port),
	)
}

func family(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// SplitFamily splits a merged, sorted endpoint list into its IPv4 and IPv6
// parts. Both results share eps's backing array.
func SplitFamily(eps []Endpoint) (v4, v6 []Endpoint) {
	i := 0
	for i < len(eps) && eps[i].Addr.Is4() {
		i++
	}
	return eps[:i:i], eps[i:]
}

// Port is a port of a Slice. Endpoints of the slice serve the service
// port with the same Name and Protocol.
type Port struct {
	Name     string
	Protocol servicemap.Protocol // zero means TCP
	Port     uint16
}

// Slice is a set of endpoints of one Service, like a Kubernetes
// EndpointSlice. A service may have several; they are merged per service
// port. Tracker.Update copies the endpoints; the Ports and the hint
// slices are shared and must not be modified afterwards.
type Slice struct {
	Namespace string
	Service   string // the owning Service's name
	Name      string // the slice's own name, unique within the namespace
	Ports     []Port
	Endpoints []Endpoint
}

// SliceName identifies a Slice.
type SliceName struct {
	Namespace, Service, Name string
}

// ID returns the slice's name.
func (s *Slice) ID() SliceName { return SliceName{s.Namespace, s.Service, s.Name} }
