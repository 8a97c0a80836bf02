package proxykit_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/affinity"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// exampleSnapshot returns a snapshot of node n1 with one NodePort service,
// ns/web, whose external policy is Local, and three endpoints: one on n1,
// two on n2, one of them with twice the weight.
func exampleSnapshot(aff affinity.Config) *proxykit.Snapshot {
	node := proxykit.Node{Name: "n1", Addresses: []netip.Addr{netip.MustParseAddr("192.168.0.1")}}
	web := &servicemap.Service{
		Namespace: "ns", Name: "web", Type: servicemap.NodePort,
		ClusterIPs:            []netip.Addr{netip.MustParseAddr("10.96.0.10")},
		Ports:                 []servicemap.Port{{Name: "http", Port: 80, NodePort: 30080}},
		ExternalTrafficPolicy: servicemap.Local,
		Affinity:              aff,
	}
	slice := &endpoints.Slice{
		Namespace: "ns", Service: "web", Name: "web-1",
		Ports: []endpoints.Port{{Name: "http", Port: 8080}},
		Endpoints: []endpoints.Endpoint{
			{Addr: netip.MustParseAddr("10.1.0.5"), Ready: true, Serving: true, NodeName: "n1"},
			{Addr: netip.MustParseAddr("10.1.1.6"), Ready: true, Serving: true, NodeName: "n2"},
			{Addr: netip.MustParseAddr("10.1.1.7"), Ready: true, Serving: true, NodeName: "n2", Weight: 2},
		},
	}
	snap, err := proxykit.NewSnapshot(node, []*servicemap.Service{web}, []*endpoints.Slice{slice})
	if err != nil {
		panic(err)
	}
	return snap
}

func ExampleExplain() {
	snap := exampleSnapshot(affinity.Config{})

	// A pod on another node connects to the ClusterIP: any endpoint, by
	// weight.
	fmt.Println(proxykit.Explain(snap, proxykit.Packet{
		Src: netip.MustParseAddr("10.1.1.9"), Dst: netip.MustParseAddr("10.96.0.10"), Port: 80,
		From: proxykit.FromRemotePod,
	}))
	// A client outside the cluster connects to the NodePort: only the
	// local endpoint, and the client's address is kept.
	fmt.Println(proxykit.Explain(snap, proxykit.Packet{
		Src: netip.MustParseAddr("203.0.113.7"), Dst: netip.MustParseAddr("192.168.0.1"), Port: 30080,
		From: proxykit.FromExternal,
	}))
	// Output:
	// forward ns/web:http/TCP via ClusterIP (internal, Cluster set), masquerade=false
	//   why: §2: internal traffic with internal policy Cluster uses the Cluster set
	//   10.1.0.5:8080 p=0.250000 node=n1
	//   10.1.1.6:8080 p=0.250000 node=n2
	//   10.1.1.7:8080 p=0.500000 weight=2 node=n2
	// forward ns/web:http/TCP via NodePort (external, Local set), masquerade=false
	//   why: §2: external traffic with external policy Local uses the Local set
	//   10.1.0.5:8080 p=1.000000 node=n1
}

func ExampleOracle_Observe() {
	snap := exampleSnapshot(affinity.Config{ClientIP: true, Timeout: time.Minute})
	o := &proxykit.Oracle{Affinity: affinity.NewTable[proxykit.AffinityKey, netip.AddrPort](1000)}
	pkt := proxykit.Packet{
		Src: netip.MustParseAddr("10.1.1.9"), Dst: netip.MustParseAddr("10.96.0.10"), Port: 80,
		From: proxykit.FromRemotePod,
	}

	// The backend sent the first connection to 10.1.1.6:8080; from now on
	// the client sticks to it.
	if err := o.Observe(snap, pkt, netip.MustParseAddrPort("10.1.1.6:8080")); err != nil {
		panic(err)
	}
	fmt.Println(o.Explain(snap, pkt))

	// A backend that sends the next connection elsewhere breaks SEMANTICS.
	fmt.Println(o.Observe(snap, pkt, netip.MustParseAddrPort("10.1.1.7:8080")))
	// Output:
	// forward ns/web:http/TCP via ClusterIP (internal, Cluster set), masquerade=false
	//   why: §4: ClientIP affinity sends the client to 10.1.1.6:8080, still in the Cluster set
	//   affinity: ClientIP, timeout 1m0s, client pinned
	//   10.1.1.6:8080 p=1.000000 node=n2
	// proxykit: TCP 10.1.1.9 -> 10.96.0.10:80 from remote pod went to 10.1.1.7:8080, but it is not a candidate: forward ns/web:http/TCP via ClusterIP (internal, Cluster set), masquerade=false
}
