package bench

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/conntrack"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/nftables"
	"github.com/proxykit/proxykit/servicemap"
)

// ctServices is the number of UDP services of scenario 6; the table
// holds ctServices × clients flows, one per (client port, service).
const ctServices = 1000

// runConntrack is scenario 6: a namespace whose conntrack table holds
// 100k (and 200k) UDP flows made by real packets through the nftables
// backend's DNAT; then a fifth of the services have one of their two
// endpoints replaced (about 10 % of the flows become stale) and the
// conntrack Syncer reconciles. The baseline, in the same namespace, is a
// reconcile that finds nothing stale: one dump of the table, the kernel's
// floor for any dump-based cleanup.
func runConntrack(ctx context.Context, env *Env) (Result, error) {
	services, flowSizes := ctServices, []int{100_000, 200_000}
	if env.Quick {
		flowSizes = flowSizes[:1]
	}
	if env.Sizes != nil {
		services, flowSizes = env.Sizes[0], []int{env.Sizes[0] * 100}
	}
	reps := env.reps()
	t := Table{Title: fmt.Sprintf("Conntrack cleanup: full reconcile with a fifth of %d UDP services' endpoints replaced", services),
		Columns: []string{"flows", "runs", "stale found", "deleted", "reconcile (10 % stale)", "deletions/s", "no-op reconcile (floor)", "reconcile / floor",
			"netlink requests per 1000 deletions", "delete batches"},
		Note: fmt.Sprintf("Flows are made by real UDP packets from the node to %d ClusterIPs (port 53, two endpoints each, DNAT by the nftables backend, "+
			"routed out of a veth), one per client port and service. Then one of the two endpoints of every fifth service is replaced "+
			"and `conntrack.Syncer.Reconcile` runs on the new snapshot: one kernel-filtered dump of the UDP flows, the stale ones deleted in pipelined batches "+
			"while the dump goes on. The floor is a reconcile of the unchanged snapshot over the same table (a dump, nothing deleted). "+
			"deletions/s is deleted flows over the whole reconcile. Requests: netlink messages (deletions and dump requests). Times are medians of the runs, each in a fresh namespace.",
			services)}
	for _, size := range flowSizes {
		clients := size / services
		var took, floor []time.Duration
		var last ctRun
		for r := range reps {
			env.Logf("  conntrack %d flows (%d/%d)", services*clients, r+1, reps)
			run, err := conntrackRun(ctx, services, clients)
			if err != nil {
				return Result{}, fmt.Errorf("conntrack %d flows: %w", services*clients, err)
			}
			took, floor, last = append(took, run.stale.Took), append(floor, run.noop.Took), run
		}
		d, f := median(took), median(floor)
		res := last.stale
		t.AddRow(res.Dumped, len(took), res.Stale, res.Deleted, d, fmt.Sprintf("%.0f", float64(res.Deleted)/d.Seconds()), f, ratio(d, f),
			fmt.Sprintf("%.0f", float64(res.Deleted+res.Dumps)*1000/float64(max(res.Deleted, 1))), res.Batches)
	}
	return Result{Tables: []Table{t}}, nil
}

// ctRun is one run: the no-op and the stale reconcile.
type ctRun struct{ noop, stale conntrack.Result }

// conntrackRun builds the namespace, fills the table and reconciles.
func conntrackRun(ctx context.Context, services, clients int) (ctRun, error) {
	var run ctRun
	ns, err := NewNetNS()
	if err != nil {
		return run, err
	}
	defer ns.Close()
	sink, err := NewNetNS()
	if err != nil {
		return run, err
	}
	defer sink.Close()
	if err := ctTopology(ns, sink); err != nil {
		return run, err
	}
	svcs, slcs := udpCluster(services)
	snap, err := proxykit.NewSnapshot(Node, svcs, slcs)
	if err != nil {
		return run, err
	}
	conn, err := nftables.NewConn(ns.Fd())
	if err != nil {
		return run, err
	}
	rules, err := nftables.NewSyncer(nftConfig, nftables.WithConn(conn))
	if err != nil {
		return run, err
	}
	if err := rules.Sync(ctx, snap); err != nil {
		return run, fmt.Errorf("nftables sync: %w", err)
	}
	if err := sendFlows(ns, svcs, clients); err != nil {
		return run, err
	}
	cc, err := conntrack.NewConn(ns.Fd())
	if err != nil {
		return run, err
	}
	ct, err := conntrack.NewSyncer(conntrack.Config{}, conntrack.WithConn(cc))
	if err != nil {
		return run, err
	}
	want := services * clients
	if run.noop, err = ct.Reconcile(ctx, snap); err != nil {
		return run, err
	}
	if run.noop.Dumped != want || run.noop.Deleted != 0 {
		return run, fmt.Errorf("no-op reconcile: dumped %d and deleted %d flows, want %d and 0", run.noop.Dumped, run.noop.Deleted, want)
	}
	for i := 0; i < services; i += 5 {
		slcs[i] = changedSlice(slcs[i], i)
	}
	changed, err := proxykit.NewSnapshot(Node, svcs, slcs)
	if err != nil {
		return run, err
	}
	if run.stale, err = ct.Reconcile(ctx, changed); err != nil {
		return run, err
	}
	// About half the flows of every fifth service went to the replaced
	// endpoint: expect 10 %, give or take the random choice.
	if s := run.stale; s.Deleted != s.Stale || s.Deleted < want/20 || s.Deleted > want/5 {
		return run, fmt.Errorf("stale reconcile: %d stale, %d deleted of %d flows, want about %d both", s.Stale, s.Deleted, want, want/10)
	}
	again, err := ct.Reconcile(ctx, changed)
	if err != nil {
		return run, err
	}
	if again.Deleted != 0 || again.Dumped != want-run.stale.Deleted {
		return run, fmt.Errorf("second reconcile: dumped %d and deleted %d, want %d and 0", again.Dumped, again.Deleted, want-run.stale.Deleted)
	}
	return run, nil
}

// udpCluster returns n UDP services "bench/dns-NNNNN" on port 53 with
// ClusterIPs from 10.96.0.0/16, each with two ready endpoints from the
// range of Cluster.
func udpCluster(n int) ([]*servicemap.Service, []*endpoints.Slice) {
	svcs, slcs := Cluster(n, 2)
	for i := range svcs {
		svcs[i].Name = fmt.Sprintf("dns-%05d", i)
		svcs[i].Ports = []servicemap.Port{{Name: "dns", Protocol: servicemap.UDP, Port: 53}}
		slcs[i].Service, slcs[i].Name = svcs[i].Name, svcs[i].Name+"-x"
		slcs[i].Ports = []endpoints.Port{{Name: "dns", Protocol: servicemap.UDP, Port: 5353}}
	}
	return svcs, slcs
}

// The node's address and the routes of scenario 6: the node sends from
// ctNodeAddr; service and endpoint addresses are routed out of a veth
// whose peer, in a namespace of its own, drops them (conntrack has
// confirmed the flows on the way out). The host kernel has no dummy
// interfaces.
var (
	ctNodeAddr = netip.MustParsePrefix("10.0.0.1/24")
	ctRoutes   = []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16"), netip.MustParsePrefix("10.128.0.0/9"), netip.MustParsePrefix("10.250.0.0/16")}
)

// ctTopology sets up lo and the veth ct0 with the node address and
// routes in ns, and ct1, ct0's peer, in sink.
func ctTopology(ns, sink *NetNS) error {
	h, err := netlink.NewHandleAt(netns.NsHandle(ns.Fd()))
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := h.LinkSetUp(lo); err != nil {
		return err
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ct0"}, PeerName: "ct1", PeerNamespace: netlink.NsFd(sink.Fd())}
	if err := h.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth ct0: %w", err)
	}
	if err := h.AddrAdd(veth, &netlink.Addr{IPNet: ctIPNet(ctNodeAddr)}); err != nil {
		return err
	}
	if err := h.LinkSetUp(veth); err != nil {
		return err
	}
	hs, err := netlink.NewHandleAt(netns.NsHandle(sink.Fd()))
	if err != nil {
		return err
	}
	defer hs.Close()
	peer, err := hs.LinkByName("ct1")
	if err != nil {
		return err
	}
	if err := hs.LinkSetUp(peer); err != nil {
		return err
	}
	// Through a gateway with a permanent neighbour entry: routed on-link,
	// every destination would wait for ARP, and fill the socket buffer.
	gw := ctNodeAddr.Addr().Next()
	if err := h.NeighAdd(&netlink.Neigh{LinkIndex: veth.Attrs().Index, State: netlink.NUD_PERMANENT,
		IP: gw.AsSlice(), HardwareAddr: peer.Attrs().HardwareAddr}); err != nil {
		return fmt.Errorf("neighbour %s: %w", gw, err)
	}
	for _, p := range ctRoutes {
		if err := h.RouteAdd(&netlink.Route{LinkIndex: veth.Attrs().Index, Dst: ctIPNet(p), Gw: gw.AsSlice()}); err != nil {
			return fmt.Errorf("route %s: %w", p, err)
		}
	}
	return nil
}

// sendFlows sends one datagram from each of clients ports of the node
// address to every service's ClusterIP, from a thread in ns.
func sendFlows(ns *NetNS, svcs []*servicemap.Service, clients int) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := unix.Setns(ns.Fd(), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("enter namespace: %w", err)
			return
		}
		done <- sendFrom(svcs, clients)
	}()
	return <-done
}

func sendFrom(svcs []*servicemap.Service, clients int) error {
	src := ctNodeAddr.Addr().As4()
	payload := []byte("proxykit")
	for c := range clients {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		err = unix.Bind(fd, &unix.SockaddrInet4{Port: 20000 + c, Addr: src})
		for i := 0; err == nil && i < len(svcs); i++ {
			err = unix.Sendto(fd, payload, 0, &unix.SockaddrInet4{Port: 53, Addr: svcs[i].ClusterIPs[0].As4()})
		}
		_ = unix.Close(fd)
		if err != nil {
			return fmt.Errorf("client port %d: %w", 20000+c, err)
		}
	}
	return nil
}

// ctIPNet converts p for the netlink package.
func ctIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
