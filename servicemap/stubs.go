package servicemap

// Temporary signatures; the servicemap helper replaces this file.

// Validate reports every problem of the service.
func (s *Service) Validate() error { panic("not implemented yet") }

// Flatten returns the service's ports.
func (s *Service) Flatten() []*ServicePort { panic("not implemented yet") }

// Equal reports whether two service ports would be programmed the same.
func (p *ServicePort) Equal(o *ServicePort) bool { panic("not implemented yet") }

// Changes is what Tracker.Apply changed.
type Changes struct {
	Updated, Deleted []PortName
	HasUDPOrSCTP     bool
}

// Tracker merges pending service changes.
type Tracker struct{}

// NewTracker returns an empty Tracker.
func NewTracker() *Tracker { return &Tracker{} }

// Update records a change.
func (t *Tracker) Update(prev, cur *Service) error { panic("not implemented yet") }

// Delete records a deletion.
func (t *Tracker) Delete(svc *Service) { panic("not implemented yet") }

// Pending returns the number of services with pending changes.
func (t *Tracker) Pending() int { panic("not implemented yet") }

// Apply applies pending changes.
func (t *Tracker) Apply(m Map) (Map, Changes) { panic("not implemented yet") }
