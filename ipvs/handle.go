package ipvs

import (
	"context"
	"net/netip"
)

// Handle is the kernel access of the backend: IPVS virtual and real
// servers, the dummy interface and its addresses, and the node's IPVS
// sysctls. NewHandle is the real one (moby/ipvs and netlink); Fake is an
// in-memory one that can inject faults. A Handle is used by one goroutine
// at a time.
type Handle interface {
	// Services lists every virtual server of the namespace, without
	// real servers. Virtual servers by firewall mark are left out.
	Services(ctx context.Context) ([]VirtualServer, error)
	// Service returns one virtual server, or ErrNotFound.
	Service(ctx context.Context, k Key) (VirtualServer, error)
	AddService(ctx context.Context, v *VirtualServer) error
	UpdateService(ctx context.Context, v *VirtualServer) error
	DeleteService(ctx context.Context, k Key) error

	// Reals lists the real servers of a virtual server with their
	// connection counts.
	Reals(ctx context.Context, k Key) ([]RealStats, error)
	AddReal(ctx context.Context, k Key, r RealServer) error
	// UpdateReal sets a real server's weight.
	UpdateReal(ctx context.Context, k Key, r RealServer) error
	DeleteReal(ctx context.Context, k Key, r RealServer) error

	// EnsureInterface creates the dummy interface if it is missing and
	// brings it up.
	EnsureInterface(ctx context.Context, name string) error
	// Addresses lists the addresses of the interface (none when it does
	// not exist).
	Addresses(ctx context.Context, name string) ([]netip.Addr, error)
	AddAddress(ctx context.Context, name string, a netip.Addr) error
	DeleteAddress(ctx context.Context, name string, a netip.Addr) error
	// DeleteInterface deletes the interface; an absent one is not an
	// error.
	DeleteInterface(ctx context.Context, name string) error

	// SetSysctl writes a sysctl of the namespace, e.g.
	// "net/ipv4/vs/conntrack".
	SetSysctl(ctx context.Context, key, value string) error
}

// RealStats is a real server as the kernel reports it, with its
// connection counts (SEMANTICS §10).
type RealStats struct {
	RealServer
	ActiveConns, InactiveConns int
}
