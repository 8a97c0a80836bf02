package servicemap

import (
	"iter"

	"github.com/proxykit/proxykit/internal/sorted"
)

// Map holds the programmed service ports, sorted by PortName. It is
// immutable: Tracker.Apply returns a new Map that shares what did not
// change. The zero Map is empty and ready to use.
type Map struct {
	m sorted.Map[PortName, *ServicePort]
}

func comparePortNames(a, b PortName) int { return a.Compare(b) }

func (m Map) tree() sorted.Map[PortName, *ServicePort] {
	if m.m.Len() == 0 {
		return sorted.New[PortName, *ServicePort](comparePortNames)
	}
	return m.m
}

// Len returns the number of service ports.
func (m Map) Len() int { return m.m.Len() }

// Get returns the service port named n.
func (m Map) Get(n PortName) (*ServicePort, bool) {
	if m.m.Len() == 0 {
		return nil, false
	}
	return m.m.Get(n)
}

// All yields every service port in PortName order.
func (m Map) All() iter.Seq2[PortName, *ServicePort] { return m.tree().All() }

// Service yields the ports of one service, in PortName order.
func (m Map) Service(name ServiceName) iter.Seq2[PortName, *ServicePort] {
	return func(yield func(PortName, *ServicePort) bool) {
		for n, p := range m.tree().From(PortName{Namespace: name.Namespace, Name: name.Name}) {
			if n.Namespace != name.Namespace || n.Name != name.Name || !yield(n, p) {
				return
			}
		}
	}
}

// apply returns a Map with the edits made.
func (m Map) apply(edits []sorted.Edit[PortName, *ServicePort]) Map {
	return Map{m: m.tree().Apply(edits)}
}

// GetSorted looks up names, which must be sorted, calling fn with the
// index of each and its port (nil when absent). Many names cost one walk
// of the map rather than a search each.
func (m Map) GetSorted(names []PortName, fn func(i int, p *ServicePort)) {
	m.tree().GetSorted(names, func(i int, p *ServicePort, _ bool) { fn(i, p) })
}
