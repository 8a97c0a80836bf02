package proxykit

import (
	"net/netip"
	"testing"
	"time"

	"github.com/proxykit/proxykit/affinity"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// fuzzBytes hands out the fuzzer's bytes one decision at a time; once they
// run out every decision is 0.
type fuzzBytes []byte

func (b *fuzzBytes) byte() byte {
	if len(*b) == 0 {
		return 0
	}
	c := (*b)[0]
	*b = (*b)[1:]
	return c
}

// n returns a number in [0, n).
func (b *fuzzBytes) n(n int) int { return int(b.byte()) % n }

func (b *fuzzBytes) bool() bool { return b.byte()&1 == 1 }

func pick[T any](b *fuzzBytes, xs ...T) T { return xs[b.n(len(xs))] }

var (
	fuzzProtocols = []servicemap.Protocol{servicemap.TCP, servicemap.UDP, servicemap.SCTP}
	fuzzPolicies  = []servicemap.TrafficPolicy{"", servicemap.Cluster, servicemap.Local}
	fuzzRanges    = []netip.Prefix{
		netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("192.168.0.0/24"),
		netip.MustParsePrefix("2001:db8:2::/48"), netip.MustParsePrefix("fd00::/64"),
	}
)

// fuzzService returns a random service ns/s<i> of the given families
// (bit 0: IPv4, bit 1: IPv6) and its slices.
func fuzzService(b *fuzzBytes, i int) (*servicemap.Service, []*endpoints.Slice) {
	fam := 1 + b.n(3)
	addr := func(base netip.Addr, j int) netip.Addr {
		a := base.As16()
		a[15] += byte(j)
		if base.Is4() {
			return netip.AddrFrom4([4]byte(a[12:16]))
		}
		return netip.AddrFrom16(a)
	}
	pair := func(b4, b6 string, j int) []netip.Addr {
		var out []netip.Addr
		if fam&1 != 0 {
			out = append(out, addr(netip.MustParseAddr(b4), j))
		}
		if fam&2 != 0 {
			out = append(out, addr(netip.MustParseAddr(b6), j))
		}
		return out
	}
	s := &servicemap.Service{
		Namespace: "ns", Name: "s" + string(rune('a'+i)),
		Type:       pick(b, servicemap.ClusterIP, servicemap.NodePort, servicemap.LoadBalancer),
		ClusterIPs: pair("10.96.0.0", "fd00:96::", 1+i),
	}
	if b.n(8) == 7 {
		s.ClusterIPs = nil // headless
	}
	for j := range 1 + b.n(2) {
		p := servicemap.Port{Name: "p" + string(rune('0'+j)), Protocol: pick(b, fuzzProtocols...), Port: uint16(80 + b.n(2)*j + j)}
		if s.Type != servicemap.ClusterIP {
			p.NodePort = uint16(30000 + 10*i + j)
		}
		s.Ports = append(s.Ports, p)
	}
	if b.bool() {
		s.ExternalIPs = pair("203.0.113.0", "2001:db8::", 1+i)
	}
	if s.Type == servicemap.LoadBalancer {
		s.LoadBalancerIPs = pair("198.51.100.0", "2001:db8:1::", 1+i)
		for range b.n(3) {
			s.LoadBalancerSourceRanges = append(s.LoadBalancerSourceRanges, pick(b, fuzzRanges...))
		}
	}
	s.ExternalTrafficPolicy = pick(b, fuzzPolicies...)
	s.InternalTrafficPolicy = pick(b, fuzzPolicies...)
	if s.Type == servicemap.LoadBalancer && s.ExternalTrafficPolicy == servicemap.Local && b.bool() {
		s.HealthCheckNodePort = uint16(32000 + i)
	}
	if b.bool() {
		s.Affinity = affinity.Config{ClientIP: true, Timeout: time.Duration(b.n(3)) * time.Minute}
	}
	var slices []*endpoints.Slice
	for _, base := range pair("10.1.0.0", "fd00:1::", 0) {
		if sl := fuzzSlice(b, s, i, base); sl != nil {
			slices = append(slices, sl)
		}
	}
	return s, slices
}

// fuzzSlice returns a slice of s with up to 4 random endpoints after base.
func fuzzSlice(b *fuzzBytes, s *servicemap.Service, i int, base netip.Addr) *endpoints.Slice {
	sl := &endpoints.Slice{Namespace: s.Namespace, Service: s.Name, Name: s.Name + "-" + base.String()}
	for j, p := range s.Ports {
		sl.Ports = append(sl.Ports, endpoints.Port{Name: p.Name, Protocol: p.Protocol, Port: uint16(8000 + j)})
	}
	a := base
	for range b.n(5) {
		a = a.Next()
		c := b.byte()
		e := endpoints.Endpoint{
			Addr:        a,
			Ready:       c&1 != 0,
			Serving:     c&2 != 0,
			Terminating: c&4 != 0,
			NodeName:    pick(b, "n1", "n2", ""),
			Zone:        pick(b, "z1", "z2"),
			Weight:      uint16(b.n(4)),
		}
		if c&8 != 0 {
			e.ZoneHints = []string{pick(b, "z1", "z2")}
		}
		if c&16 != 0 {
			e.NodeHints = []string{pick(b, "n1", "n2")}
		}
		sl.Endpoints = append(sl.Endpoints, e)
	}
	if len(sl.Endpoints) == 0 {
		return nil
	}
	return sl
}

// fuzzPacket returns a random packet aimed at a frontend of snap, or
// near one, with a source of the same family.
func fuzzPacket(b *fuzzBytes, snap *Snapshot) Packet {
	fs := snap.Family(pick(b, IPv4, IPv6))
	var pss []*PortState
	for ps := range fs.Ports() {
		pss = append(pss, ps)
	}
	pkt := Packet{From: Origin(b.n(4)), Protocol: pick(b, fuzzProtocols...)}
	srcs := []netip.Addr{netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("198.51.100.99"),
		netip.MustParseAddr("2001:db8:2::7"), netip.MustParseAddr("2001:db8::99")}
	srcs = append(srcs, snap.Node().Addresses...)
	if len(pss) == 0 {
		pkt.Dst, pkt.Port = netip.MustParseAddr("10.96.0.1"), 80
	} else {
		ps := pss[b.n(len(pss))]
		pkt.Protocol = ps.Port.Protocol
		if b.n(8) == 7 {
			pkt.Protocol = pick(b, fuzzProtocols...)
		}
		pkt.Dst, pkt.Port = fuzzFrontend(b, snap, ps)
		for _, e := range ps.Endpoints.All {
			srcs = append(srcs, e.Addr) // hairpin
		}
	}
	var same []netip.Addr
	for _, a := range srcs {
		if FamilyOf(a) == FamilyOf(pkt.Dst) {
			same = append(same, a)
		}
	}
	pkt.Src = pick(b, same...)
	if b.n(8) == 7 {
		pkt.Port++
	}
	return pkt
}

func fuzzFrontend(b *fuzzBytes, snap *Snapshot, ps *PortState) (netip.Addr, uint16) {
	switch b.n(5) {
	case 1:
		if len(ps.ExternalIPs) > 0 {
			return pick(b, ps.ExternalIPs...), ps.Port.Port
		}
	case 2:
		if len(ps.LoadBalancerIPs) > 0 {
			return pick(b, ps.LoadBalancerIPs...), ps.Port.Port
		}
	case 3:
		return pick(b, append(snap.Node().Addresses, netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1"))...), ps.Port.NodePort
	case 4:
		return ps.ClusterIP, ps.Port.Port + 1
	}
	return ps.ClusterIP, ps.Port.Port
}

func fuzzPolicy(b *fuzzBytes) Policy {
	p := Policy{MasqueradeAll: b.bool(), LocalhostNodePorts: b.bool()}
	for range b.n(3) {
		p.NodePortAddresses = append(p.NodePortAddresses, pick(b,
			netip.MustParsePrefix("192.168.0.0/24"), netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("fd00::/64")))
	}
	return p
}

// FuzzExplain builds a small random valid snapshot and a packet aimed at
// one of its frontends, and checks what holds for every verdict (see
// checkVerdict), that Observe accepts every candidate of a Forward, and
// that a ClientIP service then pins the client.
func FuzzExplain(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 2, 3, 7, 0, 0, 3})
	f.Add([]byte{2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Add([]byte("\x01\x02\x01\x00\x01\x02\x02\x02\x01\x03\x05\x00\x01\x00\x01\x07\x01\x00\x02\x1f\x00\x01\x00\x03"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b := fuzzBytes(data)
		node := Node{Name: "n1", Zone: "z1", Addresses: []netip.Addr{
			netip.MustParseAddr("192.168.0.1"), netip.MustParseAddr("172.16.0.1"), netip.MustParseAddr("fd00::1")}}
		var services []*servicemap.Service
		var slices []*endpoints.Slice
		for i := range 1 + b.n(3) {
			s, sl := fuzzService(&b, i)
			services = append(services, s)
			slices = append(slices, sl...)
		}
		snap, err := NewSnapshot(node, services, slices)
		if err != nil {
			t.Skip(err)
		}
		clk := time.Unix(1e9, 0)
		o := &Oracle{
			Policy:   fuzzPolicy(&b),
			Affinity: affinity.NewTable[AffinityKey, netip.AddrPort](16),
			Now:      func() time.Time { return clk },
		}
		for range 1 + b.n(4) {
			pkt := fuzzPacket(&b, snap)
			v := o.Explain(snap, pkt)
			checkVerdict(t, snap, pkt, v)
			if v.Action != Forward {
				if err := o.Observe(snap, pkt, netip.MustParseAddrPort("10.1.0.1:8000")); err == nil {
					t.Fatalf("Observe accepted a packet whose verdict is %v", v)
				}
				continue
			}
			c := v.Candidates[b.n(len(v.Candidates))]
			if err := o.Observe(snap, pkt, c.Endpoint.AddrPort()); err != nil {
				t.Fatalf("Observe of a candidate: %v", err)
			}
			if v.Affinity > 0 {
				if v2 := o.Explain(snap, pkt); !v2.AffinityApplied || v2.Candidates[0].Endpoint.AddrPort() != c.Endpoint.AddrPort() {
					t.Fatalf("after Observe(%v), not pinned:\n%v", c.Endpoint.AddrPort(), v2)
				}
			}
			clk = clk.Add(time.Duration(b.n(200)) * time.Second)
		}
	})
}
