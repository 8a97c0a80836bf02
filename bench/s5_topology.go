package bench

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The data-plane topology of scenario 5, IPv4 only, in three anonymous
// network namespaces (a small copy of the root module's internal/netnstest,
// which this module cannot import):
//
//	client 192.0.2.100/24 ── eth0 ═ to-client ── node 192.0.2.1/24
//	                                              node 172.31.0.1/24 ── to-pod ═ eth0 ── pod 172.31.0.2/24
//	                                                                                        + endpoint addresses /32
//
// The client's default route and the pod's lead to the node, which
// forwards and routes 10.128.0.0/9 (every endpoint of the synthetic
// cluster) to the pod. The rules under test go into the node. The pod
// holds the addresses of the endpoints that a connection is expected to
// reach and one TCP listener on 0.0.0.0:s5PodPort. Neighbor entries are
// permanent: no packet waits for ARP.
var (
	s5Client     = netip.MustParsePrefix("192.0.2.100/24")
	s5NodeClient = netip.MustParsePrefix("192.0.2.1/24")
	s5NodePod    = netip.MustParsePrefix("172.31.0.1/24")
	s5Pod        = netip.MustParsePrefix("172.31.0.2/24")
	s5Endpoints  = netip.MustParsePrefix("10.128.0.0/9")
)

// s5PodPort is the endpoints' port in Cluster.
const s5PodPort = 8080

// s5Sysctls apply to every namespace of the topology; s5NodeSysctls to the
// node in addition.
var (
	s5Sysctls = [][2]string{
		{"net.ipv4.conf.all.rp_filter", "0"},
		{"net.ipv4.conf.default.rp_filter", "0"},
		{"net.ipv4.conf.all.accept_redirects", "0"},
		{"net.ipv4.conf.default.accept_redirects", "0"},
	}
	s5NodeSysctls = [][2]string{
		{"net.ipv4.ip_forward", "1"},
		{"net.ipv4.conf.all.send_redirects", "0"},
		{"net.ipv4.conf.default.send_redirects", "0"},
	}
)

// s5Topo is a client, a node and a pod.
type s5Topo struct {
	Client, Node, Pod *NetNS

	ln       net.Listener
	served   sync.WaitGroup
	nextPort int // the client's next source port (see nextSourcePort)
	closers  []func() error
}

// newS5Topo builds the topology with podAddrs on the pod and starts the
// pod's listener. On error nothing is left behind.
func newS5Topo(podAddrs []netip.Addr) (*s5Topo, error) {
	t := &s5Topo{nextPort: s5FirstPort}
	if err := t.build(podAddrs); err != nil {
		return nil, errors.Join(err, t.Close())
	}
	return t, nil
}

// Close stops the listener and releases the namespaces; it returns every
// error.
func (t *s5Topo) Close() error {
	var errs []error
	for i := len(t.closers) - 1; i >= 0; i-- {
		errs = append(errs, t.closers[i]())
	}
	t.closers = nil
	return errors.Join(errs...)
}

func (t *s5Topo) build(podAddrs []netip.Addr) error {
	for _, p := range []**NetNS{&t.Client, &t.Node, &t.Pod} {
		ns, err := NewNetNS()
		if err != nil {
			return err
		}
		t.closers = append(t.closers, ns.Close)
		*p = ns
	}
	handles := map[*NetNS]*netlink.Handle{}
	defer func() {
		for _, h := range handles {
			h.Close()
		}
	}()
	for _, ns := range []*NetNS{t.Client, t.Node, t.Pod} {
		kv := s5Sysctls
		if ns == t.Node {
			kv = append(append([][2]string(nil), kv...), s5NodeSysctls...)
		}
		if err := setSysctls(ns, kv); err != nil {
			return err
		}
		h, err := netlink.NewHandleAt(netns.NsHandle(ns.Fd()), unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("netlink handle: %w", err)
		}
		handles[ns] = h
		lo, err := h.LinkByName("lo")
		if err == nil {
			err = h.LinkSetUp(lo)
		}
		if err != nil {
			return fmt.Errorf("loopback up: %w", err)
		}
	}
	pairs := [][2]*s5End{
		{{h: handles[t.Node], ns: t.Node, link: "to-client", addrs: []netip.Prefix{s5NodeClient}},
			{h: handles[t.Client], ns: t.Client, link: "eth0", addrs: []netip.Prefix{s5Client}}},
		{{h: handles[t.Node], ns: t.Node, link: "to-pod", addrs: []netip.Prefix{s5NodePod}},
			{h: handles[t.Pod], ns: t.Pod, link: "eth0", addrs: []netip.Prefix{s5Pod}}},
	}
	var ends []*s5End
	for i, p := range pairs {
		// The node end gets a fixed index that the peer cannot have: the
		// kernel then treats the veth's carrier change as urgent and the
		// link works at once (see netnstest's linkReady).
		if err := s5Wire(p[0], p[1], 100+i); err != nil {
			return err
		}
		ends = append(ends, p[0], p[1])
	}
	for _, p := range pairs {
		if err := p[0].neighbor(p[1]); err != nil {
			return err
		}
		if err := p[1].neighbor(p[0]); err != nil {
			return err
		}
	}
	if err := s5WaitUp(ends, 5*time.Second); err != nil {
		return err
	}
	podEth, err := handles[t.Pod].LinkByName("eth0")
	if err != nil {
		return err
	}
	for _, a := range podAddrs {
		if err := handles[t.Pod].AddrAdd(podEth, &netlink.Addr{IPNet: s5IPNet(netip.PrefixFrom(a, 32))}); err != nil {
			return fmt.Errorf("pod address %s: %w", a, err)
		}
	}
	routes := []struct {
		h   *netlink.Handle
		dst netip.Prefix
		gw  netip.Addr
	}{
		{handles[t.Client], netip.MustParsePrefix("0.0.0.0/0"), s5NodeClient.Addr()},
		{handles[t.Pod], netip.MustParsePrefix("0.0.0.0/0"), s5NodePod.Addr()},
		{handles[t.Node], s5Endpoints, s5Pod.Addr()},
	}
	for _, r := range routes {
		if err := r.h.RouteAdd(&netlink.Route{Dst: s5IPNet(r.dst), Gw: r.gw.AsSlice()}); err != nil {
			return fmt.Errorf("route %s via %s: %w", r.dst, r.gw, err)
		}
	}
	return t.listen()
}

// listen starts the pod's TCP listener and a goroutine that accepts and
// closes every connection.
func (t *s5Topo) listen() error {
	err := inNetNS(t.Pod, func() error {
		var err error
		t.ln, err = net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", s5PodPort))
		return err
	})
	if err != nil {
		return fmt.Errorf("pod listener: %w", err)
	}
	t.served.Add(1)
	go func() {
		defer t.served.Done()
		for {
			c, err := t.ln.Accept()
			if err != nil {
				return // closed
			}
			_ = c.Close()
		}
	}()
	t.closers = append(t.closers, func() error {
		err := t.ln.Close()
		t.served.Wait()
		return err
	})
	return nil
}

// s5End is one side of a veth pair.
type s5End struct {
	h     *netlink.Handle
	ns    *NetNS
	link  string
	addrs []netip.Prefix
	index int
	mac   net.HardwareAddr
}

// s5Wire creates the veth pair a–b (a with interface index index), brings
// both ends up and adds their addresses.
func s5Wire(a, b *s5End, index int) error {
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a.link, Index: index},
		PeerName: b.link, PeerNamespace: netlink.NsFd(b.ns.Fd())}
	if err := a.h.LinkAdd(veth); err != nil {
		return fmt.Errorf("veth %s–%s: %w", a.link, b.link, err)
	}
	for _, e := range []*s5End{a, b} {
		l, err := e.h.LinkByName(e.link)
		if err != nil {
			return fmt.Errorf("link %s: %w", e.link, err)
		}
		e.index, e.mac = l.Attrs().Index, l.Attrs().HardwareAddr
		for _, p := range e.addrs {
			if err := e.h.AddrAdd(l, &netlink.Addr{IPNet: s5IPNet(p)}); err != nil {
				return fmt.Errorf("address %s on %s: %w", p, e.link, err)
			}
		}
		if err := e.h.LinkSetUp(l); err != nil {
			return fmt.Errorf("link %s up: %w", e.link, err)
		}
	}
	return nil
}

// neighbor adds a permanent neighbor entry on e for each address of peer.
func (e *s5End) neighbor(peer *s5End) error {
	for _, p := range peer.addrs {
		n := &netlink.Neigh{LinkIndex: e.index, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT,
			IP: p.Addr().AsSlice(), HardwareAddr: peer.mac}
		if err := e.h.NeighSet(n); err != nil {
			return fmt.Errorf("neighbor %s on %s: %w", p.Addr(), e.link, err)
		}
	}
	return nil
}

// s5WaitUp polls until every end's link is operationally up.
func s5WaitUp(ends []*s5End, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, e := range ends {
		for {
			l, err := e.h.LinkByIndex(e.index)
			if err != nil {
				return fmt.Errorf("link %s: %w", e.link, err)
			}
			if l.Attrs().OperState == netlink.OperUp {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("link %s not up after %s", e.link, timeout)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	return nil
}

func s5IPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// setSysctls writes each dotted key under /proc/sys inside ns.
func setSysctls(ns *NetNS, kv [][2]string) error {
	return inNetNS(ns, func() error {
		for _, e := range kv {
			p := filepath.Join("/proc/sys", strings.ReplaceAll(e[0], ".", "/"))
			if err := os.WriteFile(p, []byte(e[1]+"\n"), 0o644); err != nil {
				return fmt.Errorf("sysctl %s=%s: %w", e[0], e[1], err)
			}
		}
		return nil
	})
}

// inNetNS runs fn on a locked OS thread inside ns. Sockets that fn creates
// stay in ns. The thread returns to its namespace afterwards; if it cannot,
// it stays locked and the runtime ends it with the goroutine.
func inNetNS(ns *NetNS, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		done <- withNetNS(ns.Fd(), fn)
	}()
	return <-done
}

// withNetNS switches the calling thread, which must be locked, into the
// namespace fd, runs fn and switches back; on success of switching back it
// unlocks the thread.
func withNetNS(fd int, fn func() error) error {
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open own network namespace: %w", err)
	}
	defer unix.Close(orig)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter network namespace: %w", err)
	}
	err = fn()
	if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
		runtime.UnlockOSThread()
	}
	return err
}
