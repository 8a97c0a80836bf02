// Package proxykit turns Services and their endpoints into the desired
// state of a node's service proxy and keeps a kernel backend in step with
// it.
//
// The data flows one way: a caller feeds servicemap.Service and
// endpoints.Slice values to a Proxy (OnServiceUpdate, OnSliceUpdate, …);
// the Proxy merges the pending changes, categorises endpoints per IP
// family (package topology) and makes an immutable, sorted Snapshot; its
// Runner calls a Syncer with it at a bounded frequency, retrying failures
// with backoff and a full sync. Backends (packages nftables, iptables,
// ipvs, conntrack) implement Syncer.
//
// Explain is a pure oracle of SEMANTICS §2–§8: given a snapshot and one
// packet, it says which service port matches, the candidate endpoints and
// their probabilities, affinity, masquerade, reject or drop. The
// conformance suite compares real packets with it; users get "why did my
// packet go there" for free.
//
// The package never imports a kernel library and never requires k8s.io/*.
//
// Concurrency: Proxy's On* methods and Healthy may be called from any
// goroutine while Run runs. Snapshots are immutable. A Syncer is called by
// one goroutine at a time.
package proxykit
