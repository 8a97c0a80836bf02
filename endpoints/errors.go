package endpoints

import "github.com/proxykit/proxykit/internal/fielderr"

// FieldError is one problem of a Slice: the path of the field within the
// Slice (for example "Endpoints[3].Addr"), its value, and why the value is
// wrong. Its message reads
//
//	endpoints: Endpoints[3].Addr: invalid value ::ffff:1.2.3.4: IPv4-mapped IPv6 address
type FieldError struct {
	Field  string
	Value  any
	Reason string
}

func (e *FieldError) Error() string { return "endpoints: " + e.detail() }

func (e *FieldError) detail() string { return fielderr.Detail(e.Field, e.Value, e.Reason) }

// ValidationError is every problem Slice.Validate found in one slice. Its
// message names the slice and lists the problems on one line, e.g.
// `endpoints: slice "ns/web/web-1": 2 problems: Ports[0].Port: …; …`.
// errors.As finds the individual *FieldError values through Unwrap.
type ValidationError struct {
	Slice  SliceName
	Errors []*FieldError
}

func (e *ValidationError) Error() string {
	details := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		details[i] = fe.detail()
	}
	name := e.Slice.Namespace + "/" + e.Slice.Service + "/" + e.Slice.Name
	return fielderr.List("endpoints", "slice", name, details)
}

// Unwrap returns the field errors.
func (e *ValidationError) Unwrap() []error { return fielderr.Errors(e.Errors) }
