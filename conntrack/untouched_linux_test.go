//go:build linux

package conntrack

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// SEMANTICS §9 bullet 3, counted in a real table: only UDP flows to the
// service's frontends whose reply source is not an endpoint go. TCP and
// SCTP flows (even to the same address and port), flows to other
// addresses, to pods directly, to a node address on another port and to
// the NodePort on an address that is not the node's stay. A restarted
// program with the same state deletes nothing.
func TestOnlyStaleFlowsGo(t *testing.T) {
	r := newRig(t, true)
	c := kernelConn(t, r.tp.Node1)
	podC := r.tp.Pod("pod-c").V4
	client := func(i int) string { return fmt.Sprintf("192.0.2.100:%d", 1000+i) }
	ep := netip.AddrPortFrom(podC, 8080).String()
	gone := netip.AddrPortFrom(goneEP, 8080).String()
	groups := []struct {
		name  string
		stale bool
		make  func(i int) Flow
	}{
		{"UDP ClusterIP, endpoint gone", true, func(i int) Flow { return nat(UDP, client(i), "10.96.0.53:53", gone) }},
		{"UDP NodePort on a node address, endpoint gone", true, func(i int) Flow { return nat(UDP, client(i), "192.0.2.1:30053", gone) }},
		{"UDP NodePort, other node address, endpoint gone", true, func(i int) Flow { return nat(UDP, client(i), "198.51.100.1:30053", gone) }},
		{"UDP ClusterIP, untranslated", true, func(i int) Flow { return nat(UDP, client(i), "10.96.0.53:53", "10.96.0.53:53") }},
		{"UDP ClusterIP, endpoint in use", false, func(i int) Flow { return nat(UDP, client(i), "10.96.0.53:53", ep) }},
		{"UDP NodePort, endpoint in use", false, func(i int) Flow { return nat(UDP, client(i), "192.0.2.1:30053", ep) }},
		{"TCP to the ClusterIP and port", false, func(i int) Flow { return nat(TCP, client(i), "10.96.0.53:53", gone) }},
		{"TCP to the TCP service", false, func(i int) Flow { return nat(TCP, client(i), "10.96.0.80:80", gone) }},
		{"SCTP to the ClusterIP and port", false, func(i int) Flow { return nat(SCTP, client(i), "10.96.0.53:53", gone) }},
		{"UDP to another ClusterIP", false, func(i int) Flow { return nat(UDP, client(i), "10.96.7.7:53", gone) }},
		{"UDP to the ClusterIP, other port", false, func(i int) Flow { return nat(UDP, client(i), "10.96.0.53:54", gone) }},
		{"UDP to a pod directly", false, func(i int) Flow { return nat(UDP, client(i), ep, ep) }},
		{"UDP to a node address, not the NodePort", false, func(i int) Flow { return nat(UDP, client(i), "192.0.2.1:53", gone) }},
		{"UDP to the NodePort, not a node address", false, func(i int) Flow { return nat(UDP, client(i), "198.51.100.9:30053", gone) }},
	}
	const per = 25
	var all []Flow
	wantStale := 0
	for g, grp := range groups {
		for i := range per {
			all = append(all, grp.make(g*per+i))
		}
		if grp.stale {
			wantStale += per
		}
	}
	must(t, createFlows(t.Context(), c, all, 600))

	web := &servicemap.Service{Namespace: "ns", Name: "web", ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.80")},
		Ports: []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80}}}
	webSlice := &endpoints.Slice{Namespace: "ns", Service: "web", Name: "web-1",
		Ports:     []endpoints.Port{{Name: "http", Protocol: servicemap.TCP, Port: 8080}},
		Endpoints: []endpoints.Endpoint{{Addr: podC, Ready: true, NodeName: "node2"}}}
	load := func(p *proxykit.Proxy) {
		must(t, p.OnServiceUpdate(nil, dnsService(servicemap.NodePort)))
		must(t, p.OnSliceUpdate(r.dnsSlice("pod-c")))
		must(t, p.OnServiceUpdate(nil, web))
		must(t, p.OnSliceUpdate(webSlice))
	}
	load(r.p)
	res := r.sync(t)
	if len(res) != 1 || !res[0].Full || res[0].Deleted != wantStale || res[0].Stale != wantStale || res[0].Failed != 0 {
		t.Errorf("first sync: reconciles %+v, want one full deleting %d", res, wantStale)
	}
	left := tiDump(t, r.tp.Node1)
	for g, grp := range groups {
		kept := 0
		for i := range per {
			want := grp.make(g*per + i)
			kept += countBy(left, func(f Flow) bool { return f.Proto == want.Proto && f.Orig == want.Orig && f.Reply == want.Reply })
		}
		if want := per * boolInt(!grp.stale); kept != want {
			t.Errorf("%s: %d flows left, want %d", grp.name, kept, want)
		}
	}
	if want := len(all) - wantStale; len(left) != want {
		t.Errorf("%d flows left in the table, want %d", len(left), want)
	}

	// A restart: a fresh Proxy and fresh Syncers, a full first sync.
	r.p = proxykit.New(proxykit.Node{Name: "node1", Addresses: r.tp.Node1Addrs}, r.syncer(t, true))
	load(r.p)
	res = r.sync(t)
	if len(res) != 1 || !res[0].Full || res[0].Stale != 0 || res[0].Deleted != 0 {
		t.Errorf("restart: reconciles %+v, want one full deleting nothing", res)
	}
	if n := len(tiDump(t, r.tp.Node1)); n != len(left) {
		t.Errorf("restart: %d flows in the table, want %d", n, len(left))
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
