//go:build linux

package netnstest

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// end is one side of a veth pair: the namespace, the interface name in it
// and the addresses to put on it; wire fills in index and mac.
type end struct {
	ns    *NS
	link  string
	addrs []netip.Prefix
	index int
	mac   net.HardwareAddr
}

// wire creates a veth pair between a and b, with interface index index for
// a (see linkReady), brings both ends up and assigns their addresses.
func wire(a, b *end, index int) error {
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: a.link, Index: index},
		PeerName:      b.link,
		PeerNamespace: netlink.NsFd(b.ns.Fd()),
	}
	if err := a.ns.nl.LinkAdd(veth); err != nil {
		return fmt.Errorf("netnstest: add veth %q in %q (peer %q in %q): %w", a.link, a.ns.Name, b.link, b.ns.Name, err)
	}
	for _, e := range []*end{a, b} {
		if err := e.setUp(); err != nil {
			return err
		}
	}
	return nil
}

// setUp brings the link up and adds its addresses (without duplicate
// address detection; link-local ones with scope link).
func (e *end) setUp() error {
	l, err := e.ns.nl.LinkByName(e.link)
	if err != nil {
		return fmt.Errorf("netnstest: find link %q in %q: %w", e.link, e.ns.Name, err)
	}
	e.index, e.mac = l.Attrs().Index, l.Attrs().HardwareAddr
	if err := e.ns.nl.LinkSetUp(l); err != nil {
		return fmt.Errorf("netnstest: set link %q up in %q: %w", e.link, e.ns.Name, err)
	}
	for _, p := range e.addrs {
		a := &netlink.Addr{IPNet: ipNet(p)}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if p.Addr().IsLinkLocalUnicast() {
			a.Scope = unix.RT_SCOPE_LINK
		}
		if err := e.ns.nl.AddrAdd(l, a); err != nil {
			return fmt.Errorf("netnstest: add address %s to %q in %q: %w", p, e.link, e.ns.Name, err)
		}
	}
	return nil
}

// addNeighbors adds permanent neighbor entries on e for every address of
// peer, so that no packet waits for (or depends on) ARP or neighbor
// discovery.
func (e *end) addNeighbors(peer *end) error {
	for _, p := range peer.addrs {
		n := &netlink.Neigh{
			LinkIndex:    e.index,
			Family:       family(p.Addr()),
			State:        netlink.NUD_PERMANENT,
			IP:           p.Addr().AsSlice(),
			HardwareAddr: peer.mac,
		}
		if err := e.ns.nl.NeighSet(n); err != nil {
			return fmt.Errorf("netnstest: add neighbor %s on %q in %q: %w", p.Addr(), e.link, e.ns.Name, err)
		}
	}
	return nil
}

// linkReady reports whether e's link is operationally up. Right after
// both ends of a veth came up, the kernel's link watcher still has to
// process the carrier change (attach the qdisc, mark IPv6 ready) before the
// link fully works; without waiting, the first IPv6 packet over a new link
// was lost about every other run. The watcher handles "urgent" devices at
// once and batches the others up to once per second; a veth whose peer has
// a different interface index counts as urgent, which is why wire gives
// the node end an index that the other end cannot have.
func (e *end) linkReady() (bool, error) {
	l, err := e.ns.nl.LinkByIndex(e.index)
	if err != nil {
		return false, fmt.Errorf("netnstest: find link %q in %q: %w", e.link, e.ns.Name, err)
	}
	return l.Attrs().OperState == netlink.OperUp, nil
}

// loUp brings the loopback interface of n up.
func loUp(n *NS) error {
	lo, err := n.nl.LinkByName("lo")
	if err == nil {
		err = n.nl.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("netnstest: set link \"lo\" up in %q: %w", n.Name, err)
	}
	return nil
}

// route is one route to add. A zero gw means a device route (link must be
// set); a valid src sets the preferred source address.
type route struct {
	ns   *NS
	dst  netip.Prefix
	gw   netip.Addr
	link string
	src  netip.Addr
}

// add installs r.
func (r route) add() error {
	nr := &netlink.Route{Dst: ipNet(r.dst), Family: family(r.dst.Addr())}
	if r.link != "" {
		l, err := r.ns.nl.LinkByName(r.link)
		if err != nil {
			return fmt.Errorf("netnstest: find link %q in %q: %w", r.link, r.ns.Name, err)
		}
		nr.LinkIndex = l.Attrs().Index
	}
	if r.gw.IsValid() {
		nr.Gw = r.gw.AsSlice()
	} else {
		nr.Scope = netlink.SCOPE_LINK
	}
	if r.src.IsValid() {
		nr.Src = r.src.AsSlice()
	}
	if err := r.ns.nl.RouteAdd(nr); err != nil {
		return fmt.Errorf("netnstest: add route %s in %q: %w", r, r.ns.Name, err)
	}
	return nil
}

// String describes r in ip-route syntax, for error messages.
func (r route) String() string {
	s := r.dst.String()
	if r.gw.IsValid() {
		s += " via " + r.gw.String()
	}
	if r.link != "" {
		s += " dev " + r.link
	}
	if r.src.IsValid() {
		s += " src " + r.src.String()
	}
	return s
}

// ipNet converts p for netlink.
func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// family returns the netlink address family of a.
func family(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}
