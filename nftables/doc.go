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
//   - Map mode, for most service ports: no chain of their own. A frontend
//     goes to a pick chain shared by all frontends of its kind (int: a
//     ClusterIP, ext: an ExternalIP or LB IP, np: a NodePort) and number
//     of slots, pick-int-3 say, which marks for masquerade and DNATs with
//     `dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 3
//     map @backends`. The backends map (nodeport-backends for NodePorts)
//     holds a slot per unit of weight, weights divided by their greatest
//     common divisor: endpoint i is picked with probability w_i / Σw,
//     exactly (SEMANTICS §3). See mapped.go.
//   - Chain mode, for ports with ClientIP affinity, external policy Local
//     on external frontends, or more than 256 slots: a chain for internal
//     traffic (svc-…) and one for external traffic (ext-…); clu-… holds
//     the Cluster set for the external policy Local short-circuit. Their
//     names carry a hash of the port and a readable, sanitized part.
//     Weighted choice without sets: one rule per endpoint, `numgen random
//     mod (w_i+…+w_n) < w_i dnat to <endpoint>`, the last one
//     unconditional. ClientIP affinity adds per-endpoint chains (ep-…)
//     and dynamic sets (aff-…), filled with `update @set { ip saddr }`.
//   - Why map mode: whenever a transaction adds a rule, a jump or a
//     verdict-map element that jumps, the kernel re-validates every chain
//     the table's base chains reach. With a chain per port that walk is
//     O(all rules): about 210 ms at 30k services × 10 endpoints, for one
//     endpoint change. With map mode the walk covers the shared chains
//     and the chain-mode ports only, and an endpoint change is a few map
//     elements: about 0.3 ms. Per-service dnat maps or vmaps would avoid
//     the rules too, but the kernel binds anonymous sets in quadratic
//     time within a transaction (10k services: 42 s), and creating named
//     sets one by one is quadratic as well (30k: 56 s).
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
// chains, the pick chains that come into or go out of use, and the map
// elements that changed. Supported names any kernel feature that is
// missing; Cleanup removes the tables.
//
// NewConn encodes its netlink batches itself (google/nftables reads
// tables back): only the batch's last message asks for an ack, errors
// come back with the sequence number of the failing message and so name
// its operation, and the backends maps carry the typeof description that
// nft needs to print them, and to read them back from `nft list` output.
//
// Non-goals: exec of the nft binary (the library never runs it; tests use
// it to check and read back), iptables compatibility rules.
//
// Kernel: nf_tables with nat, fib, numgen, ct, dynamic sets with timeout,
// concatenated set keys, verdict maps, and DNAT to a concatenated address
// and port from a map (Linux 5.8 and later; tested on 6.18).
package nftables
