// Package topology decides which endpoints of a service port a node may
// send traffic to: Categorize implements SEMANTICS §2 (traffic policies,
// topology hints by node and zone, the terminating fallback) as a pure
// function of a service port, its endpoints of one IP family, and the node.
//
// Categorize runs for every service port on every full snapshot, so it
// copies only when filtering removes endpoints: the common case (every
// endpoint ready, no hints in force) returns the input slice itself and
// allocates nothing. Results may therefore alias the input and must be
// treated as read-only.
//
// Non-goals: choosing among endpoints (weights, affinity) and anything
// kernel-related. The package is pure and safe for concurrent use.
package topology
