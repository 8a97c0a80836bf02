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
// for every port when all is set (the node changed). It returns the ports
// it recomputed and, of those, the UDP and SCTP ports that need conntrack
// cleanup (see needsConntrack), both sorted.
func (b *builder) recompute(names []servicemap.PortName, all bool) (recomputed, conntrack []servicemap.PortName) {
	if all {
		names = b.allNames()
	}
	if len(names) == 0 {
		return nil, nil
	}
	sps := make([]*servicemap.ServicePort, len(names))
	b.services.GetSorted(names, func(i int, sp *servicemap.ServicePort) { sps[i] = sp })
	epss := make([][]endpoints.Endpoint, len(names))
	b.endpoints.GetSorted(names, func(i int, eps []endpoints.Endpoint) { epss[i] = eps })
	var olds [2][]*PortState
	var edits [2][]sorted.Edit[servicemap.PortName, *PortState]
	for i := range b.families {
		olds[i] = make([]*PortState, len(names))
		b.families[i].GetSorted(names, func(k int, st *PortState, _ bool) { olds[i][k] = st })
		edits[i] = make([]sorted.Edit[servicemap.PortName, *PortState], 0, len(names))
	}
	for k, n := range names {
		var eps [2][]endpoints.Endpoint
		eps[0], eps[1] = endpoints.SplitFamily(epss[k])
		stale := false
		for i, fam := range Families {
			st, old := portState(sps[k], fam, eps[i], b.node), olds[i][k]
			if st == nil && old == nil {
				continue // nothing to delete
			}
			stale = stale || needsConntrack(n.Protocol, old, st)
			edits[i] = append(edits[i], sorted.Edit[servicemap.PortName, *PortState]{Key: n, Value: st, Delete: st == nil})
		}
		if stale {
			conntrack = append(conntrack, n)
		}
	}
	for i := range b.families {
		b.families[i] = b.families[i].Apply(edits[i])
	}
	return names, conntrack
}

// needsConntrack reports whether a UDP or SCTP port's change from old to
// cur in one family can leave stale conntrack flows (SEMANTICS §9): the
// port appeared with endpoints or got its first ones (flows made while
// it had none black-hole), an endpoint left the set in use on this node,
// a frontend changed, or the port left the family. nil means absent.
func needsConntrack(proto servicemap.Protocol, old, cur *PortState) bool {
	switch {
	case proto != servicemap.UDP && proto != servicemap.SCTP:
		return false
	case cur == nil:
		return old != nil
	case old == nil || !old.Endpoints.HasAny:
		return cur.Endpoints.HasAny
	case !sameFrontends(old, cur):
		return true
	}
	return !containsAll(cur.Endpoints.All, old.Endpoints.All)
}

func sameFrontends(a, b *PortState) bool {
	return a.ClusterIP == b.ClusterIP && a.Port.Port == b.Port.Port && a.Port.NodePort == b.Port.NodePort &&
		slices.Equal(a.ExternalIPs, b.ExternalIPs) && slices.Equal(a.LoadBalancerIPs, b.LoadBalancerIPs)
}

// containsAll reports whether every endpoint of sub (by address and port)
// is in set.
func containsAll(set, sub []endpoints.Endpoint) bool {
	if len(sub) > len(set) {
		return false
	}
	have := make(map[netip.AddrPort]struct{}, len(set))
	for i := range set {
		have[set[i].AddrPort()] = struct{}{}
	}
	for i := range sub {
		if _, ok := have[sub[i].AddrPort()]; !ok {
			return false
		}
	}
	return true
}

// allNames returns, sorted, every port in the service map or programmed
// in a family.
func (b *builder) allNames() []servicemap.PortName {
	lists := make([][]servicemap.PortName, 0, 1+len(b.families))
	var svcs []servicemap.PortName
	for n := range b.services.All() {
		svcs = append(svcs, n)
	}
	lists = append(lists, svcs)
	for f := range b.families {
		var gone []servicemap.PortName
		for n := range b.families[f].Keys() {
			if _, ok := b.services.Get(n); !ok {
				gone = append(gone, n)
			}
		}
		lists = append(lists, gone)
	}
	return mergeNames(lists...)
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
// programmed in that family: absent, or without a ClusterIP of the family.
// Like kube-proxy, a family without a ClusterIP ignores the service's
// ExternalIPs and LB IPs of that family too.
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
	view := familyView(sp, fam)
	return &PortState{
		Name:            sp.Name,
		Port:            view,
		Family:          fam,
		ClusterIP:       cip,
		ExternalIPs:     view.ExternalIPs,
		LoadBalancerIPs: view.LoadBalancerIPs,
		SourceRanges:    view.LoadBalancerSourceRanges,
		Firewalled:      len(sp.LoadBalancerSourceRanges) > 0,
		// Categorised with the family's own frontends: whether the port is
		// externally accessible is decided per family too (SEMANTICS §1).
		Endpoints: topology.Categorize(view, eps, node.Topology()),
	}
}

// familyView returns sp as family fam sees it: its ExternalIPs,
// LoadBalancerIPs and LoadBalancerSourceRanges of that family only. It
// returns sp itself when nothing is filtered out (single-stack).
func familyView(sp *servicemap.ServicePort, fam Family) *servicemap.ServicePort {
	ext := ofFamily(sp.ExternalIPs, fam, func(a netip.Addr) netip.Addr { return a })
	lb := ofFamily(sp.LoadBalancerIPs, fam, func(a netip.Addr) netip.Addr { return a })
	ranges := ofFamily(sp.LoadBalancerSourceRanges, fam, netip.Prefix.Addr)
	if len(ext) == len(sp.ExternalIPs) && len(lb) == len(sp.LoadBalancerIPs) && len(ranges) == len(sp.LoadBalancerSourceRanges) {
		return sp
	}
	v := *sp
	v.ExternalIPs, v.LoadBalancerIPs, v.LoadBalancerSourceRanges = ext, lb, ranges
	return &v
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

// mergeNames merges sorted lists of port names into one sorted list
// without duplicates. It returns a list itself, without copying, when the
// others are empty.
func mergeNames(lists ...[]servicemap.PortName) []servicemap.PortName {
	var nonEmpty [][]servicemap.PortName
	total := 0
	for _, l := range lists {
		if len(l) > 0 {
			nonEmpty = append(nonEmpty, l)
			total += len(l)
		}
	}
	switch len(nonEmpty) {
	case 0:
		return nil
	case 1:
		return nonEmpty[0]
	}
	out := make([]servicemap.PortName, 0, total)
	for {
		// The smallest head; few lists, so a linear scan is cheapest.
		min := -1
		for i, l := range nonEmpty {
			if len(l) > 0 && (min < 0 || l[0].Compare(nonEmpty[min][0]) < 0) {
				min = i
			}
		}
		if min < 0 {
			return out
		}
		n := nonEmpty[min][0]
		if len(out) == 0 || out[len(out)-1] != n {
			out = append(out, n)
		}
		for i, l := range nonEmpty {
			if len(l) > 0 && l[0] == n {
				nonEmpty[i] = l[1:]
			}
		}
	}
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
	names, conntrack := b.recompute(mergeNames(sch.Updated, ech.Ports), false)
	return b.snapshot(true, names, conntrack), nil
}
