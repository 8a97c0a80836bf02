package fielderr

import (
	"errors"
	"net/netip"
	"testing"
)

type proto string

func TestValue(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   any
		want string
	}{
		{"string", "", `""`},
		{"string type", proto("SCTPX"), `"SCTPX"`},
		{"number", 0, "0"},
		{"zero addr", netip.Addr{}, "<zero Addr>"},
		{"addr", netip.MustParseAddr("::ffff:1.2.3.4"), "::ffff:1.2.3.4"},
		{"zero prefix", netip.Prefix{}, "<zero Prefix>"},
		{"bad length", netip.PrefixFrom(netip.MustParseAddr("10.0.0.0"), 40), "10.0.0.0/<invalid length>"},
		{"prefix", netip.MustParsePrefix("10.0.0.0/8"), "10.0.0.0/8"},
		{"nil", nil, "<nil>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Value(tc.in); got != tc.want {
				t.Errorf("Value(%#v) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestList(t *testing.T) {
	d := []string{Detail("Ports[0].Port", 0, "must be 1-65535"), Detail("Name", "", "must not be empty")}
	if got, want := List("servicemap", "service", "ns/web", d), `servicemap: service "ns/web": 2 problems: Ports[0].Port: invalid value 0: must be 1-65535; Name: invalid value "": must not be empty`; got != want {
		t.Errorf("List =\n%s\nwant\n%s", got, want)
	}
	if got, want := List("endpoints", "slice", "a/b/c", d[:1]), `endpoints: slice "a/b/c": Ports[0].Port: invalid value 0: must be 1-65535`; got != want {
		t.Errorf("List = %s, want %s", got, want)
	}
	if got, want := List("x", "y", "z", nil), `x: y "z": invalid`; got != want {
		t.Errorf("List = %s, want %s", got, want)
	}
}

type myErr struct{ s string }

func (e *myErr) Error() string { return e.s }

func TestErrors(t *testing.T) {
	a := &myErr{"a"}
	errs := Errors([]*myErr{a, {"b"}})
	var got *myErr
	if len(errs) != 2 || !errors.As(errors.Join(errs...), &got) || got != a {
		t.Errorf("Errors did not keep the typed errors: %v", errs)
	}
}
