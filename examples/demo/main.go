// Command demo shows proxykit's main job on the pure side: services and
// endpoint slices go into a Proxy, its sync loop hands an immutable
// snapshot to a Syncer, and Explain says what each packet's fate is.
//
// Until a kernel backend lands, the Syncer here prints what a backend
// would program instead of programming the kernel.
package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

var (
	nodeAddr = netip.MustParseAddr("192.0.2.10")
	webIP    = netip.MustParseAddr("10.96.0.10")
	dnsIP    = netip.MustParseAddr("10.96.0.53")
	lbIP     = netip.MustParseAddr("203.0.113.7")
)

func services() []*servicemap.Service {
	return []*servicemap.Service{{
		Namespace: "shop", Name: "web", Type: servicemap.LoadBalancer,
		ClusterIPs:            []netip.Addr{webIP},
		LoadBalancerIPs:       []netip.Addr{lbIP},
		Ports:                 []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80, NodePort: 30080}},
		ExternalTrafficPolicy: servicemap.Local,
		HealthCheckNodePort:   32000,
	}, {
		Namespace: "kube-system", Name: "dns",
		ClusterIPs: []netip.Addr{dnsIP},
		Ports:      []servicemap.Port{{Name: "dns", Protocol: servicemap.UDP, Port: 53}},
	}}
}

func slices() []*endpoints.Slice {
	ep := func(addr, node string, w uint16) endpoints.Endpoint {
		return endpoints.Endpoint{Addr: netip.MustParseAddr(addr), Ready: true, Serving: true, NodeName: node, Weight: w}
	}
	return []*endpoints.Slice{{
		Namespace: "shop", Service: "web", Name: "web-x1",
		Ports:     []endpoints.Port{{Name: "http", Protocol: servicemap.TCP, Port: 8080}},
		Endpoints: []endpoints.Endpoint{ep("10.244.1.5", "node-a", 1), ep("10.244.2.9", "node-b", 3)},
	}}
}

// run feeds the proxy, waits for its first sync and explains packets.
func run(ctx context.Context, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	synced := make(chan *proxykit.Snapshot, 1)
	printer := proxykit.SyncerFunc(func(_ context.Context, snap *proxykit.Snapshot) error {
		fmt.Fprintf(out, "sync %d (full=%v): %d IPv4 service ports\n", snap.Generation(), snap.Full(), snap.Family(proxykit.IPv4).Len())
		for ps := range snap.Family(proxykit.IPv4).Ports() {
			fmt.Fprintf(out, "  %-22s %s:%d  cluster=%d local=%d\n", ps.Name, ps.ClusterIP, ps.Port.Port,
				len(ps.Endpoints.Cluster), len(ps.Endpoints.Local))
		}
		select {
		case synced <- snap:
		default:
		}
		return nil
	})
	node := proxykit.Node{Name: "node-a", Addresses: []netip.Addr{nodeAddr}}
	p := proxykit.New(node, printer, proxykit.WithMinSyncInterval(0))
	for _, s := range services() {
		if err := p.OnServiceUpdate(nil, s); err != nil {
			return err
		}
	}
	for _, s := range slices() {
		if err := p.OnSliceUpdate(s); err != nil {
			return err
		}
	}
	go p.Run(ctx) //nolint:errcheck // ends with ctx
	var snap *proxykit.Snapshot
	select {
	case snap = <-synced:
	case <-ctx.Done():
		return ctx.Err()
	}
	client := netip.MustParseAddr("198.51.100.20")
	pod := netip.MustParseAddr("10.244.1.77")
	for _, pkt := range []proxykit.Packet{
		{Src: pod, Dst: webIP, Protocol: servicemap.TCP, Port: 80, From: proxykit.FromLocalPod},
		{Src: client, Dst: lbIP, Protocol: servicemap.TCP, Port: 80, From: proxykit.FromExternal},
		{Src: client, Dst: nodeAddr, Protocol: servicemap.TCP, Port: 30080, From: proxykit.FromExternal},
		{Src: pod, Dst: dnsIP, Protocol: servicemap.UDP, Port: 53, From: proxykit.FromLocalPod},
		{Src: pod, Dst: webIP, Protocol: servicemap.TCP, Port: 443, From: proxykit.FromLocalPod},
	} {
		fmt.Fprintf(out, "\n%s %s -> %s:%d\n%s\n", pkt.Protocol, pkt.Src, pkt.Dst, pkt.Port, proxykit.Explain(snap, pkt))
	}
	return nil
}
