package proxykit

import (
	"fmt"
	"net/netip"

	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// addr4 returns the i'th address after base (IPv4).
func addr4(base netip.Addr, i int) netip.Addr {
	b := base.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(i)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// genCluster makes n single-port TCP services with eps ready endpoints
// each, spread over four nodes, one slice per service.
func genCluster(n, eps int) ([]*servicemap.Service, []*endpoints.Slice) {
	svcs := make([]*servicemap.Service, n)
	slices := make([]*endpoints.Slice, n)
	for i := range n {
		name := fmt.Sprintf("svc-%05d", i)
		svcs[i] = &servicemap.Service{
			Namespace:  "bench",
			Name:       name,
			ClusterIPs: []netip.Addr{addr4(netip.MustParseAddr("10.96.0.0"), i+1)},
			Ports:      []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80}},
		}
		slices[i] = genSlice(name, i, eps, 0)
	}
	return svcs, slices
}

// genSlice makes the slice of service number i; gen varies the addresses
// so that a new generation is a real change.
func genSlice(name string, i, eps, gen int) *endpoints.Slice {
	s := &endpoints.Slice{
		Namespace: "bench",
		Service:   name,
		Name:      name + "-abcde",
		Ports:     []endpoints.Port{{Name: "http", Protocol: servicemap.TCP, Port: 8080}},
		Endpoints: make([]endpoints.Endpoint, eps),
	}
	for j := range eps {
		s.Endpoints[j] = endpoints.Endpoint{
			Addr:     addr4(netip.MustParseAddr("10.128.0.0"), (i*eps+j+gen)%(1<<22)),
			Ready:    true,
			Serving:  true,
			NodeName: fmt.Sprintf("node-%d", j%4),
		}
	}
	return s
}
