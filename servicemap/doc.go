// Package servicemap is the Service model of proxykit: Service and Port as
// a caller describes them, their validation, their flattening into
// ServicePorts (one per port, the unit every backend programs), and a
// Tracker that merges pending changes and applies them to an immutable,
// sorted Map.
//
// Non-goals: no Kubernetes API types (the k8s module converts them), no
// endpoint handling (package endpoints), no kernel access.
//
// Concurrency: Tracker is safe for concurrent use. Map is an immutable
// value, safe to share. Service values handed to the package must not be
// modified afterwards.
//
// Besides the standard library and package affinity, servicemap uses the
// module's internal/sorted, a pure data structure, for Map.
package servicemap
