// Package k8s converts Kubernetes API objects into proxykit's model and
// feeds a proxykit.Proxy from a cluster. It lives in its own module,
// github.com/proxykit/proxykit/k8s, so that the proxykit module never
// requires k8s.io/* or client-go.
//
// # Conversions
//
// ConvertService, ConvertSlice and ConvertNode read a core/v1 Service, a
// discovery/v1 EndpointSlice and a core/v1 Node the way kube-proxy reads
// them, and return a valid servicemap.Service, endpoints.Slice or
// proxykit.Node. Their errors are *Error values that name the object and
// hold either *FieldError values (the field path in the API object, the
// value, the reason) or the model's own validation error. Accept and
// Selector are kube-proxy's label filter: the
// service.kubernetes.io/service-proxy-name label and the
// service.kubernetes.io/headless label of headless services' slices.
//
// What is read, and why some things are not:
//
//   - ExternalName and headless services convert to a Service with no
//     ClusterIPs or with Type ExternalName, which the model gives no
//     rules, so a type change is an ordinary update.
//   - LoadBalancer ingress: entries with only a hostname, and entries
//     whose ipMode is "Proxy", are skipped, as kube-proxy skips them
//     (with ipMode Proxy the load balancer delivers to the node or pod
//     itself, rewriting the destination). Ingress IPs, source ranges and
//     the health-check node port are read only for LoadBalancer services,
//     node ports only for NodePort and LoadBalancer services: the API
//     server forbids them elsewhere and the model rejects them.
//   - loadBalancerSourceRanges: the field, trimmed and masked
//     ("10.1.2.3/8" is 10.0.0.0/8), as kube-proxy reads it; when the field
//     is empty, the annotation service.beta.kubernetes.io/load-balancer-
//     source-ranges, as Kubernetes' service helpers and cloud providers
//     read it. kube-proxy itself ignores the annotation, so a service
//     with only the annotation is filtered on the node here and not by
//     kube-proxy.
//   - spec.trafficDistribution (PreferClose, PreferSameZone,
//     PreferSameNode) and the service.kubernetes.io/topology-mode
//     annotation are not read: the EndpointSlice controller turns them
//     into the endpoints' zone and node hints, which ConvertSlice
//     converts and the model honours when every ready endpoint carries
//     them (SEMANTICS §2). The model has no field for them.
//   - EndpointSlice conditions take the API's nil defaults as kube-proxy
//     reads them (ready true, serving true, terminating false); only
//     addresses[0] of an endpoint is used; FQDN slices are ignored
//     (ErrIgnored); ports without a number are skipped.
//   - Addresses parse as kube-proxy parses them, accepting the IPv4 forms
//     with leading zeros of old objects ("010.0.0.1" is 10.0.0.1).
//   - Not converted at all: targetPort and appProtocol (the slices carry
//     resolved ports), publishNotReadyAddresses (the EndpointSlice
//     controller applies it to the ready condition), ipFamilies and
//     ipFamilyPolicy (clusterIPs say which families exist), allocateLoad-
//     BalancerNodePorts (a zero nodePort says it), loadBalancerClass, and
//     endpoint targetRef, hostname and deprecatedTopology.
//   - AnnotationScheduler, proxykit's own, sets the IPVS scheduler of a
//     service.
//
// # Source
//
// Source runs shared informers for Services, EndpointSlices (with
// kube-proxy's label selector) and optionally the proxy's own Node, and
// calls a Handler, which *proxykit.Proxy implements. It hands over the
// previous state with each service update, handles tombstones, turns a
// label change that makes an object unwanted into a delete, reports
// conversion errors through an optional *slog.Logger and an error
// callback, and never panics on bad input. Wait for WaitForSync before
// starting the proxy's Run loop, so that its first sync sees complete
// lists.
//
// Non-goals: no Endpoints (core/v1) support, no ServiceCIDR or
// IPAddress objects, no events or status written back to the API, no
// leader election, no health server (the proxykit module has it).
//
// Concurrency: the conversion functions are pure and safe for concurrent
// use; they do not modify their input and share nothing with it. A
// Source's methods are safe for concurrent use; it calls the Handler from
// the informers' goroutines (one per kind of object).
package k8s
