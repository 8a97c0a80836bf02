//go:build linux

package netnstest

import (
	"fmt"
	"net/netip"
	"time"
)

// commonSysctls apply to every namespace, before any interface exists (so
// the "default" values reach the interfaces created later).
var commonSysctls = [][2]string{
	{"net.ipv4.conf.all.rp_filter", "0"},
	{"net.ipv4.conf.default.rp_filter", "0"},
	{"net.ipv6.conf.all.disable_ipv6", "0"},
	{"net.ipv6.conf.default.disable_ipv6", "0"},
	{"net.ipv6.conf.all.accept_dad", "0"},
	{"net.ipv6.conf.default.accept_dad", "0"},
	// ICMP errors are never rate limited, so a reject never looks like a drop.
	{"net.ipv4.icmp_ratemask", "0"},
	{"net.ipv4.icmp_ratelimit", "0"},
	{"net.ipv6.icmp.ratemask", ""},
	{"net.ipv6.icmp.ratelimit", "0"},
}

// routerSysctls apply to the nodes.
var routerSysctls = [][2]string{
	{"net.ipv4.ip_forward", "1"},
	{"net.ipv6.conf.all.forwarding", "1"},
	{"net.ipv6.conf.default.forwarding", "1"},
	{"net.ipv4.conf.all.send_redirects", "0"},
	{"net.ipv4.conf.default.send_redirects", "0"},
}

// hostSysctls apply to the client and the pods.
var hostSysctls = [][2]string{
	{"net.ipv4.conf.all.accept_redirects", "0"},
	{"net.ipv4.conf.default.accept_redirects", "0"},
	{"net.ipv6.conf.all.accept_redirects", "0"},
	{"net.ipv6.conf.default.accept_redirects", "0"},
}

// configure sets the sysctls and brings loopback up in every namespace.
func (tp *Topology) configure() error {
	type nsConf struct {
		ns    *NS
		extra [][2]string
	}
	confs := []nsConf{{tp.Client, hostSysctls}, {tp.Node1, routerSysctls}, {tp.Node2, routerSysctls}}
	for _, p := range tp.Pods {
		confs = append(confs, nsConf{p.NS, hostSysctls})
	}
	for _, c := range confs {
		kv := append(append([][2]string(nil), commonSysctls...), c.extra...)
		if err := c.ns.setSysctls(kv); err != nil {
			return err
		}
		if err := loUp(c.ns); err != nil {
			return err
		}
	}
	return nil
}

// wire creates the veth pairs with their addresses and permanent neighbor
// entries, and waits until every link can transmit. The node link comes
// first, so that the kernel picks 198.51.100.x when it needs "any global
// address" of a node (for example to masquerade hairpin traffic).
func (tp *Topology) wire() error {
	pairs := [][2]*end{
		{
			{ns: tp.Node1, link: "to-node2", addrs: prefixes(24, 64, n1Node...)},
			{ns: tp.Node2, link: "to-node1", addrs: prefixes(24, 64, n2Node...)},
		},
		{
			{ns: tp.Node1, link: "to-client", addrs: prefixes(24, 64, n1Client...)},
			{ns: tp.Client, link: "eth0", addrs: prefixes(24, 64, clientV4, clientV6)},
		},
	}
	for _, p := range tp.Pods {
		pairs = append(pairs, [2]*end{
			{ns: tp.nodeNS(p.Node), link: p.HostLink, addrs: prefixes(32, 64, podGW...)},
			{ns: p.NS, link: "eth0", addrs: prefixes(32, 128, p.V4, p.V6)},
		})
	}
	var ends []*end
	for i, pair := range pairs {
		a, b := pair[0], pair[1]
		// Every a is in a node and gets a fixed index ≥ 100; b gets a
		// small one from the kernel, so the two always differ.
		if err := wire(a, b, 100+i); err != nil {
			return err
		}
		if err := a.addNeighbors(b); err != nil {
			return err
		}
		if err := b.addNeighbors(a); err != nil {
			return err
		}
		ends = append(ends, a, b)
	}
	return waitReady(ends, 5*time.Second)
}

// waitReady polls until every end's link is ready (see linkReady).
func waitReady(ends []*end, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, e := range ends {
		for {
			ok, err := e.linkReady()
			if err != nil {
				return err
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("netnstest: link %q in %q not up after %v", e.link, e.ns.Name, timeout)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	return nil
}

// route adds the routes: default routes of the client, node2 and the pods,
// node1's routes to node2's pods and its default route via node2 (a real
// node has a default gateway; without one, the node's own connections to
// a ClusterIP fail with "network unreachable" before netfilter sees them),
// and the nodes' host routes to their pods.
func (tp *Topology) route() error {
	var rs []route
	for i := range 2 { // IPv4, IPv6
		rs = append(rs,
			route{ns: tp.Client, dst: defaultRoutes[i], gw: n1Client[i]},
			route{ns: tp.Node1, dst: node2PodCIDRs[i], gw: n2Node[i]},
			route{ns: tp.Node1, dst: defaultRoutes[i], gw: n2Node[i]},
			route{ns: tp.Node2, dst: defaultRoutes[i], gw: n1Node[i]},
		)
	}
	for _, p := range tp.Pods {
		node, src := tp.nodeNS(p.Node), nodeAddrs(p.Node)
		rs = append(rs,
			route{ns: node, dst: netip.PrefixFrom(p.V4, 32), link: p.HostLink, src: src[0]},
			route{ns: node, dst: netip.PrefixFrom(p.V6, 128), link: p.HostLink, src: src[1]},
			route{ns: p.NS, dst: netip.PrefixFrom(podGW[0], 32), link: "eth0"},
			route{ns: p.NS, dst: defaultRoutes[0], gw: podGW[0], link: "eth0"},
			route{ns: p.NS, dst: defaultRoutes[1], gw: podGW[1], link: "eth0"},
		)
	}
	for _, r := range rs {
		if err := r.add(); err != nil {
			return err
		}
	}
	return nil
}

// prefixes returns each address with the prefix length of its family.
func prefixes(bits4, bits6 int, addrs ...netip.Addr) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		bits := bits6
		if a.Is4() {
			bits = bits4
		}
		out = append(out, netip.PrefixFrom(a, bits))
	}
	return out
}
