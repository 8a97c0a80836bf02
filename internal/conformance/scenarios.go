//go:build linux

package conformance

import (
	"net/netip"

	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

const (
	TCP = servicemap.TCP
	UDP = servicemap.UDP
)

// Spread checks use enough connections that a wrong distribution fails
// (e.g. 50/50 where 25/75 is required gives chi-square ≈ 67 against a
// critical value of 24) and every expected count is at least 5.
const (
	spreadCount = 200 // weighted spreads
	evenCount   = 100 // even spreads
	stickyCount = 10
)

// Scenarios returns the suite's scenarios, in a stable order.
func Scenarios() []Scenario {
	var out []Scenario
	for _, group := range [][]Scenario{
		perFamily("ClusterIP TCP", "§2 Cluster set", clusterIPTCP),
		perFamily("ClusterIP UDP", "§2 Cluster set", clusterIPUDP),
		perFamily("multiple ports", "§1 service ports", multiplePorts),
		perFamily("NodePort", "§8 NodePorts", nodePort),
		perFamily("ExternalIP", "§2 external traffic", externalIPScenario),
		perFamily("LoadBalancer source ranges", "§6 source ranges", sourceRanges),
		perFamily("weights 1:3", "§3 weights", weighted),
		perFamily("weights 100:201:300", "§3 weights", weightedMany),
		perFamily("no endpoints", "§5 no endpoints", noEndpoints),
		perFamily("eTP Local, local endpoints", "§2 eTP Local", externalLocalScenario),
		perFamily("eTP Local, no local endpoints", "§5 eTP Local drop", externalLocalNoLocal),
		perFamily("eTP Local, local pod via external IP", "§2 eTP Local short-circuit", shortCircuit),
		perFamily("iTP Local", "§2 iTP Local", internalLocalScenario),
		perFamily("terminating fallback", "§2 terminating fallback", terminatingFallback),
		perFamily("zone and node hints", "§2 topology hints", hints),
		perFamily("masquerade by cluster CIDRs", "§7 masquerade", masquerade),
		perFamily("hairpin", "§7 hairpin", hairpin),
		perFamily("ClientIP affinity", "§4 session affinity", clientIPAffinity),
		{dualStackV6Only()},
	} {
		out = append(out, group...)
	}
	return out
}

// clusterIPTCP: a ClusterIP with a local and a remote endpoint, reached
// from outside (masqueraded), from the node and from local pods.
func clusterIPTCP(f int) Scenario {
	svc := service("web", f, 10, []servicemap.Port{tcp(80)})
	cip := to(svc.ClusterIPs[0], 80)
	return Scenario{
		Services: []*servicemap.Service{svc},
		Slices:   []*endpoints.Slice{slice(svc, f, ep("pod-a", f), ep("pod-c", f))},
		Probes: []Probe{
			forward("client", TCP, cip, evenCount),
			forward("node1", TCP, cip, 1),
			forward("pod-b", TCP, cip, 1),
		},
	}
}

func clusterIPUDP(f int) Scenario {
	svc := service("dns", f, 11, []servicemap.Port{udp(53)})
	cip := to(svc.ClusterIPs[0], 53)
	return Scenario{
		Services: []*servicemap.Service{svc},
		Slices:   []*endpoints.Slice{slice(svc, f, ep("pod-a", f), ep("pod-c", f))},
		Probes: []Probe{
			forward("client", UDP, cip, evenCount),
			forward("node1", UDP, cip, 1),
			forward("pod-b", UDP, cip, 1),
		},
	}
}

// multiplePorts: one service, three ports of two protocols on the same
// target port; ports and protocols it does not have are not forwarded.
func multiplePorts(f int) Scenario {
	svc := service("multi", f, 12, []servicemap.Port{
		named("http", tcp(80)), named("dns", udp(53)), named("metrics", tcp(9090)),
	})
	a := svc.ClusterIPs[0]
	return Scenario{
		Services: []*servicemap.Service{svc},
		Slices:   []*endpoints.Slice{slice(svc, f, ep("pod-b", f), ep("pod-d", f))},
		Probes: []Probe{
			forward("client", TCP, to(a, 80), 1),
			forward("client", UDP, to(a, 53), 1),
			forward("client", TCP, to(a, 9090), 1),
			forward("pod-a", TCP, to(a, 9090), 1),
			noMatch("client", TCP, to(a, 81)),
			noMatch("client", UDP, to(a, 80)),
		},
	}
}

// nodePort: a NodePort (TCP and UDP) served on every node1 address of the
// family, from the client, the node and a local pod; external traffic
// with external policy Cluster is masqueraded.
func nodePort(f int) Scenario {
	svc := service("np", f, 13, []servicemap.Port{
		named("http", withNodePort(tcp(80), 30080)), named("dns", withNodePort(udp(53), 30053)),
	}, nodePortType)
	var probes []Probe
	for _, node := range []netip.Addr{nodeLinkAddr[f], clientLinkAddr[f]} {
		probes = append(probes,
			forward("client", TCP, to(node, 30080), 1),
			forward("client", UDP, to(node, 30053), 1),
		)
	}
	probes = append(probes,
		forward("node1", TCP, to(nodeLinkAddr[f], 30080), 1),
		forward("pod-a", TCP, to(nodeLinkAddr[f], 30080), 1),
		forward("client", TCP, to(svc.ClusterIPs[0], 80), 1),
	)
	return Scenario{
		Services: []*servicemap.Service{svc},
		Slices:   []*endpoints.Slice{slice(svc, f, ep("pod-b", f), ep("pod-c", f))},
		Probes:   probes,
	}
}

// externalIPScenario: an ExternalIP routed to node1, reached by the client, the
// node, a local and a remote pod.
func externalIPScenario(f int) Scenario {
	svc := service("ext", f, 14, []servicemap.Port{tcp(80), udp(53)}, externalIPs(f))
	svc.Ports[0].Name, svc.Ports[1].Name = "http", "dns"
	return Scenario{
		Services: []*servicemap.Service{svc},
		Slices:   []*endpoints.Slice{slice(svc, f, ep("pod-a", f), ep("pod-d", f))},
		Probes: []Probe{
			forward("client", TCP, to(externalIP[f], 80), 1),
			forward("client", UDP, to(externalIP[f], 53), 1),
			forward("node1", TCP, to(externalIP[f], 80), 1),
			forward("pod-b", TCP, to(externalIP[f], 80), 1),
			forward("pod-c", TCP, to(externalIP[f], 80), 1),
		},
	}
}
