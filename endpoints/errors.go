package endpoints

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
)

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

func (e *FieldError) Error() string {
	return "endpoints: " + e.Field + ": invalid value " + formatValue(e.Value) + ": " + e.Reason
}

// formatValue quotes strings (so an empty one is visible) and prints
// everything else as %v.
func formatValue(v any) string {
	if a, ok := v.(netip.Addr); ok && !a.IsValid() {
		return "<unset>"
	}
	if v != nil && reflect.TypeOf(v).Kind() == reflect.String {
		return fmt.Sprintf("%q", v)
	}
	return fmt.Sprint(v)
}

// ValidationError is every problem Slice.Validate found in one slice. Its
// message is the messages of Errors, one a line, like errors.Join's.
// errors.As finds the individual *FieldError values through Unwrap.
type ValidationError struct {
	Slice  SliceName
	Errors []*FieldError
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	for i, fe := range e.Errors {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(fe.Error())
	}
	return b.String()
}

// Unwrap returns the field errors.
func (e *ValidationError) Unwrap() []error {
	errs := make([]error, len(e.Errors))
	for i, fe := range e.Errors {
		errs[i] = fe
	}
	return errs
}
