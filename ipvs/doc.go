// Package ipvs is proxykit's IPVS backend: it programs a
// proxykit.Snapshot as IPVS virtual servers, with nftables companion
// rules for what IPVS does not do.
//
// Kernel state (Plan, SEMANTICS §1–§4, §8):
//   - one virtual server per (frontend address, protocol, port): each
//     ClusterIP, ExternalIP and LoadBalancer IP on the service port, and
//     each node address that serves NodePorts on the NodePort. When two
//     service ports claim one frontend, ClusterIPs win over ExternalIPs,
//     ExternalIPs over LB IPs, then the first port, as in proxykit.Explain;
//   - real servers, forwarded by masquerading (NAT): the endpoint set in
//     use for that frontend (internal or external traffic policy), with
//     weight = endpoint weight;
//   - the scheduler of Service.Scheduler, else Config.Scheduler (default
//     rr): rr, wrr, lc, wlc, lblc, lblcr, sh, dh, sed, nq or mh; anything
//     else is a *SchedulerError naming the service and the scheduler, and
//     fails Plan and Sync. Config.SchedulerFlags (sh-fallback, sh-port,
//     mh-fallback, mh-port) go to the virtual servers of their scheduler;
//   - ClientIP affinity is IPVS persistence with the affinity timeout;
//   - the ClusterIPs, ExternalIPs and LB IPs are addresses of a dummy
//     interface (Config.Interface, default proxykit0), so that the node
//     accepts their packets and IPVS sees them in LOCAL_IN.
//
// Companion rules (Rules), one nftables table per family (Config.Table,
// default proxykit-ipvs), built from the nftables package's objects and
// applied through its Conn: masquerade through a mark bit set in nat
// prerouting/output and hairpin masquerade (SEMANTICS §7), source ranges
// (§6), reject, or drop for external traffic with external policy Local,
// when a frontend has no endpoints (§5), and the external policy Local
// short circuit (§2): traffic from local pods or the node to an external
// frontend is DNATed to the ClusterIP, whose virtual server uses the
// Cluster set. No ipset. Masquerading IPVS traffic needs
// net.ipv4.vs.conntrack=1, which every full sync sets (Sysctls).
//
// Reconcile: IPVS has no transactions. A full sync plans every port,
// reads every virtual server back and applies the difference. A partial
// sync (a snapshot that is not Full, after a successful sync on the same
// node) costs in proportion to the change, not to the number of
// services: it plans only snap.Changed() ports, in the previous snapshot
// and in the new one, reads back only the virtual servers whose plan
// differs between the two (the virtual server, then its real servers),
// and adds or deletes the interface's addresses whose count of virtual
// servers starts or ends; the companion rules get the element changes of
// those ports, and their firewall chains, in one transaction. Claims
// counted by the last full sync and moved by each partial one say which
// keys the changed ports hold alone; when a changed port shares a
// virtual server's key, or a companion map key, with a port that did not
// change (the first claim wins, as in Plan), that sync is full instead.
// An error does not stop a sync part-way: the rest is applied, the errors
// are returned (at most eight, then a count), and the next sync is full
// and repairs what failed. The backend owns the
// virtual servers on addresses of its dummy interface (or that it is
// about to add there) and those on the node's addresses with a port in
// Config.NodePortMin..NodePortMax; it never touches any other.
//
// Graceful termination (SEMANTICS §10): a TCP real server that leaves the
// set is deleted at once when it has no connections, else quiesced
// (weight 0) and deleted by a later sync once ActiveConn+InactConn is 0 or
// Config.GracePeriod (default 15 minutes) has passed. UDP and SCTP real
// servers are deleted at once. The Syncer keeps the quiesced real servers
// in memory, per virtual server: a full sync checks them as it reads
// everything back; a partial sync reads back the real servers (with
// their connection counts) of each virtual server that holds quiesced
// ones and that it does not otherwise touch, and deletes those drained
// or past their grace period, so its cost also grows with the number of
// virtual servers waiting on connections, never with the number of
// services. Syncs must keep coming for the deletion to happen (proxykit's
// Runner syncs periodically). After a restart, the
// weight-0 real servers that no endpoint asks for are found in the
// read-back and stay quiesced; their grace period starts again at the
// restart, the time the new Syncer first sees them, since the kernel does
// not say when they were quiesced.
//
// Kernel access is the Handle interface: NewHandle (github.com/moby/ipvs
// over generic netlink, github.com/vishvananda/netlink for the dummy
// interface, /proc/sys for the sysctls, all in a given network namespace)
// or the in-memory Fake, which can fail any operation.
//
// Non-goals: ipset and iptables, direct routing and tunnelling, firewall
// mark services, IPVS connection synchronisation between nodes,
// localhost NodePorts. The external policy Local short circuit goes to
// the ClusterIP's virtual server, so with internal policy Local as well
// it reaches the Local set rather than the Cluster set.
//
// Kernel: ip_vs with the schedulers in use (ip_vs_rr, …), nf_conntrack,
// dummy, and what the nftables package needs for the companion rules
// (nf_tables with nat, fib, ct, numgen, reject and masquerade). The
// developer machines' kernel has no IPVS: the privileged tests run in a
// VM (internal/vmtest).
//
// Concurrency: a Syncer's methods may be called from any goroutine; they
// run one at a time.
package ipvs
