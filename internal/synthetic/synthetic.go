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

// Snapshot is a full snapshot of Cluster(n, eps) on node "node-0".
func Snapshot(n, eps int) (*proxykit.Snapshot, error) {
	svcs, slices := Cluster(n, eps)
	return proxykit.NewSnapshot(proxykit.Node{Name: "node-0"}, svcs, slices)
}
