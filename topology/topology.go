package topology

import (
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// Node is what Categorize needs to know about the node it runs for.
type Node struct {
	Name, Zone string
}

// Result is the categorisation of one service port's endpoints of one IP
// family. Cluster and Local are nil when the port does not use that set,
// and non-nil (possibly empty) when it does. All is the union of the sets
// in use, in the order of the input. The slices may share the input's
// backing array and must not be modified.
type Result struct {
	Cluster, Local, All []endpoints.Endpoint
	// HasAny reports whether All is non-empty: some set in use has an
	// endpoint.
	HasAny bool
}

// Categorize returns the endpoint sets of svc on node, per SEMANTICS §2.
// eps holds the port's endpoints of one IP family.
func Categorize(svc *servicemap.ServicePort, eps []endpoints.Endpoint, node Node) Result {
	panic("topology.Categorize: not implemented yet")
}
