//go:build linux

package ipvs

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"syscall"

	mobyipvs "github.com/moby/ipvs"
	"github.com/proxykit/proxykit/servicemap"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// kernelHandle is the real Handle: IPVS over generic netlink
// (github.com/moby/ipvs), the dummy interface over rtnetlink
// (github.com/vishvananda/netlink), sysctls through /proc/sys in the
// namespace.
type kernelHandle struct {
	fd   int // the namespace's fd; 0 for the current namespace
	ipvs *mobyipvs.Handle
	nl   *netlink.Handle
	// link caches the dummy interface found last, to spare a lookup per
	// address.
	link netlink.Link
}

// linkByName returns the interface, from the cache when it is there.
func (h *kernelHandle) linkByName(name string) (netlink.Link, error) {
	if h.link != nil && h.link.Attrs().Name == name {
		return h.link, nil
	}
	l, err := h.nl.LinkByName(name)
	if err == nil {
		h.link = l
	}
	return l, err
}

// NewHandle returns the real Handle in the network namespace of netnsFd,
// or the current one when netnsFd is 0.
func NewHandle(netnsFd int) (Handle, error) {
	path := ""
	ns := netns.None()
	if netnsFd > 0 {
		path = "/proc/self/fd/" + strconv.Itoa(netnsFd)
		ns = netns.NsHandle(netnsFd)
	}
	ih, err := mobyipvs.New(path)
	if err != nil {
		return nil, translate("open IPVS netlink in", nsName(netnsFd), err)
	}
	var nl *netlink.Handle
	if netnsFd > 0 {
		nl, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	} else {
		nl, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	}
	if err != nil {
		ih.Close()
		return nil, translate("open rtnetlink in", nsName(netnsFd), err)
	}
	return &kernelHandle{fd: netnsFd, ipvs: ih, nl: nl}, nil
}

func nsName(fd int) string {
	if fd > 0 {
		return "namespace fd " + strconv.Itoa(fd)
	}
	return "the current namespace"
}

// translate is the one place where kernel errors become the package's:
// ENOENT and ESRCH mean absent, EEXIST present; the errno stays
// reachable with errors.Is.
func translate(op, object string, err error) error {
	if err == nil {
		return nil
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOENT, syscall.ESRCH:
			err = fmt.Errorf("%w (%w)", ErrNotFound, errno)
		case syscall.EEXIST:
			err = fmt.Errorf("%w (%w)", ErrExists, errno)
		}
	}
	var lnf netlink.LinkNotFoundError
	if errors.As(err, &lnf) {
		err = fmt.Errorf("%w (%w)", ErrNotFound, err)
	}
	return &OpError{Op: op, Object: object, Err: err}
}

var protoNums = map[servicemap.Protocol]uint16{servicemap.TCP: unix.IPPROTO_TCP, servicemap.UDP: unix.IPPROTO_UDP, servicemap.SCTP: unix.IPPROTO_SCTP}

func mobyService(v *VirtualServer) *mobyipvs.Service {
	s := &mobyipvs.Service{
		Address: net.IP(v.Addr.AsSlice()), Port: v.Port, Protocol: protoNums[v.Proto],
		SchedName: v.Scheduler, Flags: v.Flags, Timeout: v.Timeout,
		AddressFamily: unix.AF_INET, Netmask: 0xffffffff,
	}
	if v.Addr.Is6() {
		s.AddressFamily, s.Netmask = unix.AF_INET6, 128
	}
	return s
}

func keyService(k Key) *mobyipvs.Service { return mobyService(&VirtualServer{Key: k}) }

// fromMoby converts a kernel service; ok is false for one by firewall
// mark or of an unknown protocol.
func fromMoby(s *mobyipvs.Service) (VirtualServer, bool) {
	if s.FWMark != 0 {
		return VirtualServer{}, false
	}
	addr, ok := netip.AddrFromSlice(s.Address)
	if !ok {
		return VirtualServer{}, false
	}
	if s.AddressFamily == unix.AF_INET {
		addr = addr.Unmap()
	}
	var proto servicemap.Protocol
	for p, n := range protoNums {
		if n == s.Protocol {
			proto = p
		}
	}
	if proto == "" {
		return VirtualServer{}, false
	}
	v := VirtualServer{Key: Key{Addr: addr, Proto: proto, Port: s.Port}, Scheduler: s.SchedName, Flags: s.Flags &^ flagHashed}
	if v.Flags&flagPersistent != 0 {
		v.Timeout = s.Timeout
	}
	return v, true
}

func mobyDest(r RealServer) *mobyipvs.Destination {
	d := &mobyipvs.Destination{Address: net.IP(r.Addr.AsSlice()), Port: r.Port, Weight: r.Weight,
		ConnectionFlags: mobyipvs.ConnectionFlagMasq, AddressFamily: unix.AF_INET}
	if r.Addr.Is6() {
		d.AddressFamily = unix.AF_INET6
	}
	return d
}

func (h *kernelHandle) Services(ctx context.Context) ([]VirtualServer, error) {
	ss, err := h.ipvs.GetServices()
	if err != nil {
		return nil, translate("list", "services", err)
	}
	out := make([]VirtualServer, 0, len(ss))
	for _, s := range ss {
		if v, ok := fromMoby(s); ok {
			out = append(out, v)
		}
	}
	return out, nil
}

func (h *kernelHandle) Service(ctx context.Context, k Key) (VirtualServer, error) {
	s, err := h.ipvs.GetService(keyService(k))
	if err != nil {
		return VirtualServer{}, translate("get service", k.String(), err)
	}
	v, _ := fromMoby(s)
	return v, nil
}

func (h *kernelHandle) AddService(ctx context.Context, v *VirtualServer) error {
	return translate("add service", v.Key.String(), h.ipvs.NewService(mobyService(v)))
}

func (h *kernelHandle) UpdateService(ctx context.Context, v *VirtualServer) error {
	return translate("update service", v.Key.String(), h.ipvs.UpdateService(mobyService(v)))
}

func (h *kernelHandle) DeleteService(ctx context.Context, k Key) error {
	return translate("delete service", k.String(), h.ipvs.DelService(keyService(k)))
}

func (h *kernelHandle) Reals(ctx context.Context, k Key) ([]RealStats, error) {
	ds, err := h.ipvs.GetDestinations(keyService(k))
	if err != nil {
		return nil, translate("list real servers of", k.String(), err)
	}
	out := make([]RealStats, 0, len(ds))
	for _, d := range ds {
		addr, ok := netip.AddrFromSlice(d.Address)
		if !ok {
			continue
		}
		if d.AddressFamily == unix.AF_INET {
			addr = addr.Unmap()
		}
		out = append(out, RealStats{RealServer: RealServer{Addr: addr, Port: d.Port, Weight: d.Weight},
			ActiveConns: d.ActiveConnections, InactiveConns: d.InactiveConnections})
	}
	return out, nil
}

func (h *kernelHandle) AddReal(ctx context.Context, k Key, r RealServer) error {
	return translate("add real server", realObject(k, r), h.ipvs.NewDestination(keyService(k), mobyDest(r)))
}

func (h *kernelHandle) UpdateReal(ctx context.Context, k Key, r RealServer) error {
	return translate("update real server", realObject(k, r), h.ipvs.UpdateDestination(keyService(k), mobyDest(r)))
}

func (h *kernelHandle) DeleteReal(ctx context.Context, k Key, r RealServer) error {
	return translate("delete real server", realObject(k, r), h.ipvs.DelDestination(keyService(k), mobyDest(r)))
}

func (h *kernelHandle) EnsureInterface(ctx context.Context, name string) error {
	h.link = nil // it may have been deleted behind our back
	link, err := h.linkByName(name)
	if err != nil {
		if err := h.nl.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil && !errors.Is(err, syscall.EEXIST) {
			return translate("add dummy interface", name, err)
		}
		if link, err = h.linkByName(name); err != nil {
			return translate("find interface", name, err)
		}
	}
	if _, ok := link.(*netlink.Dummy); !ok {
		return &OpError{Op: "use interface", Object: name, Err: fmt.Errorf("it is a %s interface, not a dummy one", link.Type())}
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		return translate("bring up interface", name, h.nl.LinkSetUp(link))
	}
	return nil
}

func (h *kernelHandle) Addresses(ctx context.Context, name string) ([]netip.Addr, error) {
	link, err := h.nl.LinkByName(name)
	if err != nil {
		if errors.As(err, new(netlink.LinkNotFoundError)) {
			return nil, nil
		}
		return nil, translate("find interface", name, err)
	}
	as, err := h.nl.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nil, translate("list addresses of", name, err)
	}
	var out []netip.Addr
	for _, a := range as {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || ip.Unmap().IsLinkLocalUnicast() {
			continue // the kernel's own fe80:: address
		}
		out = append(out, ip.Unmap())
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, nil
}

func (h *kernelHandle) addr(name string, a netip.Addr) (netlink.Link, *netlink.Addr, error) {
	link, err := h.linkByName(name)
	if err != nil {
		return nil, nil, err
	}
	bits := a.BitLen()
	na := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(bits, bits)}}
	if a.Is6() {
		// No duplicate address detection: usable at once. Deprecated
		// (preferred lifetime 0, valid forever): never picked as a source
		// address, in particular not by masquerade, which would otherwise
		// prefer a service's ULA to the node's address for a pod's ULA.
		na.Flags = unix.IFA_F_NODAD
		na.PreferedLft, na.ValidLft = 0, math.MaxUint32
	}
	return link, na, nil
}

func (h *kernelHandle) AddAddress(ctx context.Context, name string, a netip.Addr) error {
	obj := a.String() + " on " + name
	link, na, err := h.addr(name, a)
	if err != nil {
		return translate("add address", obj, err)
	}
	return translate("add address", obj, h.nl.AddrAdd(link, na))
}

func (h *kernelHandle) DeleteAddress(ctx context.Context, name string, a netip.Addr) error {
	obj := a.String() + " on " + name
	link, na, err := h.addr(name, a)
	if err != nil {
		return translate("delete address", obj, err)
	}
	err = h.nl.AddrDel(link, na)
	if errors.Is(err, syscall.EADDRNOTAVAIL) {
		err = syscall.ENOENT
	}
	return translate("delete address", obj, err)
}

func (h *kernelHandle) DeleteInterface(ctx context.Context, name string) error {
	h.link = nil
	link, err := h.nl.LinkByName(name)
	if err != nil {
		if errors.As(err, new(netlink.LinkNotFoundError)) {
			return nil
		}
		return translate("find interface", name, err)
	}
	return translate("delete interface", name, h.nl.LinkDel(link))
}

// SetSysctl writes /proc/sys/<key> from a thread in the namespace:
// /proc/sys/net follows the network namespace of the thread that opens
// it.
func (h *kernelHandle) SetSysctl(ctx context.Context, key, value string) error {
	p := filepath.Join("/proc/sys", filepath.Clean("/"+key))
	write := func() error { return os.WriteFile(p, []byte(value), 0o644) }
	if h.fd <= 0 {
		return translate("set sysctl", key+"="+value, write())
	}
	errc := make(chan error, 1)
	go func() {
		// The thread enters the namespace and is thrown away with it.
		runtime.LockOSThread()
		if err := unix.Setns(h.fd, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- write()
	}()
	return translate("set sysctl", key+"="+value, <-errc)
}
