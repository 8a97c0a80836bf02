//go:build linux

package nftables

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/internal/netnstest"
	"github.com/proxykit/proxykit/servicemap"
)

// SEMANTICS §11: an established TCP connection through the VIP keeps
// working when a fresh Syncer (a restarted program) takes the table over
// and re-syncs, even with a changed snapshot.
func TestRestartKeepsEstablishedConnections(t *testing.T) {
	tp := netnstest.New(t)
	cfg := Config{ClusterCIDRs: tp.ClusterCIDRs}
	vip := netip.MustParseAddr("10.96.0.77")
	svc := &servicemap.Service{Namespace: "ns", Name: "web", ClusterIPs: []netip.Addr{vip},
		Ports: []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80}}}
	slice := func(pods ...string) *endpoints.Slice {
		s := &endpoints.Slice{Namespace: "ns", Service: "web", Name: "web-1",
			Ports: []endpoints.Port{{Name: "http", Protocol: servicemap.TCP, Port: netnstest.TCPPort}}}
		for _, p := range pods {
			s.Endpoints = append(s.Endpoints, endpoints.Endpoint{Addr: tp.Pod(p).V4, Ready: true, NodeName: tp.Pod(p).Node})
		}
		return s
	}
	node := proxykit.Node{Name: "node1", Addresses: tp.Node1Addrs}
	sync := func(eps ...string) {
		t.Helper()
		conn, err := NewConn(tp.Node1.Fd()) // a fresh Conn and Syncer each time: a restart
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewSyncer(cfg, WithConn(conn))
		if err != nil {
			t.Fatal(err)
		}
		snap, err := proxykit.NewSnapshot(node, []*servicemap.Service{svc}, []*endpoints.Slice{slice(eps...)})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Sync(context.Background(), snap); err != nil {
			t.Fatal(err)
		}
	}
	sync("pod-a")
	ctx := context.Background()
	c, err := tp.Client.Dial(ctx, netip.AddrPortFrom(vip, 80))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first := netnstest.Exchange(ctx, c, 2*time.Second)
	if first.Outcome != netnstest.Reply || first.Server != "pod-a" {
		t.Fatalf("before the restart: %v", first)
	}
	sync("pod-a")          // restart, same state
	sync("pod-a", "pod-c") // restart with a new endpoint
	for i := range 3 {
		if r := netnstest.Exchange(ctx, c, 2*time.Second); r.Outcome != netnstest.Reply || r.Server != "pod-a" {
			t.Fatalf("exchange %d after restarts: %v (the connection must stay on pod-a)", i, r)
		}
	}
}
