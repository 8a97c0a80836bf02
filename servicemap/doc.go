// Package servicemap is the Service model of proxykit: Service and Port as
// a caller describes them, their validation, their flattening into
// ServicePorts (one per port, the unit every backend programs), and a
// Tracker that merges pending changes and applies them to an immutable,
// sorted Map.
//
// Service.Validate reports every problem of a service at once, as a
// *ValidationError holding one *FieldError per problem; each names the
// field by its Go path ("Ports[1].NodePort") and the offending value.
// Service.Flatten fills in the defaults (TCP, ClusterIP, Cluster) and
// returns nothing for headless and ExternalName services, which get no
// rules (SEMANTICS §1).
//
// Tracker.Update validates the new state and refuses an invalid one, so
// the state applied before stays in force. Pending changes of one service
// merge (first previous state, latest current state) and changes that
// cancel out are dropped. Tracker.Apply brings a Map to the latest states
// and reports the ports that changed; it trusts the Map, not the
// previous states the caller passed. Its cost grows with the number of
// changed services times log n, not with the size of the Map.
//
// Non-goals: no Kubernetes API types (the k8s module converts them), no
// endpoint handling (package endpoints), no kernel access.
//
// Concurrency: Tracker is safe for concurrent use. Map is an immutable
// value, safe to share. Service values handed to the package must not be
// modified afterwards.
//
// Imports: DESIGN.md allows servicemap the standard library and package
// affinity. It also uses two of the module's internal packages, both pure
// Go with no dependencies: internal/sorted, the immutable ordered map
// behind Map (what makes an incremental snapshot O(change · log n)), and
// internal/fielderr, the wording shared with package endpoints' errors.
package servicemap
