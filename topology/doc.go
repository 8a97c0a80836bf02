// Package topology decides which endpoints of a service port a node may
// send traffic to: Categorize implements SEMANTICS §2 (traffic policies,
// topology hints by node and zone, the terminating fallback) as a pure
// function of a service port, its endpoints of one IP family, and the node.
//
// Non-goals: choosing among endpoints (weights, affinity) and anything
// kernel-related. The package is pure and safe for concurrent use.
package topology
