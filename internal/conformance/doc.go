// Package conformance is the behavioural test suite that every proxykit
// backend must pass: it programs node1 of a fresh [netnstest.Topology]
// through a backend's Syncer, sends real packets from the client, the node
// and the pods, and checks each outcome against what the Explain oracle
// ([proxykit.Oracle]) says SEMANTICS requires.
//
// A backend's test calls [Run] with a [Backend]; every [Scenario] becomes a
// subtest named after its section, name and IP family. For each probe the
// runner:
//
//   - builds the packet (source, destination, protocol, [proxykit.Origin]
//     classified from the sending namespace) and asks the oracle for its
//     verdict;
//   - sends Count connections (TCP connect + one line, or one UDP datagram
//     and its reply) with [netnstest.NS.Probe];
//   - Forward: every connection must be answered by a pod whose address is
//     one of the candidates, with the source the pod saw being one of
//     node1's addresses exactly when the candidate is masqueraded, else
//     the sender's own address; with several candidates and no affinity,
//     the spread must fit the candidates' probabilities (chi-square, p <
//     1e-6, so that a correct backend fails once in a million runs);
//   - Reject: a TCP reset or ICMP port unreachable within RejectTimeout;
//   - Drop: no answer within DropTimeout;
//   - NoMatch: not forwarded (a ClusterIP on a port the service lacks may
//     be refused or time out, SEMANTICS §5).
//
// ClientIP affinity (SEMANTICS §4) is checked through the oracle's affinity
// table: each forwarded connection is recorded with [proxykit.Oracle.Observe],
// so later connections of the same client are predicted to stick to that
// endpoint, and a multi-step scenario ([Scenario.Then]) re-syncs without the
// endpoint to check that affinity ends.
//
// Requirements: Linux, root, network namespaces and veth (see
// [netnstest.Require]); the backend's own kernel requirements.
//
// Concurrency: scenarios run as parallel subtests (bounded by go test's
// -parallel); each builds its own topology, so a failing scenario cannot
// disturb another.
package conformance
