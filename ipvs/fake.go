package ipvs

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// Fake is an in-memory Handle. It enforces what the kernel enforces
// (adding what exists and deleting what is absent are errors, real
// servers need their virtual server), keeps connection counts that tests
// set, and can fail operations on demand.
type Fake struct {
	mu       sync.Mutex
	services map[Key]*fakeService
	ifaces   map[string]map[netip.Addr]bool
	sysctls  map[string]string
	// ops counts the mutating operations, for FailAt; reads the others.
	ops    int
	reads  int
	failAt int
	fault  func(op, object string) error
}

type fakeService struct {
	v     VirtualServer
	reals map[netip.AddrPort]*RealStats
}

var _ Handle = (*Fake)(nil)

// NewFake returns an empty Fake.
func NewFake() *Fake {
	return &Fake{services: map[Key]*fakeService{}, ifaces: map[string]map[netip.Addr]bool{}, sysctls: map[string]string{}}
}

// FailAt makes the n-th mutating operation from now on (1 for the next)
// fail with an injected error, once. Zero turns it off.
func (f *Fake) FailAt(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failAt = f.ops + n
	if n == 0 {
		f.failAt = 0
	}
}

// SetFault calls fn before every mutating operation; an error it returns
// fails the operation. Nil removes it.
func (f *Fake) SetFault(fn func(op, object string) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = fn
}

// Ops returns the number of mutating operations so far.
func (f *Fake) Ops() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ops
}

// Reads returns the number of read-back operations so far: Services,
// Service, Reals and Addresses.
func (f *Fake) Reads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

// SetConns sets a real server's connection counts, as traffic would.
func (f *Fake) SetConns(k Key, r netip.AddrPort, active, inactive int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.services[k]
	if !ok || s.reals[r] == nil {
		return fmt.Errorf("ipvs fake: no real server %s in %s", r, k)
	}
	s.reals[r].ActiveConns, s.reals[r].InactiveConns = active, inactive
	return nil
}

// Sysctl returns a sysctl's value as set through the Fake.
func (f *Fake) Sysctl(key string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sysctls[key]
}

// mutate counts a mutating operation and returns its injected error.
func (f *Fake) mutate(op, object string) error {
	f.ops++
	if f.failAt != 0 && f.ops == f.failAt {
		f.failAt = 0
		return &OpError{Op: op, Object: object, Err: fmt.Errorf("injected fault")}
	}
	if f.fault != nil {
		if err := f.fault(op, object); err != nil {
			return &OpError{Op: op, Object: object, Err: err}
		}
	}
	return nil
}

// Services implements Handle.
func (f *Fake) Services(ctx context.Context) ([]VirtualServer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	out := make([]VirtualServer, 0, len(f.services))
	for _, s := range f.services {
		out = append(out, s.v)
	}
	slices.SortFunc(out, func(a, b VirtualServer) int { return a.Key.Compare(b.Key) })
	return out, nil
}

// Service implements Handle.
func (f *Fake) Service(ctx context.Context, k Key) (VirtualServer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	s, ok := f.services[k]
	if !ok {
		return VirtualServer{}, &OpError{Op: "get service", Object: k.String(), Err: ErrNotFound}
	}
	return s.v, nil
}

// AddService implements Handle.
func (f *Fake) AddService(ctx context.Context, v *VirtualServer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mutate("add service", v.Key.String()); err != nil {
		return err
	}
	if _, ok := f.services[v.Key]; ok {
		return &OpError{Op: "add service", Object: v.Key.String(), Err: ErrExists}
	}
	f.services[v.Key] = &fakeService{v: kernelView(v), reals: map[netip.AddrPort]*RealStats{}}
	return nil
}

// kernelView keeps what the kernel keeps of a virtual server.
func kernelView(v *VirtualServer) VirtualServer {
	return VirtualServer{Key: v.Key, Scheduler: v.Scheduler, Flags: v.Flags, Timeout: v.Timeout}
}

// UpdateService implements Handle.
func (f *Fake) UpdateService(ctx context.Context, v *VirtualServer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mutate("update service", v.Key.String()); err != nil {
		return err
	}
	s, ok := f.services[v.Key]
	if !ok {
		return &OpError{Op: "update service", Object: v.Key.String(), Err: ErrNotFound}
	}
	s.v = kernelView(v)
	return nil
}

// DeleteService implements Handle.
func (f *Fake) DeleteService(ctx context.Context, k Key) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mutate("delete service", k.String()); err != nil {
		return err
	}
	if _, ok := f.services[k]; !ok {
		return &OpError{Op: "delete service", Object: k.String(), Err: ErrNotFound}
	}
	delete(f.services, k)
	return nil
}

// Reals implements Handle.
func (f *Fake) Reals(ctx context.Context, k Key) ([]RealStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	s, ok := f.services[k]
	if !ok {
		return nil, &OpError{Op: "list real servers", Object: k.String(), Err: ErrNotFound}
	}
	out := make([]RealStats, 0, len(s.reals))
	for _, r := range s.reals {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b RealStats) int { return compareReals(a.RealServer, b.RealServer) })
	return out, nil
}

// realOp runs op on the real server r of k under the lock.
func (f *Fake) realOp(op string, k Key, r RealServer, fn func(s *fakeService, cur *RealStats) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	obj := realObject(k, r)
	if err := f.mutate(op, obj); err != nil {
		return err
	}
	s, ok := f.services[k]
	if !ok {
		return &OpError{Op: op, Object: obj, Err: ErrNotFound}
	}
	if err := fn(s, s.reals[r.AddrPort()]); err != nil {
		return &OpError{Op: op, Object: obj, Err: err}
	}
	return nil
}

func realObject(k Key, r RealServer) string { return k.String() + " -> " + r.AddrPort().String() }

// AddReal implements Handle.
func (f *Fake) AddReal(ctx context.Context, k Key, r RealServer) error {
	return f.realOp("add real server", k, r, func(s *fakeService, cur *RealStats) error {
		if cur != nil {
			return ErrExists
		}
		s.reals[r.AddrPort()] = &RealStats{RealServer: r}
		return nil
	})
}

// UpdateReal implements Handle.
func (f *Fake) UpdateReal(ctx context.Context, k Key, r RealServer) error {
	return f.realOp("update real server", k, r, func(s *fakeService, cur *RealStats) error {
		if cur == nil {
			return ErrNotFound
		}
		cur.Weight = r.Weight
		return nil
	})
}

// DeleteReal implements Handle.
func (f *Fake) DeleteReal(ctx context.Context, k Key, r RealServer) error {
	return f.realOp("delete real server", k, r, func(s *fakeService, cur *RealStats) error {
		if cur == nil {
			return ErrNotFound
		}
		delete(s.reals, r.AddrPort())
		return nil
	})
}

// EnsureInterface implements Handle.
func (f *Fake) EnsureInterface(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.ifaces[name]; ok {
		return nil
	}
	if err := f.mutate("add interface", name); err != nil {
		return err
	}
	f.ifaces[name] = map[netip.Addr]bool{}
	return nil
}

// Addresses implements Handle.
func (f *Fake) Addresses(ctx context.Context, name string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return slices.SortedFunc(maps.Keys(f.ifaces[name]), netip.Addr.Compare), nil
}

// AddAddress implements Handle.
func (f *Fake) AddAddress(ctx context.Context, name string, a netip.Addr) error {
	return f.addrOp("add address", name, a, true)
}

// DeleteAddress implements Handle.
func (f *Fake) DeleteAddress(ctx context.Context, name string, a netip.Addr) error {
	return f.addrOp("delete address", name, a, false)
}

func (f *Fake) addrOp(op, name string, a netip.Addr, add bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	obj := a.String() + " on " + name
	if err := f.mutate(op, obj); err != nil {
		return err
	}
	addrs, ok := f.ifaces[name]
	switch {
	case !ok:
		return &OpError{Op: op, Object: obj, Err: fmt.Errorf("interface: %w", ErrNotFound)}
	case add && addrs[a]:
		return &OpError{Op: op, Object: obj, Err: ErrExists}
	case !add && !addrs[a]:
		return &OpError{Op: op, Object: obj, Err: ErrNotFound}
	}
	if add {
		addrs[a] = true
	} else {
		delete(addrs, a)
	}
	return nil
}

// DeleteInterface implements Handle.
func (f *Fake) DeleteInterface(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mutate("delete interface", name); err != nil {
		return err
	}
	delete(f.ifaces, name)
	return nil
}

// SetSysctl implements Handle.
func (f *Fake) SetSysctl(ctx context.Context, key, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mutate("set sysctl", key); err != nil {
		return err
	}
	f.sysctls[key] = value
	return nil
}

// Dump prints the Fake's virtual servers, real servers (with their
// connection counts when not zero) and the addresses of every interface,
// in the format of State.String without the comments.
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	keys := slices.SortedFunc(maps.Keys(f.services), Key.Compare)
	for _, k := range keys {
		s := f.services[k]
		fmt.Fprintf(&b, "%-4s %s %s%s\n", k.Proto, netip.AddrPortFrom(k.Addr, k.Port), s.v.Scheduler, flagText(&s.v))
		for _, ap := range slices.SortedFunc(maps.Keys(s.reals), netip.AddrPort.Compare) {
			r := s.reals[ap]
			fmt.Fprintf(&b, "  -> %s weight %d", ap, r.Weight)
			if r.ActiveConns+r.InactiveConns > 0 {
				fmt.Fprintf(&b, " active %d inactive %d", r.ActiveConns, r.InactiveConns)
			}
			b.WriteByte('\n')
		}
	}
	for _, name := range slices.Sorted(maps.Keys(f.ifaces)) {
		for _, a := range slices.SortedFunc(maps.Keys(f.ifaces[name]), netip.Addr.Compare) {
			fmt.Fprintf(&b, "address %s on %s\n", a, name)
		}
	}
	return b.String()
}
