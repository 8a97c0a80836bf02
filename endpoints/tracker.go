package endpoints

import (
	"cmp"
	"slices"
	"strings"
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
	// need stale-flow cleanup (SEMANTICS §9). It is decided per IP family
	// (SEMANTICS §1), on usable endpoints: a port is listed when, in
	// either family, an endpoint that was usable before is now unusable
	// or gone, or the family had no usable endpoint before and has one
	// now. It cannot know a node's set in use (topology hints and traffic
	// policy choose that among the usable endpoints, SEMANTICS §2), so it
	// is only a node-independent first cut; package proxykit's
	// Snapshot.ConntrackCleanup refines it per node, on the set in use.
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
// A slice is identified by its Namespace and Name, which are unique
// within a namespace as in Kubernetes; its Service says which service it
// currently belongs to. A slice may move: an Update under another Service
// than the one of the version last recorded replaces that version, so the
// endpoints leave the old service (its pending add is cancelled if it was
// never applied) and join the new one in the same Apply. Delete removes
// whatever version the tracker knows under the slice's Namespace and
// Name, whatever Service it names.
//
// A Tracker is safe for concurrent use.
type Tracker struct {
	mu sync.Mutex
	// pending holds the latest version of each changed slice, by
	// Namespace and Name; nil means deleted.
	pending map[sliceKey]*Slice
	// applied holds each service's applied slices, sorted by Name.
	applied map[servicemap.ServiceName][]*Slice
	// owner holds the Service of each applied slice: there is at most
	// one applied version per sliceKey.
	owner map[sliceKey]string
	mg    merger
}

// sliceKey identifies a slice regardless of the service it belongs to.
type sliceKey struct {
	namespace, name string
}

// NewTracker returns an empty Tracker.
func NewTracker() *Tracker {
	return &Tracker{
		pending: make(map[sliceKey]*Slice),
		applied: make(map[servicemap.ServiceName][]*Slice),
		owner:   make(map[sliceKey]string),
	}
}

// Update records s, a new or changed slice, as its latest version. An
// invalid (or nil) slice is not recorded: Update returns its
// *ValidationError. Updating a slice to what was last applied cancels its
// pending change. An update under another Service moves the slice (see
// Tracker).
//
// Update keeps its own copy of the endpoints, normalized (see normalize),
// so that the work of a slice is done when it arrives rather than in the
// sync, and the caller may reuse s's Endpoints afterwards. Ports and the
// hint slices are still shared and must not be modified.
func (t *Tracker) Update(s *Slice) error {
	if err := s.Validate(); err != nil {
		return err
	}
	s = normalize(s)
	key := sliceKey{s.Namespace, s.Name}
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur := t.appliedSlice(key); cur != nil && equalSlices(cur, s) {
		delete(t.pending, key)
		return nil
	}
	t.pending[key] = s
	return nil
}

// Delete records the deletion of a slice. Only its Namespace and Name are
// used: the version known under them is deleted even if s names another
// Service. Deleting a slice that was never applied cancels its pending
// change; deleting a nil slice does nothing.
func (t *Tracker) Delete(s *Slice) {
	if s == nil {
		return
	}
	key := sliceKey{s.Namespace, s.Name}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.owner[key]; !ok {
		delete(t.pending, key)
		return
	}
	t.pending[key] = nil
}

// Pending returns the number of slices with pending changes.
func (t *Tracker) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// appliedSlice returns the applied version of the slice key, or nil.
func (t *Tracker) appliedSlice(key sliceKey) *Slice {
	svc, ok := t.owner[key]
	if !ok {
		return nil
	}
	ss := t.applied[servicemap.ServiceName{Namespace: key.namespace, Name: svc}]
	if i, ok := slices.BinarySearchFunc(ss, key.name, compareSliceName); ok {
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
	changes := t.takePending()
	// Most services have one port: size for that.
	edits := make([]sorted.Edit[servicemap.PortName, []Endpoint], 0, len(changes))
	ch.Ports = make([]servicemap.PortName, 0, len(changes))
	for i := 0; i < len(changes); {
		// changes is sorted, so one service's slices are adjacent: commit
		// them with one map lookup, then re-merge the service.
		svc := servicemap.ServiceName{Namespace: changes[i].id.Namespace, Name: changes[i].id.Service}
		ss := t.applied[svc]
		for ; i < len(changes) && changes[i].id.Namespace == svc.Namespace && changes[i].id.Service == svc.Name; i++ {
			ss = commitSlice(ss, changes[i].id.Name, changes[i].s)
		}
		if len(ss) == 0 {
			delete(t.applied, svc)
		} else {
			t.applied[svc] = ss
		}
		edits = diffService(m, svc, t.mg.mergeOwned(svc, ss), edits, &ch)
	}
	return m.apply(edits), ch
}

// normalize returns a copy of s for the tracker to own. Its endpoints are
// sorted with Compare (stably, so the first of two copies of an
// address:port stays first), and in a one-port slice each takes the
// port's number unless it has its own. Merging a service with one such
// slice then needs no copy: the merged list is the slice's own.
func normalize(s *Slice) *Slice {
	n := *s
	n.Endpoints = slices.Clone(s.Endpoints)
	if len(n.Ports) == 1 {
		for i := range n.Endpoints {
			if n.Endpoints[i].Port == 0 {
				n.Endpoints[i].Port = n.Ports[0].Port
			}
		}
	}
	if !slices.IsSortedFunc(n.Endpoints, compareEndpointOrder) {
		slices.SortStableFunc(n.Endpoints, compareEndpointOrder)
	}
	return &n
}

func compareEndpointOrder(a, b Endpoint) int { return Compare(&a, &b) }

// pendingSlice is one pending change: the latest version of a slice, or
// nil for a deletion.
type pendingSlice struct {
	id SliceName
	s  *Slice
}

// takePending empties the pending set and returns it as changes per
// service, sorted by slice name (namespace, service, name): a slice that
// moved yields the deletion of its applied version and its new version.
// It records the new owners.
func (t *Tracker) takePending() []pendingSlice {
	out := make([]pendingSlice, 0, len(t.pending))
	if len(t.applied) == 0 && len(t.pending) > 1024 {
		// A bulk load: size the maps once instead of growing them in steps.
		t.applied = make(map[servicemap.ServiceName][]*Slice, len(t.pending))
		t.owner = make(map[sliceKey]string, len(t.pending))
	}
	for key, s := range t.pending {
		if svc, ok := t.owner[key]; ok && (s == nil || s.Service != svc) {
			out = append(out, pendingSlice{SliceName{key.namespace, svc, key.name}, nil})
		}
		if s == nil {
			delete(t.owner, key)
			continue
		}
		out = append(out, pendingSlice{s.ID(), s})
		t.owner[key] = s.Service
	}
	// A fresh map: a cleared one would keep its size, and iterating it
	// would cost as much as the largest batch ever seen.
	t.pending = make(map[sliceKey]*Slice)
	slices.SortFunc(out, func(a, b pendingSlice) int {
		if c := strings.Compare(a.id.Namespace, b.id.Namespace); c != 0 {
			return c
		}
		if c := strings.Compare(a.id.Service, b.id.Service); c != 0 {
			return c
		}
		return strings.Compare(a.id.Name, b.id.Name)
	})
	return out
}

// commitSlice applies one pending change to a service's slices, sorted by
// Name: s replaces or joins the slice called name, or nil removes it.
func commitSlice(ss []*Slice, name string, s *Slice) []*Slice {
	i, found := slices.BinarySearchFunc(ss, name, compareSliceName)
	switch {
	case s == nil && found:
		return slices.Delete(ss, i, i+1)
	case s != nil && found:
		ss[i] = s
	case s != nil:
		return slices.Insert(ss, i, s)
	}
	return ss
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
// Compare) can leave stale conntrack flows in either IP family, each
// decided on its own (SEMANTICS §1 and §9).
func staleFlows(old, cur []Endpoint) bool {
	old4, old6 := SplitFamily(old)
	cur4, cur6 := SplitFamily(cur)
	return staleFamily(old4, cur4) || staleFamily(old6, cur6)
}

// staleFamily is staleFlows for the lists of one family: an endpoint
// usable in old is unusable or gone in cur, or old had no usable endpoint
// and cur has one (flows created while there was none black-hole).
func staleFamily(old, cur []Endpoint) bool {
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
