// Command demo shows proxykit's main job with a real kernel: it builds an
// isolated network-namespace topology (a client, two nodes, four pods),
// serves a Service with three weighted endpoints through the nftables
// backend on node1, sends traffic through the ClusterIP and a NodePort,
// prints how the connections spread over the endpoints, and tears
// everything down. It needs root; nothing outside its namespaces changes.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/internal/netnstest"
	"github.com/proxykit/proxykit/nftables"
	"github.com/proxykit/proxykit/servicemap"
)

func main() {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "demo: needs root, to create network namespaces and program nftables in them")
		os.Exit(1)
	}
	if err := run(context.Background(), os.Stdout, 300); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

var (
	clusterIP = netip.MustParseAddr("10.96.0.10")
	weights   = map[string]uint16{"pod-a": 1, "pod-b": 2, "pod-c": 3}
)

// run builds the topology, programs the service, probes it with n
// connections per frontend and prints the spread.
func run(ctx context.Context, out io.Writer, n int) (err error) {
	tp, err := netnstest.Build()
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, tp.Close()) }()
	fmt.Fprintf(out, "topology: client %s -> node1 %s (nftables) -> pods a, b (node1) and c, d (node2)\n", tp.ClientV4, tp.Node1Addrs[2])

	svc, slice := webService(tp)
	syncer, err := newSyncer(tp)
	if err != nil {
		return err
	}
	node := proxykit.Node{Name: "node1", Addresses: tp.Node1Addrs}
	p := proxykit.New(node, syncer)
	if err := p.OnServiceUpdate(nil, svc); err != nil {
		return err
	}
	if err := p.OnSliceUpdate(slice); err != nil {
		return err
	}
	if err := p.SyncNow(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "service demo/web: ClusterIP %s:80, NodePort 30080; endpoints pod-a (weight 1), pod-b (2), pod-c (3)\n\n", clusterIP)
	printRule(out, p.Snapshot(), demoConfig(tp))

	frontends := []struct {
		name string
		dst  netip.AddrPort
	}{
		{"ClusterIP " + clusterIP.String() + ":80", netip.AddrPortFrom(clusterIP, 80)},
		{"NodePort " + tp.Node1Addrs[2].String() + ":30080", netip.AddrPortFrom(tp.Node1Addrs[2], 30080)},
	}
	for _, fe := range frontends {
		counts, err := probe(ctx, tp, fe.dst, n)
		if err != nil {
			return err
		}
		printCounts(out, fe.name, counts, n)
	}
	return syncer.Cleanup(ctx)
}

func webService(tp *netnstest.Topology) (*servicemap.Service, *endpoints.Slice) {
	svc := &servicemap.Service{
		Namespace: "demo", Name: "web", Type: servicemap.NodePort,
		ClusterIPs: []netip.Addr{clusterIP},
		Ports:      []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80, NodePort: 30080}},
	}
	slice := &endpoints.Slice{Namespace: "demo", Service: "web", Name: "web-1",
		Ports: []endpoints.Port{{Name: "http", Protocol: servicemap.TCP, Port: netnstest.TCPPort}}}
	for _, name := range []string{"pod-a", "pod-b", "pod-c"} {
		pod := tp.Pod(name)
		slice.Endpoints = append(slice.Endpoints, endpoints.Endpoint{
			Addr: pod.V4, Ready: true, Serving: true, NodeName: pod.Node, Weight: weights[name]})
	}
	return svc, slice
}

func demoConfig(tp *netnstest.Topology) nftables.Config {
	return nftables.Config{ClusterCIDRs: tp.ClusterCIDRs}
}

// newSyncer returns an nftables backend that programs node1.
func newSyncer(tp *netnstest.Topology) (*nftables.Syncer, error) {
	conn, err := nftables.NewConn(tp.Node1.Fd())
	if err != nil {
		return nil, err
	}
	return nftables.NewSyncer(demoConfig(tp), nftables.WithConn(conn))
}

// printRule shows how the service is programmed, as nft prints it: its
// frontends go to a pick chain, which DNATs through the backends map, a
// slot per unit of weight.
func printRule(out io.Writer, snap *proxykit.Snapshot, cfg nftables.Config) {
	rs, err := nftables.Render(snap, cfg)
	if err != nil {
		return
	}
	t := rs.Tables[0]
	fmt.Fprintln(out, "the service in table ip proxykit:")
	for _, s := range t.Sets {
		if s.Name == "service-ips" || s.Name == "backends" {
			fmt.Fprint(out, block(t, "map", s.Name))
		}
	}
	for _, c := range t.Chains {
		if strings.HasPrefix(c.Name, "pick-") {
			fmt.Fprint(out, block(t, "chain", c.Name))
		}
	}
	fmt.Fprintln(out)
}

// block returns the text of one map or chain of t.
func block(t *nftables.Table, kind, name string) string {
	text := (&nftables.Ruleset{Tables: []*nftables.Table{t}}).String()
	start := strings.Index(text, "\t"+kind+" "+name+" {")
	if start < 0 {
		return ""
	}
	end := strings.Index(text[start:], "\t}\n")
	return text[start : start+end+3]
}

// probe opens n TCP connections from the client and counts the servers.
func probe(ctx context.Context, tp *netnstest.Topology, dst netip.AddrPort, n int) (map[string]int, error) {
	counts := map[string]int{}
	for range n {
		r := tp.Client.Probe(ctx, "tcp", dst, netnstest.ProbeOptions{Timeout: 2 * time.Second})
		if r.Outcome != netnstest.Reply {
			return nil, fmt.Errorf("connect to %s: %v", dst, r)
		}
		counts[r.Server]++
	}
	return counts, nil
}

func printCounts(out io.Writer, name string, counts map[string]int, n int) {
	fmt.Fprintf(out, "%d connections through the %s:\n", n, name)
	var sum uint16
	for _, w := range weights {
		sum += w
	}
	for _, pod := range []string{"pod-a", "pod-b", "pod-c"} {
		c := counts[pod]
		fmt.Fprintf(out, "  %-6s %4d  %5.1f%%  (expected %4.1f%%)  %s\n", pod, c, 100*float64(c)/float64(n),
			100*float64(weights[pod])/float64(sum), strings.Repeat("#", c*40/n))
	}
	fmt.Fprintln(out)
}
