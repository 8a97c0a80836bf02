package servicemap

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

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

func (e *FieldError) detail() string {
	return e.Field + ": invalid value " + formatValue(e.Value) + ": " + e.Reason
}

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
	var b strings.Builder
	b.WriteString("servicemap: service ")
	b.WriteString(strconv.Quote(e.Service.String()))
	b.WriteString(": ")
	if n := len(e.Errors); n == 0 {
		b.WriteString("invalid")
	} else if n > 1 {
		b.WriteString(strconv.Itoa(n))
		b.WriteString(" problems: ")
	}
	for i, fe := range e.Errors {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(fe.detail())
	}
	return b.String()
}

// Unwrap returns the FieldErrors, so that errors.As(err, &fieldErr) works.
func (e *ValidationError) Unwrap() []error {
	errs := make([]error, len(e.Errors))
	for i, fe := range e.Errors {
		errs[i] = fe
	}
	return errs
}

// formatValue prints a FieldError's value: strings quoted, zero and
// malformed addresses and prefixes spelled out instead of netip's
// "invalid IP".
func formatValue(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case Protocol, Type, TrafficPolicy:
		return fmt.Sprintf("%q", v)
	case netip.Addr:
		if !v.IsValid() {
			return "<zero Addr>"
		}
	case netip.Prefix:
		switch {
		case v.Addr().IsValid() && !v.IsValid():
			return v.Addr().String() + "/<invalid length>"
		case !v.IsValid():
			return "<zero Prefix>"
		}
	}
	return fmt.Sprint(v)
}
