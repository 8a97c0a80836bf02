package endpoints_test

import (
	"fmt"
	"net/netip"

	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

func ExampleMerge() {
	dns := []endpoints.Port{{Name: "dns", Protocol: servicemap.UDP, Port: 53}}
	a := &endpoints.Slice{
		Namespace: "kube-system", Service: "kube-dns", Name: "kube-dns-a", Ports: dns,
		Endpoints: []endpoints.Endpoint{
			{Addr: netip.MustParseAddr("fd00::5"), Ready: true, Serving: true},
			{Addr: netip.MustParseAddr("10.0.0.5"), Serving: true, Terminating: true},
		},
	}
	b := &endpoints.Slice{
		Namespace: "kube-system", Service: "kube-dns", Name: "kube-dns-b", Ports: dns,
		Endpoints: []endpoints.Endpoint{
			{Addr: netip.MustParseAddr("10.0.0.5"), Ready: true, Serving: true}, // wins: not terminating
			{Addr: netip.MustParseAddr("10.0.0.4"), Ready: true, Serving: true},
		},
	}
	for port, eps := range endpoints.Merge([]*endpoints.Slice{a, b}) {
		v4, v6 := endpoints.SplitFamily(eps)
		fmt.Println(port)
		for _, e := range v4 {
			fmt.Println("  v4", e.AddrPort(), "ready:", e.Ready)
		}
		for _, e := range v6 {
			fmt.Println("  v6", e.AddrPort(), "ready:", e.Ready)
		}
	}
	// Output:
	// kube-system/kube-dns:dns/UDP
	//   v4 10.0.0.4:53 ready: true
	//   v4 10.0.0.5:53 ready: true
	//   v6 [fd00::5]:53 ready: true
}
