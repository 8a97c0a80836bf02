package servicemap

import "github.com/proxykit/proxykit/internal/fielderr"

// FieldError is one problem with one field of a Service. Service.Validate
// returns them inside a *ValidationError; errors.As finds the first one.
type FieldError struct {
	// Field is the path of the field in Go syntax, e.g. "Ports[1].Port",
	// "ClusterIPs[0]" or "Affinity.Timeout".
	Field string
	// Value is the offending value, as found in the Service.
	Value any
	// Reason says what is wrong and, where it can, what would be right.
	Reason string
}

// Error returns e.g. "servicemap: Ports[1].Port: invalid value 0: must be
// 1-65535".
func (e *FieldError) Error() string { return "servicemap: " + e.detail() }

func (e *FieldError) detail() string { return fielderr.Detail(e.Field, e.Value, e.Reason) }

// ValidationError lists every problem Service.Validate found in one
// Service.
type ValidationError struct {
	Service ServiceName
	Errors  []*FieldError
}

// Error names the service and lists all problems on one line, e.g.
// `servicemap: service "ns/web": 2 problems: Ports[0].Port: invalid value
// 0: must be 1-65535; Scheduler: invalid value "R R": …`.
func (e *ValidationError) Error() string {
	details := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		details[i] = fe.detail()
	}
	return fielderr.List("servicemap", "service", e.Service.String(), details)
}

// Unwrap returns the FieldErrors, so that errors.As(err, &fieldErr) works.
func (e *ValidationError) Unwrap() []error { return fielderr.Errors(e.Errors) }
