package ipvs

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/nftables"
	"github.com/proxykit/proxykit/servicemap"
)

// graceScenario is one TCP and one UDP service with two endpoints each,
// and the same without the endpoint 10.244.2.10.
func graceScenario(t *testing.T) (before, after *proxykit.Snapshot) {
	tcp := &servicemap.Service{Namespace: "ns", Name: "web", ClusterIPs: addrs("10.96.0.10"),
		Ports: []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80}}}
	udp := &servicemap.Service{Namespace: "ns", Name: "dns", ClusterIPs: addrs("10.96.0.53"),
		Ports: []servicemap.Port{{Name: "dns", Protocol: servicemap.UDP, Port: 53}}}
	http := endpoints.Port{Name: "http", Protocol: servicemap.TCP, Port: 8080}
	dns := endpoints.Port{Name: "dns", Protocol: servicemap.UDP, Port: 53}
	both := []*endpoints.Slice{
		slice("web", http, ep("10.244.1.10", "node-a", 0), ep("10.244.2.10", "node-b", 0)),
		slice("dns", dns, ep("10.244.1.10", "node-a", 0), ep("10.244.2.10", "node-b", 0)),
	}
	one := []*endpoints.Slice{
		slice("web", http, ep("10.244.1.10", "node-a", 0)),
		slice("dns", dns, ep("10.244.1.10", "node-a", 0)),
	}
	svcs := []*servicemap.Service{tcp, udp}
	return snapshot(t, svcs, both), snapshot(t, svcs, one)
}

var (
	webKey  = Key{Addr: netip.MustParseAddr("10.96.0.10"), Proto: servicemap.TCP, Port: 80}
	dnsKey  = Key{Addr: netip.MustParseAddr("10.96.0.53"), Proto: servicemap.UDP, Port: 53}
	leaving = netip.MustParseAddrPort("10.244.2.10:8080")
)

func realsOf(t *testing.T, h *Fake, k Key) string {
	t.Helper()
	rs, err := h.Reals(t.Context(), k)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, r := range rs {
		parts = append(parts, r.AddrPort().String()+"/"+itoa(r.Weight))
	}
	return strings.Join(parts, " ")
}

func TestGracefulTermination(t *testing.T) {
	before, after := graceScenario(t)
	const grace = 10 * time.Minute
	cfg := testConfig
	cfg.GracePeriod = grace
	tests := []struct {
		name string
		// step runs after the endpoint left with one connection open; it
		// returns the real servers of web wanted after one more sync.
		step func(h *Fake, c *clock) string
	}{
		{"kept quiesced while connected", func(h *Fake, c *clock) string {
			c.advance(grace - time.Second)
			return "10.244.1.10:8080/1 10.244.2.10:8080/0"
		}},
		{"deleted once the connections end", func(h *Fake, c *clock) string {
			_ = h.SetConns(webKey, leaving, 0, 0)
			return "10.244.1.10:8080/1"
		}},
		{"deleted after the grace period", func(h *Fake, c *clock) string {
			c.advance(grace)
			return "10.244.1.10:8080/1"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, c := NewFake(), &clock{time.Unix(1000, 0)}
			s := newFakeSyncer(t, h, nftables.NewFake(), c, cfg)
			mustSync(t, s, before)
			if err := h.SetConns(webKey, leaving, 1, 2); err != nil {
				t.Fatal(err)
			}
			dnsLeaving := netip.AddrPortFrom(leaving.Addr(), 53)
			if err := h.SetConns(dnsKey, dnsLeaving, 0, 5); err != nil {
				t.Fatal(err)
			}
			mustSync(t, s, after)
			if got, want := realsOf(t, h, webKey), "10.244.1.10:8080/1 10.244.2.10:8080/0"; got != want {
				t.Fatalf("TCP after removal: %s, want %s (quiesced)", got, want)
			}
			if got, want := realsOf(t, h, dnsKey), "10.244.1.10:53/1"; got != want {
				t.Fatalf("UDP after removal: %s, want %s (deleted at once)", got, want)
			}
			want := tt.step(h, c)
			mustSync(t, s, after)
			if got := realsOf(t, h, webKey); got != want {
				t.Errorf("TCP real servers = %s, want %s", got, want)
			}
		})
	}
}

// An endpoint that comes back while quiesced gets its weight back.
func TestQuiescedEndpointReturns(t *testing.T) {
	before, after := graceScenario(t)
	h, c := NewFake(), &clock{time.Unix(1000, 0)}
	s := newFakeSyncer(t, h, nftables.NewFake(), c, testConfig)
	mustSync(t, s, before)
	_ = h.SetConns(webKey, leaving, 1, 0)
	mustSync(t, s, after)
	mustSync(t, s, before)
	if got, want := realsOf(t, h, webKey), "10.244.1.10:8080/1 10.244.2.10:8080/1"; got != want {
		t.Errorf("real servers = %s, want %s", got, want)
	}
	if s.Pending() != 0 {
		t.Errorf("Pending = %d, want 0", s.Pending())
	}
}

// A restarted Syncer finds the quiesced real server in the kernel and
// keeps it quiesced: not re-weighted, not deleted while connected, and
// deleted a grace period after the restart.
func TestRestartKeepsQuiesced(t *testing.T) {
	before, after := graceScenario(t)
	const grace = 10 * time.Minute
	cfg := testConfig
	cfg.GracePeriod = grace
	h, c := NewFake(), &clock{time.Unix(1000, 0)}
	mustSync(t, newFakeSyncer(t, h, nftables.NewFake(), c, cfg), before)
	_ = h.SetConns(webKey, leaving, 3, 0)
	mustSync(t, newFakeSyncer(t, h, nftables.NewFake(), c, cfg), after)
	c.advance(grace / 2)

	restarted := newFakeSyncer(t, h, nftables.NewFake(), c, cfg)
	mustSync(t, restarted, after)
	quiesced := "10.244.1.10:8080/1 10.244.2.10:8080/0"
	if got := realsOf(t, h, webKey); got != quiesced {
		t.Fatalf("after restart: %s, want %s", got, quiesced)
	}
	if restarted.Pending() != 1 {
		t.Errorf("Pending = %d, want 1", restarted.Pending())
	}
	c.advance(grace - time.Second) // the old Syncer's grace is over, not the new one's
	mustSync(t, restarted, after)
	if got := realsOf(t, h, webKey); got != quiesced {
		t.Fatalf("before the grace period since the restart: %s, want %s", got, quiesced)
	}
	c.advance(time.Second)
	mustSync(t, restarted, after)
	if got, want := realsOf(t, h, webKey), "10.244.1.10:8080/1"; got != want {
		t.Errorf("after the grace period: %s, want %s", got, want)
	}
}
