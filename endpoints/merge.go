package endpoints

import (
	"cmp"
	"slices"

	"github.com/proxykit/proxykit/servicemap"
)

// Merge merges the slices of one service into one endpoint list per
// service port.
//
// All slices must belong to one service. The service is the smallest
// (Namespace, Service) among the slices, so the choice does not depend on
// their order; slices of any other service, and nil slices, are skipped.
//
// For each slice port the key is the PortName of the service with the
// port's Name and Protocol (zero means TCP): "dns"/UDP and "dns"/TCP are
// different ports. Each endpoint of the slice is copied into the port's
// list with the port's number, unless it has a Port of its own. When an
// address:port appears more than once (in several slices or twice in one),
// one copy is kept: a non-terminating copy wins over a terminating one;
// among equally terminating copies the one from the slice whose Name sorts
// first wins, and within one slice the first. The result does not depend
// on the order of slices. Each list is sorted with Compare and holds no two
// endpoints with the same address and port; lists with no endpoints are
// omitted.
//
// Merge does not validate: slices are expected to pass Validate. The
// copies share their hint slices with the input.
func Merge(slices []*Slice) map[servicemap.PortName][]Endpoint {
	var svc servicemap.ServiceName
	found := false
	for _, s := range slices {
		if s == nil {
			continue
		}
		if n := (servicemap.ServiceName{Namespace: s.Namespace, Name: s.Service}); !found || n.Compare(svc) < 0 {
			svc, found = n, true
		}
	}
	var mg merger
	for _, s := range slices {
		if s != nil && s.Namespace == svc.Namespace && s.Service == svc.Name {
			mg.slices = append(mg.slices, s)
		}
	}
	sortSlices(mg.slices)
	lists := mg.merge(svc, mg.slices)
	out := make(map[servicemap.PortName][]Endpoint, len(lists))
	for _, l := range lists {
		out[l.name] = l.eps
	}
	return out
}

// portList is the merged endpoint list of one service port.
type portList struct {
	name servicemap.PortName
	eps  []Endpoint
}

// portKey is a slice port's identity: name and protocol (never zero).
type portKey struct {
	name  string
	proto servicemap.Protocol
}

func (k portKey) compare(o portKey) int {
	return cmp.Or(cmp.Compare(k.name, o.name), cmp.Compare(k.proto, o.proto))
}

// merger holds scratch space reused across merges.
type merger struct {
	slices []*Slice
	keys   []portKey
	lists  []portList
}

// sortSlices orders slices by Name. Slices with the same Name (which a
// service should not have) are ordered by content, so that the merge
// result never depends on the input order.
func sortSlices(ss []*Slice) {
	slices.SortFunc(ss, func(a, b *Slice) int {
		if c := cmp.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return compareSliceContent(a, b)
	})
}

// merge merges ss, which belong to svc and are sorted by sortSlices. The
// returned lists are sorted by name and valid until the next call; the
// endpoint lists in them are freshly allocated.
func (mg *merger) merge(svc servicemap.ServiceName, ss []*Slice) []portList {
	return mg.mergeInto(svc, ss, false)
}

// mergeOwned is merge for slices that the Tracker owns and normalized: a
// port served by one one-port slice whose endpoints are strictly sorted
// gets that slice's endpoints themselves, without a copy.
func (mg *merger) mergeOwned(svc servicemap.ServiceName, ss []*Slice) []portList {
	return mg.mergeInto(svc, ss, true)
}

func (mg *merger) mergeInto(svc servicemap.ServiceName, ss []*Slice, owned bool) []portList {
	mg.keys = mg.keys[:0]
	for _, s := range ss {
		for _, p := range s.Ports {
			mg.keys = append(mg.keys, portKey{p.Name, p.Protocol.OrTCP()})
		}
	}
	slices.SortFunc(mg.keys, portKey.compare)
	mg.keys = slices.Compact(mg.keys)
	clear(mg.lists)
	mg.lists = mg.lists[:0]
	for _, k := range mg.keys {
		eps, ok := []Endpoint(nil), false
		if owned {
			eps, ok = aliasPort(ss, k)
		}
		if !ok {
			eps = mergePort(ss, k)
		}
		if len(eps) > 0 {
			name := servicemap.PortName{Namespace: svc.Namespace, Name: svc.Name, Port: k.name, Protocol: k.proto}
			mg.lists = append(mg.lists, portList{name, eps})
		}
	}
	return mg.lists
}

// aliasPort returns the endpoints of the slice port with key k without
// copying them, when exactly one slice has that port, it is the slice's
// only port, and its endpoints are strictly sorted with their ports set,
// which normalize makes the common case.
func aliasPort(ss []*Slice, k portKey) ([]Endpoint, bool) {
	var only *Slice
	for _, s := range ss {
		for _, p := range s.Ports {
			if p.Name == k.name && p.Protocol.OrTCP() == k.proto {
				if only != nil || len(s.Ports) != 1 {
					return nil, false
				}
				only = s
			}
		}
	}
	if only == nil || !strictlySorted(only.Endpoints) {
		return nil, false
	}
	for i := range only.Endpoints {
		if only.Endpoints[i].Port == 0 {
			return nil, false
		}
	}
	return slices.Clip(only.Endpoints), true
}

// mergePort returns the merged endpoints of the slice ports with key k.
func mergePort(ss []*Slice, k portKey) []Endpoint {
	n := 0
	for _, s := range ss {
		for _, p := range s.Ports {
			if p.Name == k.name && p.Protocol.OrTCP() == k.proto {
				n += len(s.Endpoints)
			}
		}
	}
	if n == 0 {
		return nil
	}
	eps := make([]Endpoint, 0, n)
	for _, s := range ss {
		for _, p := range s.Ports {
			if p.Name != k.name || p.Protocol.OrTCP() != k.proto {
				continue
			}
			start := len(eps)
			eps = append(eps, s.Endpoints...)
			for i := start; i < len(eps); i++ {
				if eps[i].Port == 0 {
					eps[i].Port = p.Port
				}
			}
		}
	}
	if strictlySorted(eps) {
		return eps // the common case: one slice, sorted, no duplicates
	}
	// A stable sort keeps slice order among equally terminating copies of
	// one address:port, so the first of each run is the one to keep.
	slices.SortStableFunc(eps, func(a, b Endpoint) int {
		if c := Compare(&a, &b); c != 0 {
			return c
		}
		return cmpBool(a.Terminating, b.Terminating)
	})
	eps = slices.CompactFunc(eps, func(a, b Endpoint) bool { return a.Addr == b.Addr && a.Port == b.Port })
	return slices.Clip(eps)
}

// strictlySorted reports whether eps is sorted with Compare and has no
// duplicate address:port.
func strictlySorted(eps []Endpoint) bool {
	for i := 1; i < len(eps); i++ {
		if Compare(&eps[i-1], &eps[i]) >= 0 {
			return false
		}
	}
	return true
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// compareSliceContent orders slices by ports, then endpoints.
func compareSliceContent(a, b *Slice) int {
	if c := slices.CompareFunc(a.Ports, b.Ports, func(p, q Port) int {
		return cmp.Or(cmp.Compare(p.Name, q.Name), cmp.Compare(p.Protocol, q.Protocol), cmp.Compare(p.Port, q.Port))
	}); c != 0 {
		return c
	}
	return slices.CompareFunc(a.Endpoints, b.Endpoints, compareEndpoint)
}

// compareEndpoint orders endpoints by every field.
func compareEndpoint(a, b Endpoint) int {
	if c := Compare(&a, &b); c != 0 {
		return c
	}
	return cmp.Or(
		cmpBool(a.Ready, b.Ready), cmpBool(a.Serving, b.Serving), cmpBool(a.Terminating, b.Terminating),
		cmp.Compare(a.NodeName, b.NodeName), cmp.Compare(a.Zone, b.Zone),
		slices.Compare(a.ZoneHints, b.ZoneHints), slices.Compare(a.NodeHints, b.NodeHints),
		cmp.Compare(a.Weight, b.Weight),
	)
}

// Equal reports whether two endpoints are the same in every field,
// including the hints.
func (e *Endpoint) Equal(o *Endpoint) bool {
	return e.Addr == o.Addr && e.Port == o.Port &&
		e.Ready == o.Ready && e.Serving == o.Serving && e.Terminating == o.Terminating &&
		e.NodeName == o.NodeName && e.Zone == o.Zone && e.Weight == o.Weight &&
		slices.Equal(e.ZoneHints, o.ZoneHints) && slices.Equal(e.NodeHints, o.NodeHints)
}

func equalEndpoints(a, b []Endpoint) bool {
	return slices.EqualFunc(a, b, func(x, y Endpoint) bool { return x.Equal(&y) })
}

// equalSlices reports whether two slices have the same content.
func equalSlices(a, b *Slice) bool {
	return a == b || (a.ID() == b.ID() && slices.Equal(a.Ports, b.Ports) && equalEndpoints(a.Endpoints, b.Endpoints))
}
