package endpoints

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/proxykit/proxykit/servicemap"
)

// trackerStep is one round: updates and deletes, then Apply.
type trackerStep struct {
	update, delete []*Slice
	pending        int      // Pending() before Apply
	ports          []string // Changes.Ports
	conntrack      []string // Changes.Conntrack
	want           []string // the Map after Apply
}

func TestTracker(t *testing.T) {
	web := func(eps ...Endpoint) *Slice { return slice("ns", "web", "web-a", ports(tcp("http", 80)), eps...) }
	dns := func(eps ...Endpoint) *Slice { return slice("ns", "dns", "dns-a", ports(udp("dns", 53)), eps...) }
	dnsBoth := func(eps ...Endpoint) *Slice {
		return slice("ns", "dns", "dns-a", ports(udp("dns", 53), tcp("dns", 53)), eps...)
	}
	sc := func(eps ...Endpoint) *Slice { return slice("ns", "sig", "sig-a", ports(sctp("", 2905)), eps...) }
	hinted := with(ep("10.0.0.1"), func(e *Endpoint) { e.ZoneHints = []string{"z1"} })
	// twoSteps is a change of one UDP slice from before to after.
	udpChange := func(before, after *Slice, conntrack bool) []trackerStep {
		// The first step adds the port; for UDP and SCTP a first usable
		// endpoint needs cleanup too.
		first := trackerStep{update: []*Slice{before}, pending: 1, ports: []string{portOf0(before)}, want: fmtSlice(before)}
		if p := before.Ports[0].Protocol.OrTCP(); p != servicemap.TCP && slices.ContainsFunc(before.Endpoints, func(e Endpoint) bool { return e.Usable() }) {
			first.conntrack = first.ports
		}
		if len(before.Endpoints) == 0 {
			first = trackerStep{update: []*Slice{before}, pending: 1}
		}
		var ct []string
		if conntrack {
			ct = []string{portOf0(after)}
		}
		return []trackerStep{first, {update: []*Slice{after}, pending: 1, ports: []string{portOf0(after)}, conntrack: ct, want: fmtSlice(after)}}
	}
	tests := []struct {
		name  string
		steps []trackerStep
	}{
		{
			name: "add, change and delete a TCP slice",
			steps: []trackerStep{
				{
					update: []*Slice{web(ep("10.0.0.2"), ep("10.0.0.1"))}, pending: 1,
					ports: []string{"ns/web:http/TCP"},
					want:  []string{"ns/web:http/TCP 10.0.0.1:80 RS-", "ns/web:http/TCP 10.0.0.2:80 RS-"},
				},
				{
					update: []*Slice{web(ep("10.0.0.1"))}, pending: 1,
					ports: []string{"ns/web:http/TCP"},
					want:  []string{"ns/web:http/TCP 10.0.0.1:80 RS-"},
				},
				{delete: []*Slice{{Namespace: "ns", Service: "web", Name: "web-a"}}, pending: 1, ports: []string{"ns/web:http/TCP"}},
			},
		},
		{
			name: "an update identical to the applied slice changes nothing",
			steps: []trackerStep{
				{update: []*Slice{web(hinted)}, pending: 1, ports: []string{"ns/web:http/TCP"}, want: fmtSlice(web(hinted))},
				{update: []*Slice{web(with(hinted, func(e *Endpoint) { e.ZoneHints = []string{"z1"} }))}, want: fmtSlice(web(hinted))},
			},
		},
		{
			name: "a change of hints only is a change",
			steps: []trackerStep{
				{update: []*Slice{web(hinted)}, pending: 1, ports: []string{"ns/web:http/TCP"}, want: fmtSlice(web(hinted))},
				{update: []*Slice{web(ep("10.0.0.1"))}, pending: 1, ports: []string{"ns/web:http/TCP"}, want: fmtSlice(web(ep("10.0.0.1")))},
			},
		},
		{
			name: "a change back to the applied slice cancels",
			steps: []trackerStep{
				{update: []*Slice{web(ep("10.0.0.1"))}, pending: 1, ports: []string{"ns/web:http/TCP"}, want: fmtSlice(web(ep("10.0.0.1")))},
				{update: []*Slice{web(ep("10.0.0.2")), web(ep("10.0.0.1"))}, want: fmtSlice(web(ep("10.0.0.1")))},
			},
		},
		{
			name: "adding and deleting before Apply cancels; deleting the unknown does nothing",
			steps: []trackerStep{
				{update: []*Slice{web(ep("10.0.0.1"))}, delete: []*Slice{web(), dns()}},
			},
		},
		{
			name: "a slice with no endpoints adds no port",
			steps: []trackerStep{
				{update: []*Slice{web()}, pending: 1},
				{update: []*Slice{web(ep("10.0.0.1"))}, pending: 1, ports: []string{"ns/web:http/TCP"}, want: fmtSlice(web(ep("10.0.0.1")))},
				{update: []*Slice{web()}, pending: 1, ports: []string{"ns/web:http/TCP"}},
			},
		},
		{
			name: "several slices of one service",
			steps: []trackerStep{
				{
					update: []*Slice{
						slice("ns", "web", "web-b", ports(tcp("http", 80)), ep("2001:db8::1"), ep("10.0.0.2")),
						slice("ns", "web", "web-a", ports(tcp("http", 80)), ep("10.0.0.1"), with(ep("10.0.0.2"), terminating)),
					},
					pending: 2,
					ports:   []string{"ns/web:http/TCP"},
					want: []string{
						"ns/web:http/TCP 10.0.0.1:80 RS-",
						"ns/web:http/TCP 10.0.0.2:80 RS-",
						"ns/web:http/TCP [2001:db8::1]:80 RS-",
					},
				},
				{
					delete:  []*Slice{{Namespace: "ns", Service: "web", Name: "web-b"}},
					update:  []*Slice{slice("ns", "web", "web-c", ports(tcp("https", 443)), ep("10.0.0.3"))},
					pending: 2,
					ports:   []string{"ns/web:http/TCP", "ns/web:https/TCP"},
					want: []string{
						"ns/web:http/TCP 10.0.0.1:80 RS-",
						"ns/web:http/TCP 10.0.0.2:80 -ST",
						"ns/web:https/TCP 10.0.0.3:443 RS-",
					},
				},
				{
					update:  []*Slice{slice("ns", "web", "web-c", ports(tcp("https", 443)), ep("10.0.0.4"))},
					pending: 1,
					ports:   []string{"ns/web:https/TCP"},
					want: []string{
						"ns/web:http/TCP 10.0.0.1:80 RS-",
						"ns/web:http/TCP 10.0.0.2:80 -ST",
						"ns/web:https/TCP 10.0.0.4:443 RS-",
					},
				},
			},
		},
		{
			name: "a port added before an existing one",
			steps: []trackerStep{
				{update: []*Slice{slice("ns", "web", "web-b", ports(tcp("b", 80)), ep("10.0.0.2"))}, pending: 1, ports: []string{"ns/web:b/TCP"}, want: []string{"ns/web:b/TCP 10.0.0.2:80 RS-"}},
				{
					update: []*Slice{slice("ns", "web", "web-a", ports(tcp("a", 80)), ep("10.0.0.1"))}, pending: 1,
					ports: []string{"ns/web:a/TCP"}, want: []string{"ns/web:a/TCP 10.0.0.1:80 RS-", "ns/web:b/TCP 10.0.0.2:80 RS-"},
				},
			},
		},
		{
			name: "changes of several services are sorted",
			steps: []trackerStep{{
				update: []*Slice{
					slice("b", "svc", "s", ports(udp("dns", 53), tcp("dns", 53)), ep("10.0.0.2")),
					slice("a", "svc", "s", ports(tcp("", 80)), ep("10.0.0.1")),
					slice("a", "abc", "s2", ports(udp("z", 1), udp("a", 2)), ep("10.0.0.3")),
				},
				pending:   3,
				ports:     []string{"a/abc:a/UDP", "a/abc:z/UDP", "a/svc/TCP", "b/svc:dns/TCP", "b/svc:dns/UDP"},
				conntrack: []string{"a/abc:a/UDP", "a/abc:z/UDP", "b/svc:dns/UDP"},
				want: []string{
					"a/abc:a/UDP 10.0.0.3:2 RS-", "a/abc:z/UDP 10.0.0.3:1 RS-", "a/svc/TCP 10.0.0.1:80 RS-",
					"b/svc:dns/TCP 10.0.0.2:53 RS-", "b/svc:dns/UDP 10.0.0.2:53 RS-",
				},
			}},
		},
		{name: "conntrack: UDP endpoint removed", steps: udpChange(dns(ep("10.0.0.1"), ep("10.0.0.2")), dns(ep("10.0.0.1")), true)},
		{name: "conntrack: UDP endpoint becomes unready", steps: udpChange(dns(ep("10.0.0.1"), ep("10.0.0.2")), dns(ep("10.0.0.1"), with(ep("10.0.0.2"), unready)), true)},
		{name: "conntrack: UDP endpoint ready to serving-terminating stays usable", steps: udpChange(dns(ep("10.0.0.1")), dns(with(ep("10.0.0.1"), terminating)), false)},
		{name: "conntrack: UDP endpoint moves to another port", steps: udpChange(dns(ep("10.0.0.1")), dns(with(ep("10.0.0.1"), func(e *Endpoint) { e.Port = 5353 })), true)},
		{name: "conntrack: UDP port gains its first endpoint", steps: udpChange(dns(), dns(ep("10.0.0.1")), true)},
		{name: "conntrack: UDP port gains its first usable endpoint", steps: udpChange(dns(with(ep("10.0.0.1"), unready)), dns(with(ep("10.0.0.1"), unready), ep("10.0.0.2")), true)},
		{name: "conntrack: UDP endpoint added while others exist", steps: udpChange(dns(ep("10.0.0.1")), dns(ep("10.0.0.1"), ep("10.0.0.2")), false)},
		// SEMANTICS §1: each family on its own.
		{name: "conntrack: first IPv6 UDP endpoint with existing IPv4", steps: udpChange(dns(ep("10.0.0.1")), dns(ep("10.0.0.1"), ep("2001:db8::1")), true)},
		{name: "conntrack: first IPv4 UDP endpoint with existing IPv6", steps: udpChange(dns(ep("2001:db8::1")), dns(ep("10.0.0.1"), ep("2001:db8::1")), true)},
		{name: "conntrack: first usable IPv6 UDP endpoint", steps: udpChange(dns(ep("10.0.0.1"), with(ep("2001:db8::1"), unready)), dns(ep("10.0.0.1"), ep("2001:db8::1")), true)},
		{name: "conntrack: IPv6 UDP endpoint added while IPv6 had a usable one", steps: udpChange(dns(ep("10.0.0.1"), ep("2001:db8::1")), dns(ep("10.0.0.1"), ep("2001:db8::1"), ep("2001:db8::2")), false)},
		{name: "conntrack: IPv4 UDP endpoint removed, IPv6 unchanged", steps: udpChange(dns(ep("10.0.0.1"), ep("10.0.0.2"), ep("2001:db8::1")), dns(ep("10.0.0.1"), ep("2001:db8::1")), true)},
		{name: "conntrack: last IPv6 UDP endpoint removed", steps: udpChange(dns(ep("10.0.0.1"), ep("2001:db8::1")), dns(ep("10.0.0.1")), true)},
		{name: "conntrack: SCTP first IPv6 endpoint with existing IPv4", steps: udpChange(sc(ep("10.0.0.1")), sc(ep("10.0.0.1"), ep("2001:db8::1")), true)},
		{name: "conntrack: never for TCP, first IPv6 endpoint", steps: udpChange(web(ep("10.0.0.1")), web(ep("10.0.0.1"), ep("2001:db8::1")), false)},
		{name: "conntrack: unusable UDP endpoint removed", steps: udpChange(dns(ep("10.0.0.1"), with(ep("10.0.0.2"), unready)), dns(ep("10.0.0.1")), false)},
		{name: "conntrack: UDP weight change", steps: udpChange(dns(ep("10.0.0.1")), dns(with(ep("10.0.0.1"), func(e *Endpoint) { e.Weight = 5 })), false)},
		{name: "conntrack: SCTP endpoint removed", steps: udpChange(sc(ep("10.0.0.1"), ep("10.0.0.2")), sc(ep("10.0.0.2")), true)},
		{name: "conntrack: SCTP port gains its first endpoint", steps: udpChange(sc(), sc(ep("10.0.0.2")), true)},
		{name: "conntrack: SCTP endpoint added while others exist", steps: udpChange(sc(ep("10.0.0.1")), sc(ep("10.0.0.1"), ep("10.0.0.2")), false)},
		{name: "conntrack: never for TCP, endpoint removed", steps: udpChange(web(ep("10.0.0.1"), ep("10.0.0.2")), web(ep("10.0.0.2")), false)},
		{name: "conntrack: never for TCP, endpoint unready", steps: udpChange(web(ep("10.0.0.1")), web(with(ep("10.0.0.1"), unready)), false)},
		{name: "conntrack: never for TCP, first endpoint", steps: udpChange(web(), web(ep("10.0.0.1")), false)},
		{
			name: "conntrack: UDP and TCP ports of one name, endpoint removed",
			steps: []trackerStep{
				{
					update: []*Slice{dnsBoth(ep("10.0.0.1"), ep("10.0.0.2"))}, pending: 1,
					ports: []string{"ns/dns:dns/TCP", "ns/dns:dns/UDP"}, conntrack: []string{"ns/dns:dns/UDP"},
					want: fmtSlice(dnsBoth(ep("10.0.0.1"), ep("10.0.0.2"))),
				},
				{
					update: []*Slice{dnsBoth(ep("10.0.0.1"))}, pending: 1,
					ports: []string{"ns/dns:dns/TCP", "ns/dns:dns/UDP"}, conntrack: []string{"ns/dns:dns/UDP"},
					want: fmtSlice(dnsBoth(ep("10.0.0.1"))),
				},
			},
		},
		{
			name: "conntrack: UDP slice deleted",
			steps: []trackerStep{
				{update: []*Slice{dns(ep("10.0.0.1"))}, pending: 1, ports: []string{"ns/dns:dns/UDP"}, conntrack: []string{"ns/dns:dns/UDP"}, want: fmtSlice(dns(ep("10.0.0.1")))},
				{delete: []*Slice{dns()}, pending: 1, ports: []string{"ns/dns:dns/UDP"}, conntrack: []string{"ns/dns:dns/UDP"}},
			},
		},
		{
			name: "a slice that moves to another service leaves the old one",
			steps: []trackerStep{
				{update: []*Slice{web(ep("10.0.0.1"))}, pending: 1, ports: []string{"ns/web:http/TCP"}, want: fmtSlice(web(ep("10.0.0.1")))},
				{
					update: []*Slice{moved(web(ep("10.0.0.2")), "other")}, pending: 1,
					ports: []string{"ns/other:http/TCP", "ns/web:http/TCP"},
					want:  fmtSlice(moved(web(ep("10.0.0.2")), "other")),
				},
				{update: []*Slice{moved(web(ep("10.0.0.2")), "other")}, want: fmtSlice(moved(web(ep("10.0.0.2")), "other"))},
				// Delete names the old service: the version known wins.
				{delete: []*Slice{web()}, pending: 1, ports: []string{"ns/other:http/TCP"}},
				{delete: []*Slice{web()}},
			},
		},
		{
			name: "a moved UDP slice: both services' ports need cleanup",
			steps: []trackerStep{
				{update: []*Slice{dns(ep("10.0.0.1"))}, pending: 1, ports: []string{"ns/dns:dns/UDP"}, conntrack: []string{"ns/dns:dns/UDP"}, want: fmtSlice(dns(ep("10.0.0.1")))},
				{
					update: []*Slice{moved(dns(ep("10.0.0.1")), "a-dns")}, pending: 1,
					ports: []string{"ns/a-dns:dns/UDP", "ns/dns:dns/UDP"}, conntrack: []string{"ns/a-dns:dns/UDP", "ns/dns:dns/UDP"},
					want: fmtSlice(moved(dns(ep("10.0.0.1")), "a-dns")),
				},
			},
		},
		{
			name: "moves before Apply: only the last service counts",
			steps: []trackerStep{
				{update: []*Slice{web(ep("10.0.0.1"))}, pending: 1, ports: []string{"ns/web:http/TCP"}, want: fmtSlice(web(ep("10.0.0.1")))},
				{
					update:  []*Slice{moved(web(ep("10.0.0.1")), "b"), moved(web(ep("10.0.0.1")), "c"), moved(web(ep("10.0.0.3")), "a")},
					pending: 1,
					ports:   []string{"ns/a:http/TCP", "ns/web:http/TCP"},
					want:    fmtSlice(moved(web(ep("10.0.0.3")), "a")),
				},
			},
		},
		{
			name: "a move back to the applied service before Apply cancels",
			steps: []trackerStep{
				{update: []*Slice{web(ep("10.0.0.1"))}, pending: 1, ports: []string{"ns/web:http/TCP"}, want: fmtSlice(web(ep("10.0.0.1")))},
				{update: []*Slice{moved(web(ep("10.0.0.1")), "other"), web(ep("10.0.0.1"))}, want: fmtSlice(web(ep("10.0.0.1")))},
			},
		},
		{
			name: "a never-applied slice that moves: its pending add is cancelled",
			steps: []trackerStep{
				{
					update: []*Slice{web(ep("10.0.0.1")), moved(web(ep("10.0.0.2")), "other")}, pending: 1,
					ports: []string{"ns/other:http/TCP"}, want: fmtSlice(moved(web(ep("10.0.0.2")), "other")),
				},
			},
		},
		{
			name: "a moved, never-applied slice deleted under its old service",
			steps: []trackerStep{
				{update: []*Slice{web(ep("10.0.0.1")), moved(web(ep("10.0.0.2")), "other")}, delete: []*Slice{web()}},
			},
		},
		{
			name: "a move and a delete before Apply remove the applied version",
			steps: []trackerStep{
				{update: []*Slice{web(ep("10.0.0.1"))}, pending: 1, ports: []string{"ns/web:http/TCP"}, want: fmtSlice(web(ep("10.0.0.1")))},
				{update: []*Slice{moved(web(ep("10.0.0.1")), "other")}, delete: []*Slice{moved(web(), "other")}, pending: 1, ports: []string{"ns/web:http/TCP"}},
			},
		},
		{
			name: "slices of one name in two namespaces are different slices",
			steps: []trackerStep{
				{
					update: []*Slice{web(ep("10.0.0.1")), slice("ns2", "other", "web-a", ports(tcp("http", 80)), ep("10.0.0.2"))}, pending: 2,
					ports: []string{"ns/web:http/TCP", "ns2/other:http/TCP"},
					want:  []string{"ns/web:http/TCP 10.0.0.1:80 RS-", "ns2/other:http/TCP 10.0.0.2:80 RS-"},
				},
			},
		},
		{
			name: "conntrack: UDP slice of unusable endpoints deleted",
			steps: []trackerStep{
				{update: []*Slice{dns(with(ep("10.0.0.1"), unready))}, pending: 1, ports: []string{"ns/dns:dns/UDP"}, want: []string{"ns/dns:dns/UDP 10.0.0.1:53 ---"}},
				{delete: []*Slice{dns()}, pending: 1, ports: []string{"ns/dns:dns/UDP"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker()
			var m Map
			for i, st := range tt.steps {
				for _, s := range st.update {
					if err := tr.Update(s); err != nil {
						t.Fatalf("step %d: Update(%v) = %v", i, s.ID(), err)
					}
				}
				for _, s := range st.delete {
					tr.Delete(s)
				}
				if got := tr.Pending(); got != st.pending {
					t.Errorf("step %d: Pending() = %d, want %d", i, got, st.pending)
				}
				before := fmtMap(m)
				next, ch := tr.Apply(m)
				if d := diff(st.ports, fmtPorts(ch.Ports)); d != "" {
					t.Errorf("step %d: Changes.Ports %s", i, d)
				}
				if d := diff(st.conntrack, fmtPorts(ch.Conntrack)); d != "" {
					t.Errorf("step %d: Changes.Conntrack %s", i, d)
				}
				if got, want := ch.NeedsConntrackCleanup(), len(st.conntrack) > 0; got != want {
					t.Errorf("step %d: NeedsConntrackCleanup() = %v, want %v", i, got, want)
				}
				if d := diff(st.want, fmtMap(next)); d != "" {
					t.Errorf("step %d: Map %s", i, d)
				}
				if d := diff(before, fmtMap(m)); d != "" {
					t.Errorf("step %d: Apply modified the old Map %s", i, d)
				}
				if got := tr.Pending(); got != 0 {
					t.Errorf("step %d: Pending() after Apply = %d, want 0", i, got)
				}
				if next.Len() != len(portsOf(st.want)) {
					t.Errorf("step %d: Len() = %d, want %d", i, next.Len(), len(portsOf(st.want)))
				}
				m = next
			}
		})
	}
}

// moved returns s as a slice of service svc.
func moved(s *Slice, svc string) *Slice {
	s.Service = svc
	return s
}

// fmtSlice renders what Merge makes of s, as fmtMap would.
func fmtSlice(s *Slice) []string { return fmtLists(Merge([]*Slice{s})) }

func portOf0(s *Slice) string {
	p := s.Ports[0]
	return portName(s.Namespace, s.Service, p.Name, string(p.Protocol.OrTCP())).String()
}

func portsOf(lines []string) map[string]bool {
	out := map[string]bool{}
	for _, l := range lines {
		out[portOf(l)] = true
	}
	return out
}

func TestTrackerInvalidUpdate(t *testing.T) {
	tr := NewTracker()
	bad := slice("ns", "svc", "a", ports(tcp("http", 80)), Endpoint{Addr: netip.MustParseAddr("::ffff:1.2.3.4")})
	err := tr.Update(bad)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Slice != bad.ID() {
		t.Fatalf("Update(invalid) = %v, want a *ValidationError for %v", err, bad.ID())
	}
	if got := tr.Pending(); got != 0 {
		t.Errorf("Pending() = %d after an invalid Update, want 0", got)
	}
	m, ch := tr.Apply(Map{})
	if m.Len() != 0 || len(ch.Ports) != 0 {
		t.Errorf("Apply() = %d ports, %v; want nothing", m.Len(), ch)
	}
}

func TestTrackerNil(t *testing.T) {
	tr := NewTracker()
	err := tr.Update(nil)
	var fe *FieldError
	if !errors.As(err, &fe) || *fe != (FieldError{Field: "Slice", Value: nil, Reason: "must not be nil"}) {
		t.Errorf("Update(nil) = %v, want the FieldError of a nil slice", err)
	}
	if err := tr.Update(slice("ns", "svc", "a", ports(tcp("http", 80)), ep("10.0.0.1"))); err != nil {
		t.Fatal(err)
	}
	m, _ := tr.Apply(Map{})
	tr.Delete(nil)
	if got := tr.Pending(); got != 0 {
		t.Errorf("Pending() = %d after Delete(nil), want 0", got)
	}
	if next, ch := tr.Apply(m); next.Len() != 1 || len(ch.Ports) != 0 {
		t.Errorf("Apply() after Delete(nil) = %d ports, %+v; want 1 port, no changes", next.Len(), ch)
	}
}

// A bulk load sizes the maps once; moves and deletes still find the
// slices it loaded.
func TestTrackerBulkLoad(t *testing.T) {
	ss := benchSlices(1500)
	tr := NewTracker()
	for _, s := range ss {
		if err := tr.Update(s); err != nil {
			t.Fatal(err)
		}
	}
	m, ch := tr.Apply(Map{})
	if m.Len() != len(ss) || len(ch.Ports) != len(ss) {
		t.Fatalf("Apply() = %d ports, %d changes; want %d", m.Len(), len(ch.Ports), len(ss))
	}
	mv := *ss[7]
	mv.Service = "moved"
	if err := tr.Update(&mv); err != nil {
		t.Fatal(err)
	}
	gone := *ss[9]
	gone.Service = "whatever"
	tr.Delete(&gone)
	m, ch = tr.Apply(m)
	if got, want := fmtPorts(ch.Ports), []string{
		"ns-7/moved:http/TCP", "ns-7/svc-7:http/TCP", "ns-9/svc-9:http/TCP",
	}; diff(want, got) != "" {
		t.Errorf("Changes.Ports %s", diff(want, got))
	}
	if m.Len() != len(ss)-1 {
		t.Errorf("Len() = %d, want %d", m.Len(), len(ss)-1)
	}
}

func TestTrackerApplyNothingPending(t *testing.T) {
	tr := NewTracker()
	if err := tr.Update(slice("ns", "svc", "a", ports(tcp("http", 80)), ep("10.0.0.1"))); err != nil {
		t.Fatal(err)
	}
	m, _ := tr.Apply(Map{})
	again, ch := tr.Apply(m)
	if diff(fmtMap(m), fmtMap(again)) != "" || len(ch.Ports) != 0 || ch.Conntrack != nil {
		t.Errorf("Apply() with nothing pending = %v, %+v; want the same Map and no changes", fmtMap(again), ch)
	}
}

func TestTrackerLookups(t *testing.T) {
	tr := NewTracker()
	for _, s := range []*Slice{
		slice("ns", "a", "a", ports(tcp("http", 80)), ep("10.0.0.1")),
		slice("ns", "b", "b", ports(tcp("http", 80), udp("dns", 53)), ep("10.0.0.2")),
		slice("ns", "c", "c", ports(tcp("http", 80)), ep("10.0.0.3")),
	} {
		if err := tr.Update(s); err != nil {
			t.Fatal(err)
		}
	}
	var zero Map
	if _, ok := zero.Get(portName("ns", "b", "http", "TCP")); ok {
		t.Error("zero Map: Get found something")
	}
	m, _ := tr.Apply(zero)
	if eps, ok := m.Get(portName("ns", "b", "dns", "UDP")); !ok || len(eps) != 1 || eps[0].Port != 53 {
		t.Errorf("Get(ns/b:dns/UDP) = %v, %v", eps, ok)
	}
	var got []string
	for n := range m.Service(serviceName("ns", "b")) {
		got = append(got, n.String())
	}
	if d := diff([]string{"ns/b:dns/UDP", "ns/b:http/TCP"}, got); d != "" {
		t.Errorf("Service(ns/b) %s", d)
	}
}

func TestTrackerConcurrent(t *testing.T) {
	tr := NewTracker()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var m Map
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				// Slice names are unique within the namespace.
				s := slice("ns", fmt.Sprintf("svc-%d", i%10), fmt.Sprintf("svc-%d-s-%d", i%10, g), ports(udp("dns", 53)),
					ep(fmt.Sprintf("10.0.%d.%d", g, i+1)))
				if err := tr.Update(s); err != nil {
					t.Error(err)
					return
				}
				if i%7 == 0 {
					tr.Delete(s)
				}
				_ = tr.Pending()
				if i%5 == 0 {
					mu.Lock()
					m, _ = tr.Apply(m)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	m, _ = tr.Apply(m)
	// Each goroutine's last slice of each service survives (i in 40..49),
	// except those deleted right away: i = 42 and 49, multiples of 7.
	total := 0
	for _, eps := range m.All() {
		total += len(eps)
	}
	if total != 8*8 {
		t.Errorf("total endpoints = %d, want %d", total, 8*8)
	}
}
