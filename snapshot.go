package proxykit

import (
	"iter"
	"net/netip"
	"slices"

	"github.com/proxykit/proxykit/internal/sorted"
	"github.com/proxykit/proxykit/servicemap"
	"github.com/proxykit/proxykit/topology"
)

// Snapshot is the desired state of the node's service proxying at one
// moment: for each IP family, every programmed service port with its
// frontends and categorised endpoints, sorted by PortName. A Snapshot is
// immutable and safe to share; consecutive snapshots share the ports that
// did not change, so making one costs in proportion to the change.
type Snapshot struct {
	node       Node
	generation uint64
	full       bool
	families   [2]FamilyState
	changed    []servicemap.PortName
	conntrack  []servicemap.PortName
}

// Node returns the node the snapshot is for.
func (s *Snapshot) Node() Node { return s.node }

// Generation counts the snapshots made by one Proxy, from 1.
func (s *Snapshot) Generation() uint64 { return s.generation }

// Full reports whether the syncer must program everything rather than
// only the changed ports: the first sync, the retry after an error, and
// the periodic sync.
func (s *Snapshot) Full() bool { return s.full }

// Family returns the state of one IP family: IPv4 or IPv6. Any other
// value gets an empty state.
func (s *Snapshot) Family(f Family) *FamilyState {
	switch f {
	case IPv4:
		return &s.families[0]
	case IPv6:
		return &s.families[1]
	}
	return &FamilyState{family: f}
}

// Changed returns the service ports, of either family, whose state changed
// since the last successful sync (added, changed or removed), sorted. A
// port in Changed and absent from a family was removed from it.
func (s *Snapshot) Changed() []servicemap.PortName { return s.changed }

// IsChanged reports whether n is in Changed.
func (s *Snapshot) IsChanged(n servicemap.PortName) bool {
	_, ok := slices.BinarySearchFunc(s.changed, n, servicemap.PortName.Compare)
	return ok
}

// ConntrackCleanup returns the UDP and SCTP service ports whose change,
// in some family, can leave stale conntrack flows (SEMANTICS §9): the
// port gained its first endpoints in the set in use on this node, an
// endpoint left that set, a frontend changed, or the port left the
// family. It covers every change since the last successful sync. Sorted;
// empty when no cleanup is needed.
func (s *Snapshot) ConntrackCleanup() []servicemap.PortName { return s.conntrack }

// FamilyState is the state of one IP family in a Snapshot.
type FamilyState struct {
	family Family
	ports  sorted.Map[servicemap.PortName, *PortState]
}

// Family returns the IP family.
func (f *FamilyState) Family() Family { return f.family }

// Len returns the number of programmed service ports.
func (f *FamilyState) Len() int { return f.ports.Len() }

// Get returns the state of one service port.
func (f *FamilyState) Get(n servicemap.PortName) (*PortState, bool) {
	if f.ports.Len() == 0 {
		return nil, false
	}
	return f.ports.Get(n)
}

// Ports yields the programmed service ports in PortName order.
func (f *FamilyState) Ports() iter.Seq[*PortState] {
	return func(yield func(*PortState) bool) {
		if f.ports.Len() == 0 {
			return
		}
		for p := range f.ports.Values() {
			if !yield(p) {
				return
			}
		}
	}
}

// PortState is one service port as programmed in one IP family: its
// frontends of that family and its categorised endpoints. It is shared
// between snapshots and must not be modified.
type PortState struct {
	Name servicemap.PortName
	// Port is the service port as this family sees it: its ExternalIPs,
	// LoadBalancerIPs and LoadBalancerSourceRanges hold this family's
	// addresses only, so that ExternallyAccessible, UsesClusterEndpoints
	// and UsesLocalEndpoints answer for this family (SEMANTICS §1).
	// ClusterIPs keeps both families.
	Port   *servicemap.ServicePort
	Family Family
	// ClusterIP is the port's ClusterIP of this family. A port is
	// programmed in a family only if it has one (SEMANTICS §1).
	ClusterIP       netip.Addr
	ExternalIPs     []netip.Addr
	LoadBalancerIPs []netip.Addr
	// SourceRanges are the LoadBalancerSourceRanges of this family.
	// Firewalled is set when the service has any source range at all, of
	// either family: then LB traffic from outside SourceRanges is dropped
	// (SEMANTICS §6), even when SourceRanges is empty.
	SourceRanges []netip.Prefix
	Firewalled   bool
	Endpoints    topology.Result
}
