package proxykit_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// A Proxy takes services and endpoint slices, and hands each snapshot to a
// Syncer: here a function that prints what a backend would program.
func ExampleNew() {
	node := proxykit.Node{Name: "node-a", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10")}}
	synced := make(chan *proxykit.Snapshot, 1)
	syncer := proxykit.SyncerFunc(func(_ context.Context, snap *proxykit.Snapshot) error {
		for ps := range snap.Family(proxykit.IPv4).Ports() {
			fmt.Println(ps.Name, ps.ClusterIP, len(ps.Endpoints.All), "endpoint(s)")
		}
		synced <- snap
		return nil
	})
	p := proxykit.New(node, syncer, proxykit.WithMinSyncInterval(0))

	err := p.OnServiceUpdate(nil, &servicemap.Service{
		Namespace: "default", Name: "web",
		ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10")},
		Ports:      []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80}},
	})
	if err != nil {
		panic(err)
	}
	err = p.OnSliceUpdate(&endpoints.Slice{
		Namespace: "default", Service: "web", Name: "web-abc12",
		Ports:     []endpoints.Port{{Name: "http", Protocol: servicemap.TCP, Port: 8080}},
		Endpoints: []endpoints.Endpoint{{Addr: netip.MustParseAddr("10.244.1.5"), Ready: true, NodeName: "node-a"}},
	})
	if err != nil {
		panic(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx) //nolint:errcheck // returns when ctx is canceled
	snap := <-synced

	// Why would a packet go where it goes?
	fmt.Print(proxykit.Explain(snap, proxykit.Packet{
		Src: netip.MustParseAddr("10.244.2.7"), Dst: netip.MustParseAddr("10.96.0.10"),
		Protocol: servicemap.TCP, Port: 80, From: proxykit.FromRemotePod,
	}))
	// Output:
	// default/web:http/TCP 10.96.0.10 1 endpoint(s)
	// forward default/web:http/TCP via ClusterIP (internal, Cluster set), masquerade=false
	//   why: §2: internal traffic with internal policy Cluster uses the Cluster set
	//   10.244.1.5:8080 p=1.000000 node=node-a
}
