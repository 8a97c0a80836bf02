package proxykit

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/proxykit/proxykit/affinity"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newAffinityOracle() (*Oracle, *fakeClock) {
	clk := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	return &Oracle{
		Affinity: affinity.NewTable[AffinityKey, netip.AddrPort](100),
		Now:      clk.now,
	}, clk
}

// affinityHarness is an Oracle with an affinity table and a fake clock,
// and a ClientIP service (timeout 1m) with three endpoints.
type affinityHarness struct {
	t        *testing.T
	o        *Oracle
	clk      *fakeClock
	sticky   *servicemap.Service
	three    *endpoints.Slice
	snap     *Snapshot
	client   Packet
	pinnedTo netip.AddrPort
}

func newAffinityHarness(t *testing.T) *affinityHarness {
	h := &affinityHarness{
		t:        t,
		sticky:   svc("web", ips("10.96.0.10"), clientIP(60*time.Second)),
		three:    slice("web", ready("10.1.0.5", "n1"), ready("10.1.1.6", "n2"), ready("10.1.1.7", "n2")),
		client:   tcp("10.2.0.9", "10.96.0.10", 80, FromRemotePod),
		pinnedTo: netip.MustParseAddrPort("10.1.1.6:8080"),
	}
	h.o, h.clk = newAffinityOracle()
	h.snap = mustSnapshot(t, []*servicemap.Service{h.sticky}, []*endpoints.Slice{h.three})
	return h
}

func (h *affinityHarness) observe(pkt Packet, ep netip.AddrPort) {
	h.t.Helper()
	if err := h.o.Observe(h.snap, pkt, ep); err != nil {
		h.t.Fatalf("Observe: %v", err)
	}
}

// check explains pkt and checks whether it is pinned to h.pinnedTo, or
// balanced over all three endpoints.
func (h *affinityHarness) check(pkt Packet, pinned bool) Verdict {
	h.t.Helper()
	v := h.o.Explain(h.snap, pkt)
	checkVerdict(h.t, h.snap, pkt, v)
	if v.Affinity != 60*time.Second {
		h.t.Errorf("Affinity = %v, want 1m", v.Affinity)
	}
	switch {
	case v.AffinityApplied != pinned:
		h.t.Fatalf("at %v: Explain(%v).AffinityApplied = %v, want %v:\n%v",
			h.clk.t.Format(time.TimeOnly), pkt, v.AffinityApplied, pinned, v)
	case pinned && (len(v.Candidates) != 1 || v.Candidates[0].Endpoint.AddrPort() != h.pinnedTo || v.Candidates[0].Probability != 1):
		h.t.Fatalf("pinned verdict does not hold only %v with p=1:\n%v", h.pinnedTo, v)
	case !pinned && len(v.Candidates) != 3:
		h.t.Fatalf("unpinned verdict does not hold all 3 candidates:\n%v", v)
	}
	return v
}

// SEMANTICS §4: "While a client IP has an affinity record for an endpoint
// that is still in the set in use, its new connections go to that
// endpoint".
func TestOracleAffinityPins(t *testing.T) {
	h := newAffinityHarness(t)
	h.check(h.client, false) // before any connection: balanced
	h.observe(h.client, h.pinnedTo)
	got := h.check(h.client, true).String()
	want := `forward ns/web:http/TCP via ClusterIP (internal, Cluster set), masquerade=false
  why: §4: ClientIP affinity sends the client to 10.1.1.6:8080, still in the Cluster set
  affinity: ClientIP, timeout 1m0s, client pinned
  10.1.1.6:8080 p=1.000000 node=n2`
	if got != want {
		t.Errorf("pinned verdict (-want +got):\n%s", lineDiff(want, got))
	}
	// The record is per client.
	h.check(tcp("10.2.0.10", "10.96.0.10", 80, FromRemotePod), false)
	// A pinned client that goes elsewhere breaks affinity.
	var oe *ObserveError
	if err := h.o.Observe(h.snap, h.client, netip.MustParseAddrPort("10.1.0.5:8080")); !errors.As(err, &oe) {
		t.Fatalf("Observe to another endpoint while pinned = %v, want an *ObserveError", err)
	}
}

// SEMANTICS §4: "the record is refreshed by each new connection and
// expires after the timeout of inactivity."
func TestOracleAffinityRefreshAndExpiry(t *testing.T) {
	h := newAffinityHarness(t)
	h.observe(h.client, h.pinnedTo)
	h.clk.advance(50 * time.Second)
	h.check(h.client, true)
	h.observe(h.client, h.pinnedTo) // refresh
	h.clk.advance(50 * time.Second) // 100 s after the first, 50 s after the refresh
	h.check(h.client, true)
	h.clk.advance(10 * time.Second) // 60 s after the refresh: expired
	h.check(h.client, false)
}

// SEMANTICS §4: "When the endpoint leaves the set (removed, unready,
// filtered out), affinity to it ends; the client is balanced afresh."
func TestOracleAffinityEndsWhenTheEndpointLeaves(t *testing.T) {
	h := newAffinityHarness(t)
	h.observe(h.client, h.pinnedTo)
	gone := h.three.Endpoints[1]
	gone.Ready, gone.Serving = false, false
	snap2 := mustSnapshot(t, []*servicemap.Service{h.sticky},
		[]*endpoints.Slice{slice("web", h.three.Endpoints[0], gone, h.three.Endpoints[2])})
	v := h.o.Explain(snap2, h.client)
	checkVerdict(t, snap2, h.client, v)
	if v.AffinityApplied || len(v.Candidates) != 2 {
		t.Fatalf("after the endpoint became unready: %v", v)
	}
	if n := h.o.Affinity.Len(); n != 0 {
		t.Errorf("the ended record is still in the table: Len() = %d", n)
	}
	// Back in the set: the record is gone, so the client is balanced afresh.
	h.check(h.client, false)
}

func TestOracleAffinityPerPort(t *testing.T) {
	s := svc("web", ips("10.96.0.10"), clientIP(0), ports(
		servicemap.Port{Name: "http", Port: 80}, servicemap.Port{Name: "https", Port: 443}))
	sl := sliceWith("web", []endpoints.Port{{Name: "http", Port: 8080}, {Name: "https", Port: 8443}},
		ready("10.1.0.5", "n1"), ready("10.1.1.6", "n2"))
	snap := mustSnapshot(t, []*servicemap.Service{s}, []*endpoints.Slice{sl})
	o, _ := newAffinityOracle()
	http := tcp("10.2.0.9", "10.96.0.10", 80, FromRemotePod)
	if err := o.Observe(snap, http, netip.MustParseAddrPort("10.1.1.6:8080")); err != nil {
		t.Fatal(err)
	}
	if v := o.Explain(snap, http); !v.AffinityApplied || v.Affinity != affinity.DefaultTimeout {
		t.Errorf("http: %v", v)
	}
	https := tcp("10.2.0.9", "10.96.0.10", 443, FromRemotePod)
	if v := o.Explain(snap, https); v.AffinityApplied || len(v.Candidates) != 2 {
		t.Errorf("https shares the record of http: %v", v)
	}
}

func TestOracleObserve(t *testing.T) {
	snap := mustSnapshot(t,
		[]*servicemap.Service{webSvc, svc("empty", ips("10.96.0.11")), svc("sticky", ips("10.96.0.12"), clientIP(0))},
		[]*endpoints.Slice{webSlice, slice("sticky", ready("10.1.0.5", "n1"))})
	pkt := tcp("10.2.0.9", "10.96.0.10", 80, FromRemotePod)
	tests := []struct {
		name    string
		pkt     Packet
		ep      string
		wantErr string // substring; empty for no error
	}{
		{"a candidate", pkt, "10.1.1.6:8080", ""},
		{"not a candidate", pkt, "10.1.1.7:8080", "proxykit: TCP 10.2.0.9 -> 10.96.0.10:80 from remote pod went to 10.1.1.7:8080, but it is not a candidate: forward ns/web:http/TCP"},
		{"right address, wrong port", pkt, "10.1.1.6:80", "it is not a candidate"},
		{"rejected", tcp("10.2.0.9", "10.96.0.11", 80, FromRemotePod), "10.1.1.6:8080", "but the verdict is reject: reject ns/empty:http/TCP via ClusterIP"},
		{"no match", tcp("10.2.0.9", "10.96.0.99", 80, FromRemotePod), "10.1.1.6:8080", "but the verdict is no match: no match"},
		{"affinity service without a table", tcp("10.2.0.9", "10.96.0.12", 80, FromRemotePod), "10.1.0.5:8080", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&Oracle{}).Observe(snap, tt.pkt, netip.MustParseAddrPort(tt.ep))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Observe: %v", err)
			case tt.wantErr == "":
				return
			case err == nil:
				t.Fatalf("Observe: no error, want %q", tt.wantErr)
			case !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("Observe: %v, want %q", err, tt.wantErr)
			}
			var oe *ObserveError
			if !errors.As(err, &oe) || oe.Endpoint != netip.MustParseAddrPort(tt.ep) || oe.Packet != tt.pkt {
				t.Errorf("Observe: %#v, want an *ObserveError for the packet and endpoint", err)
			}
		})
	}
}

// Observe records only for ClientIP services.
func TestOracleObserveWithoutAffinity(t *testing.T) {
	snap := mustSnapshot(t, []*servicemap.Service{webSvc}, []*endpoints.Slice{webSlice})
	o, _ := newAffinityOracle()
	pkt := tcp("10.2.0.9", "10.96.0.10", 80, FromRemotePod)
	if err := o.Observe(snap, pkt, netip.MustParseAddrPort("10.1.1.6:8080")); err != nil {
		t.Fatal(err)
	}
	if n := o.Affinity.Len(); n != 0 {
		t.Errorf("table Len() = %d after observing a service without affinity", n)
	}
	if v := o.Explain(snap, pkt); v.AffinityApplied || v.Affinity != 0 || len(v.Candidates) != 2 {
		t.Errorf("Explain: %v", v)
	}
}

func TestExplainEdgeCases(t *testing.T) {
	snap := mustSnapshot(t, []*servicemap.Service{webSvc}, []*endpoints.Slice{webSlice})
	for _, tt := range []struct {
		name string
		snap *Snapshot
		pkt  Packet
	}{
		{"nil snapshot", nil, tcp("10.2.0.9", "10.96.0.10", 80, FromRemotePod)},
		{"zero snapshot", &Snapshot{}, tcp("10.2.0.9", "10.96.0.10", 80, FromRemotePod)},
		{"zero packet", snap, Packet{}},
		{"SCTP to a TCP port", snap, Packet{Src: ip("10.2.0.9"), Dst: ip("10.96.0.10"), Port: 80, Protocol: servicemap.SCTP}},
		{"IPv4-mapped ClusterIP", snap, tcp("::ffff:10.2.0.9", "::ffff:10.96.0.10", 80, FromRemotePod)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := Explain(tt.snap, tt.pkt)
			if v.Action != NoMatch || len(v.Candidates) != 0 {
				t.Errorf("Explain = %v, want no match", v)
			}
		})
	}
}

func TestExplainStrings(t *testing.T) {
	for _, tt := range []struct {
		got, want string
	}{
		{NoMatch.String(), "no match"},
		{Forward.String(), "forward"},
		{Reject.String(), "reject"},
		{Drop.String(), "drop"},
		{Action(9).String(), "Action(9)"},
		{NoFrontend.String(), "none"},
		{ClusterIPFrontend.String(), "ClusterIP"},
		{ExternalIPFrontend.String(), "ExternalIP"},
		{LoadBalancerFrontend.String(), "LoadBalancer"},
		{NodePortFrontend.String(), "NodePort"},
		{Frontend(9).String(), "Frontend(9)"},
		{FromExternal.String(), "external"},
		{FromLocalPod.String(), "local pod"},
		{FromRemotePod.String(), "remote pod"},
		{FromNode.String(), "node"},
		{Origin(9).String(), "Origin(9)"},
		{tcp("10.2.0.9", "10.96.0.10", 80, FromRemotePod).String(), "TCP 10.2.0.9 -> 10.96.0.10:80 from remote pod"},
		{udp("fd00::9", "fd00:96::10", 53, FromNode).String(), "UDP fd00::9 -> [fd00:96::10]:53 from node"},
	} {
		if tt.got != tt.want {
			t.Errorf("String() = %q, want %q", tt.got, tt.want)
		}
	}
}
