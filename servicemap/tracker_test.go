package servicemap

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

// svc returns a valid ClusterIP service ns/name with the given ports.
func svc(name string, ports ...Port) *Service {
	return &Service{Namespace: "ns", Name: name, ClusterIPs: ips("10.0.0.1"), Ports: ports}
}

func with(s *Service, f func(s *Service)) *Service {
	c := *s
	f(&c)
	return &c
}

// contents lists a Map as "port-name port".
func contents(m Map) []string {
	var out []string
	for n, p := range m.All() {
		out = append(out, fmt.Sprintf("%v %d", n, p.Port))
	}
	return out
}

// op is one call on a Tracker: Update(prev, cur), or Delete(prev) when
// del is set.
type op struct {
	prev, cur *Service
	del       bool
	wantErr   bool
}

// Fixtures of the tracker tests: services ns/a, ns/b and ns/c in a few
// versions.
var (
	svcA1          = svc("a", Port{Port: 80})
	svcA2          = svc("a", Port{Port: 8080})
	svcA3          = svc("a", Port{Port: 9090})
	svcB           = svc("b", Port{Name: "dns", Protocol: UDP, Port: 53}, Port{Name: "dns-tcp", Port: 53})
	svcC           = svc("c", Port{Name: "http", Port: 80}, Port{Name: "metrics", Port: 9100}, Port{Name: "assoc", Protocol: SCTP, Port: 7})
	svcBad         = with(svcA2, func(s *Service) { s.Ports = []Port{{Port: 0}} })
	svcHeadless    = with(svcA1, func(s *Service) { s.ClusterIPs = nil })
	svcBadHeadless = with(svcHeadless, func(s *Service) { s.Scheduler = "R R" })
)

func pn(name, port string, proto Protocol) PortName { return PortName{"ns", name, port, proto} }

// trackerTest applies initial services, makes calls, and checks Pending,
// then what Apply reports and the Map it makes.
type trackerTest struct {
	name        string
	initial     []*Service // applied before the ops
	ops         []op
	wantPending int
	want        Changes
	wantMap     []string
}

// TestTrackerMerges covers how pending changes merge, cancel out and
// survive rejected updates.
func TestTrackerMerges(t *testing.T) {
	runTrackerTests(t, []trackerTest{
		{"add", nil, []op{{cur: svcA1}}, 1,
			Changes{Updated: []PortName{pn("a", "", TCP)}},
			[]string{"ns/a/TCP 80"}},
		{"add then delete cancels", nil, []op{{cur: svcA1}, {prev: svcA1, del: true}}, 0,
			Changes{}, nil},
		{"add then update to nil cancels", nil, []op{{cur: svcA1}, {prev: svcA1}}, 0,
			Changes{}, nil},
		{"update back to the original cancels", []*Service{svcA1}, []op{{prev: svcA1, cur: svcA2}, {prev: svcA2, cur: with(svcA1, func(*Service) {})}}, 0,
			Changes{}, []string{"ns/a/TCP 80"}},
		{"first prev is kept", []*Service{svcA1}, []op{{prev: svcA1, cur: svcA2}, {prev: svcA2, cur: svcA3}, {prev: svcA3, cur: svcA1}}, 0,
			Changes{}, []string{"ns/a/TCP 80"}},
		{"latest cur wins", []*Service{svcA1}, []op{{prev: svcA1, cur: svcA2}, {prev: svcA2, cur: svcA3}}, 1,
			Changes{Updated: []PortName{pn("a", "", TCP)}},
			[]string{"ns/a/TCP 9090"}},
		{"resync with equal service records nothing", []*Service{svcA1}, []op{{prev: svcA1, cur: with(svcA1, func(*Service) {})}}, 0,
			Changes{}, []string{"ns/a/TCP 80"}},
		{"invalid update is rejected and nothing recorded", []*Service{svcA1}, []op{{prev: svcA1, cur: svcBad, wantErr: true}}, 0,
			Changes{}, []string{"ns/a/TCP 80"}},
		{"invalid update keeps the pending change", []*Service{svcA1}, []op{{prev: svcA1, cur: svcA2}, {prev: svcA2, cur: svcBad, wantErr: true}}, 1,
			Changes{Updated: []PortName{pn("a", "", TCP)}},
			[]string{"ns/a/TCP 8080"}},
		{"update after a rejected one is not taken for a no-op", []*Service{svcA1}, []op{
			{prev: svcA1, cur: svcBadHeadless, wantErr: true},
			{prev: svcBadHeadless, cur: svcHeadless},
		}, 1, Changes{Deleted: []PortName{pn("a", "", TCP)}}, nil},
		{"after a rejection prev stays distrusted until Apply", []*Service{svcA1}, []op{
			{prev: svcA1, cur: svcBadHeadless, wantErr: true},
			{prev: svcBadHeadless, cur: svcA2},
			{prev: svcA2, cur: svcHeadless},
		}, 1, Changes{Deleted: []PortName{pn("a", "", TCP)}}, nil},
		{"rejection with a pending change", []*Service{svcA1}, []op{
			{prev: svcA1, cur: svcA2},
			{prev: svcA2, cur: svcBad, wantErr: true},
			{prev: svcBad, cur: with(svcA1, func(*Service) {})},
		}, 1, Changes{}, []string{"ns/a/TCP 80"}},
		{"adding a headless service records nothing", nil, []op{{cur: svcHeadless}}, 0, Changes{}, nil},
		{"nil changes are ignored", []*Service{svcA1}, []op{{}, {del: true}}, 0, Changes{}, []string{"ns/a/TCP 80"}},
	})
}

// TestTrackerApplies covers what Apply changes and reports.
func TestTrackerApplies(t *testing.T) {
	runTrackerTests(t, []trackerTest{
		{"delete", []*Service{svcA1, svcB}, []op{{prev: svcB, del: true}}, 1,
			Changes{Deleted: []PortName{pn("b", "dns", UDP), pn("b", "dns-tcp", TCP)}, HasUDPOrSCTP: true},
			[]string{"ns/a/TCP 80"}},
		{"update to nil deletes", []*Service{svcA1}, []op{{prev: svcA1}}, 1,
			Changes{Deleted: []PortName{pn("a", "", TCP)}}, nil},
		{"only changed ports are reported", []*Service{svcC}, []op{{prev: svcC, cur: with(svcC, func(s *Service) {
			s.Ports = []Port{{Name: "metrics", Port: 9200}, {Name: "http", Port: 80}, {Name: "grpc", Port: 9000}}
		})}}, 1,
			Changes{
				Updated:      []PortName{pn("c", "grpc", TCP), pn("c", "metrics", TCP)},
				Deleted:      []PortName{pn("c", "assoc", SCTP)},
				HasUDPOrSCTP: true,
			},
			[]string{"ns/c:grpc/TCP 9000", "ns/c:http/TCP 80", "ns/c:metrics/TCP 9200"}},
		{"service-wide change updates every port", []*Service{svcB}, []op{{prev: svcB, cur: with(svcB, func(s *Service) {
			s.InternalTrafficPolicy = Local
		})}}, 1,
			Changes{Updated: []PortName{pn("b", "dns", UDP), pn("b", "dns-tcp", TCP)}, HasUDPOrSCTP: true},
			[]string{"ns/b:dns/UDP 53", "ns/b:dns-tcp/TCP 53"}},
		{"TCP-only change", []*Service{svcC}, []op{{prev: svcC, cur: with(svcC, func(s *Service) {
			s.Ports = []Port{{Name: "http", Port: 81}, {Name: "metrics", Port: 9100}, {Name: "assoc", Protocol: SCTP, Port: 7}}
		})}}, 1,
			Changes{Updated: []PortName{pn("c", "http", TCP)}},
			[]string{"ns/c:assoc/SCTP 7", "ns/c:http/TCP 81", "ns/c:metrics/TCP 9100"}},
		{"wrong prev: ports removed from what the Map holds", []*Service{svcC}, []op{{cur: svc("c", Port{Name: "http", Port: 80})}}, 1,
			Changes{Deleted: []PortName{pn("c", "assoc", SCTP), pn("c", "metrics", TCP)}, HasUDPOrSCTP: true},
			[]string{"ns/c:http/TCP 80"}},
		{"delete removes every port the Map holds", []*Service{svcC, svcA1}, []op{{prev: svc("c", Port{Name: "http", Port: 80}), del: true}}, 1,
			Changes{Deleted: []PortName{pn("c", "assoc", SCTP), pn("c", "http", TCP), pn("c", "metrics", TCP)}, HasUDPOrSCTP: true},
			[]string{"ns/a/TCP 80"}},
		{"becoming headless deletes", []*Service{svcA1}, []op{{prev: svcA1, cur: svcHeadless}}, 1,
			Changes{Deleted: []PortName{pn("a", "", TCP)}}, nil},
		{"rename deletes the old service", []*Service{svcA1}, []op{{prev: svcA1, cur: with(svcA1, func(s *Service) { s.Name = "z" })}}, 2,
			Changes{Updated: []PortName{pn("z", "", TCP)}, Deleted: []PortName{pn("a", "", TCP)}},
			[]string{"ns/z/TCP 80"}},
		{"several services", []*Service{svcA1}, []op{{cur: svcB}, {prev: svcA1, cur: svcA2}, {cur: svcC}, {prev: svcC, del: true}}, 2,
			Changes{Updated: []PortName{pn("a", "", TCP), pn("b", "dns", UDP), pn("b", "dns-tcp", TCP)}, HasUDPOrSCTP: true},
			[]string{"ns/a/TCP 8080", "ns/b:dns/UDP 53", "ns/b:dns-tcp/TCP 53"}},
	})
}

func runTrackerTests(t *testing.T, tests []trackerTest) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker()
			for _, s := range tt.initial {
				if err := tr.Update(nil, s); err != nil {
					t.Fatal(err)
				}
			}
			m, _ := tr.Apply(Map{})
			for i, o := range tt.ops {
				var err error
				if o.del {
					tr.Delete(o.prev)
				} else {
					err = tr.Update(o.prev, o.cur)
				}
				var ve *ValidationError
				if (err != nil) != o.wantErr || (err != nil && !errors.As(err, &ve)) {
					t.Fatalf("op %d: Update() = %v, want error: %v", i, err, o.wantErr)
				}
			}
			if got := tr.Pending(); got != tt.wantPending {
				t.Errorf("Pending() = %d, want %d", got, tt.wantPending)
			}
			m, got := tr.Apply(m)
			if d := diff([]Changes{tt.want}, []Changes{got}); d != "" {
				t.Errorf("Apply() changes (-want +got):\n%s", d)
			}
			if d := diff(tt.wantMap, contents(m)); d != "" {
				t.Errorf("Map after Apply (-want +got):\n%s", d)
			}
			if n := tr.Pending(); n != 0 {
				t.Errorf("Pending() after Apply = %d, want 0", n)
			}
			if _, again := tr.Apply(m); again.Updated != nil || again.Deleted != nil {
				t.Errorf("second Apply() = %+v, want no changes", again)
			}
		})
	}
}

func TestApplyLeavesOldMapUnchanged(t *testing.T) {
	tr := NewTracker()
	a, b := svc("a", Port{Port: 80}), svc("b", Port{Port: 53, Protocol: UDP})
	for _, s := range []*Service{a, b} {
		if err := tr.Update(nil, s); err != nil {
			t.Fatal(err)
		}
	}
	m1, _ := tr.Apply(Map{})
	before := contents(m1)
	a2 := with(a, func(s *Service) { s.Ports = []Port{{Port: 81}} })
	if err := tr.Update(a, a2); err != nil {
		t.Fatal(err)
	}
	tr.Delete(b)
	if err := tr.Update(nil, svc("c", Port{Port: 1})); err != nil {
		t.Fatal(err)
	}
	m2, _ := tr.Apply(m1)
	if d := diff(before, contents(m1)); d != "" {
		t.Errorf("old Map changed by Apply (-want +got):\n%s", d)
	}
	if d := diff([]string{"ns/a/TCP 81", "ns/c/TCP 1"}, contents(m2)); d != "" {
		t.Errorf("new Map (-want +got):\n%s", d)
	}
	if p, ok := m1.Get(PortName{"ns", "a", "", TCP}); !ok || p.Port != 80 {
		t.Errorf("old Map Get = %+v, %v; want port 80", p, ok)
	}
}

func TestZeroTracker(t *testing.T) {
	var tr Tracker
	if m, ch := tr.Apply(Map{}); m.Len() != 0 || ch.Updated != nil {
		t.Errorf("Apply() of an empty Tracker = %d ports, %+v", m.Len(), ch)
	}
	if err := tr.Update(nil, svc("a", Port{Port: 80})); err != nil {
		t.Fatal(err)
	}
	if m, _ := tr.Apply(Map{}); m.Len() != 1 {
		t.Errorf("Apply() made %d ports, want 1", m.Len())
	}
}

func TestTrackerConcurrentUse(t *testing.T) {
	const workers, perWorker = 8, 300
	tr := NewTracker()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		m    Map
		seen = map[PortName]bool{}
	)
	apply := func() {
		mu.Lock()
		defer mu.Unlock()
		var ch Changes
		m, ch = tr.Apply(m)
		for _, n := range ch.Updated {
			seen[n] = true
		}
	}
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				s := svc(fmt.Sprintf("w%d-%d", w, i), Port{Port: 80})
				if err := tr.Update(nil, s); err != nil {
					t.Error(err)
					return
				}
				if i%2 == 1 {
					if err := tr.Update(s, with(s, func(s *Service) { s.Ports = []Port{{Port: 81}} })); err != nil {
						t.Error(err)
					}
				}
				_ = tr.Pending()
				if i%50 == 0 {
					apply()
				}
			}
		})
	}
	wg.Wait()
	apply()
	if m.Len() != workers*perWorker || len(seen) != workers*perWorker {
		t.Errorf("Map has %d ports, %d reported; want %d", m.Len(), len(seen), workers*perWorker)
	}
	for n, p := range m.All() {
		var w, i int
		fmt.Sscanf(n.Name, "w%d-%d", &w, &i)
		if want := uint16(80 + i%2); p.Port != want {
			t.Errorf("%v: port %d, want %d", n, p.Port, want)
		}
	}
}

// services returns n valid services with one TCP port each.
func services(n int) []*Service {
	out := make([]*Service, n)
	for i := range out {
		out[i] = &Service{
			Namespace:  fmt.Sprintf("ns%d", i%100),
			Name:       fmt.Sprintf("svc-%d", i),
			ClusterIPs: ips(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)),
			Ports:      []Port{{Name: "http", Port: 80}},
		}
	}
	return out
}

func loaded(tb testing.TB, svcs []*Service) (*Tracker, Map) {
	tr := NewTracker()
	for _, s := range svcs {
		if err := tr.Update(nil, s); err != nil {
			tb.Fatal(err)
		}
	}
	m, _ := tr.Apply(Map{})
	return tr, m
}

// TestApplyCostDoesNotGrowWithTheMap checks that applying one change to a
// large Map allocates about log(n), not n.
func TestApplyCostDoesNotGrowWithTheMap(t *testing.T) {
	svcs := services(30000)
	tr, m := loaded(t, svcs)
	old := svcs[12345]
	cur := with(old, func(s *Service) { s.Ports = []Port{{Name: "http", Port: 81}} })
	allocs := testing.AllocsPerRun(50, func() {
		if err := tr.Update(old, cur); err != nil {
			t.Fatal(err)
		}
		if _, ch := tr.Apply(m); len(ch.Updated) != 1 {
			t.Fatalf("Apply() = %+v, want one update", ch)
		}
	})
	if allocs > 60 {
		t.Errorf("one change to a Map of %d ports costs %v allocations, want about log n", m.Len(), allocs)
	}
}

func BenchmarkTrackerUpdate30k(b *testing.B) {
	svcs := services(30000)
	b.ReportAllocs()
	for b.Loop() {
		tr := NewTracker()
		for _, s := range svcs {
			if err := tr.Update(nil, s); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkTrackerApply30k(b *testing.B) {
	svcs := services(30000)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		tr := NewTracker()
		for _, s := range svcs {
			if err := tr.Update(nil, s); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		if m, _ := tr.Apply(Map{}); m.Len() != len(svcs) {
			b.Fatalf("Apply() made %d ports", m.Len())
		}
	}
}

// BenchmarkTrackerApplyOneOf30k is the steady state: one service changes
// in a Map of 30 000.
func BenchmarkTrackerApplyOneOf30k(b *testing.B) {
	svcs := services(30000)
	tr, m := loaded(b, svcs)
	old := svcs[777]
	cur := with(old, func(s *Service) { s.Ports = []Port{{Name: "http", Port: 81}} })
	b.ReportAllocs()
	for b.Loop() {
		if err := tr.Update(old, cur); err != nil {
			b.Fatal(err)
		}
		tr.Apply(m)
	}
}
