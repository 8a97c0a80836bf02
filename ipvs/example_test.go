package ipvs_test

import (
	"fmt"
	"net/netip"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/ipvs"
	"github.com/proxykit/proxykit/servicemap"
)

// Plan turns a snapshot into virtual servers: a NodePort service gets one
// on its ClusterIP and one per node address, with the endpoints' weights
// on the real servers and the service's scheduler.
func ExamplePlan() {
	svc := &servicemap.Service{Namespace: "shop", Name: "web", Type: servicemap.NodePort,
		ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10")},
		Ports:      []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80, NodePort: 30080}},
		Scheduler:  "wrr"}
	slice := &endpoints.Slice{Namespace: "shop", Service: "web", Name: "web-1",
		Ports: []endpoints.Port{{Name: "http", Protocol: servicemap.TCP, Port: 8080}},
		Endpoints: []endpoints.Endpoint{
			{Addr: netip.MustParseAddr("10.244.1.10"), Ready: true, Weight: 3},
			{Addr: netip.MustParseAddr("10.244.2.10"), Ready: true},
		}}
	node := proxykit.Node{Name: "node-a", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}
	snap, err := proxykit.NewSnapshot(node, []*servicemap.Service{svc}, []*endpoints.Slice{slice})
	if err != nil {
		panic(err)
	}
	st, err := ipvs.Plan(snap, ipvs.Config{MasqueradeAll: true})
	if err != nil {
		panic(err)
	}
	fmt.Print(st)
	// Output:
	// TCP  10.96.0.10:80 wrr  # shop/web:http/TCP cluster-ip
	//   -> 10.244.1.10:8080 weight 3
	//   -> 10.244.2.10:8080 weight 1
	// TCP  192.0.2.1:30080 wrr  # shop/web:http/TCP node-port
	//   -> 10.244.1.10:8080 weight 3
	//   -> 10.244.2.10:8080 weight 1
	// address 10.96.0.10
}
