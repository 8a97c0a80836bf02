// Package nftables is proxykit's nftables backend: it renders a
// proxykit.Snapshot into one table per IP family ("ip" and "ip6", named by
// Config.Table) and applies it.
//
// Rule design (SEMANTICS §2–§8):
//   - Dispatch through verdict maps: service-ips (address . protocol .
//     port, for ClusterIPs, ExternalIPs and LB IPs) and service-nodeports
//     (protocol . port, on local non-loopback addresses or
//     Config.NodePortAddresses). One lookup, whatever the number of
//     services.
//   - Per service port, a chain for internal traffic (svc-…) and, when the
//     port is externally accessible, one for external traffic (ext-…);
//     clu-… holds the Cluster set for the external policy Local
//     short-circuit. Their names carry a hash of the port and a readable,
//     sanitized part.
//   - Weighted choice without per-endpoint chains: one
//     `dnat ip to numgen random mod <sum of weights> map { ranges }` rule.
//     Only ClientIP-affinity ports get per-endpoint chains (ep-…) and
//     dynamic sets (aff-…), filled with `update @set { ip saddr }`.
//   - Masquerade through one mark bit, cleared once used; hairpin through
//     one set of (endpoint, endpoint) pairs looked up in postrouting.
//   - No endpoints: no-endpoint-services and no-endpoint-nodeports maps in
//     filter chains after DNAT reject, or drop for external traffic with
//     external policy Local (external-drop, which still rejects local pods
//     and the node). A ClusterIP on a port its service lacks is rejected.
//   - Source ranges: firewall-ips in filter chains before DNAT.
//
// Render is pure; its Ruleset.String is canonical nft syntax, the way
// `nft list table` prints it.
//
// Non-goals: exec of the nft binary (the library never runs it; tests use
// it to check and read back), iptables compatibility rules.
//
// Kernel: nf_tables with nat, fib, numgen, ct, dynamic sets with timeout,
// concatenated set keys and verdict maps (Linux 5.x and later).
package nftables
