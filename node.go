package proxykit

import (
	"net/netip"
	"slices"
	"strconv"

	"github.com/proxykit/proxykit/topology"
)

// Node is the node a proxy programs.
type Node struct {
	Name, Zone string
	// Addresses are the node's own addresses, of both families. NodePorts
	// are served on them (SEMANTICS §8), and a LoadBalancer source range
	// that contains one lets the node reach the LB IP (§6).
	Addresses []netip.Addr
}

// Topology returns the part of the node that topology.Categorize needs.
func (n Node) Topology() topology.Node { return topology.Node{Name: n.Name, Zone: n.Zone} }

// HasAddress reports whether a is one of the node's addresses.
func (n Node) HasAddress(a netip.Addr) bool { return slices.Contains(n.Addresses, a) }

// Equal reports whether two nodes are the same; the order of Addresses
// does not matter.
func (n Node) Equal(o Node) bool {
	if n.Name != o.Name || n.Zone != o.Zone || len(n.Addresses) != len(o.Addresses) {
		return false
	}
	a, b := slices.Clone(n.Addresses), slices.Clone(o.Addresses)
	slices.SortFunc(a, netip.Addr.Compare)
	slices.SortFunc(b, netip.Addr.Compare)
	return slices.Equal(a, b)
}

// Family is an IP family.
type Family uint8

// The IP families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// Families lists both families in the order snapshots present them.
var Families = [2]Family{IPv4, IPv6}

func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return "Family(" + strconv.Itoa(int(f)) + ")"
}

// FamilyOf returns the family of a.
func FamilyOf(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// Contains reports whether a belongs to the family.
func (f Family) Contains(a netip.Addr) bool { return a.IsValid() && FamilyOf(a) == f }
