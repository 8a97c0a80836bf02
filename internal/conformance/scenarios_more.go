//go:build linux

package conformance

import (
	"net/netip"
	"testing"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/affinity"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// sourceRanges: a LoadBalancer IP with source ranges that contain the
// client (forwarded), that do not (dropped, also for the node), and that
// contain a node address (the node may reach the LB IP; the client may
// not). The ClusterIP and the NodePort are never restricted.
func sourceRanges(f int) Scenario {
	allow := service("lb-allow", f, 20, []servicemap.Port{tcp(80)}, loadBalancer(f, clientNet[f]))
	deny := service("lb-deny", f, 21, []servicemap.Port{withNodePort(tcp(81), 30081)}, loadBalancer(f, otherNet[f]))
	nodeNet := netip.PrefixFrom(nodeLinkAddr[f], nodeLinkAddr[f].BitLen()).Masked()
	nodeOK := service("lb-node", f, 22, []servicemap.Port{tcp(82)}, loadBalancer(f, nodeNet))
	return Scenario{
		Services: []*servicemap.Service{allow, deny, nodeOK},
		Slices: []*endpoints.Slice{
			slice(allow, f, ep("pod-a", f), ep("pod-c", f)),
			slice(deny, f, ep("pod-a", f), ep("pod-c", f)),
			slice(nodeOK, f, ep("pod-b", f)),
		},
		Probes: []Probe{
			forward("client", TCP, to(lbIP[f], 80), 1),
			forward("client", TCP, to(allow.ClusterIPs[0], 80), 1),
			drop("client", TCP, to(lbIP[f], 81)),
			drop("node1", TCP, to(lbIP[f], 81)),
			forward("client", TCP, to(deny.ClusterIPs[0], 81), 1),
			forward("client", TCP, to(nodeLinkAddr[f], 30081), 1),
			forward("node1", TCP, to(lbIP[f], 82), 1),
			drop("client", TCP, to(lbIP[f], 82)),
		},
	}
}

// weighted: weights 1 and 3 give a 25/75 spread, over TCP and UDP.
func weighted(f int) Scenario {
	svc := service("weighted", f, 23, []servicemap.Port{named("http", tcp(80)), named("dns", udp(53))})
	return Scenario{
		Services: []*servicemap.Service{svc},
		Slices:   []*endpoints.Slice{slice(svc, f, ep("pod-a", f, weight(1)), ep("pod-c", f, weight(3)))},
		Probes: []Probe{
			forward("client", TCP, to(svc.ClusterIPs[0], 80), spreadCount),
			forward("client", UDP, to(svc.ClusterIPs[0], 53), spreadCount),
		},
	}
}

// weightedMany: weights 100, 201 and 300 share no divisor, so a backend
// that spreads by slots needs 601 of them; the spread is still exact
// (16.6/33.4/49.9 %).
func weightedMany(f int) Scenario {
	svc := service("weighted-many", f, 39, []servicemap.Port{named("http", tcp(80))})
	return Scenario{
		Services: []*servicemap.Service{svc},
		Slices: []*endpoints.Slice{slice(svc, f,
			ep("pod-a", f, weight(100)), ep("pod-b", f, weight(201)), ep("pod-c", f, weight(300)))},
		Probes: []Probe{forward("client", TCP, to(svc.ClusterIPs[0], 80), spreadCount)},
	}
}

// noEndpoints: a service without endpoints rejects at once, on every
// frontend with external policy Cluster, for TCP and UDP, whoever sends.
func noEndpoints(f int) Scenario {
	svc := service("empty", f, 24, []servicemap.Port{
		named("http", withNodePort(tcp(80), 30082)), named("dns", withNodePort(udp(53), 30054)),
	}, nodePortType, externalIPs(f))
	cip := svc.ClusterIPs[0]
	return Scenario{
		Services: []*servicemap.Service{svc},
		Probes: []Probe{
			reject("client", TCP, to(cip, 80)),
			reject("client", UDP, to(cip, 53)),
			reject("pod-a", TCP, to(cip, 80)),
			reject("pod-a", UDP, to(cip, 53)),
			reject("node1", TCP, to(cip, 80)),
			reject("node1", UDP, to(cip, 53)),
			reject("client", TCP, to(nodeLinkAddr[f], 30082)),
			reject("client", UDP, to(nodeLinkAddr[f], 30054)),
			reject("client", TCP, to(externalIP[f], 80)),
		},
	}
}

// externalLocalScenario: external policy Local with a local and a remote
// endpoint. External traffic goes to the local endpoint only, with the
// client's address; the ClusterIP uses the Cluster set; a remote pod
// reaching the ExternalIP through node1 is external traffic too.
func externalLocalScenario(f int) Scenario {
	svc := service("etp-local", f, 25, []servicemap.Port{
		named("http", withNodePort(tcp(80), 30083)), named("dns", withNodePort(udp(53), 30055)),
	}, nodePortType, externalIPs(f), externalLocal)
	return Scenario{
		Services: []*servicemap.Service{svc},
		Slices:   []*endpoints.Slice{slice(svc, f, ep("pod-a", f), ep("pod-c", f))},
		Probes: []Probe{
			forward("client", TCP, to(externalIP[f], 80), stickyCount),
			forward("client", UDP, to(externalIP[f], 53), stickyCount),
			forward("client", TCP, to(nodeLinkAddr[f], 30083), stickyCount),
			forward("client", TCP, to(clientLinkAddr[f], 30083), stickyCount),
			forward("client", TCP, to(svc.ClusterIPs[0], 80), 1),
			forward("pod-c", TCP, to(externalIP[f], 80), stickyCount),
		},
	}
}

// externalLocalNoLocal: external policy Local without local endpoints.
// External traffic is dropped; local pods and the node reaching the
// external frontends are short-circuited to the Cluster set (§2).
func externalLocalNoLocal(f int) Scenario {
	svc := service("etp-remote", f, 26, []servicemap.Port{
		named("http", withNodePort(tcp(80), 30084)), named("dns", withNodePort(udp(53), 30056)),
	}, nodePortType, externalIPs(f), externalLocal)
	return Scenario{
		Services: []*servicemap.Service{svc},
		Slices:   []*endpoints.Slice{slice(svc, f, ep("pod-c", f), ep("pod-d", f))},
		Probes: []Probe{
			drop("client", TCP, to(externalIP[f], 80)),
			drop("client", UDP, to(externalIP[f], 53)),
			drop("client", TCP, to(nodeLinkAddr[f], 30084)),
			forward("client", TCP, to(svc.ClusterIPs[0], 80), 1),
			forward("pod-a", TCP, to(externalIP[f], 80), 1),
			forward("pod-a", UDP, to(externalIP[f], 53), 1),
			forward("pod-a", TCP, to(nodeLinkAddr[f], 30084), 1),
			forward("node1", TCP, to(externalIP[f], 80), 1),
			forward("node1", TCP, to(nodeLinkAddr[f], 30084), 1),
		},
	}
}

// shortCircuit: a local pod reaching the ExternalIP of an external policy
// Local service uses the whole Cluster set, remote endpoints included.
func shortCircuit(f int) Scenario {
	svc := service("etp-short", f, 27, []servicemap.Port{tcp(80)}, externalIPs(f), externalLocal)
	return Scenario{
		Services: []*servicemap.Service{svc},
		Slices:   []*endpoints.Slice{slice(svc, f, ep("pod-b", f), ep("pod-c", f), ep("pod-d", f))},
		Probes: []Probe{
			forward("pod-a", TCP, to(externalIP[f], 80), evenCount),
			forward("client", TCP, to(externalIP[f], 80), stickyCount),
		},
	}
}

// internalLocalScenario: internal policy Local keeps ClusterIP traffic on this
// node's endpoints, and rejects it when there are none.
func internalLocalScenario(f int) Scenario {
	svc := service("itp-local", f, 28, []servicemap.Port{tcp(80), udp(53)}, internalLocal)
	svc.Ports[0].Name, svc.Ports[1].Name = "http", "dns"
	none := service("itp-remote", f, 29, []servicemap.Port{tcp(80)}, internalLocal)
	return Scenario{
		Services: []*servicemap.Service{svc, none},
		Slices: []*endpoints.Slice{
			slice(svc, f, ep("pod-b", f), ep("pod-c", f), ep("pod-d", f)),
			slice(none, f, ep("pod-c", f), ep("pod-d", f)),
		},
		Probes: []Probe{
			forward("pod-a", TCP, to(svc.ClusterIPs[0], 80), stickyCount),
			forward("pod-a", UDP, to(svc.ClusterIPs[0], 53), stickyCount),
			forward("client", TCP, to(svc.ClusterIPs[0], 80), stickyCount),
			forward("node1", TCP, to(svc.ClusterIPs[0], 80), 1),
			reject("pod-a", TCP, to(none.ClusterIPs[0], 80)),
			reject("client", TCP, to(none.ClusterIPs[0], 80)),
		},
	}
}

// terminatingFallback: with no ready endpoint, serving terminating ones
// take new connections; terminating ones that no longer serve never do;
// a ready endpoint wins over terminating ones.
func terminatingFallback(f int) Scenario {
	fallback := service("fallback", f, 30, []servicemap.Port{tcp(80)})
	mixed := service("mixed", f, 31, []servicemap.Port{tcp(80)})
	gone := service("gone", f, 32, []servicemap.Port{tcp(80)})
	return Scenario{
		Services: []*servicemap.Service{fallback, mixed, gone},
		Slices: []*endpoints.Slice{
			slice(fallback, f, ep("pod-a", f, terminating(true)), ep("pod-c", f, terminating(false))),
			slice(mixed, f, ep("pod-b", f), ep("pod-c", f, terminating(true))),
			slice(gone, f, ep("pod-a", f, terminating(false))),
		},
		Probes: []Probe{
			forward("client", TCP, to(fallback.ClusterIPs[0], 80), stickyCount),
			forward("client", TCP, to(mixed.ClusterIPs[0], 80), stickyCount),
			reject("client", TCP, to(gone.ClusterIPs[0], 80)),
		},
	}
}

// hints: node hints win over zone hints; zone hints name node1's zone;
// hints are ignored unless every ready endpoint has them.
func hints(f int) Scenario {
	zone := service("zone", f, 33, []servicemap.Port{tcp(80)})
	node := service("node", f, 34, []servicemap.Port{tcp(80)})
	partial := service("partial", f, 35, []servicemap.Port{tcp(80)})
	return Scenario{
		Services: []*servicemap.Service{zone, node, partial},
		Slices: []*endpoints.Slice{
			slice(zone, f, ep("pod-a", f, zoneHints("zone-b")), ep("pod-c", f, zoneHints(NodeZone)), ep("pod-d", f, zoneHints(NodeZone))),
			slice(node, f, ep("pod-a", f, nodeHints("node2")), ep("pod-b", f, nodeHints("node1")), ep("pod-c", f, nodeHints("node2"))),
			slice(partial, f, ep("pod-a", f, zoneHints("zone-b")), ep("pod-c", f)),
		},
		Probes: []Probe{
			forward("client", TCP, to(zone.ClusterIPs[0], 80), 40),
			forward("client", TCP, to(node.ClusterIPs[0], 80), stickyCount),
			forward("client", TCP, to(partial.ClusterIPs[0], 80), 40),
		},
	}
}

// masquerade: internal traffic is masqueraded from outside the cluster
// CIDRs (the client, the node) and not from pods, unless MasqueradeAll;
// the Oracle's Policy decides which.
func masquerade(f int) Scenario {
	svc := service("masq", f, 36, []servicemap.Port{tcp(80), udp(53)})
	svc.Ports[0].Name, svc.Ports[1].Name = "http", "dns"
	return Scenario{
		Services: []*servicemap.Service{svc},
		Slices:   []*endpoints.Slice{slice(svc, f, ep("pod-b", f), ep("pod-c", f))},
		Probes: []Probe{
			forward("client", TCP, to(svc.ClusterIPs[0], 80), stickyCount),
			forward("node1", TCP, to(svc.ClusterIPs[0], 80), stickyCount),
			forward("pod-a", TCP, to(svc.ClusterIPs[0], 80), stickyCount),
			forward("pod-a", UDP, to(svc.ClusterIPs[0], 53), stickyCount),
		},
	}
}

// hairpin: a pod reaching its own service lands on itself and must be
// masqueraded, or it would drop the reply from its own address.
func hairpin(f int) Scenario {
	svc := service("hairpin", f, 37, []servicemap.Port{named("http", tcp(80)), named("dns", udp(53))}, externalIPs(f))
	return Scenario{
		Services: []*servicemap.Service{svc},
		Slices:   []*endpoints.Slice{slice(svc, f, ep("pod-a", f))},
		Probes: []Probe{
			forward("pod-a", TCP, to(svc.ClusterIPs[0], 80), 3),
			forward("pod-a", UDP, to(svc.ClusterIPs[0], 53), 3),
			forward("pod-a", TCP, to(externalIP[f], 80), 1),
			forward("pod-b", TCP, to(svc.ClusterIPs[0], 80), 1),
		},
	}
}

// clientIPAffinity: a client sticks to its first endpoint; when that
// endpoint is removed, affinity ends and the client is balanced afresh
// (and sticks again).
func clientIPAffinity(f int) Scenario {
	sticky := func(s *servicemap.Service) { s.Affinity = affinity.Config{ClientIP: true, Timeout: 60 * time.Second} }
	svc := service("sticky", f, 38, []servicemap.Port{tcp(80)}, sticky)
	all := []string{"pod-a", "pod-b", "pod-c"}
	mkSlice := func(pods []string) *endpoints.Slice {
		var eps []endpoints.Endpoint
		for _, p := range pods {
			eps = append(eps, ep(p, f))
		}
		return slice(svc, f, eps...)
	}
	cip := to(svc.ClusterIPs[0], 80)
	key := proxykit.AffinityKey{
		Port:   servicemap.PortName{Namespace: ns, Name: svc.Name, Protocol: servicemap.TCP},
		Client: clientAddr[f],
	}
	return Scenario{
		Services: []*servicemap.Service{svc},
		Slices:   []*endpoints.Slice{mkSlice(all)},
		Probes: []Probe{
			forward("client", TCP, cip, stickyCount),
			forward("pod-b", TCP, cip, stickyCount),
		},
		Then: func(t *testing.T, h *Harness) {
			pinned, ok := h.Oracle.Affinity.Get(key, time.Now())
			if !ok {
				t.Fatalf("no affinity record for %v after the first connections", key)
			}
			var rest []string
			for _, p := range all {
				if podAddr[p][f] != pinned.Addr() {
					rest = append(rest, p)
				}
			}
			h.Sync(t, []*servicemap.Service{svc}, []*endpoints.Slice{mkSlice(rest)})
			got := h.Check(t, forward("client", TCP, cip, stickyCount))
			if len(got) > 0 && got[0] == pinned {
				t.Errorf("after %v was removed, the client still reached it", pinned)
			}
		},
	}
}

// dualStackV6Only: a dual-stack service whose endpoints are all IPv6:
// each family is decided on its own, so IPv4 rejects and IPv6 forwards.
func dualStackV6Only() Scenario {
	svc := &servicemap.Service{
		Namespace: ns, Name: "dual", ClusterIPs: []netip.Addr{clusterIP(v4, 40), clusterIP(v6, 40)},
		Ports: []servicemap.Port{named("http", tcp(80)), named("dns", udp(53))},
	}
	return Scenario{
		Name: "dual-stack, only IPv6 endpoints", Section: "§1 families",
		Services: []*servicemap.Service{svc},
		Slices:   []*endpoints.Slice{slice(svc, v6, ep("pod-a", v6), ep("pod-c", v6))},
		Probes: []Probe{
			reject("client", TCP, to(clusterIP(v4, 40), 80)),
			reject("client", UDP, to(clusterIP(v4, 40), 53)),
			forward("client", TCP, to(clusterIP(v6, 40), 80), 1),
			forward("client", UDP, to(clusterIP(v6, 40), 53), 1),
			forward("pod-b", TCP, to(clusterIP(v6, 40), 80), 1),
		},
	}
}
