package topology

import (
	"slices"

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
// eps holds the port's endpoints of one IP family, as merged (no two with
// the same address and port).
//
// Categorize copies as little as it can. A set that holds every endpoint
// of eps is eps itself (with its capacity cut to its length); All is the
// Cluster or Local set itself when the other set is unused or contained in
// it. Only a set that filtering made smaller is a fresh copy, never
// aliasing eps. Either way the results must be treated as read-only: a
// caller that wants to modify them must copy them first.
func Categorize(svc *servicemap.ServicePort, eps []endpoints.Endpoint, node Node) Result {
	var r Result
	if svc.UsesClusterEndpoints() {
		r.Cluster = clusterSet(eps, node)
	}
	if svc.UsesLocalEndpoints() {
		r.Local = localSet(eps, node)
	}
	switch {
	case r.Local == nil:
		r.All = r.Cluster
	case r.Cluster == nil:
		r.All = r.Local
	default:
		r.All = union(eps, r.Cluster, r.Local)
	}
	r.HasAny = len(r.All) > 0
	return r
}

// rule is a filter on endpoints.
type rule uint8

const (
	ruleReady         rule = iota // Ready
	ruleNodeHinted                // Ready, NodeHints name the node
	ruleZoneHinted                // Ready, ZoneHints name the node's zone
	ruleFallback                  // Serving and Terminating: the fallback
	ruleLocalReady                // on the node, Ready
	ruleLocalFallback             // on the node, Serving and Terminating
)

func (r rule) match(e *endpoints.Endpoint, node Node) bool {
	switch r {
	case ruleReady:
		return e.Ready
	case ruleNodeHinted:
		return e.Ready && slices.Contains(e.NodeHints, node.Name)
	case ruleZoneHinted:
		return e.Ready && slices.Contains(e.ZoneHints, node.Zone)
	case ruleFallback:
		return e.Serving && e.Terminating
	case ruleLocalReady:
		return e.NodeName == node.Name && e.Ready
	default: // ruleLocalFallback
		return e.NodeName == node.Name && e.Serving && e.Terminating
	}
}

// emptySet is the non-nil empty set of a set in use.
var emptySet = []endpoints.Endpoint{}

// filter returns the endpoints of eps that match r: eps itself when all
// do, else a fresh copy.
func filter(eps []endpoints.Endpoint, r rule, node Node) []endpoints.Endpoint {
	n := 0
	for i := range eps {
		if r.match(&eps[i], node) {
			n++
		}
	}
	switch n {
	case 0:
		return emptySet
	case len(eps):
		return eps[:n:n]
	}
	out := make([]endpoints.Endpoint, 0, n)
	for i := range eps {
		if r.match(&eps[i], node) {
			out = append(out, eps[i])
		}
	}
	return out
}

// clusterSet is SEMANTICS §2's Cluster set: the ready endpoints, narrowed
// by topology hints when every ready endpoint carries them and some name
// this node (node hints first, then zone hints); if none, the serving and
// terminating ones, without hints.
func clusterSet(eps []endpoints.Endpoint, node Node) []endpoints.Endpoint {
	if set := filter(eps, hintRule(eps, node), node); len(set) > 0 {
		return set
	}
	return filter(eps, ruleFallback, node)
}

// hintRule returns the rule that picks the ready endpoints this node may
// use, honouring topology hints as SEMANTICS §2 step 2 says.
func hintRule(eps []endpoints.Endpoint, node Node) rule {
	allNode, anyNode := true, false
	allZone, anyZone := true, false
	for i := range eps {
		e := &eps[i]
		if !e.Ready {
			continue
		}
		allNode = allNode && len(e.NodeHints) > 0
		anyNode = anyNode || (node.Name != "" && slices.Contains(e.NodeHints, node.Name))
		allZone = allZone && len(e.ZoneHints) > 0
		anyZone = anyZone || (node.Zone != "" && slices.Contains(e.ZoneHints, node.Zone))
	}
	switch {
	case allNode && anyNode:
		return ruleNodeHinted
	case allZone && anyZone:
		return ruleZoneHinted
	}
	return ruleReady
}

// localSet is SEMANTICS §2's Local set: the ready endpoints on this node,
// else its serving and terminating ones. Hints do not apply. An empty node
// name matches no endpoint.
func localSet(eps []endpoints.Endpoint, node Node) []endpoints.Endpoint {
	if node.Name == "" {
		return emptySet
	}
	if set := filter(eps, ruleLocalReady, node); len(set) > 0 {
		return set
	}
	return filter(eps, ruleLocalFallback, node)
}

// union returns the endpoints of eps in cluster or local (both taken from
// eps, in its order): one of them when it contains the other, else a
// fresh list in the order of eps.
func union(eps, cluster, local []endpoints.Endpoint) []endpoints.Endpoint {
	switch {
	case subset(local, cluster):
		return cluster
	case subset(cluster, local):
		return local
	}
	out := make([]endpoints.Endpoint, 0, len(cluster)+len(local))
	c, l := 0, 0
	for i := range eps {
		e := &eps[i]
		inC := c < len(cluster) && same(&cluster[c], e)
		if inC {
			c++
		}
		inL := l < len(local) && same(&local[l], e)
		if inL {
			l++
		}
		if inC || inL {
			out = append(out, *e)
		}
	}
	return out
}

// subset reports whether every endpoint of a is in b; both are in the
// order of the list they were taken from.
func subset(a, b []endpoints.Endpoint) bool {
	j := 0
	for i := range a {
		for j < len(b) && !same(&b[j], &a[i]) {
			j++
		}
		if j == len(b) {
			return false
		}
		j++
	}
	return true
}

func same(a, b *endpoints.Endpoint) bool { return a.Addr == b.Addr && a.Port == b.Port }
