// Package endpoints is the endpoint model of proxykit: Endpoint and Slice
// (shaped like a Kubernetes EndpointSlice), the merging of a service's
// slices into one sorted endpoint list per service port, and a Tracker
// that applies slice changes to an immutable Map and reports which service
// ports changed and which need conntrack cleanup (SEMANTICS §9).
//
// Validation: Slice.Validate reports every problem at once as a
// *ValidationError holding one *FieldError per problem, each naming the
// field path and value. The same address and port may appear more than
// once, in one slice or several: merging resolves it.
//
// Merging: slice ports are matched to service ports by name and protocol
// (the key is a servicemap.PortName); an address:port that appears in
// more than one slice keeps its non-terminating copy, and among equally
// terminating copies the one from the slice whose name sorts first. The
// result never depends on the order of the slices. Merged lists are
// sorted IPv4 first, then by address and port, so SplitFamily can cut
// them without copying.
//
// Tracking: Tracker.Update and Delete record the latest version of each
// slice; Apply re-merges only the services with pending changes and
// builds the new Map by path copying, so one change costs
// O(endpoints of its service · log n), not O(services). Slices are
// identified by Namespace and Name, so a slice whose Service changes
// moves from one service to the other. Its Changes say which ports
// changed and which UDP/SCTP ports need stale-flow cleanup, decided per IP
// family: in either family an endpoint that was usable is no longer (or
// is gone), or the family gained its first usable endpoint.
//
// Non-goals: topology and traffic policy (package topology), kernel access.
//
// Imports: besides servicemap and the standard library (what DESIGN.md
// allows), endpoints uses the module's pure internal packages
// internal/sorted (the immutable ordered map behind Map) and
// internal/fielderr (error wording shared with servicemap).
//
// Concurrency: Tracker is safe for concurrent use; Map is an immutable
// value. Tracker.Update keeps its own normalized copy of a slice's
// endpoints (ports resolved, sorted), so the work of a slice is done when
// it arrives and a one-slice port's merged list is that copy itself; the
// caller may reuse its Endpoints, but Ports and hint slices are shared and
// must not be modified. Merge copies endpoints and shares hint slices.
package endpoints
