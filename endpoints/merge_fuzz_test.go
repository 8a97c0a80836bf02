package endpoints

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/proxykit/proxykit/servicemap"
)

// fuzzAddrs includes addresses Validate rejects: Merge must cope anyway.
var fuzzAddrs = []netip.Addr{
	netip.MustParseAddr("10.0.0.1"),
	netip.MustParseAddr("10.0.0.2"),
	netip.MustParseAddr("2001:db8::1"),
	netip.MustParseAddr("2001:db8::2"),
	netip.MustParseAddr("::ffff:10.0.0.1"),
	{},
}

// fuzzSlices builds 1–4 slices from data: few names, ports and addresses,
// so that duplicates are common.
func fuzzSlices(data []byte) []*Slice {
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	protos := []servicemap.Protocol{"", servicemap.TCP, servicemap.UDP, servicemap.SCTP}
	var out []*Slice
	for range 1 + next()%4 {
		flags := next()
		if flags == 0xff {
			out = append(out, nil)
			continue
		}
		s := &Slice{Namespace: "ns", Service: "svc", Name: []string{"a", "b", "c", "d"}[flags%4]}
		if flags&0x80 != 0 {
			s.Service = "other"
		}
		for range next() % 3 {
			b := next()
			s.Ports = append(s.Ports, Port{Name: []string{"", "dns", "http"}[b%3], Protocol: protos[b/3%4], Port: uint16(b / 12 % 3)})
		}
		for range next() % 6 {
			a, c := next(), next()
			s.Endpoints = append(s.Endpoints, Endpoint{
				Addr:        fuzzAddrs[int(a)%len(fuzzAddrs)],
				Port:        uint16(a / 16 % 3),
				Ready:       c&1 != 0,
				Serving:     c&2 != 0,
				Terminating: c&4 != 0,
				NodeName:    []string{"", "n1"}[c>>3&1],
				Weight:      uint16(c >> 4),
			})
		}
		out = append(out, s)
	}
	return out
}

// mergeCandidates returns, per service port and address:port, every copy
// of an endpoint that Merge may choose from.
func mergeCandidates(ss []*Slice) map[servicemap.PortName]map[netip.AddrPort][]Endpoint {
	var svc *servicemap.ServiceName
	for _, s := range ss {
		if s != nil && (svc == nil || (servicemap.ServiceName{Namespace: s.Namespace, Name: s.Service}).Compare(*svc) < 0) {
			svc = &servicemap.ServiceName{Namespace: s.Namespace, Name: s.Service}
		}
	}
	out := map[servicemap.PortName]map[netip.AddrPort][]Endpoint{}
	for _, s := range ss {
		if s == nil || s.Namespace != svc.Namespace || s.Service != svc.Name {
			continue
		}
		for _, p := range s.Ports {
			name := servicemap.PortName{Namespace: s.Namespace, Name: s.Service, Port: p.Name, Protocol: p.Protocol.OrTCP()}
			for _, e := range s.Endpoints {
				if e.Port == 0 {
					e.Port = p.Port
				}
				if out[name] == nil {
					out[name] = map[netip.AddrPort][]Endpoint{}
				}
				out[name][e.AddrPort()] = append(out[name][e.AddrPort()], e)
			}
		}
	}
	return out
}

func FuzzMerge(f *testing.F) {
	for _, seed := range [][]byte{
		{},
		{0},
		// Two slices "a" and "b", one UDP port, the same address twice.
		{1, 0, 1, 0x1b, 2, 0, 3, 0, 5, 1, 1, 0x1b, 1, 0, 7},
		// Four slices, some of another service, mixed families.
		{3, 0x80, 1, 4, 2, 2, 3, 3, 3, 1, 2, 5, 6, 7, 0xff, 2, 2, 5, 0x10, 3, 4, 0, 1, 2, 3, 4, 5, 6, 7, 8},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ss := fuzzSlices(data)
		got := Merge(ss)
		cands := mergeCandidates(ss)
		if len(got) != len(cands) {
			t.Errorf("Merge() has %d ports, want %d", len(got), len(cands))
		}
		for name, eps := range got {
			byAddr, ok := cands[name]
			if !ok {
				t.Errorf("Merge() made port %v from nothing", name)
				continue
			}
			if len(eps) != len(byAddr) {
				t.Errorf("%v: %d endpoints, want %d (one per address:port)", name, len(eps), len(byAddr))
			}
			for i := range eps {
				e := &eps[i]
				if i > 0 && Compare(&eps[i-1], e) >= 0 {
					t.Errorf("%v: %v does not sort after %v", name, e.AddrPort(), eps[i-1].AddrPort())
				}
				copies := byAddr[e.AddrPort()]
				if !slices.ContainsFunc(copies, func(c Endpoint) bool { return e.Equal(&c) }) {
					t.Errorf("%v: %+v is not a copy of an input endpoint", name, *e)
				}
				if e.Terminating && slices.ContainsFunc(copies, func(c Endpoint) bool { return !c.Terminating }) {
					t.Errorf("%v: the terminating copy of %v won over a non-terminating one", name, e.AddrPort())
				}
			}
		}
		rev := slices.Clone(ss)
		slices.Reverse(rev)
		if rev := Merge(rev); !reflect.DeepEqual(rev, got) {
			t.Errorf("Merge(reversed) differs:\n got %v\nwant %v", rev, got)
		}
	})
}
