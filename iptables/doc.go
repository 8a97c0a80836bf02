// Package iptables is proxykit's iptables backend: it renders a
// proxykit.Snapshot into iptables-restore input for the nat and filter
// tables of each family, and applies it with `iptables-restore --noflush
// -w` (ip6tables-restore for IPv6), one call per table and family. It
// works with both implementations, iptables-legacy and iptables-nft
// (Config.Variant; Auto follows the system's `iptables`).
//
// # Rule design (SEMANTICS §2–§8)
//
// Every chain is ours by its prefix (Config.Prefix, default PROXYKIT);
// the only other rules are the jumps from the built-in chains, which
// go-iptables ensures on every full sync:
//
//	nat    PREROUTING, OUTPUT → P-SERVICES     POSTROUTING → P-POSTROUTING
//	filter INPUT, FORWARD, OUTPUT (ct state NEW) → P-FIREWALL, then P-SERVICES
//
// nat, per family:
//   - P-SERVICES: one rule per frontend (ClusterIP, ExternalIP, LB IP:
//     address, protocol, port) that goes (-g) to the port's chain; the
//     first match decides, in the order ClusterIPs, ExternalIPs, LB IPs,
//     as the oracle's. Then loopback returns (unless LocalhostNodePorts)
//     and local destinations, or those in NodePortAddresses, jump to
//     P-NODEPORTS, one rule per NodePort.
//   - Per service port, named prefix-KIND-hash (a SHA-256 of the port's
//     identity, base32, filling the name to 28 characters): SVC picks among
//     the Cluster set, SVL among the Local set, EXT serves external
//     frontends (external policy Cluster: mark, then SVC; Local: local
//     pods to SVC, the node marked to SVC, the rest to SVL), FWL applies
//     LoadBalancer source ranges. The ClusterIP goes to SVC or SVL by
//     internal policy; that chain first marks ClusterIP traffic from
//     outside the cluster CIDRs (or all, MasqueradeAll).
//   - Weighted choice (§3): rule i of n has `-m statistic --mode random
//     --probability w_i/(w_i+…+w_n)`, the last none. The probability is
//     printed as the kernel keeps it (a multiple of 2⁻³¹, 11 decimals),
//     and never rounds a non-zero weight to 0.
//   - One SEP chain per endpoint: hairpin masquerade (-s itself), the
//     ClientIP record (`-m recent --set`, checked with `--rcheck
//     --seconds T --reap` ahead of the weighted rules, §4), DNAT.
//   - Masquerade (§7): P-MARK-MASQ sets one mark bit; P-POSTROUTING
//     returns unmarked packets, clears the bit and masquerades
//     (--random-fully).
//
// filter, per family: P-FIREWALL sends packets still addressed to a
// firewalled LB IP (not DNATed: the nat FWL chain let them fall through)
// to the filter FWL chain, which returns allowed sources and drops the
// rest (§6). P-SERVICES rejects whatever is still addressed to a
// ClusterIP (no endpoints, or a port the service lacks) and external
// frontends without endpoints; with external policy Local those go to
// P-EXTERNAL-DROP, which rejects local pods and the node and drops the
// rest (§5).
//
// Above Config.LargeClusterEndpoints endpoints, per-endpoint rules carry
// no comment. Comments are the port's name, reduced to [A-Za-z0-9._:/-];
// chain names are hashes: no input string can reach iptables-restore
// otherwise, so none can add a rule.
//
// # Syncing
//
// Render is pure; Table.String is the exact restore input, in
// iptables-save syntax. Syncer applies through a Runner: ExecRunner
// (optionally in another network namespace) or the in-memory Fake. A full
// sync (the first, after an error, periodic, or when the canary is gone)
// declares every chain (creating or flushing it), refills it, deletes
// stale chains, and ensures the jumps. A partial sync declares and
// refills only the changed ports' chains, edits their dispatch rules in
// place (-D the old text, -I/-A the new) and deletes their stale
// chains: its size does not depend on the number of services. Each
// partial restore starts by deleting and re-adding the canary rule
// (P-CANARY in each table), so a table flushed behind our back fails it
// and a full sync follows at once; a table without changes has its
// canary checked with go-iptables. After a partial sync, dispatch rules
// may stand in another order than Render's; they match disjoint keys
// (a key claimed twice forces a full sync).
//
// Read-back: iptables-save of our chains equals Render's text after the
// normalisation of the tests (only our chains; declarations sorted;
// rules grouped by chain, chains sorted by name; see normalize in
// normalize_test.go).
//
// # Requirements, non-goals, concurrency
//
// iptables 1.6.2 or later (the iptables package on Debian provides
// iptables-legacy-* and iptables-nft-*), root, and the kernel's
// xt_statistic, xt_recent, xt_comment, xt_addrtype, xt_conntrack,
// xt_mark, DNAT, MASQUERADE and REJECT; Supported names what is missing.
// LocalhostNodePorts also needs net.ipv4.conf.*.route_localnet=1, which
// the caller sets. Non-goals: the mangle and raw tables, IPVS, sysctls.
//
// A Syncer serialises its own calls; its Runner may be shared.
package iptables
