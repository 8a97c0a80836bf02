package endpoints

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/proxykit/proxykit/servicemap"
)

// randomSlices makes the slices of one service: one to three slices, one
// or two ports (sometimes "dns" over both TCP and UDP), endpoints out of
// order, with duplicates across and within slices, some terminating,
// some with a port of their own.
func randomSlices(r *rand.Rand) []*Slice {
	var ss []*Slice
	for i := range 1 + r.IntN(3) {
		s := &Slice{Namespace: "ns", Service: "svc", Name: fmt.Sprintf("svc-%d", i)}
		s.Ports = []Port{{Name: "dns", Protocol: servicemap.UDP, Port: 53}}
		if r.IntN(2) == 0 {
			s.Ports = append(s.Ports, Port{Name: "dns", Protocol: servicemap.TCP, Port: 53})
		}
		for range r.IntN(6) {
			e := Endpoint{Ready: r.IntN(3) > 0, Serving: true, Terminating: r.IntN(3) == 0, NodeName: "n1"}
			if r.IntN(4) == 0 {
				e.Addr = netip.AddrFrom16([16]byte{0xfd, 15: byte(r.IntN(4))})
			} else {
				e.Addr = netip.AddrFrom4([4]byte{10, 0, 0, byte(r.IntN(4))})
			}
			if len(s.Ports) == 1 && r.IntN(4) == 0 {
				e.Port = 5353
			}
			s.Endpoints = append(s.Endpoints, e)
		}
		ss = append(ss, s)
	}
	return ss
}

// The tracker normalizes slices and aliases their endpoints where it can;
// what it stores must be exactly what Merge computes from the originals.
func TestTrackerMatchesMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for i := range 500 {
		ss := randomSlices(r)
		tr := NewTracker()
		for _, s := range ss {
			if err := tr.Update(s); err != nil {
				t.Fatalf("case %d: %v", i, err)
			}
		}
		m, _ := tr.Apply(Map{})
		want := Merge(ss)
		if m.Len() != len(want) {
			t.Fatalf("case %d: tracker has %d ports, Merge %d", i, m.Len(), len(want))
		}
		for name, eps := range want {
			got, _ := m.Get(name)
			if !equalEndpoints(got, eps) {
				t.Fatalf("case %d, port %s:\n got %v\nwant %v", i, name, got, eps)
			}
		}
	}
}

// Update keeps its own copy of the endpoints: the caller may reuse them.
func TestUpdateCopiesEndpoints(t *testing.T) {
	s := &Slice{Namespace: "ns", Service: "svc", Name: "svc-1",
		Ports:     []Port{{Name: "http", Protocol: servicemap.TCP, Port: 80}},
		Endpoints: []Endpoint{{Addr: netip.MustParseAddr("10.0.0.2"), Ready: true}, {Addr: netip.MustParseAddr("10.0.0.1"), Ready: true}},
	}
	tr := NewTracker()
	if err := tr.Update(s); err != nil {
		t.Fatal(err)
	}
	s.Endpoints[0].Addr = netip.MustParseAddr("192.0.2.99") // the caller reuses its slice
	m, _ := tr.Apply(Map{})
	got, _ := m.Get(servicemap.PortName{Namespace: "ns", Name: "svc", Port: "http", Protocol: servicemap.TCP})
	if len(got) != 2 || got[0].Addr.String() != "10.0.0.1" || got[1].Addr.String() != "10.0.0.2" || got[0].Port != 80 {
		t.Errorf("merged endpoints followed the caller's edit or lost order/port: %v", got)
	}
	// Appending to a merged list must not write into the tracker's copy.
	if cap(got) != len(got) {
		t.Errorf("merged list has spare capacity %d > %d: an append would write into tracker-owned memory", cap(got), len(got))
	}
}
