package conntrack_test

import (
	"fmt"
	"net/netip"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/conntrack"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// A DNS service whose endpoint 10.244.2.10 was replaced by 10.244.2.11:
// the flows still translated to the old endpoint, and the one made while
// the service had no endpoint, are stale; TCP and other addresses are
// not.
func ExampleStaleFlows() {
	dns := &servicemap.Service{Namespace: "kube-system", Name: "dns",
		ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10")},
		Ports:      []servicemap.Port{{Name: "dns", Protocol: servicemap.UDP, Port: 53}}}
	slice := &endpoints.Slice{Namespace: "kube-system", Service: "dns", Name: "dns-1",
		Ports:     []endpoints.Port{{Name: "dns", Protocol: servicemap.UDP, Port: 53}},
		Endpoints: []endpoints.Endpoint{{Addr: netip.MustParseAddr("10.244.2.11"), Ready: true}}}
	snap, err := proxykit.NewSnapshot(proxykit.Node{Name: "node1"}, []*servicemap.Service{dns}, []*endpoints.Slice{slice})
	if err != nil {
		panic(err)
	}
	flow := func(proto conntrack.Proto, client, dst, replySrc string) conntrack.Flow {
		c := netip.MustParseAddrPort(client)
		return conntrack.Flow{Proto: proto,
			Orig:  conntrack.Tuple{Src: c, Dst: netip.MustParseAddrPort(dst)},
			Reply: conntrack.Tuple{Src: netip.MustParseAddrPort(replySrc), Dst: c}}
	}
	flows := []conntrack.Flow{
		flow(conntrack.UDP, "10.244.1.5:40001", "10.96.0.10:53", "10.244.2.10:53"), // old endpoint
		flow(conntrack.UDP, "10.244.1.5:40002", "10.96.0.10:53", "10.244.2.11:53"), // new endpoint
		flow(conntrack.UDP, "10.244.1.5:40003", "10.96.0.10:53", "10.96.0.10:53"),  // never translated
		flow(conntrack.TCP, "10.244.1.5:40004", "10.96.0.10:53", "10.244.2.10:53"), // TCP
		flow(conntrack.UDP, "10.244.1.5:40005", "10.96.0.99:53", "10.244.2.10:53"), // not a frontend
	}
	for _, f := range conntrack.StaleFlows(snap, conntrack.Config{}, flows) {
		fmt.Println(f)
	}
	// Output:
	// UDP 10.244.1.5:40001 -> 10.96.0.10:53 reply 10.244.2.10:53 -> 10.244.1.5:40001
	// UDP 10.244.1.5:40003 -> 10.96.0.10:53 reply 10.96.0.10:53 -> 10.244.1.5:40003
}
