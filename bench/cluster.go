package bench

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// Node is the node every scenario's snapshots are for.
var Node = proxykit.Node{Name: "node-0"}

// Cluster returns n services "bench/svc-NNNNN", ClusterIPs from
// 10.96.0.0/16 (wrapping past 65536), port http 80/TCP, each with one
// slice of eps ready endpoints on port 8080 from 10.128.0.0/9, the j-th on
// node "node-<j%4>". It is a copy of the root module's internal/synthetic
// Cluster (not importable from here), so the numbers compare with the
// packages' own benchmarks; keep the two in step.
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

// Snapshot is a full snapshot of Cluster(n, eps) on Node.
func Snapshot(n, eps int) (*proxykit.Snapshot, error) {
	svcs, slices := Cluster(n, eps)
	return proxykit.NewSnapshot(Node, svcs, slices)
}

// changedSlice returns a copy of s whose first endpoint moved to an
// address (10.250.x.y) that the cluster does not use, distinct per i.
func changedSlice(s *endpoints.Slice, i int) *endpoints.Slice {
	c := *s
	c.Endpoints = slices.Clone(c.Endpoints)
	c.Endpoints[0].Addr = netip.AddrFrom4([4]byte{10, 250, byte(i >> 8), byte(i)})
	return &c
}

// loadProxy returns a Proxy over syncer with Cluster(n, eps) pending.
func loadProxy(syncer proxykit.Syncer, n, eps int, opts ...proxykit.Option) (*proxykit.Proxy, []*endpoints.Slice, error) {
	p := proxykit.New(Node, syncer, opts...)
	svcs, slcs := Cluster(n, eps)
	for i := range svcs {
		if err := p.OnServiceUpdate(nil, svcs[i]); err != nil {
			return nil, nil, err
		}
		if err := p.OnSliceUpdate(slcs[i]); err != nil {
			return nil, nil, err
		}
	}
	return p, slcs, nil
}
