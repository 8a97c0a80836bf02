package endpoints

import (
	"fmt"
	"net/netip"
	"testing"
)

// benchSlices returns n services with one slice each: one TCP port and
// ten ready endpoints.
func benchSlices(n int) []*Slice {
	out := make([]*Slice, n)
	for i := range out {
		eps := make([]Endpoint, 10)
		for j := range eps {
			eps[j] = Endpoint{
				Addr:  netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), byte(j + 1)}),
				Ready: true, Serving: true, NodeName: fmt.Sprintf("node-%d", j),
			}
		}
		out[i] = &Slice{
			Namespace: fmt.Sprintf("ns-%d", i%100), Service: fmt.Sprintf("svc-%d", i), Name: fmt.Sprintf("svc-%d-abcde", i),
			Ports: []Port{{Name: "http", Protocol: "TCP", Port: 8080}}, Endpoints: eps,
		}
	}
	return out
}

func BenchmarkTrackerApply30k(b *testing.B) {
	ss := benchSlices(30000)
	b.ReportAllocs()
	for b.Loop() {
		tr := NewTracker()
		for _, s := range ss {
			if err := tr.Update(s); err != nil {
				b.Fatal(err)
			}
		}
		m, ch := tr.Apply(Map{})
		if m.Len() != len(ss) || len(ch.Ports) != len(ss) {
			b.Fatalf("Apply() = %d ports, %d changes; want %d", m.Len(), len(ch.Ports), len(ss))
		}
	}
}

func BenchmarkTrackerOneChange(b *testing.B) {
	for _, n := range []int{1000, 30000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			ss := benchSlices(n)
			tr := NewTracker()
			for _, s := range ss {
				if err := tr.Update(s); err != nil {
					b.Fatal(err)
				}
			}
			m, _ := tr.Apply(Map{})
			// Two versions of one slice, alternated so each round changes.
			a := ss[n/2]
			c := *a
			c.Endpoints = append([]Endpoint(nil), a.Endpoints...)
			c.Endpoints[3].Ready = false
			versions := [2]*Slice{&c, a}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := tr.Update(versions[i%2]); err != nil {
					b.Fatal(err)
				}
				var ch Changes
				m, ch = tr.Apply(m)
				if len(ch.Ports) != 1 {
					b.Fatalf("Apply() changed %d ports, want 1", len(ch.Ports))
				}
				i++
			}
		})
	}
}
