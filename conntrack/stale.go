package conntrack

import (
	"maps"
	"net/netip"
	"slices"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/servicemap"
)

// frontend is one address, port and protocol that carries a service port
// (SEMANTICS §9 "the port's frontends").
type frontend struct {
	dst   netip.AddrPort
	proto Proto
}

// keepSet is the endpoints (address and port) a flow to a frontend may be
// translated to and stay: the union of the sets in use (topology.Result
// All). A flow from an outside client to an external frontend with
// external policy Local uses only the Local set, but the node and its
// pods use the Cluster set through the same frontend, and a flow does not
// say which it was: keeping any endpoint in use never deletes a good
// flow, and a flow to an endpoint still in use is never black-holed.
type keepSet map[netip.AddrPort]struct{}

// target is what the index knows about one frontend.
type target struct {
	// keep lists the keep sets of the ports that own the frontend:
	// normally one; several only when service ports collide.
	keep []keepSet
	// scoped marks frontends whose flows this reconcile may delete: those
	// of the ports it covers, and retired ones.
	scoped bool
}

// index maps frontends to their targets: the pure part of the reconcile.
// A flow is stale when its original destination is a scoped frontend and
// its reply source is in none of the frontend's keep sets.
type index struct {
	targets map[frontend]*target
}

// covers says which service ports a reconcile covers.
type covers func(servicemap.PortName) bool

func coverAll(servicemap.PortName) bool { return true }

// protocols returns the protocols cfg reconciles.
func (c Config) protocols() []Proto {
	if c.SCTP {
		return []Proto{UDP, SCTP}
	}
	return []Proto{UDP}
}

// reconciled reports whether cfg reconciles flows of proto.
func (c Config) reconciled(p servicemap.Protocol) (Proto, bool) {
	proto, ok := protoOf(p)
	return proto, ok && (proto == UDP || (proto == SCTP && c.SCTP))
}

// buildIndex indexes the frontends of every UDP (and with cfg.SCTP, SCTP)
// service port of snap, in both families. Frontends of ports for which
// in is true are scoped. NodePort frontends are the node's addresses of
// the family that cfg.NodePortAddresses admits.
func buildIndex(snap *proxykit.Snapshot, cfg Config, in covers) *index {
	ix := &index{targets: map[frontend]*target{}}
	node := snap.Node()
	for _, fam := range proxykit.Families {
		var nodeAddrs []netip.Addr
		for _, a := range node.Addresses {
			if fam.Contains(a) && cfg.servesNodePorts(a) {
				nodeAddrs = append(nodeAddrs, a)
			}
		}
		for st := range snap.Family(fam).Ports() {
			proto, ok := cfg.reconciled(st.Name.Protocol)
			if !ok {
				continue
			}
			keep := make(keepSet, len(st.Endpoints.All))
			for _, e := range st.Endpoints.All {
				keep[e.AddrPort()] = struct{}{}
			}
			scoped := in(st.Name)
			add := func(a netip.Addr, port uint16) {
				if a.IsValid() && port != 0 {
					ix.add(frontend{netip.AddrPortFrom(a, port), proto}, keep, scoped)
				}
			}
			add(st.ClusterIP, st.Port.Port)
			for _, a := range st.ExternalIPs {
				add(a, st.Port.Port)
			}
			for _, a := range st.LoadBalancerIPs {
				add(a, st.Port.Port)
			}
			if st.Port.NodePort != 0 {
				for _, a := range nodeAddrs {
					add(a, st.Port.NodePort)
				}
			}
		}
	}
	return ix
}

// add records that a port owns fe.
func (ix *index) add(fe frontend, keep keepSet, scoped bool) {
	t := ix.targets[fe]
	if t == nil {
		t = &target{}
		ix.targets[fe] = t
	}
	t.keep = append(t.keep, keep)
	t.scoped = t.scoped || scoped
}

// retire adds frontends that no port owns any more: every flow to them
// is stale (SEMANTICS §9: no endpoint is usable for them).
func (ix *index) retire(fes []frontend) {
	for _, fe := range fes {
		if _, ok := ix.targets[fe]; !ok {
			ix.targets[fe] = &target{scoped: true}
		}
	}
}

// stale reports whether f must be deleted.
func (ix *index) stale(f *Flow) bool {
	t := ix.targets[frontend{f.Orig.Dst, f.Proto}]
	if t == nil || !t.scoped {
		return false
	}
	for _, k := range t.keep {
		if _, ok := k[f.Reply.Src]; ok {
			return false
		}
	}
	return true
}

// maxPortDumps is the largest number of destination ports of one family
// and protocol that get a dump each, filtered by port in the kernel; more
// get one dump of the whole protocol. The kernel walks its whole table
// for every dump but copies out only the flows a filter selects, and a
// walk costs about a seventh of copying every flow out (Linux 6.18: 0.2
// µs per flow skipped, 1.5 µs per flow copied).
const maxPortDumps = 4

// dumps returns the dumps a reconcile needs, in a fixed order: for each
// protocol and family with scoped frontends, one dump per destination
// port when there are at most maxPortDumps of them, else one dump.
func (ix *index) dumps() []Filter {
	ports := map[Filter]map[uint16]bool{} // by family and protocol
	for fe, t := range ix.targets {
		if !t.scoped {
			continue
		}
		k := Filter{Family: proxykit.FamilyOf(fe.dst.Addr()), Proto: fe.proto}
		if ports[k] == nil {
			ports[k] = map[uint16]bool{}
		}
		ports[k][fe.dst.Port()] = true
	}
	var out []Filter
	for _, proto := range []Proto{UDP, SCTP} {
		for _, fam := range proxykit.Families {
			k := Filter{Family: fam, Proto: proto}
			ps := ports[k]
			switch {
			case len(ps) == 0:
			case len(ps) > maxPortDumps:
				out = append(out, k)
			default:
				for _, p := range slices.Sorted(maps.Keys(ps)) {
					out = append(out, Filter{Family: fam, Proto: proto, Port: p})
				}
			}
		}
	}
	return out
}

// frontends returns the index's frontends, sorted.
func (ix *index) frontends() []frontend {
	out := make([]frontend, 0, len(ix.targets))
	for fe := range ix.targets {
		out = append(out, fe)
	}
	slices.SortFunc(out, compareFrontends)
	return out
}

func compareFrontends(a, b frontend) int {
	if c := a.dst.Compare(b.dst); c != 0 {
		return c
	}
	return int(a.proto) - int(b.proto)
}

// StaleFlows returns the flows among flows that SEMANTICS §9 says to
// delete once snap is applied, considering every UDP (with cfg.SCTP, also
// SCTP) service port of snap: flows whose original destination is one of
// a port's frontends (ClusterIP, ExternalIPs and LoadBalancer IPs with
// the port; the node's addresses with the NodePort) and whose reply
// source is not an endpoint in use for it. This includes flows that were
// never translated (created while the port had no endpoints). Flows of
// other protocols or to other destinations are never stale.
//
// It is the pure computation that Syncer runs against the kernel's table.
func StaleFlows(snap *proxykit.Snapshot, cfg Config, flows []Flow) []Flow {
	ix := buildIndex(snap, cfg, coverAll)
	var out []Flow
	for i := range flows {
		if ix.stale(&flows[i]) {
			out = append(out, flows[i])
		}
	}
	return out
}
