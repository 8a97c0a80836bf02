// Package synthetic makes the clusters that benchmarks and scale tests
// program: many services, each with one TCP port and endpoints spread over
// four nodes. Every backend's benchmarks use the same cluster, so their
// numbers compare.
package synthetic

import (
	"fmt"
	"net/netip"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// Cluster returns n services "bench/svc-NNNNN", ClusterIPs from
// 10.96.0.0/16 (wrapping past 65536), port http 80/TCP, each with one
// slice of eps ready endpoints on port 8080 from 10.128.0.0/9, the j-th on
// node "node-<j%4>". Node "node-0" holds a quarter of them.
func Cluster(n, eps int) ([]*servicemap.Service, []*endpoints.Slice) {
	svcs := make([]*servicemap.Service, n)
	slices := make([]*endpoints.Slice, n)
	for i := range n {
		name := fmt.Sprintf("svc-%05d", i)
		svcs[i] = &servicemap.Service{Namespace: "bench", Name: name,
			ClusterIPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})},
			Ports:      []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80}}}
		s := &endpoints.Slice{Namespace: "bench", Service: name, Name: name + "-x",
			Ports:     []endpoints.Port{{Name: "http", Protocol: servicemap.TCP, Port: 8080}},
			Endpoints: make([]endpoints.Endpoint, 0, eps)}
		for j := range eps {
			k := i*eps + j
			s.Endpoints = append(s.Endpoints, endpoints.Endpoint{Addr: netip.AddrFrom4([4]byte{10, byte(128 + k>>16), byte(k >> 8), byte(k)}),
				Ready: true, NodeName: fmt.Sprintf("node-%d", j%4)})
		}
		slices[i] = s
	}
	return svcs, slices
}

// ClusterNode is the node the benchmarks program Cluster for: "node-0",
// which holds a quarter of the endpoints.
var ClusterNode = proxykit.Node{Name: "node-0"}

// Snapshot is a full snapshot of Cluster(n, eps) on ClusterNode.
func Snapshot(n, eps int) (*proxykit.Snapshot, error) {
	svcs, slices := Cluster(n, eps)
	return proxykit.NewSnapshot(ClusterNode, svcs, slices)
}

// The small fixtures of the backends' render and sync tests: a node with
// a zone and addresses of both families, its cluster and local pod CIDRs,
// and shorthands for addresses, endpoints and one-port slices.
var (
	Node = proxykit.Node{Name: "node-a", Zone: "zone-1", Addresses: []netip.Addr{
		netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("2001:db8:c::1"),
	}}
	ClusterCIDRs  = []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00:244::/48")}
	LocalPodCIDRs = []netip.Prefix{netip.MustParsePrefix("10.244.1.0/24"), netip.MustParsePrefix("fd00:244:1::/64")}
)

// Addrs parses addresses; it panics on a bad one.
func Addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// Endpoint is a ready, serving endpoint at addr on node, of weight w.
func Endpoint(addr, node string, w uint16) endpoints.Endpoint {
	return endpoints.Endpoint{Addr: netip.MustParseAddr(addr), Ready: true, Serving: true, NodeName: node, Weight: w}
}

// Slice is the slice "<svc>-1" of service ns/svc with one port.
func Slice(svc string, port endpoints.Port, eps ...endpoints.Endpoint) *endpoints.Slice {
	return &endpoints.Slice{Namespace: "ns", Service: svc, Name: svc + "-1", Ports: []endpoints.Port{port}, Endpoints: eps}
}
