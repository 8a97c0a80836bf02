package endpoints

import (
	"reflect"
	"testing"
)

func TestMerge(t *testing.T) {
	http := ports(tcp("http", 80))
	node := func(n string) func(*Endpoint) { return func(e *Endpoint) { e.NodeName = n } }
	tests := []struct {
		name   string
		slices []*Slice
		want   []string
	}{
		{name: "no slices"},
		{name: "nil slice", slices: []*Slice{nil}},
		{
			name:   "one slice: port filled in, IPv4 first, then address order",
			slices: []*Slice{slice("ns", "svc", "a", http, ep("2001:db8::1"), ep("10.0.0.2"), ep("10.0.0.10"), ep("10.0.0.1"))},
			want: []string{
				"ns/svc:http/TCP 10.0.0.1:80 RS-",
				"ns/svc:http/TCP 10.0.0.2:80 RS-",
				"ns/svc:http/TCP 10.0.0.10:80 RS-",
				"ns/svc:http/TCP [2001:db8::1]:80 RS-",
			},
		},
		{
			name: "endpoint's own port overrides the slice port and orders by port",
			slices: []*Slice{slice("ns", "svc", "a", http,
				with(ep("10.0.0.1"), func(e *Endpoint) { e.Port = 8080 }), ep("10.0.0.1"))},
			want: []string{"ns/svc:http/TCP 10.0.0.1:80 RS-", "ns/svc:http/TCP 10.0.0.1:8080 RS-"},
		},
		{
			name: "two slices merged and sorted",
			slices: []*Slice{
				slice("ns", "svc", "b", http, ep("10.0.0.3"), ep("2001:db8::2")),
				slice("ns", "svc", "a", http, ep("2001:db8::1"), ep("10.0.0.1")),
			},
			want: []string{
				"ns/svc:http/TCP 10.0.0.1:80 RS-",
				"ns/svc:http/TCP 10.0.0.3:80 RS-",
				"ns/svc:http/TCP [2001:db8::1]:80 RS-",
				"ns/svc:http/TCP [2001:db8::2]:80 RS-",
			},
		},
		{
			name: "duplicate across slices: the non-terminating copy wins",
			slices: []*Slice{
				slice("ns", "svc", "a", http, with(ep("10.0.0.1"), terminating)),
				slice("ns", "svc", "b", http, with(ep("10.0.0.1"), node("n2"))),
			},
			want: []string{"ns/svc:http/TCP 10.0.0.1:80 RS- node=n2"},
		},
		{
			name: "duplicate across slices, not ready and not terminating beats terminating",
			slices: []*Slice{
				slice("ns", "svc", "a", http, with(ep("10.0.0.1"), terminating)),
				slice("ns", "svc", "b", http, with(ep("10.0.0.1"), unready)),
			},
			want: []string{"ns/svc:http/TCP 10.0.0.1:80 ---"},
		},
		{
			name: "duplicate across slices, both ready: the first slice by name wins",
			slices: []*Slice{
				slice("ns", "svc", "b", http, with(ep("10.0.0.1"), node("from-b"))),
				slice("ns", "svc", "a", http, with(ep("10.0.0.1"), node("from-a"))),
				slice("ns", "svc", "c", http, with(ep("10.0.0.1"), node("from-c"))),
			},
			want: []string{"ns/svc:http/TCP 10.0.0.1:80 RS- node=from-a"},
		},
		{
			name: "duplicate across slices, both terminating: the first slice by name wins",
			slices: []*Slice{
				slice("ns", "svc", "b", http, with(ep("10.0.0.1"), func(e *Endpoint) { terminating(e); e.NodeName = "from-b" })),
				slice("ns", "svc", "a", http, with(ep("10.0.0.1"), func(e *Endpoint) { terminating(e); e.NodeName = "from-a" })),
			},
			want: []string{"ns/svc:http/TCP 10.0.0.1:80 -ST node=from-a"},
		},
		{
			name: "duplicate within one slice: non-terminating wins, else the first",
			slices: []*Slice{slice("ns", "svc", "a", http,
				with(ep("10.0.0.1"), terminating), with(ep("10.0.0.1"), node("second")),
				with(ep("10.0.0.2"), node("first")), with(ep("10.0.0.2"), node("second")))},
			want: []string{"ns/svc:http/TCP 10.0.0.1:80 RS- node=second", "ns/svc:http/TCP 10.0.0.2:80 RS- node=first"},
		},
		{
			name: "same address on different ports is not a duplicate",
			slices: []*Slice{
				slice("ns", "svc", "a", ports(tcp("http", 80)), ep("10.0.0.1")),
				slice("ns", "svc", "b", ports(tcp("http", 8080)), ep("10.0.0.1")),
			},
			want: []string{"ns/svc:http/TCP 10.0.0.1:80 RS-", "ns/svc:http/TCP 10.0.0.1:8080 RS-"},
		},
		{
			name: "ports match by name and protocol",
			slices: []*Slice{
				slice("ns", "svc", "a", ports(udp("dns", 53), tcp("dns", 5353)), ep("10.0.0.1")),
				slice("ns", "svc", "b", ports(udp("dns", 53)), ep("10.0.0.2")),
				slice("ns", "svc", "c", ports(tcp("metrics", 9153)), ep("10.0.0.3")),
			},
			want: []string{
				"ns/svc:dns/TCP 10.0.0.1:5353 RS-",
				"ns/svc:dns/UDP 10.0.0.1:53 RS-",
				"ns/svc:dns/UDP 10.0.0.2:53 RS-",
				"ns/svc:metrics/TCP 10.0.0.3:9153 RS-",
			},
		},
		{
			name: "zero protocol is TCP",
			slices: []*Slice{
				slice("ns", "svc", "a", ports(Port{Name: "http", Port: 80}), ep("10.0.0.1")),
				slice("ns", "svc", "b", http, ep("10.0.0.2")),
			},
			want: []string{"ns/svc:http/TCP 10.0.0.1:80 RS-", "ns/svc:http/TCP 10.0.0.2:80 RS-"},
		},
		{
			name:   "unnamed port",
			slices: []*Slice{slice("ns", "svc", "a", ports(sctp("", 9)), ep("10.0.0.1"))},
			want:   []string{"ns/svc/SCTP 10.0.0.1:9 RS-"},
		},
		{
			name: "empty lists are omitted",
			slices: []*Slice{
				slice("ns", "svc", "a", ports(tcp("http", 80))),
				slice("ns", "svc", "b", nil, ep("10.0.0.1")),
				slice("ns", "svc", "c", ports(tcp("https", 443)), ep("10.0.0.2")),
			},
			want: []string{"ns/svc:https/TCP 10.0.0.2:443 RS-"},
		},
		{
			name: "slices of other services are skipped, the smallest service is kept",
			slices: []*Slice{
				slice("ns", "zzz", "a", http, ep("10.0.0.9")),
				slice("ns", "svc", "a", http, ep("10.0.0.1")),
				nil,
				slice("other", "aaa", "a", http, ep("10.0.0.8")),
			},
			want: []string{"ns/svc:http/TCP 10.0.0.1:80 RS-"},
		},
		{
			name: "all fields are copied",
			slices: []*Slice{slice("ns", "svc", "a", http, with(ep("10.0.0.1"), func(e *Endpoint) {
				e.NodeName, e.Zone, e.ZoneHints, e.NodeHints, e.Weight = "n1", "z1", []string{"z1"}, []string{"n1"}, 3
			}))},
			want: []string{"ns/svc:http/TCP 10.0.0.1:80 RS- node=n1 zone=z1 hz=[z1] hn=[n1] w=3"},
		},
		{
			name: "slices with the same name are ordered by content",
			slices: []*Slice{
				slice("ns", "svc", "a", http, with(ep("10.0.0.1"), node("x"))),
				slice("ns", "svc", "a", http, with(ep("10.0.0.1"), node("y"))),
				slice("ns", "svc", "a", ports(tcp("http", 80), udp("dns", 53))),
				slice("ns", "svc", "a", http, with(ep("10.0.0.1"), node("x")), ep("10.0.0.2")),
			},
			want: []string{"ns/svc:http/TCP 10.0.0.1:80 RS- node=x", "ns/svc:http/TCP 10.0.0.2:80 RS-"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Merge(tt.slices)
			if got == nil {
				t.Fatal("Merge() = nil map")
			}
			if d := diff(tt.want, fmtLists(got)); d != "" {
				t.Errorf("Merge() %s", d)
			}
			for i, p := range permutations(tt.slices) {
				if other := Merge(p); !reflect.DeepEqual(other, got) {
					t.Errorf("Merge(permutation %d) %s", i, diff(fmtLists(got), fmtLists(other)))
				}
			}
		})
	}
}

// permutations returns every ordering of ss (ss itself included).
func permutations(ss []*Slice) [][]*Slice {
	if len(ss) <= 1 {
		return [][]*Slice{ss}
	}
	var out [][]*Slice
	for i := range ss {
		rest := append(append([]*Slice(nil), ss[:i]...), ss[i+1:]...)
		for _, p := range permutations(rest) {
			out = append(out, append([]*Slice{ss[i]}, p...))
		}
	}
	return out
}

func TestMergeDoesNotModifyInput(t *testing.T) {
	s := slice("ns", "svc", "a", ports(tcp("http", 80)), ep("10.0.0.2"), ep("10.0.0.1"))
	Merge([]*Slice{s})
	if s.Endpoints[0].Port != 0 || s.Endpoints[0].Addr.String() != "10.0.0.2" {
		t.Errorf("Merge modified its input: %v", s.Endpoints)
	}
}

func TestEndpointHelpers(t *testing.T) {
	for _, tt := range []struct {
		weight uint16
		want   uint32
	}{{0, 1}, {1, 1}, {7, 7}, {65535, 65535}} {
		e := Endpoint{Weight: tt.weight}
		if got := e.EffectiveWeight(); got != tt.want {
			t.Errorf("Endpoint{Weight: %d}.EffectiveWeight() = %d, want %d", tt.weight, got, tt.want)
		}
	}
	a := with(ep("10.0.0.1"), func(e *Endpoint) { e.NodeHints = []string{"n1"} })
	for _, tt := range []struct {
		name string
		b    Endpoint
		want bool
	}{
		{"same", with(ep("10.0.0.1"), func(e *Endpoint) { e.NodeHints = []string{"n1"} }), true},
		{"node hints differ", with(ep("10.0.0.1"), func(e *Endpoint) { e.NodeHints = []string{"n2"} }), false},
		{"zone hints differ", with(a, func(e *Endpoint) { e.ZoneHints = []string{"z"} }), false},
		{"weight differs", with(a, func(e *Endpoint) { e.Weight = 2 }), false},
		{"port differs", with(a, func(e *Endpoint) { e.Port = 1 }), false},
		{"terminating differs", with(a, func(e *Endpoint) { e.Terminating = true }), false},
	} {
		if got := a.Equal(&tt.b); got != tt.want {
			t.Errorf("%s: Equal() = %v, want %v", tt.name, got, tt.want)
		}
		if got := compareEndpoint(a, tt.b) == 0; got != tt.want {
			t.Errorf("%s: compareEndpoint() == 0 is %v, want %v", tt.name, got, tt.want)
		}
	}
}
