package topology

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

func TestCategorize(t *testing.T) {
	tests := []struct {
		name                string
		svc                 *servicemap.ServicePort
		eps                 []endpoints.Endpoint
		node                Node
		cluster, local, all string
	}{
		// --- Endpoint conditions ---

		// §2 Conditions: "A usable endpoint is ready, or (fallback only)
		// serving and terminating."
		{
			name: "ready endpoints are used, serving-terminating ones only as a fallback",
			svc:  internalCluster, node: node1,
			eps:     eps(ep(1, ready), ep(2, termServing), ep(3, ready)),
			cluster: "1 3", local: "unused", all: "1 3",
		},
		// §2 Conditions: "An endpoint that is neither never receives new
		// connections."
		{
			name: "endpoints neither ready nor serving-terminating are never used",
			svc:  internalCluster, node: node1,
			eps:     eps(ep(1), ep(2, on("n1"))),
			cluster: "none", local: "unused", all: "none",
		},
		// §2 Conditions: "An endpoint that is neither never receives new
		// connections." (serving but not terminating is not the fallback)
		{
			name: "serving but not terminating is never used, in either set",
			svc:  externalLocalNodePort, node: node1,
			eps:     eps(ep(1, servingOnly), ep(2, servingOnly, on("n1"))),
			cluster: "none", local: "none", all: "none",
		},
		// §2 Conditions: "An endpoint that is neither never receives new
		// connections." (terminating but not serving is not the fallback)
		{
			name: "terminating but not serving is never used, in either set",
			svc:  externalLocalNodePort, node: node1,
			eps:     eps(ep(1, termOnly), ep(2, termOnly, on("n1"))),
			cluster: "none", local: "none", all: "none",
		},

		// --- Which sets are used ---

		// §2 Cluster set: "used when internal policy is Cluster"
		{
			name: "internal Cluster: only the Cluster set",
			svc:  internalCluster, node: node1,
			eps:     eps(ep(1, ready), ep(2, ready, on("n1"))),
			cluster: "1 2", local: "unused", all: "1 2",
		},
		// §2 Local set: "used when internal policy is Local"
		{
			name: "internal Local: only the Local set",
			svc:  internalLocal, node: node1,
			eps:     eps(ep(1, ready, on("n2")), ep(2, ready, on("n1"))),
			cluster: "unused", local: "2", all: "2",
		},
		// §2 Cluster set: "or when the service is externally accessible,
		// i.e. has a NodePort, ExternalIPs or LB IPs" (NodePort)
		{
			name: "internal Local with a NodePort: both sets",
			svc:  internalLocalNodePort, node: node1,
			eps:     eps(ep(1, ready, on("n2")), ep(2, ready, on("n1"))),
			cluster: "1 2", local: "2", all: "1 2",
		},
		// §2 Cluster set: "or when the service is externally accessible,
		// i.e. has a NodePort, ExternalIPs or LB IPs" (ExternalIPs)
		{
			name: "internal Local with external IPs: both sets",
			svc:  internalLocalExternalIP, node: node1,
			eps:     eps(ep(1, ready, on("n2")), ep(2, ready, on("n1"))),
			cluster: "1 2", local: "2", all: "1 2",
		},
		// §2 Cluster set: "or when the service is externally accessible,
		// i.e. has a NodePort, ExternalIPs or LB IPs" (LB IPs)
		{
			name: "internal Local with LoadBalancer IPs: both sets",
			svc:  internalLocalLBIP, node: node1,
			eps:     eps(ep(1, ready, on("n2")), ep(2, ready, on("n1"))),
			cluster: "1 2", local: "2", all: "1 2",
		},
		// §2 Local set: "or when external policy is Local and the service
		// is externally accessible"; §2 Traffic: "with external policy
		// Local, traffic to an external frontend that comes from a pod on
		// this node or from the node itself is treated as internal traffic
		// to the Cluster set"
		{
			name: "external Local with a NodePort: both sets",
			svc:  externalLocalNodePort, node: node1,
			eps:     eps(ep(1, ready, on("n2")), ep(2, ready, on("n1")), ep(3, ready, on("n2"))),
			cluster: "1 2 3", local: "2", all: "1 2 3",
		},
		// §2 Local set: "or when external policy is Local and the service
		// is externally accessible" (not accessible: Local unused)
		{
			name: "external Local without external frontends: Local unused",
			svc:  externalLocalNoFrontends, node: node1,
			eps:     eps(ep(1, ready, on("n2")), ep(2, ready, on("n1"))),
			cluster: "1 2", local: "unused", all: "1 2",
		},
		// §2 Traffic: "Internal traffic uses the Local set when internal
		// policy is Local" and "with external policy Local, traffic ...
		// from a pod on this node ... is treated as internal traffic to
		// the Cluster set"
		{
			name: "both policies Local, externally accessible: both sets",
			svc:  bothLocalLBIP, node: node1,
			eps:     eps(ep(1, ready, on("n2")), ep(2, ready, on("n1"))),
			cluster: "1 2", local: "2", all: "1 2",
		},

		// --- Cluster set ---

		// §2 Cluster set 1: "Start from the ready endpoints."
		{
			name: "cluster: only ready endpoints when some are ready",
			svc:  internalCluster, node: node1,
			eps:     eps(ep(1), ep(2, ready), ep(3, termServing), ep(4, ready)),
			cluster: "2 4", local: "unused", all: "2 4",
		},
		// §2 Cluster set 2: "If every ready endpoint carries node hints
		// and at least one names this node, keep only the endpoints whose
		// hints name this node."
		{
			name: "cluster: node hints naming this node",
			svc:  internalCluster, node: node1,
			eps:     eps(ep(1, ready, nh("n2")), ep(2, ready, nh("n1")), ep(3, ready, nh("n3", "n1"))),
			cluster: "2 3", local: "unused", all: "2 3",
		},
		// §2 Cluster set 2: "Else, if every ready endpoint carries zone
		// hints and at least one names this node's zone, keep only those
		// naming this zone."
		{
			name: "cluster: zone hints naming this zone",
			svc:  internalCluster, node: node1,
			eps:     eps(ep(1, ready, zh("z1")), ep(2, ready, zh("z2")), ep(3, ready, zh("z2", "z1"))),
			cluster: "1 3", local: "unused", all: "1 3",
		},
		// §2 Cluster set 2: "Else ignore hints." (node hints name no
		// endpoint for this node, no zone hints)
		{
			name: "cluster: node hints naming other nodes only are ignored",
			svc:  internalCluster, node: node1,
			eps:     eps(ep(1, ready, nh("n2")), ep(2, ready, nh("n3"))),
			cluster: "1 2", local: "unused", all: "1 2",
		},
		// §2 Cluster set 2: "Else ignore hints." (zone hints name other
		// zones only)
		{
			name: "cluster: zone hints naming other zones only are ignored",
			svc:  internalCluster, node: node1,
			eps:     eps(ep(1, ready, zh("z2")), ep(2, ready, zh("z3"))),
			cluster: "1 2", local: "unused", all: "1 2",
		},
		// §2 Cluster set 2: "Node hints win over zone hints"
		{
			name: "cluster: node hints win over zone hints",
			svc:  internalCluster, node: node1,
			eps: eps(
				ep(1, ready, nh("n1"), zh("z2")),
				ep(2, ready, nh("n2"), zh("z1")),
				ep(3, ready, nh("n3"), zh("z1")),
			),
			cluster: "1", local: "unused", all: "1",
		},
		// §2 Cluster set 2: "Else, if every ready endpoint carries zone
		// hints ..." (node hints all present but naming other nodes)
		{
			name: "cluster: node hints for other nodes fall through to zone hints",
			svc:  internalCluster, node: node1,
			eps: eps(
				ep(1, ready, nh("n2"), zh("z2")),
				ep(2, ready, nh("n3"), zh("z1")),
			),
			cluster: "2", local: "unused", all: "2",
		},
		// §2 Cluster set 2: "hints are only honoured when *all* ready
		// endpoints carry them" (zone hints)
		{
			name: "cluster: one ready endpoint without zone hints: hints ignored",
			svc:  internalCluster, node: node1,
			eps:     eps(ep(1, ready, zh("z1")), ep(2, ready), ep(3, ready, zh("z2"))),
			cluster: "1 2 3", local: "unused", all: "1 2 3",
		},
		// §2 Cluster set 2: "hints are only honoured when *all* ready
		// endpoints carry them" (node hints; zone hints then apply)
		{
			name: "cluster: one ready endpoint without node hints: node hints ignored",
			svc:  internalCluster, node: node1,
			eps:     eps(ep(1, ready, nh("n1"), zh("z2")), ep(2, ready, zh("z1"))),
			cluster: "2", local: "unused", all: "2",
		},
		// §2 Cluster set 2: "If every ready endpoint carries node hints"
		// (endpoints that are not ready do not count)
		{
			name: "cluster: endpoints not ready need no hints",
			svc:  internalCluster, node: node1,
			eps:     eps(ep(1, ready, zh("z1")), ep(2, termServing), ep(3), ep(4, ready, zh("z2"))),
			cluster: "1", local: "unused", all: "1",
		},
		// §2 Cluster set 2: "at least one names this node" (an empty node
		// name names nothing)
		{
			name: "cluster: empty node name and zone never match hints",
			svc:  internalCluster, node: Node{},
			eps:     eps(ep(1, ready, nh(""), zh("")), ep(2, ready, nh("n1"), zh("z1"))),
			cluster: "1 2", local: "unused", all: "1 2",
		},
		// §2 Cluster set 3: "If nothing is left, fall back to endpoints
		// that are serving and terminating"
		{
			name: "cluster: no ready endpoints: serving-terminating fallback",
			svc:  internalCluster, node: node1,
			eps:     eps(ep(1, termServing), ep(2), ep(3, termOnly), ep(4, termServing, on("n2"))),
			cluster: "1 4", local: "unused", all: "1 4",
		},
		// §2 Cluster set 3: "(hints are not applied to this fallback)"
		{
			name: "cluster: the fallback is not filtered by hints",
			svc:  internalCluster, node: node1,
			eps:     eps(ep(1, termServing, nh("n2"), zh("z2")), ep(2, termServing, nh("n1"), zh("z1"))),
			cluster: "1 2", local: "unused", all: "1 2",
		},
		{
			name: "cluster: no endpoints at all",
			svc:  internalCluster, node: node1,
			eps:     nil,
			cluster: "none", local: "unused", all: "none",
		},

		// --- Local set ---

		// §2 Local set: "the endpoints on this node that are ready"
		{
			name: "local: ready endpoints on this node",
			svc:  internalLocal, node: node1,
			eps:     eps(ep(1, ready, on("n1")), ep(2, ready, on("n2")), ep(3, on("n1")), ep(4, ready, on("n1")), ep(5, ready)),
			cluster: "unused", local: "1 4", all: "1 4",
		},
		// §2 Local set: "if there are none, the local ones that are
		// serving and terminating"
		{
			name: "local: no ready local endpoint: local serving-terminating fallback",
			svc:  internalLocal, node: node1,
			eps: eps(ep(1, ready, on("n2")), ep(2, termServing, on("n1")), ep(3, termServing, on("n2")),
				ep(4, termOnly, on("n1")), ep(5, servingOnly, on("n1"))),
			cluster: "unused", local: "2", all: "2",
		},
		// §2 Local set: "if there are none, the local ones ..." (there
		// are ready local ones: no fallback)
		{
			name: "local: ready local endpoints exclude the fallback",
			svc:  internalLocal, node: node1,
			eps:     eps(ep(1, termServing, on("n1")), ep(2, ready, on("n1"))),
			cluster: "unused", local: "2", all: "2",
		},
		// §2 Local set: "Hints never filter the local set."
		{
			name: "local: hints never filter the local set",
			svc:  externalLocalNodePort, node: node1,
			eps: eps(
				ep(1, ready, on("n1"), nh("n2"), zh("z2")),
				ep(2, ready, on("n2"), nh("n1"), zh("z1")),
			),
			cluster: "2", local: "1", all: "1 2",
		},
		// §2 Local set: "the endpoints on this node" (a node without a
		// name has none)
		{
			name: "local: an empty node name matches no endpoint",
			svc:  internalLocal, node: Node{Zone: "z1"},
			eps:     eps(ep(1, ready), ep(2, termServing)),
			cluster: "unused", local: "none", all: "none",
		},
		// §5 Exception: "external traffic with external policy Local and
		// no local endpoints is dropped" needs Local empty, Cluster full.
		{
			name: "local: none on this node while the cluster has some",
			svc:  externalLocalNodePort, node: node1,
			eps:     eps(ep(1, ready, on("n2")), ep(2, ready, on("n3"))),
			cluster: "1 2", local: "none", all: "1 2",
		},

		// --- All ---

		// Result: "All is the union of the sets in use, in the order of
		// the input" (neither set contains the other)
		{
			name: "all: union in input order when neither set contains the other",
			svc:  externalLocalNodePort, node: node1,
			eps: eps(
				ep(1, ready, on("n2"), zh("z1")),
				ep(2, ready, on("n1"), zh("z2")),
				ep(3, ready, on("n2"), zh("z1")),
				ep(4, ready, on("n1"), zh("z3")),
			),
			cluster: "1 3", local: "2 4", all: "1 2 3 4",
		},
		// Result: "All is the union of the sets in use" (equal sets, both
		// filtered)
		{
			name: "all: equal filtered sets",
			svc:  bothLocalLBIP, node: node1,
			eps:     eps(ep(1, ready, on("n1"), zh("z1")), ep(2, ready, on("n2"), zh("z2"))),
			cluster: "1", local: "1", all: "1",
		},
		// Result: "All is the union of the sets in use" (both sets fall
		// back)
		{
			name: "all: both sets fall back",
			svc:  externalLocalNodePort, node: node1,
			eps:     eps(ep(1, termServing, on("n2")), ep(2, termServing, on("n1")), ep(3, on("n1"))),
			cluster: "1 2", local: "2", all: "1 2",
		},
		{
			name: "all: local subset of a hint-filtered cluster",
			svc:  externalLocalNodePort, node: node1,
			eps: eps(
				ep(1, ready, on("n1"), zh("z1")),
				ep(2, ready, on("n2"), zh("z2")),
				ep(3, ready, on("n3"), zh("z1")),
			),
			cluster: "1 3", local: "1", all: "1 3",
		},
		{
			name: "all: hint-filtered cluster subset of local",
			svc:  externalLocalNodePort, node: node1,
			eps: eps(
				ep(1, ready, on("n1"), nh("n1")),
				ep(2, ready, on("n1"), nh("n2")),
			),
			cluster: "1", local: "1 2", all: "1 2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Categorize(tt.svc, tt.eps, tt.node)
			want := []string{
				"cluster: " + tt.cluster,
				"local: " + tt.local,
				"all: " + tt.all,
				fmt.Sprintf("hasAny: %v", tt.all != "none"),
			}
			if d := diff(want, fmtResult(got)); d != "" {
				t.Errorf("Categorize() %s", d)
			}
		})
	}
}

// §1: "everything in §2 is computed separately for each family": the same
// port categorised per family, with endpoints.SplitFamily.
func TestCategorizePerFamily(t *testing.T) {
	v6 := func(s string, opts ...func(*endpoints.Endpoint)) endpoints.Endpoint {
		e := endpoints.Endpoint{Addr: netip.MustParseAddr(s), Port: 80}
		for _, o := range opts {
			o(&e)
		}
		return e
	}
	tests := []struct {
		name   string
		svc    *servicemap.ServicePort
		eps    []endpoints.Endpoint // merged: sorted, IPv4 first
		v4, v6 []string
	}{
		{
			name: "only IPv4 endpoints",
			svc:  externalLocalNodePort,
			eps:  eps(ep(1, ready, on("n1")), ep(2, ready, on("n2"))),
			v4:   []string{"cluster: 1 2", "local: 1", "all: 1 2", "hasAny: true"},
			v6:   []string{"cluster: none", "local: none", "all: none", "hasAny: false"},
		},
		{
			name: "only IPv6 endpoints",
			svc:  internalCluster,
			eps:  eps(v6("2001:db8::1", ready), v6("2001:db8::2", termServing)),
			v4:   []string{"cluster: none", "local: unused", "all: none", "hasAny: false"},
			v6:   []string{"cluster: 2001:db8::1", "local: unused", "all: 2001:db8::1", "hasAny: true"},
		},
		{
			// §2 Cluster set 3 decided per family: IPv4 has a ready
			// endpoint, IPv6 falls back.
			name: "the fallback is per family",
			svc:  internalCluster,
			eps:  eps(ep(1, ready), ep(2, termServing), v6("2001:db8::1", termServing), v6("2001:db8::2")),
			v4:   []string{"cluster: 1", "local: unused", "all: 1", "hasAny: true"},
			v6:   []string{"cluster: 2001:db8::1", "local: unused", "all: 2001:db8::1", "hasAny: true"},
		},
		{
			// §2 Cluster set 2 decided per family: every ready IPv4
			// endpoint is hinted, an IPv6 one is not.
			name: "hints are per family",
			svc:  internalCluster,
			eps: eps(ep(1, ready, zh("z1")), ep(2, ready, zh("z2")),
				v6("2001:db8::1", ready, zh("z1")), v6("2001:db8::2", ready)),
			v4: []string{"cluster: 1", "local: unused", "all: 1", "hasAny: true"},
			v6: []string{"cluster: 2001:db8::1 2001:db8::2", "local: unused", "all: 2001:db8::1 2001:db8::2", "hasAny: true"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v4, v6 := endpoints.SplitFamily(tt.eps)
			if d := diff(tt.v4, fmtResult(Categorize(tt.svc, v4, node1))); d != "" {
				t.Errorf("IPv4: Categorize() %s", d)
			}
			if d := diff(tt.v6, fmtResult(Categorize(tt.svc, v6, node1))); d != "" {
				t.Errorf("IPv6: Categorize() %s", d)
			}
		})
	}
}
