package endpoints

import (
	"cmp"
	"slices"
	"sync"

	"github.com/proxykit/proxykit/internal/sorted"
	"github.com/proxykit/proxykit/servicemap"
)

// Changes is what Tracker.Apply changed.
type Changes struct {
	// Ports lists, sorted, every service port whose merged endpoint list
	// was added, changed or removed.
	Ports []servicemap.PortName
	// Conntrack lists, sorted, the UDP and SCTP ports among Ports that
	// need stale-flow cleanup (SEMANTICS §9): an endpoint that was usable
	// before is now unusable or gone, or the port had no usable endpoint
	// before and has one now.
	Conntrack []servicemap.PortName
}

// NeedsConntrackCleanup reports whether some port needs stale-flow
// cleanup.
func (c Changes) NeedsConntrackCleanup() bool { return len(c.Conntrack) > 0 }

// Tracker collects slice changes and applies them to a Map. It keeps the
// slices it has applied, per service, so that a change to one slice
// re-merges only its service: the cost of Apply grows with the endpoints
// of the changed services (times log of the Map's size), never with the
// number of services.
//
// A Tracker is safe for concurrent use.
type Tracker struct {
	mu sync.Mutex
	// pending holds the latest version of each changed slice; nil means
	// deleted.
	pending map[SliceName]*Slice
	// applied holds each service's applied slices, sorted by Name.
	applied map[servicemap.ServiceName][]*Slice
	mg      merger
}

// NewTracker returns an empty Tracker.
func NewTracker() *Tracker {
	return &Tracker{
		pending: make(map[SliceName]*Slice),
		applied: make(map[servicemap.ServiceName][]*Slice),
	}
}

// Update records s, a new or changed slice, as its latest version. An
// invalid slice is not recorded: Update returns its *ValidationError.
// Updating a slice to what was last applied cancels its pending change.
// s must not be modified afterwards.
func (t *Tracker) Update(s *Slice) error {
	if err := s.Validate(); err != nil {
		return err
	}
	id := s.ID()
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur := t.appliedSlice(id); cur != nil && equalSlices(cur, s) {
		delete(t.pending, id)
		return nil
	}
	t.pending[id] = s
	return nil
}

// Delete records the deletion of a slice. Only its Namespace, Service and
// Name are used. Deleting a slice that was never applied cancels its
// pending change.
func (t *Tracker) Delete(s *Slice) {
	id := s.ID()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.appliedSlice(id) == nil {
		delete(t.pending, id)
		return
	}
	t.pending[id] = nil
}

// Pending returns the number of slices with pending changes.
func (t *Tracker) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// appliedSlice returns the applied slice named id, or nil.
func (t *Tracker) appliedSlice(id SliceName) *Slice {
	ss := t.applied[servicemap.ServiceName{Namespace: id.Namespace, Name: id.Service}]
	if i, ok := slices.BinarySearchFunc(ss, id.Name, compareSliceName); ok {
		return ss[i]
	}
	return nil
}

func compareSliceName(s *Slice, name string) int { return cmp.Compare(s.Name, name) }

// Apply applies the pending changes to m, which should be the Map the
// previous Apply returned (or the zero Map), and returns the new Map and
// what changed. m itself is left as it was. With nothing pending it
// returns m and no changes.
func (t *Tracker) Apply(m Map) (Map, Changes) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ch Changes
	if len(t.pending) == 0 {
		return m, ch
	}
	svcs := t.commit()
	// Most services have one port: size for that.
	edits := make([]sorted.Edit[servicemap.PortName, []Endpoint], 0, len(svcs))
	ch.Ports = make([]servicemap.PortName, 0, len(svcs))
	for _, svc := range svcs {
		lists := t.mg.merge(svc, t.applied[svc])
		edits = diffService(m, svc, lists, edits, &ch)
	}
	return m.apply(edits), ch
}

// commit moves the pending slices into applied and returns the services
// they belong to, sorted.
func (t *Tracker) commit() []servicemap.ServiceName {
	svcs := make([]servicemap.ServiceName, 0, len(t.pending))
	if len(t.applied) == 0 && len(t.pending) > 1024 {
		// A bulk load: size the map once instead of growing it in steps.
		t.applied = make(map[servicemap.ServiceName][]*Slice, len(t.pending))
	}
	for id, s := range t.pending {
		svc := servicemap.ServiceName{Namespace: id.Namespace, Name: id.Service}
		svcs = append(svcs, svc)
		ss := t.applied[svc]
		i, found := slices.BinarySearchFunc(ss, id.Name, compareSliceName)
		switch {
		case s == nil && found:
			ss = slices.Delete(ss, i, i+1)
		case s != nil && found:
			ss[i] = s
		case s != nil:
			ss = slices.Insert(ss, i, s)
		}
		if len(ss) == 0 {
			delete(t.applied, svc)
		} else {
			t.applied[svc] = ss
		}
	}
	// A fresh map: a cleared one would keep its size, and iterating it
	// would cost as much as the largest batch ever seen.
	t.pending = make(map[SliceName]*Slice)
	slices.SortFunc(svcs, servicemap.ServiceName.Compare)
	return slices.Compact(svcs)
}

// diffService compares the new lists of svc with those in m, appends the
// edits that turn one into the other, and records the changes.
func diffService(m Map, svc servicemap.ServiceName, lists []portList,
	edits []sorted.Edit[servicemap.PortName, []Endpoint], ch *Changes,
) []sorted.Edit[servicemap.PortName, []Endpoint] {
	i := 0
	for name, old := range m.Service(svc) {
		for ; i < len(lists) && lists[i].name.Compare(name) < 0; i++ {
			edits = append(edits, sorted.Edit[servicemap.PortName, []Endpoint]{Key: lists[i].name, Value: lists[i].eps})
			ch.record(lists[i].name, nil, lists[i].eps)
		}
		if i < len(lists) && lists[i].name == name {
			if !equalEndpoints(old, lists[i].eps) {
				edits = append(edits, sorted.Edit[servicemap.PortName, []Endpoint]{Key: name, Value: lists[i].eps})
				ch.record(name, old, lists[i].eps)
			}
			i++
			continue
		}
		edits = append(edits, sorted.Edit[servicemap.PortName, []Endpoint]{Key: name, Delete: true})
		ch.record(name, old, nil)
	}
	for ; i < len(lists); i++ {
		edits = append(edits, sorted.Edit[servicemap.PortName, []Endpoint]{Key: lists[i].name, Value: lists[i].eps})
		ch.record(lists[i].name, nil, lists[i].eps)
	}
	return edits
}

// record notes that the list of port name changed from old to cur.
func (c *Changes) record(name servicemap.PortName, old, cur []Endpoint) {
	c.Ports = append(c.Ports, name)
	if (name.Protocol == servicemap.UDP || name.Protocol == servicemap.SCTP) && staleFlows(old, cur) {
		c.Conntrack = append(c.Conntrack, name)
	}
}

// staleFlows reports whether a change from old to cur (both sorted with
// Compare) can leave stale conntrack flows (SEMANTICS §9): an endpoint
// usable in old is unusable or gone in cur, or old had no usable endpoint
// and cur has one (flows created while there was none black-hole).
func staleFlows(old, cur []Endpoint) bool {
	hadUsable := false
	j := 0
	for i := range old {
		o := &old[i]
		if !o.Usable() {
			continue
		}
		hadUsable = true
		for j < len(cur) && Compare(&cur[j], o) < 0 {
			j++
		}
		if j == len(cur) || Compare(&cur[j], o) != 0 || !cur[j].Usable() {
			return true
		}
	}
	return !hadUsable && slices.ContainsFunc(cur, func(e Endpoint) bool { return e.Usable() })
}
