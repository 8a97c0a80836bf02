package k8s

import (
	"net/netip"

	netutils "k8s.io/utils/net"
)

// parseAddr parses an address as kube-proxy does: strictly first, then
// "sloppily", accepting the IPv4 forms with leading zeros that the API
// server let through before Kubernetes 1.20 (kube-proxy reads
// "010.0.0.1" as 10.0.0.1, so does this). An IPv4-mapped IPv6 address is
// taken as IPv4, as net.ParseIP does.
func parseAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	ip := netutils.ParseIPSloppy(s)
	if ip == nil {
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}

// parsePrefix parses a CIDR as kube-proxy does (sloppily, like
// parseAddr) and masks it: the API server accepts "10.1.2.3/8" in
// loadBalancerSourceRanges and kube-proxy programs 10.0.0.0/8.
func parsePrefix(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), true
	}
	_, ipnet, err := netutils.ParseCIDRSloppy(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(ipnet.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := ipnet.Mask.Size()
	a = a.Unmap()
	return netip.PrefixFrom(a, ones).Masked(), true
}
