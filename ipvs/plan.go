package ipvs

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// Key identifies a virtual server: address, protocol and port.
type Key struct {
	Addr  netip.Addr
	Proto servicemap.Protocol
	Port  uint16
}

func (k Key) String() string {
	return string(k.Proto) + " " + netip.AddrPortFrom(k.Addr, k.Port).String()
}

// Compare orders keys by family (IPv4 first), address, protocol, port.
func (k Key) Compare(o Key) int {
	return cmp.Or(k.Addr.Compare(o.Addr), cmp.Compare(k.Proto, o.Proto), cmp.Compare(k.Port, o.Port))
}

// Frontend kinds of a virtual server, in the order they claim a key that
// two service ports share (as in proxykit.Explain).
const (
	KindClusterIP  = "cluster-ip"
	KindExternalIP = "external-ip"
	KindLBIP       = "lb-ip"
	KindNodePort   = "node-port"
)

// VirtualServer is one IPVS service: a frontend of a service port.
type VirtualServer struct {
	Key
	Scheduler string
	// Flags are IPVS service flags: persistence and scheduler flags.
	Flags uint32
	// Timeout is the persistence timeout in seconds (ClientIP affinity,
	// SEMANTICS §4); zero without persistence.
	Timeout uint32
	// Reals are the real servers, sorted by address and port.
	Reals []RealServer
	// Service and Kind say which service port and frontend asked for it;
	// the kernel does not hold them.
	Service servicemap.PortName
	Kind    string
}

// sameConfig reports whether v and o have the same kernel settings,
// real servers aside.
func (v *VirtualServer) sameConfig(o *VirtualServer) bool {
	return v.Scheduler == o.Scheduler && v.Flags == o.Flags && v.Timeout == o.Timeout
}

// RealServer is one IPVS destination, forwarded by masquerading (NAT).
type RealServer struct {
	Addr   netip.Addr
	Port   uint16
	Weight int
}

// AddrPort returns the real server's address and port.
func (r RealServer) AddrPort() netip.AddrPort { return netip.AddrPortFrom(r.Addr, r.Port) }

// State is the desired IPVS state of a node: virtual servers sorted by
// Key, and the addresses of the dummy interface.
type State struct {
	Services  []*VirtualServer
	Addresses []netip.Addr
	index     map[Key]*VirtualServer
	// claims counts, per key, the frontends that asked for it (the
	// winner and the losers); ifaceRefs counts, per address of the
	// interface, the virtual servers on it. Partial syncs keep them.
	claims    map[Key]int
	ifaceRefs map[netip.Addr]int
}

// Get returns the virtual server of k.
func (s *State) Get(k Key) (*VirtualServer, bool) {
	v, ok := s.index[k]
	return v, ok
}

// String prints the state in the style of `ipvsadm -Ln`, one line per
// virtual server and real server, then the interface's addresses.
func (s *State) String() string {
	var b strings.Builder
	for _, v := range s.Services {
		fmt.Fprintf(&b, "%-4s %s %s%s  # %s %s\n", v.Proto, netip.AddrPortFrom(v.Addr, v.Port), v.Scheduler, flagText(v), v.Service, v.Kind)
		for _, r := range v.Reals {
			fmt.Fprintf(&b, "  -> %s weight %d\n", r.AddrPort(), r.Weight)
		}
	}
	for _, a := range s.Addresses {
		fmt.Fprintf(&b, "address %s\n", a)
	}
	return b.String()
}

// flagText prints the scheduler flags and persistence as ipvsadm does.
func flagText(v *VirtualServer) string {
	var parts []string
	names := map[uint32]string{flagSched1: "-fallback", flagSched2: "-port"}
	for _, bit := range []uint32{flagSched1, flagSched2} {
		if v.Flags&bit != 0 && names[bit] != "" {
			parts = append(parts, v.Scheduler+names[bit])
		}
	}
	s := ""
	if len(parts) > 0 {
		s = " flags " + strings.Join(parts, ",")
	}
	if v.Flags&flagPersistent != 0 {
		s += fmt.Sprintf(" persistent %d", v.Timeout)
	}
	return s
}

// Plan returns the IPVS state that programs snap (SEMANTICS §1–§4, §8):
// one virtual server per ClusterIP, ExternalIP and LoadBalancer IP and
// port, and one per node address and NodePort; real servers are the
// endpoint set in use for that frontend, with the endpoint's weight. It
// is pure and deterministic. A service naming an unknown scheduler makes
// it fail with a *SchedulerError for each such service.
func Plan(snap *proxykit.Snapshot, cfg Config) (*State, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if snap == nil {
		return nil, errors.New("ipvs: Plan: nil snapshot")
	}
	return plan(snap, cfg.withDefaults())
}

// plan is Plan with cfg valid and defaulted.
func plan(snap *proxykit.Snapshot, cfg Config) (*State, error) {
	return planPorts(snap, cfg, nil, true)
}

// planPorts plans the ports of snap named in names (sorted), or every
// port when all is set. Planning some ports gives the virtual servers
// of the full plan for every key that only those ports claim: frontends
// claim keys in the same order.
func planPorts(snap *proxykit.Snapshot, cfg Config, names []servicemap.PortName, all bool) (*State, error) {
	n := len(names)
	if all {
		n = snap.Family(proxykit.IPv4).Len() + snap.Family(proxykit.IPv6).Len()
	}
	st := &State{index: make(map[Key]*VirtualServer, n), claims: make(map[Key]int, n), ifaceRefs: make(map[netip.Addr]int, n)}
	p := &planner{cfg: cfg, st: st}
	bad := map[servicemap.ServiceName]bool{}
	var errs []error
	for _, f := range proxykit.Families {
		fs := snap.Family(f)
		nodeAddrs := p.nodePortAddrs(snap.Node(), f)
		ports := fs.Ports()
		if !all {
			ports = func(yield func(*proxykit.PortState) bool) {
				for _, n := range names {
					if ps, ok := fs.Get(n); ok && !yield(ps) {
						return
					}
				}
			}
		}
		for _, kind := range []string{KindClusterIP, KindExternalIP, KindLBIP, KindNodePort} {
			for ps := range ports {
				sched := cmp.Or(ps.Port.Scheduler, cfg.Scheduler)
				if err := ValidateScheduler(sched); err != nil {
					if svc := ps.Name.Service(); !bad[svc] {
						bad[svc] = true
						errs = append(errs, &SchedulerError{Service: svc, Scheduler: sched})
					}
					continue
				}
				p.frontends(ps, kind, sched, nodeAddrs)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.SortFunc(p.st.Services, func(a, b *VirtualServer) int { return a.Key.Compare(b.Key) })
	p.st.Addresses = make([]netip.Addr, 0, len(p.st.ifaceRefs))
	for a := range p.st.ifaceRefs {
		p.st.Addresses = append(p.st.Addresses, a)
	}
	slices.SortFunc(p.st.Addresses, netip.Addr.Compare)
	return p.st, nil
}

type planner struct {
	cfg Config
	st  *State
}

// nodePortAddrs returns the node's addresses of family f that serve
// NodePorts (SEMANTICS §8).
func (p *planner) nodePortAddrs(node proxykit.Node, f proxykit.Family) []netip.Addr {
	var out []netip.Addr
	for _, a := range node.Addresses {
		if !f.Contains(a) || a.IsLoopback() {
			continue
		}
		if len(p.cfg.NodePortAddresses) > 0 && !slices.ContainsFunc(p.cfg.NodePortAddresses, func(pr netip.Prefix) bool { return pr.Contains(a) }) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// frontends adds the virtual servers of one kind of ps's frontends.
func (p *planner) frontends(ps *proxykit.PortState, kind, sched string, nodeAddrs []netip.Addr) {
	sp := ps.Port
	ext := ps.Endpoints.Cluster
	if sp.ExternalTrafficPolicy == servicemap.Local {
		ext = ps.Endpoints.Local
	}
	switch kind {
	case KindClusterIP:
		internal := ps.Endpoints.Cluster
		if sp.InternalTrafficPolicy == servicemap.Local {
			internal = ps.Endpoints.Local
		}
		p.add(ps, kind, sched, ps.ClusterIP, sp.Port, internal, true)
	case KindExternalIP:
		for _, a := range ps.ExternalIPs {
			p.add(ps, kind, sched, a, sp.Port, ext, true)
		}
	case KindLBIP:
		for _, a := range ps.LoadBalancerIPs {
			p.add(ps, kind, sched, a, sp.Port, ext, true)
		}
	case KindNodePort:
		if sp.NodePort != 0 {
			for _, a := range nodeAddrs {
				p.add(ps, kind, sched, a, sp.NodePort, ext, false)
			}
		}
	}
}

// add adds a virtual server unless its key is taken; onIface puts its
// address on the dummy interface.
func (p *planner) add(ps *proxykit.PortState, kind, sched string, addr netip.Addr, port uint16, eps []endpoints.Endpoint, onIface bool) {
	k := Key{Addr: addr, Proto: ps.Port.Protocol, Port: port}
	p.st.claims[k]++
	if _, taken := p.st.index[k]; taken {
		return
	}
	v := &VirtualServer{Key: k, Scheduler: sched, Flags: p.cfg.schedulerFlags(sched), Service: ps.Name, Kind: kind}
	if aff := ps.Port.Affinity; aff.ClientIP {
		v.Flags |= flagPersistent
		v.Timeout = uint32(aff.EffectiveTimeout() / time.Second)
	}
	v.Reals = make([]RealServer, len(eps))
	for i := range eps {
		v.Reals[i] = RealServer{Addr: eps[i].Addr, Port: eps[i].Port, Weight: int(eps[i].EffectiveWeight())}
	}
	slices.SortFunc(v.Reals, compareReals)
	p.st.Services = append(p.st.Services, v)
	p.st.index[k] = v
	if onIface {
		p.st.ifaceRefs[addr]++
	}
}

func compareReals(a, b RealServer) int {
	return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
}
