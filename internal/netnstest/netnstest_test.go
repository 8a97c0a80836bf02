//go:build linux

package netnstest

import (
	"context"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// dropTimeout is the short timeout of drop assertions (TESTING.md), and
// slack what a probe may take beyond its timeout on a loaded CI machine.
const (
	dropTimeout = 300 * time.Millisecond
	slack       = 700 * time.Millisecond
)

// ipFamily selects the IPv4 or IPv6 address of each party.
type ipFamily struct {
	name string
	pick func(v4, v6 netip.Addr) netip.Addr
}

var families = []ipFamily{
	{"IPv4", func(v4, _ netip.Addr) netip.Addr { return v4 }},
	{"IPv6", func(_, v6 netip.Addr) netip.Addr { return v6 }},
}

// pod, client and node return the family's address of each party.
func (f ipFamily) pod(p *Pod) netip.Addr              { return f.pick(p.V4, p.V6) }
func (f ipFamily) client(tp *Topology) netip.Addr     { return f.pick(tp.ClientV4, tp.ClientV6) }
func (f ipFamily) node(addrs []netip.Addr) netip.Addr { return f.pick(addrs[0], addrs[1]) }

// blackhole makes ns drop packets to p silently.
func blackhole(t *testing.T, ns *NS, p netip.Prefix) {
	t.Helper()
	r := &netlink.Route{Dst: ipNet(p), Type: unix.RTN_BLACKHOLE, Family: family(p.Addr())}
	if err := ns.nl.RouteAdd(r); err != nil {
		t.Fatalf("add blackhole route %s in %q: %v", p, ns.Name, err)
	}
}

// wantReply fails t unless r is a Reply from server seen from src (any
// port when src's port is 0).
func wantReply(t *testing.T, r Result, server string, src netip.AddrPort) {
	t.Helper()
	if r.Outcome != Reply || r.Server != server || r.Source.Addr() != src.Addr() ||
		(src.Port() != 0 && r.Source.Port() != src.Port()) {
		t.Errorf("got %v, want Reply from %s (source %s)", r, server, src)
	}
}

func TestNoRulesBaseline(t *testing.T) {
	Require(t)
	tp := New(t)
	ctx := t.Context()
	podA, podB, podC, podD := tp.Pod("pod-a"), tp.Pod("pod-b"), tp.Pod("pod-c"), tp.Pod("pod-d")
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			at := func(p *Pod, port uint16) netip.AddrPort { return netip.AddrPortFrom(f.pod(p), port) }
			from := func(a netip.Addr) netip.AddrPort { return netip.AddrPortFrom(a, 0) }
			tests := []struct {
				name   string
				ns     *NS
				proto  string
				dst    netip.AddrPort
				server string
				src    netip.Addr
			}{
				{"client to local pod", tp.Client, "tcp", at(podA, TCPPort), "pod-a", f.client(tp)},
				{"client to remote pod", tp.Client, "tcp", at(podC, TCPPort), "pod-c", f.client(tp)},
				{"pod to pod across nodes", podA.NS, "tcp", at(podC, TCPPort), "pod-c", f.pod(podA)},
				{"pod to pod on one node", podA.NS, "tcp", at(podB, TCPPort), "pod-b", f.pod(podA)},
				{"node1 to its pod", tp.Node1, "tcp", at(podA, TCPPort), "pod-a", f.node(tp.Node1Addrs)},
				{"node2 to a node1 pod", tp.Node2, "tcp", at(podB, TCPPort), "pod-b", f.node(tp.Node2Addrs)},
				{"udp client to remote pod", tp.Client, "udp", at(podD, UDPPort), "pod-d", f.client(tp)},
				{"udp pod to pod", podD.NS, "UDP", at(podA, UDPPort), "pod-a", f.pod(podD)},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					wantReply(t, tt.ns.Probe(ctx, tt.proto, tt.dst, ProbeOptions{}), tt.server, from(tt.src))
				})
			}
		})
	}
}

func TestRefusedUnreachableTimeout(t *testing.T) {
	Require(t)
	tp := New(t)
	ctx := t.Context()
	dropped := []netip.Addr{netip.MustParseAddr("203.0.113.99"), netip.MustParseAddr("2001:db8:ffff::99")}
	for _, a := range dropped {
		blackhole(t, tp.Node1, netip.PrefixFrom(a, a.BitLen()))
	}
	unrouted := []netip.Addr{netip.MustParseAddr("10.244.1.99"), netip.MustParseAddr("fd00:244:1::99")}
	for _, f := range families {
		node1 := f.node(tp.Node1Addrs)
		pod := f.pod(tp.Pod("pod-a"))
		tests := []struct {
			proto string
			dst   netip.AddrPort
			want  Outcome
		}{
			{"tcp", netip.AddrPortFrom(node1, TCPPort), Refused},
			{"udp", netip.AddrPortFrom(node1, UDPPort), Refused},
			{"tcp", netip.AddrPortFrom(pod, 9), Refused},
			{"udp", netip.AddrPortFrom(pod, 9), Refused},
			{"tcp", netip.AddrPortFrom(f.pick(unrouted[0], unrouted[1]), TCPPort), Unreachable},
			{"udp", netip.AddrPortFrom(f.pick(unrouted[0], unrouted[1]), UDPPort), Unreachable},
			{"tcp", netip.AddrPortFrom(f.pick(dropped[0], dropped[1]), TCPPort), Timeout},
			{"udp", netip.AddrPortFrom(f.pick(dropped[0], dropped[1]), UDPPort), Timeout},
		}
		for _, tt := range tests {
			t.Run(f.name+"/"+tt.proto+"/"+tt.want.String()+"/"+tt.dst.String(), func(t *testing.T) {
				start := time.Now()
				r := tp.Client.Probe(ctx, tt.proto, tt.dst, ProbeOptions{Timeout: dropTimeout})
				took := time.Since(start)
				if r.Outcome != tt.want {
					t.Fatalf("got %v, want %v", r, tt.want)
				}
				limit := slack // an answer comes at once
				if tt.want == Timeout {
					limit += dropTimeout
				}
				if took > limit || (tt.want == Timeout && took < dropTimeout) {
					t.Errorf("took %v, want %v", took, limit)
				}
			})
		}
	}
}

func TestDialKeepsConnection(t *testing.T) {
	Require(t)
	tp := New(t)
	ctx := t.Context()
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			c, err := tp.Client.Dial(ctx, netip.AddrPortFrom(f.pod(tp.Pod("pod-c")), TCPPort))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			local := netip.MustParseAddrPort(c.LocalAddr().String())
			done := make(chan struct{})
			go func() { // the connection works from another goroutine
				defer close(done)
				for range 3 {
					wantReply(t, Exchange(ctx, c, 0), "pod-c", local)
				}
			}()
			<-done
		})
	}
}

func TestFixedLocalPort(t *testing.T) {
	Require(t)
	tp := New(t)
	ctx := t.Context()
	for _, f := range families {
		for _, proto := range []string{"tcp", "udp"} {
			t.Run(f.name+"/"+proto, func(t *testing.T) {
				dst := netip.AddrPortFrom(f.pod(tp.Pod("pod-b")), TCPPort)
				src := netip.AddrPortFrom(f.client(tp), 40000)
				for range 3 { // the port is reusable at once
					r := tp.Client.Probe(ctx, proto, dst, ProbeOptions{LocalPort: 40000, LocalAddr: src.Addr()})
					wantReply(t, r, "pod-b", src)
				}
			})
		}
	}
}

func TestParallelTopologiesAreIsolated(t *testing.T) {
	Require(t)
	for _, tc := range []struct{ dropped, alive string }{{"pod-c", "pod-d"}, {"pod-d", "pod-c"}} {
		t.Run("drop "+tc.dropped, func(t *testing.T) {
			t.Parallel()
			tp := New(t)
			ctx := t.Context()
			for _, f := range families {
				a := f.pod(tp.Pod(tc.dropped))
				blackhole(t, tp.Node1, netip.PrefixFrom(a, a.BitLen()))
			}
			for _, f := range families {
				src := netip.AddrPortFrom(f.client(tp), 0)
				alive := tp.Client.Probe(ctx, "tcp", netip.AddrPortFrom(f.pod(tp.Pod(tc.alive)), TCPPort), ProbeOptions{})
				wantReply(t, alive, tc.alive, src)
				dst := netip.AddrPortFrom(f.pod(tp.Pod(tc.dropped)), TCPPort)
				if r := tp.Client.Probe(ctx, "tcp", dst, ProbeOptions{Timeout: dropTimeout}); r.Outcome != Timeout {
					t.Errorf("%s: got %v, want Timeout", tc.dropped, r)
				}
			}
		})
	}
}

func TestCleanupRemovesNamespaces(t *testing.T) {
	Require(t)
	var names []string
	t.Run("build", func(t *testing.T) {
		start := time.Now()
		tp := New(t)
		t.Logf("New took %v", time.Since(start))
		for _, ns := range []*NS{tp.Client, tp.Node1, tp.Node2} {
			names = append(names, ns.Name)
		}
		for _, p := range tp.Pods {
			names = append(names, p.NS.Name)
		}
		for _, n := range names {
			if _, err := os.Stat(filepath.Join(netnsDir, n)); err != nil {
				t.Errorf("namespace %q missing while the topology is up: %v", n, err)
			}
		}
	})
	if len(names) != 7 {
		t.Fatalf("got %d namespaces, want 7", len(names))
	}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(netnsDir, n)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("namespace %q still exists after cleanup (stat: %v)", n, err)
		}
	}
}

func TestSysctlsArePerNamespace(t *testing.T) {
	Require(t)
	tp := New(t)
	read := func(ns *NS, key string) string {
		var v string
		err := ns.Do(func() error {
			b, err := os.ReadFile(filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/")))
			v = strings.TrimSpace(string(b))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tt := range []struct {
		ns        *NS
		key, want string
	}{
		{tp.Node1, "net.ipv4.ip_forward", "1"},
		{tp.Node2, "net.ipv6.conf.all.forwarding", "1"},
		{tp.Client, "net.ipv4.ip_forward", "0"},
		{tp.Pod("pod-a").NS, "net.ipv4.icmp_ratemask", "0"},
		{tp.Pod("pod-a").NS, "net.ipv6.icmp.ratemask", ""},
		{tp.Node1, "net.ipv4.conf.to-client.rp_filter", "0"},
		{tp.Node1, "net.ipv6.conf.veth-pod-a.accept_dad", "0"},
	} {
		if got := read(tt.ns, tt.key); got != tt.want {
			t.Errorf("%s in %s = %q, want %q", tt.key, tt.ns, got, tt.want)
		}
	}
}

func TestRejectsAreNotRateLimited(t *testing.T) {
	Require(t)
	tp := New(t)
	ctx := t.Context()
	for _, f := range families {
		for _, dst := range []netip.AddrPort{
			netip.AddrPortFrom(f.node(tp.Node1Addrs), 9),  // answered by node1
			netip.AddrPortFrom(f.pod(tp.Pod("pod-c")), 9), // answered by pod-c, forwarded by both nodes
		} {
			for i := range 100 {
				if r := tp.Client.Probe(ctx, "udp", dst, ProbeOptions{Timeout: dropTimeout}); r.Outcome != Refused {
					t.Fatalf("probe %d to %s: got %v, want Refused", i, dst, r)
				}
			}
		}
	}
}

func TestDo(t *testing.T) {
	Require(t)
	tp := New(t)
	nsOf := func() string {
		l, err := os.Readlink("/proc/thread-self/ns/net")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	host := nsOf()
	var inside string
	boom := errors.New("boom")
	if err := tp.Node1.Do(func() error { inside = nsOf(); return boom }); !errors.Is(err, boom) {
		t.Errorf("Do returned %v, want fn's error", err)
	}
	if inside == host || inside == "" {
		t.Errorf("fn ran in %q, want a namespace other than the test's %q", inside, host)
	}
	if err := tp.Node1.Do(func() error { runtime.Goexit(); return nil }); err == nil {
		t.Error("Do with runtime.Goexit returned nil, want an error")
	}
	defer func() {
		if p := recover(); p != "fn panicked" {
			t.Errorf("recovered %v, want fn's panic", p)
		}
	}()
	_ = tp.Node1.Do(func() error { panic("fn panicked") })
	t.Error("Do did not re-raise fn's panic")
}

// Build and Close, for programs: everything is removed after Close.
func TestBuildClose(t *testing.T) {
	Require(t)
	tp, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	if r := tp.Client.Probe(context.Background(), "tcp", netip.AddrPortFrom(tp.Pod("pod-a").V4, TCPPort), ProbeOptions{}); r.Outcome != Reply {
		t.Errorf("probe before Close: %v", r)
	}
	name := tp.Node1.Name
	if err := tp.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/run/netns/" + name); !os.IsNotExist(err) {
		t.Errorf("namespace %s still exists after Close: %v", name, err)
	}
}
