//go:build linux

package conformance

import "net/netip"

// Family indexes, into the [2]netip.Addr arrays below.
const (
	v4 = 0
	v6 = 1
)

var addr = netip.MustParseAddr

// The topology's addresses (see package netnstest); Run checks that they
// still match.
var (
	clientAddr     = [2]netip.Addr{addr("192.0.2.100"), addr("2001:db8:c::100")}
	nodeLinkAddr   = [2]netip.Addr{addr("198.51.100.1"), addr("2001:db8:1::1")}
	clientLinkAddr = [2]netip.Addr{addr("192.0.2.1"), addr("2001:db8:c::1")}
	podAddr        = map[string][2]netip.Addr{
		"pod-a": {addr("10.244.1.10"), addr("fd00:244:1::10")},
		"pod-b": {addr("10.244.1.11"), addr("fd00:244:1::11")},
		"pod-c": {addr("10.244.2.10"), addr("fd00:244:2::10")},
		"pod-d": {addr("10.244.2.11"), addr("fd00:244:2::11")},
	}
	podNode = map[string]string{"pod-a": "node1", "pod-b": "node1", "pod-c": "node2", "pod-d": "node2"}

	// Service frontends. The client routes everything via node1, so the
	// external and LB addresses reach node1 without any extra route.
	externalIP = [2]netip.Addr{addr("203.0.113.10"), addr("2001:db8:7::10")}
	lbIP       = [2]netip.Addr{addr("203.0.113.20"), addr("2001:db8:7::20")}
	// The client's subnets, for source ranges that allow it, and ranges
	// that do not contain it.
	clientNet = [2]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8:c::/64")}
	otherNet  = [2]netip.Prefix{netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("2001:db8:99::/64")}
)

// clusterIP returns the n-th ClusterIP of a family: 10.96.0.n or
// fd00:96::n.
func clusterIP(f, n int) netip.Addr {
	if f == v4 {
		return netip.AddrFrom4([4]byte{10, 96, 0, byte(n)})
	}
	b := addr("fd00:96::").As16()
	b[15] = byte(n)
	return netip.AddrFrom16(b)
}
