// Package endpoints is the endpoint model of proxykit: Endpoint and Slice
// (shaped like a Kubernetes EndpointSlice), the merging of a service's
// slices into one sorted endpoint list per service port, and a Tracker
// that applies slice changes to an immutable Map and reports which service
// ports changed and which need conntrack cleanup (SEMANTICS §9).
//
// Merging: slice ports are matched to service ports by name and protocol
// (the key is a servicemap.PortName); an address:port that appears in
// more than one slice keeps its non-terminating copy. Merged lists are
// sorted IPv4 first, then by address and port, so SplitFamily can cut
// them without copying.
//
// Non-goals: topology and traffic policy (package topology), kernel access.
//
// Concurrency: Tracker is safe for concurrent use; Map is an immutable
// value. Slices handed to the package must not be modified afterwards.
package endpoints
