// Package cidr normalizes lists of prefixes the way kernel sets need
// them: one family, sorted, none inside another.
package cidr

import (
	"net/netip"
	"slices"

	"github.com/proxykit/proxykit"
)

// OfFamily returns the prefixes of family f, in order.
func OfFamily(ps []netip.Prefix, f proxykit.Family) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if f.Contains(p.Addr()) {
			out = append(out, p)
		}
	}
	return out
}

// Minimal returns ps sorted by address, without the prefixes that lie
// inside another: an interval set refuses overlapping elements, and a
// rule needs no more. ps is not modified.
func Minimal(ps []netip.Prefix) []netip.Prefix {
	sorted := slices.SortedFunc(slices.Values(ps), func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	out := sorted[:0]
	for _, p := range sorted {
		// Sorted by start, a prefix inside any kept one is inside the last.
		if len(out) > 0 && out[len(out)-1].Contains(p.Addr()) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// Problem says what is wrong with p as a configured prefix, or "" when
// nothing is: it must be valid, plain (no IPv4-mapped address, no zone)
// and masked, as a kernel set holds it.
func Problem(p netip.Prefix) string {
	switch {
	case !p.IsValid():
		return "not a valid prefix"
	case p.Addr().Is4In6():
		return "IPv4-mapped IPv6 prefix"
	case p.Addr().Zone() != "":
		return "has a zone"
	case p.Masked() != p:
		return "host bits are set; the masked form is " + p.Masked().String()
	}
	return ""
}
