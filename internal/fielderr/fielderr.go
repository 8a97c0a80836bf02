// Package fielderr formats the validation errors of proxykit's model
// packages, so that servicemap and endpoints report problems the same way:
//
//	servicemap: Ports[1].Port: invalid value 0: must be 1-65535
//	endpoints: slice "ns/web/web-1": 2 problems: Endpoints[0].Addr: …; …
//
// Each model package keeps its own exported error types (callers match
// them with errors.As); only the wording lives here.
package fielderr

import (
	"fmt"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
)

// Detail returns "Field: invalid value V: reason".
func Detail(field string, value any, reason string) string {
	return field + ": invalid value " + Value(value) + ": " + reason
}

// Value prints a field's value: strings (and string types) quoted so an
// empty one is visible, zero and malformed addresses and prefixes spelled
// out instead of netip's "invalid IP".
func Value(v any) string {
	switch v := v.(type) {
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
	if v != nil && reflect.TypeOf(v).Kind() == reflect.String {
		return strconv.Quote(reflect.ValueOf(v).String())
	}
	return fmt.Sprint(v)
}

// List returns `pkg: kind "name": N problems: d1; d2` (or, with one
// detail, `pkg: kind "name": d1`).
func List(pkg, kind, name string, details []string) string {
	var b strings.Builder
	b.WriteString(pkg + ": " + kind + " " + strconv.Quote(name) + ": ")
	switch n := len(details); {
	case n == 0:
		b.WriteString("invalid")
	case n > 1:
		b.WriteString(strconv.Itoa(n) + " problems: ")
	}
	b.WriteString(strings.Join(details, "; "))
	return b.String()
}

// Errors converts typed field errors for an Unwrap() []error method.
func Errors[E error](errs []E) []error {
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return out
}
