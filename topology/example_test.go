package topology_test

import (
	"fmt"
	"net/netip"

	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
	"github.com/proxykit/proxykit/topology"
)

func ExampleCategorize() {
	// A NodePort service with external traffic policy Local.
	svc := &servicemap.ServicePort{
		Name:                  servicemap.PortName{Namespace: "shop", Name: "web", Port: "http", Protocol: servicemap.TCP},
		Type:                  servicemap.NodePort,
		Protocol:              servicemap.TCP,
		Port:                  80,
		NodePort:              30080,
		ClusterIPs:            []netip.Addr{netip.MustParseAddr("172.16.0.10")},
		InternalTrafficPolicy: servicemap.Cluster,
		ExternalTrafficPolicy: servicemap.Local,
	}
	eps := []endpoints.Endpoint{
		{Addr: netip.MustParseAddr("10.0.1.5"), Port: 8080, Ready: true, Serving: true, NodeName: "node-a"},
		{Addr: netip.MustParseAddr("10.0.2.7"), Port: 8080, Ready: true, Serving: true, NodeName: "node-b"},
		{Addr: netip.MustParseAddr("10.0.2.8"), Port: 8080, Serving: true, Terminating: true, NodeName: "node-b"},
	}
	v4, _ := endpoints.SplitFamily(eps)
	r := topology.Categorize(svc, v4, topology.Node{Name: "node-b", Zone: "zone-1"})
	show := func(name string, set []endpoints.Endpoint) {
		fmt.Print(name, ":")
		for _, e := range set {
			fmt.Print(" ", e.AddrPort())
		}
		fmt.Println()
	}
	show("cluster (internal traffic, and external from this node)", r.Cluster)
	show("local (external traffic)", r.Local)
	show("all", r.All)
	// Output:
	// cluster (internal traffic, and external from this node): 10.0.1.5:8080 10.0.2.7:8080
	// local (external traffic): 10.0.2.7:8080
	// all: 10.0.1.5:8080 10.0.2.7:8080
}
