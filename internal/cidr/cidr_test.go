package cidr

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/proxykit/proxykit"
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func TestMinimal(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in, want []string
	}{
		{"empty", nil, nil},
		{"nested and unordered", []string{"10.1.0.0/16", "10.0.0.0/8", "192.0.2.0/24", "10.2.3.0/24"}, []string{"10.0.0.0/8", "192.0.2.0/24"}},
		{"same start, wider first", []string{"10.0.0.0/24", "10.0.0.0/16"}, []string{"10.0.0.0/16"}},
		{"disjoint kept", []string{"fd00::/64", "fd00:1::/64"}, []string{"fd00::/64", "fd00:1::/64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := prefixes(tc.in...)
			orig := slices.Clone(in)
			got := Minimal(in)
			if !slices.Equal(got, prefixes(tc.want...)) {
				t.Errorf("Minimal(%v) = %v, want %v", tc.in, got, tc.want)
			}
			if !slices.Equal(in, orig) {
				t.Errorf("Minimal modified its input: %v", in)
			}
		})
	}
}

func TestOfFamily(t *testing.T) {
	ps := prefixes("10.0.0.0/8", "fd00::/8", "192.0.2.0/24")
	if got := OfFamily(ps, proxykit.IPv4); !slices.Equal(got, prefixes("10.0.0.0/8", "192.0.2.0/24")) {
		t.Errorf("IPv4: %v", got)
	}
	if got := OfFamily(ps, proxykit.IPv6); !slices.Equal(got, prefixes("fd00::/8")) {
		t.Errorf("IPv6: %v", got)
	}
}

func TestProblem(t *testing.T) {
	for in, want := range map[netip.Prefix]string{
		netip.MustParsePrefix("10.0.0.0/8"):          "",
		netip.MustParsePrefix("10.1.2.3/8"):          "host bits are set; the masked form is 10.0.0.0/8",
		netip.MustParsePrefix("::ffff:10.0.0.0/104"): "IPv4-mapped IPv6 prefix",
		{}: "not a valid prefix",
	} {
		if got := Problem(in); got != want {
			t.Errorf("Problem(%v) = %q, want %q", in, got, want)
		}
	}
}
