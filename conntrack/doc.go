// Package conntrack deletes the conntrack flows that a change of service
// endpoints leaves stale (SEMANTICS §9), so that a UDP client reusing its
// source port — a resolver talking to DNS — reaches a live endpoint
// instead of the one that was replaced, or the black hole of a time
// without endpoints.
//
// NewSyncer returns a proxykit.Syncer to put after a rules backend:
//
//	ct, err := conntrack.NewSyncer(conntrack.Config{}, conntrack.WithObserver(record))
//	p := proxykit.New(node, proxykit.Sequence(rules, ct))
//
// # What is stale
//
// The reconcile is stateless: the kernel's flows and the snapshot decide
// (StaleFlows is the pure computation). A flow is stale when its original
// destination is a frontend of a UDP (with Config.SCTP, also SCTP)
// service port — a ClusterIP, ExternalIP or LoadBalancer IP with the
// port, or one of the node's addresses (Snapshot.Node().Addresses,
// narrowed by Config.NodePortAddresses) with the NodePort — and its reply
// source is not one of the endpoints in use for that port (the union of
// its Cluster and Local sets: a flow does not tell whether it came from
// outside or from the node, and every endpoint in use is a live one). A
// flow created while the port had no endpoints was never translated; its
// reply source is the frontend itself, so it is stale too. The one piece
// of memory is the frontends of the last snapshot: when a port or a
// frontend goes away, every flow to it is deleted at the next sync.
//
// # When
//
// Sync does nothing, not even a dump, unless the snapshot asks: a full
// snapshot (first sync, retry, periodic full sync) reconciles every port,
// a partial one the ports of Snapshot.ConntrackCleanup. A restart with a
// consistent table dumps and deletes nothing. WithResync and Run add an
// optional periodic full reconcile (off by default); WithObserver reports
// each reconcile's counts (Result).
//
// # Cost
//
// One dump per IP family and protocol with ports to reconcile — or, when
// a family and protocol have at most four destination ports to reconcile,
// one per port — filtered by the kernel (CTA_FILTER), so that TCP flows
// and other ports are never copied out; flows are decoded as they arrive
// and only stale ones are kept. Deletions go in batches of
// DefaultBatchSize, pipelined on one socket: a batch is one write and one
// acknowledgement (plus an error message per flow that is gone), and
// batches are deleted while the dump goes on. The kernel's work dominates:
// copying a flow out costs about 1.4–1.9 µs, skipping it 0.2–0.4 µs, and
// deleting one about 1.7 µs (BenchmarkDumpFloor, BenchmarkDelete, on a
// 2-core VM). So a full reconcile costs at least one dump of the flows it
// must judge, whatever it deletes: a stateless reconcile cannot tell a
// stale flow without reading it, and the kernel's dump and flush filters
// match by equality only, so they cannot select "reply source is not an
// endpoint".
//
// github.com/ti-mo/conntrack v0.5.2 offers neither dump filters by
// protocol or port, nor streaming dumps, nor batched deletes (each Delete
// waits for its acknowledgement), which made a 200k-flow reconcile twelve
// times slower; the netlink path here is written on
// github.com/mdlayher/socket and checked against ti-mo/conntrack in the
// tests.
//
// # Non-goals
//
// Never flushing the table, never touching TCP flows or flows to
// addresses the library does not serve, and no conntrack zones or marks
// of its own (flows in any zone are matched like the others). The
// package does not track flows through events.
//
// # Kernel
//
// nf_conntrack and nf_conntrack_netlink; CAP_NET_ADMIN in the network
// namespace. Dump filters need Linux 5.8 or later; older kernels send every
// flow, which the package filters itself. Supported checks what is missing.
//
// # Concurrency
//
// A Syncer's Sync, Reconcile and Run may be called from any goroutine;
// they are serialized. The observer runs on the reconciling goroutine.
// The Conn of NewConn and the Fake are safe for concurrent use.
package conntrack
