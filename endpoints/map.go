package endpoints

import (
	"iter"

	"github.com/proxykit/proxykit/internal/sorted"
	"github.com/proxykit/proxykit/servicemap"
)

// Map holds the merged endpoints of every service port that has any,
// sorted by PortName. It is immutable: Tracker.Apply returns a new Map
// that shares what did not change. The zero Map is empty and ready to use.
// The endpoint lists are sorted with Compare and must not be modified.
type Map struct {
	m sorted.Map[servicemap.PortName, []Endpoint]
}

func (m Map) tree() sorted.Map[servicemap.PortName, []Endpoint] {
	if m.m.Len() == 0 {
		return sorted.New[servicemap.PortName, []Endpoint](func(a, b servicemap.PortName) int { return a.Compare(b) })
	}
	return m.m
}

// Len returns the number of service ports with endpoints.
func (m Map) Len() int { return m.m.Len() }

// Get returns the merged endpoints of a service port.
func (m Map) Get(n servicemap.PortName) ([]Endpoint, bool) {
	if m.m.Len() == 0 {
		return nil, false
	}
	return m.m.Get(n)
}

// All yields every service port's endpoints in PortName order.
func (m Map) All() iter.Seq2[servicemap.PortName, []Endpoint] { return m.tree().All() }

// Service yields the endpoint lists of one service's ports.
func (m Map) Service(name servicemap.ServiceName) iter.Seq2[servicemap.PortName, []Endpoint] {
	return func(yield func(servicemap.PortName, []Endpoint) bool) {
		for n, eps := range m.tree().From(servicemap.PortName{Namespace: name.Namespace, Name: name.Name}) {
			if n.Namespace != name.Namespace || n.Name != name.Name || !yield(n, eps) {
				return
			}
		}
	}
}

func (m Map) apply(edits []sorted.Edit[servicemap.PortName, []Endpoint]) Map {
	return Map{m: m.tree().Apply(edits)}
}

// GetSorted looks up names, which must be sorted, calling fn with the
// index of each and its endpoints (nil when absent). Many names cost one
// walk of the map rather than a search each.
func (m Map) GetSorted(names []servicemap.PortName, fn func(i int, eps []Endpoint)) {
	m.tree().GetSorted(names, func(i int, eps []Endpoint, _ bool) { fn(i, eps) })
}
