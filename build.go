package proxykit

import (
	"errors"
	"net/netip"
	"slices"

	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/internal/sorted"
	"github.com/proxykit/proxykit/servicemap"
	"github.com/proxykit/proxykit/topology"
)

// builder turns the applied service and endpoint maps into snapshots. It
// keeps the previous snapshot's family states and recomputes only the
// ports it is told changed, so one change costs O(log n).
type builder struct {
	node       Node
	services   servicemap.Map
	endpoints  endpoints.Map
	families   [2]sorted.Map[servicemap.PortName, *PortState]
	generation uint64
}

func newBuilder(node Node) *builder {
	b := &builder{node: node}
	for i := range b.families {
		b.families[i] = sorted.New[servicemap.PortName, *PortState](servicemap.PortName.Compare)
	}
	return b
}

// recompute brings the family states up to date for the named ports, or
// for every port when all is set (the node changed).
func (b *builder) recompute(names []servicemap.PortName, all bool) {
	if all {
		names = names[:0:0]
		for n := range b.services.All() {
			names = append(names, n)
		}
		// Ports that are programmed but no longer in the service map.
		for f := range b.families {
			for n := range b.families[f].Keys() {
				if _, ok := b.services.Get(n); !ok {
					names = append(names, n)
				}
			}
		}
	}
	if len(names) == 0 {
		return
	}
	var edits [2][]sorted.Edit[servicemap.PortName, *PortState]
	for _, n := range names {
		sp, ok := b.services.Get(n)
		var eps [2][]endpoints.Endpoint
		if ok {
			all, _ := b.endpoints.Get(n)
			eps[0], eps[1] = endpoints.SplitFamily(all)
		}
		for i, fam := range Families {
			st := portState(sp, fam, eps[i], b.node)
			edits[i] = append(edits[i], sorted.Edit[servicemap.PortName, *PortState]{Key: n, Value: st, Delete: st == nil})
		}
	}
	for i := range b.families {
		b.families[i] = b.families[i].Apply(edits[i])
	}
}

// snapshot returns a snapshot of the current state.
func (b *builder) snapshot(full bool, changed, conntrack []servicemap.PortName) *Snapshot {
	b.generation++
	s := &Snapshot{
		node:       b.node,
		generation: b.generation,
		full:       full,
		changed:    changed,
		conntrack:  conntrack,
	}
	for i, fam := range Families {
		s.families[i] = FamilyState{family: fam, ports: b.families[i]}
	}
	return s
}

// portState returns sp's state in family fam, or nil when sp is not
// programmed in that family (absent, or no ClusterIP of the family).
func portState(sp *servicemap.ServicePort, fam Family, eps []endpoints.Endpoint, node Node) *PortState {
	if sp == nil {
		return nil
	}
	var cip netip.Addr
	for _, a := range sp.ClusterIPs {
		if fam.Contains(a) {
			cip = a
			break
		}
	}
	if !cip.IsValid() {
		return nil
	}
	return &PortState{
		Name:            sp.Name,
		Port:            sp,
		Family:          fam,
		ClusterIP:       cip,
		ExternalIPs:     ofFamily(sp.ExternalIPs, fam, func(a netip.Addr) netip.Addr { return a }),
		LoadBalancerIPs: ofFamily(sp.LoadBalancerIPs, fam, func(a netip.Addr) netip.Addr { return a }),
		SourceRanges:    ofFamily(sp.LoadBalancerSourceRanges, fam, netip.Prefix.Addr),
		Firewalled:      len(sp.LoadBalancerSourceRanges) > 0,
		Endpoints:       topology.Categorize(sp, eps, node.Topology()),
	}
}

// ofFamily returns the elements of xs whose address is of family fam. It
// returns xs itself when all are (the single-stack case), so nothing is
// copied.
func ofFamily[T any](xs []T, fam Family, addr func(T) netip.Addr) []T {
	n := 0
	for _, x := range xs {
		if fam.Contains(addr(x)) {
			n++
		}
	}
	switch n {
	case 0:
		return nil
	case len(xs):
		return xs
	}
	out := make([]T, 0, n)
	for _, x := range xs {
		if fam.Contains(addr(x)) {
			out = append(out, x)
		}
	}
	return out
}

// changeSet accumulates the ports changed since the last successful sync.
type changeSet map[servicemap.PortName]struct{}

func (c changeSet) add(names ...servicemap.PortName) {
	for _, n := range names {
		c[n] = struct{}{}
	}
}

func (c changeSet) sorted() []servicemap.PortName {
	out := make([]servicemap.PortName, 0, len(c))
	for n := range c {
		out = append(out, n)
	}
	slices.SortFunc(out, servicemap.PortName.Compare)
	return out
}

// conntrackPorts returns the UDP and SCTP ports among the service changes.
func conntrackPorts(ch servicemap.Changes) []servicemap.PortName {
	if !ch.HasUDPOrSCTP {
		return nil
	}
	var out []servicemap.PortName
	for _, list := range [][]servicemap.PortName{ch.Updated, ch.Deleted} {
		for _, n := range list {
			if n.Protocol == servicemap.UDP || n.Protocol == servicemap.SCTP {
				out = append(out, n)
			}
		}
	}
	return out
}

// NewSnapshot builds a full snapshot from a complete set of services and
// slices, as a Proxy would after its first sync. It is meant for tests,
// tools (render, explain) and one-shot programs. Invalid services or
// slices make it fail with every validation error joined; nothing is
// built then.
func NewSnapshot(node Node, services []*servicemap.Service, slices []*endpoints.Slice) (*Snapshot, error) {
	st := servicemap.NewTracker()
	et := endpoints.NewTracker()
	var errs []error
	for _, s := range services {
		if err := st.Update(nil, s); err != nil {
			errs = append(errs, err)
		}
	}
	for _, s := range slices {
		if err := et.Update(s); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	b := newBuilder(node)
	var sch servicemap.Changes
	var ech endpoints.Changes
	b.services, sch = st.Apply(b.services)
	b.endpoints, ech = et.Apply(b.endpoints)
	changed := make(changeSet, len(sch.Updated))
	changed.add(sch.Updated...)
	changed.add(ech.Ports...)
	names := changed.sorted()
	b.recompute(names, false)
	ct := make(changeSet)
	ct.add(conntrackPorts(sch)...)
	ct.add(ech.Conntrack...)
	return b.snapshot(true, names, ct.sorted()), nil
}
