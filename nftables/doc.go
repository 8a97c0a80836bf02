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
//   - Weighted choice without sets or per-endpoint chains: one rule per
//     endpoint, `numgen random mod (w_i+…+w_n) < w_i dnat to <endpoint>`,
//     the last one unconditional (SEMANTICS §3). A vmap or dnat map per
//     service would need one anonymous set each, which the kernel binds in
//     quadratic time within a transaction (10k services: 42 s). Only
//     ClientIP-affinity ports get per-endpoint chains (ep-…) and dynamic
//     sets (aff-…), filled with `update @set { ip saddr }`.
//   - Masquerade through one mark bit, set inline and cleared once used;
//     hairpin through one set of (endpoint, endpoint) pairs looked up in
//     postrouting.
//   - No endpoints: no-endpoint-services and no-endpoint-nodeports maps in
//     filter chains after DNAT reject, or drop for external traffic with
//     external policy Local (external-drop, which still rejects local pods
//     and the node). A ClusterIP on a port its service lacks is rejected.
//   - Source ranges: firewall-ips in filter chains before DNAT.
//
// Render is pure; its Ruleset.String is canonical nft syntax, the way
// `nft list table` prints it (read-back tests hold it to that).
//
// Syncer applies a sync as one netlink batch through a Conn: the real one
// (NewConn) or the in-memory Fake. A full sync adopts an existing table and
// prunes what is stale; a partial sync sends only the changed ports'
// chains and the map elements that changed. Supported names any kernel
// feature that is missing; Cleanup removes the tables.
//
// Known cost: with tens of thousands of services, a transaction that adds
// a NAT rule or a verdict-map element makes the kernel re-validate the
// whole chain graph (about 220 ms at 30k services × 10 endpoints), so one
// endpoint change costs that much; see the issue notes for the plan.
//
// Non-goals: exec of the nft binary (the library never runs it; tests use
// it to check and read back), iptables compatibility rules.
//
// Kernel: nf_tables with nat, fib, numgen, ct, dynamic sets with timeout,
// concatenated set keys and verdict maps (Linux 5.x and later).
package nftables
