package servicemap

import (
	"slices"
	"strings"
	"sync"

	"github.com/proxykit/proxykit/internal/sorted"
)

// Changes is what Tracker.Apply changed in the Map.
type Changes struct {
	// Updated holds the ports added or changed, sorted. Ports whose
	// ServicePort is Equal to the one already in the Map are left out.
	Updated []PortName
	// Deleted holds the ports removed, sorted.
	Deleted []PortName
	// HasUDPOrSCTP reports whether any updated or deleted port uses UDP or
	// SCTP: their conntrack entries may need clearing (SEMANTICS §9).
	HasUDPOrSCTP bool
}

// Tracker collects changes of Services between syncs and applies them to a
// Map in one batch. Pending changes of one service merge: the first
// previous state and the latest current state are kept, and a change that
// ends where it started (added then deleted, updated back) is dropped,
// unless an update in between was rejected: then the caller's previous
// state may not be the applied one, and Apply settles it against the Map.
//
// Tracker is safe for concurrent use. The zero Tracker is ready to use.
type Tracker struct {
	mu      sync.Mutex
	pending map[ServiceName]change
	// rejected holds the services whose latest update was rejected, until
	// their next change is recorded: the caller's idea of their state has
	// left the applied one, so that change's prev proves nothing.
	rejected map[ServiceName]struct{}
}

// change is the pending change of one service: from prev (nil: absent) to
// cur (nil: deleted).
type change struct {
	prev, cur *Service
	// force keeps the change even when prev and cur look the same:
	// an update was rejected before it, so prev may not be what is
	// applied.
	force bool
}

// NewTracker returns an empty Tracker.
func NewTracker() *Tracker { return &Tracker{} }

func nameOf(s *Service) ServiceName { return ServiceName{s.Namespace, s.Name} }

// Update records that a service changed from prev to cur. prev nil means
// the service was added; cur nil means it was deleted, like Delete(prev).
//
// cur is validated first: if it is invalid, Update returns the
// *ValidationError and records nothing, so the state applied before stays
// in force. prev is not validated; it only serves to recognise changes
// that cancel out, and Apply does not trust it (it compares with the Map).
// If prev and cur name different services, Update records the deletion of
// prev and the addition of cur.
func (t *Tracker) Update(prev, cur *Service) error {
	if cur == nil {
		t.Delete(prev)
		return nil
	}
	name := nameOf(cur)
	if err := cur.Validate(); err != nil {
		t.reject(name)
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if prev != nil && nameOf(prev) != name {
		t.record(nameOf(prev), prev, nil)
		prev = nil
	}
	t.record(name, prev, cur)
	return nil
}

// Delete records that svc was deleted. A nil svc is ignored.
func (t *Tracker) Delete(svc *Service) {
	if svc == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.record(nameOf(svc), svc, nil)
}

// record merges a change into the pending one of the same service. The
// caller holds t.mu.
func (t *Tracker) record(name ServiceName, prev, cur *Service) {
	c, ok := t.pending[name]
	if ok {
		prev = c.prev
	}
	_, force := t.rejected[name]
	if force {
		delete(t.rejected, name)
	}
	force = force || c.force
	if !force && sameProgram(prev, cur) {
		if ok {
			delete(t.pending, name)
		}
		return
	}
	if t.pending == nil {
		t.pending = make(map[ServiceName]change)
	}
	t.pending[name] = change{prev: prev, cur: cur, force: force}
}

// reject notes that an update of service name was rejected. Nothing is
// recorded for Apply, but the next change of the service is kept even if
// it looks like a no-op: after an update from A to an invalid B, the
// caller's next update from B to C may flatten to the same ports as B
// while A is still applied.
func (t *Tracker) reject(name ServiceName) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rejected == nil {
		t.rejected = make(map[ServiceName]struct{})
	}
	t.rejected[name] = struct{}{}
}

// Pending returns the number of services with pending changes.
func (t *Tracker) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// Apply applies every pending change to m and forgets them. It returns the
// new Map, m itself being left as it was, and what changed. For each
// changed service, the ports to remove are those m holds for it, whatever
// the recorded prev said. The cost grows with the number of changed
// services and the logarithm of m's size, not with m's size.
func (t *Tracker) Apply(m Map) (Map, Changes) {
	t.mu.Lock()
	pending := t.pending
	// A new map rather than clear(): clearing costs the map's capacity,
	// which after a bulk load is the total number of services.
	t.pending = nil
	t.mu.Unlock()
	if len(pending) == 0 {
		return m, Changes{}
	}
	todo := make([]namedChange, 0, len(pending))
	for n, c := range pending {
		todo = append(todo, namedChange{n, c.cur})
	}
	// Services in order, and ports in order within each, give edits and
	// changes already sorted.
	slices.SortFunc(todo, func(a, b namedChange) int {
		if c := strings.Compare(a.name.Namespace, b.name.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.name.Name, b.name.Name)
	})
	a := applier{
		m:     m,
		edits: make([]sorted.Edit[PortName, *ServicePort], 0, len(todo)),
	}
	if m.Len() == 0 {
		a.changes.Updated = make([]PortName, 0, len(todo))
	}
	for _, c := range todo {
		a.service(c.name, c.cur)
	}
	return m.apply(a.edits), a.changes
}

// namedChange is a service to bring to cur (nil: delete) in Apply.
type namedChange struct {
	name ServiceName
	cur  *Service
}

// applier turns the pending changes of services into Map edits.
type applier struct {
	m          Map
	edits      []sorted.Edit[PortName, *ServicePort]
	changes    Changes
	olds, news []*ServicePort // scratch, reused across services
}

// service computes the edits that make m's ports of service name those of
// cur (nil: none).
func (a *applier) service(name ServiceName, cur *Service) {
	a.olds = a.olds[:0]
	if a.m.Len() > 0 {
		for _, p := range a.m.Service(name) {
			a.olds = append(a.olds, p)
		}
	}
	a.news = cur.flattenInto(a.news[:0])
	if len(a.news) > 1 {
		slices.SortFunc(a.news, func(p, q *ServicePort) int { return p.Name.Compare(q.Name) })
	}
	olds, news := a.olds, a.news
	for len(olds) > 0 || len(news) > 0 {
		c := 0
		switch {
		case len(news) == 0:
			c = -1
		case len(olds) == 0:
			c = 1
		default:
			c = olds[0].Name.Compare(news[0].Name)
		}
		switch {
		case c < 0:
			a.deleted(olds[0])
			olds = olds[1:]
		case c > 0:
			a.updated(news[0])
			news = news[1:]
		default:
			if !olds[0].Equal(news[0]) {
				a.updated(news[0])
			}
			olds, news = olds[1:], news[1:]
		}
	}
}

func (a *applier) updated(p *ServicePort) {
	a.edits = append(a.edits, sorted.Edit[PortName, *ServicePort]{Key: p.Name, Value: p})
	a.changes.Updated = append(a.changes.Updated, p.Name)
	a.changes.HasUDPOrSCTP = a.changes.HasUDPOrSCTP || isUDPOrSCTP(p.Protocol)
}

func (a *applier) deleted(p *ServicePort) {
	a.edits = append(a.edits, sorted.Edit[PortName, *ServicePort]{Key: p.Name, Delete: true})
	a.changes.Deleted = append(a.changes.Deleted, p.Name)
	a.changes.HasUDPOrSCTP = a.changes.HasUDPOrSCTP || isUDPOrSCTP(p.Protocol)
}

func isUDPOrSCTP(p Protocol) bool { return p == UDP || p == SCTP }
