package iptables_test

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/iptables"
	"github.com/proxykit/proxykit/servicemap"
)

// Render a ClusterIP service with two endpoints of weights 1 and 3: the
// first SEP rule matches with probability 1/4, the second always.
func ExampleRender() {
	svc := &servicemap.Service{Namespace: "demo", Name: "web",
		ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10")},
		Ports:      []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80}}}
	sl := &endpoints.Slice{Namespace: "demo", Service: "web", Name: "web-1",
		Ports: []endpoints.Port{{Name: "http", Protocol: servicemap.TCP, Port: 8080}},
		Endpoints: []endpoints.Endpoint{
			{Addr: netip.MustParseAddr("10.244.1.10"), Ready: true, Weight: 1},
			{Addr: netip.MustParseAddr("10.244.2.10"), Ready: true, Weight: 3},
		}}
	snap, err := proxykit.NewSnapshot(proxykit.Node{Name: "node-a"}, []*servicemap.Service{svc}, []*endpoints.Slice{sl})
	if err != nil {
		panic(err)
	}
	rs, err := iptables.Render(snap, iptables.Config{ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}})
	if err != nil {
		panic(err)
	}
	for _, line := range strings.Split(rs.Table(proxykit.IPv4, "nat").String(), "\n") {
		if strings.HasPrefix(line, "-A PROXYKIT-SVC-") || strings.HasPrefix(line, "-A PROXYKIT-SERVICES -d 10") {
			fmt.Println(line)
		}
	}
	// Output:
	// -A PROXYKIT-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "demo/web:http/TCP" -m tcp --dport 80 -g PROXYKIT-SVC-BQIEXWVOI7MDJVN
	// -A PROXYKIT-SVC-BQIEXWVOI7MDJVN ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m comment --comment "demo/web:http/TCP" -m tcp --dport 80 -j PROXYKIT-MARK-MASQ
	// -A PROXYKIT-SVC-BQIEXWVOI7MDJVN -m comment --comment "demo/web:http/TCP" -m statistic --mode random --probability 0.25000000000 -j PROXYKIT-SEP-W6IC3JUTE7OWQLJ
	// -A PROXYKIT-SVC-BQIEXWVOI7MDJVN -m comment --comment "demo/web:http/TCP" -j PROXYKIT-SEP-66HX7FC5WIYXTGF
}
