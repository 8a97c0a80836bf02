package k8s

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrIgnored is wrapped by the error of a conversion whose object is well
// formed but gets no rules by design, such as an EndpointSlice of
// addressType FQDN. Match it with errors.Is; the Source drops such
// objects without reporting them.
var ErrIgnored = errors.New("ignored by the service proxy")

// Error is a failed conversion of one Kubernetes object. Err holds what
// went wrong: one or more *FieldError values (joined), the model's
// *servicemap.ValidationError or *endpoints.ValidationError, or
// ErrIgnored. errors.As and errors.Is see through it.
type Error struct {
	// Kind is "Service", "EndpointSlice" or "Node".
	Kind string
	// Namespace is empty for a Node.
	Namespace, Name string
	Err             error
}

// Error returns e.g. `k8s: Service "default/web": spec.clusterIPs[0]:
// invalid value "10.0.0.x": not an IP address`.
func (e *Error) Error() string {
	name := e.Name
	if e.Namespace != "" {
		name = e.Namespace + "/" + e.Name
	}
	msg := "<nil>"
	if e.Err != nil {
		msg = strings.ReplaceAll(e.Err.Error(), "\n", "; ")
	}
	return "k8s: " + e.Kind + " " + strconv.Quote(name) + ": " + msg
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// FieldError is one field of a Kubernetes object that could not be
// converted. Field is the path in the API object as kubectl spells it,
// e.g. "spec.ports[1].port" or "endpoints[3].addresses[0]".
type FieldError struct {
	Field  string
	Value  any
	Reason string
}

// Error returns "Field: invalid value V: reason".
func (e *FieldError) Error() string {
	v := fmt.Sprint(e.Value)
	if s, ok := e.Value.(string); ok {
		v = strconv.Quote(s)
	}
	return e.Field + ": invalid value " + v + ": " + e.Reason
}

// problems collects the FieldErrors of one conversion.
type problems []error

func (p *problems) add(field string, value any, reason string) {
	*p = append(*p, &FieldError{Field: field, Value: value, Reason: reason})
}

func (p problems) err() error { return errors.Join(p...) }
