// Package netnstest builds throw-away network topologies in Linux network
// namespaces for privileged tests: an external client, two nodes and four
// pods that run TCP and UDP responders, all wired with veth pairs and
// configured from Go (netlink and setns; no shell, no ip(8), no daemons).
//
// # Topology
//
//	client  192.0.2.100/24  2001:db8:c::100/64   eth0, default routes via node1
//	   │ veth ("eth0" ↔ "to-client")
//	node1   192.0.2.1/24    2001:db8:c::1/64     on "to-client"
//	        198.51.100.1/24 2001:db8:1::1/64     on "to-node2"
//	        routes 10.244.2.0/24 and fd00:244:2::/64 via node2
//	   ├─ "veth-pod-a" ↔ pod-a eth0: 10.244.1.10/32 fd00:244:1::10/128
//	   ├─ "veth-pod-b" ↔ pod-b eth0: 10.244.1.11/32 fd00:244:1::11/128
//	   │ veth ("to-node2" ↔ "to-node1")
//	node2   198.51.100.2/24 2001:db8:1::2/64     on "to-node1", default routes via node1
//	   ├─ "veth-pod-c" ↔ pod-c eth0: 10.244.2.10/32 fd00:244:2::10/128
//	   └─ "veth-pod-d" ↔ pod-d eth0: 10.244.2.11/32 fd00:244:2::11/128
//
// Pods are routed, not bridged (Calico/ptp style): the pod has a /32 and a
// /128, a route to 169.254.1.1 on eth0 and default routes via 169.254.1.1
// and fe80::1. The node side of every pod veth carries 169.254.1.1/32 (scope
// link) and fe80::1/64, and the node has a host route to each of its pods
// whose preferred source is the node's address on the node link
// (198.51.100.x, 2001:db8:1::x). Hairpin traffic (pod → service → same pod)
// therefore leaves and re-enters the node on the same veth; like in a real
// cluster, the pod accepts it only when the proxy masquerades it.
//
// The client reaches pods directly through its default routes via node1,
// which is the "no service rules" baseline. node2 sends everything that is
// not its own or its pods' via node1, so replies to an external client that
// was not masqueraded return through node1, where conntrack undoes the DNAT.
//
// Every veth end has permanent neighbor entries for its peer's addresses
// (no packet waits for ARP or neighbor discovery), and New returns only
// once every link is up. Every namespace has rp_filter off, IPv6 duplicate
// address detection off (addresses are usable at once) and ICMP error rate
// limiting off (a reject is never mistaken for a drop). The nodes forward
// IPv4 and IPv6 and send no redirects; the client and pods accept none.
//
// Rules under test belong in Node1, the node whose proxy is tested (node2
// hosts the remote endpoints): program them through [NS.Fd], a netns file
// descriptor (for example nftables.WithNetNSFd), or inside [NS.Do]. When
// node1 masquerades, the kernel picks 198.51.100.1 or 2001:db8:1::1 as the
// new source, also for hairpin traffic, whose outgoing veth has only
// link-scope addresses; tests should still accept any of Node1Addrs.
//
// # Probes
//
// [NS.Probe] sends one TCP or UDP request from a namespace and classifies
// what came back as an [Outcome]: Reply (with the answering pod and the
// source address it saw), Refused, Unreachable, Timeout or Failed.
// [NS.Dial] and [Exchange] keep a TCP connection open across several
// requests.
//
// Non-goals: bridges, overlays, real CNI plugins, more nodes or pods. The
// package is Linux-only (build tag linux); elsewhere it is empty.
//
// # Requirements
//
// Root (CAP_SYS_ADMIN and CAP_NET_ADMIN), a kernel with CONFIG_NET_NS and
// CONFIG_VETH, and a writable /run/netns. [Require] skips a test when they
// are missing, or fails it when PROXYKIT_REQUIRE_PRIVILEGED=1 (as in CI).
// Namespaces are named "pk-<random>-<role>" (for example pk-3fa2c1-node1),
// so `ip netns exec` works on a paused test; [New] removes them in
// t.Cleanup. A test binary killed before its cleanup leaves them behind;
// `ip netns del` removes them.
//
// # Concurrency
//
// Topologies are independent: tests may build several in parallel. The
// methods of [NS] and [Topology] are safe for concurrent use. [NS.Do] runs
// its function on a dedicated, locked OS thread; goroutines started by that
// function do not run in the namespace. Sockets keep the namespace they were
// created in, so connections from [NS.Dial] may be used from any goroutine.
package netnstest
