package endpoints

import "github.com/proxykit/proxykit/servicemap"

// Temporary signatures; the endpoints helper replaces this file.

// Validate reports every problem of the slice.
func (s *Slice) Validate() error { panic("not implemented yet") }

// Merge merges the slices of one service.
func Merge(slices []*Slice) map[servicemap.PortName][]Endpoint { panic("not implemented yet") }

// Changes is what Tracker.Apply changed.
type Changes struct {
	Ports     []servicemap.PortName
	Conntrack []servicemap.PortName
}

// Tracker tracks slices.
type Tracker struct{}

// NewTracker returns an empty Tracker.
func NewTracker() *Tracker { return &Tracker{} }

// Update records a new or changed slice.
func (t *Tracker) Update(s *Slice) error { panic("not implemented yet") }

// Delete records a deleted slice.
func (t *Tracker) Delete(s *Slice) { panic("not implemented yet") }

// Pending returns the number of slices with pending changes.
func (t *Tracker) Pending() int { panic("not implemented yet") }

// Apply applies pending changes.
func (t *Tracker) Apply(m Map) (Map, Changes) { panic("not implemented yet") }
