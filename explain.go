package proxykit

import (
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/proxykit/proxykit/affinity"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// Origin says where a packet comes from. It decides the traffic class of
// external frontends with external policy Local (SEMANTICS §2) and
// masquerading (§7).
type Origin uint8

// The origins of a packet.
const (
	FromExternal  Origin = iota // outside the cluster (outside the cluster CIDRs)
	FromLocalPod                // a pod on this node
	FromRemotePod               // a pod on another node (inside the cluster CIDRs)
	FromNode                    // the node itself
)

func (o Origin) String() string {
	switch o {
	case FromExternal:
		return "external"
	case FromLocalPod:
		return "local pod"
	case FromRemotePod:
		return "remote pod"
	case FromNode:
		return "node"
	}
	return "Origin(" + strconv.Itoa(int(o)) + ")"
}

// isPod reports whether the origin is inside the cluster (pod) CIDRs.
func (o Origin) isPod() bool { return o == FromLocalPod || o == FromRemotePod }

// Packet is the first packet of a new connection, as it reaches the node's
// service proxy.
type Packet struct {
	Src, Dst netip.Addr
	Protocol servicemap.Protocol // zero means TCP
	Port     uint16              // the destination port
	From     Origin
}

func (p Packet) protocol() servicemap.Protocol { return p.Protocol.OrTCP() }

// String returns the packet in one line, such as
// "TCP 203.0.113.7 -> 10.96.0.10:80 from external".
func (p Packet) String() string {
	return string(p.protocol()) + " " + p.Src.String() + " -> " +
		netip.AddrPortFrom(p.Dst, p.Port).String() + " from " + p.From.String()
}

// Policy is the node-wide configuration of a proxy that changes a packet's
// fate. The zero Policy is kube-proxy's default.
type Policy struct {
	// MasqueradeAll masquerades all internal traffic, even from pods
	// (SEMANTICS §7).
	MasqueradeAll bool
	// NodePortAddresses narrows the node addresses that serve NodePorts to
	// those inside one of the prefixes; empty means all node addresses
	// (SEMANTICS §8).
	NodePortAddresses []netip.Prefix
	// LocalhostNodePorts serves NodePorts on 127.0.0.0/8 to the node itself
	// (SEMANTICS §8; IPv4 only, iptables only). With NodePortAddresses set,
	// the loopback address must also lie inside one of its prefixes.
	LocalhostNodePorts bool
}

// AffinityKey identifies a ClientIP affinity record: one client of one
// service port.
type AffinityKey struct {
	Port   servicemap.PortName
	Client netip.Addr
}

// Oracle applies SEMANTICS §2–§8 to packets: it says what every backend
// must do with a packet, given a snapshot. The zero Oracle is usable: it
// has no affinity memory and the default Policy.
//
// With an Affinity table the Oracle also predicts ClientIP affinity
// (§4): Observe records where a connection went, and Explain then pins
// that client to the recorded endpoint while it stays in the set in use.
// Records are keyed by service port and client address, so all frontends
// of a port share them. Explain deletes a record whose endpoint is not in
// the set in use (affinity ends, §4), so it may modify the table; the
// client is then balanced afresh over the whole set, which is the
// prediction that holds whatever a kernel does with its stale record.
//
// An Oracle is safe for concurrent use as long as its fields are not
// changed (affinity.Table is safe for concurrent use), but concurrent
// Observe calls for one client race as real connections would.
type Oracle struct {
	Policy Policy
	// Affinity optionally remembers observed choices for ClientIP
	// services.
	Affinity *affinity.Table[AffinityKey, netip.AddrPort]
	// Now optionally replaces time.Now for the affinity table.
	Now func() time.Time
}

func (o *Oracle) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// Explain returns the fate of pkt under snap according to SEMANTICS, with
// the default Oracle: no affinity memory, the zero Policy.
func Explain(snap *Snapshot, pkt Packet) Verdict { return (&Oracle{}).Explain(snap, pkt) }

// Explain returns the fate of pkt under snap according to SEMANTICS
// §2–§8: the service port and frontend it matches, then either a drop
// (source ranges, §6; external policy Local without local endpoints, §5),
// a reject (no endpoints, §5), or a forward to the candidates of the set
// in use (§2), with their probabilities (§3), ClientIP affinity (§4) and
// masquerading (§7). A nil snapshot matches nothing.
func (o *Oracle) Explain(snap *Snapshot, pkt Packet) Verdict {
	if snap == nil || !pkt.Dst.IsValid() {
		return Verdict{Reason: reasonNoMatch}
	}
	fs := snap.Family(FamilyOf(pkt.Dst))
	m, ok := o.match(fs, snap.Node(), pkt)
	if !ok {
		unknown := isClusterIP(fs, pkt.Dst)
		return Verdict{UnknownPort: unknown, Reason: noMatchReason(unknown)}
	}
	sel := selectSet(m.ps, m.frontend, pkt.From)
	v := Verdict{Port: m.ps.Name, Frontend: m.frontend, External: sel.external}
	if m.frontend == LoadBalancerFrontend && !sourceAllowed(m.ps, snap.Node(), pkt) {
		v.Action, v.Reason = Drop, reasonFirewall
		return v
	}
	v.Set = sel.policy
	if len(sel.eps) == 0 {
		v.Action, v.Reason = noEndpoints(sel)
		return v
	}
	v.Action = Forward
	v.Masquerade = o.masquerade(sel, pkt.From)
	v.Affinity = m.ps.Port.Affinity.EffectiveTimeout()
	v.Candidates = candidates(sel.eps, pkt.Src, v.Masquerade)
	v.Reason = sel.reason(pkt.From)
	o.pin(&v, pkt)
	return v
}

// Observe records that the new connection described by pkt went to ep. It
// explains pkt again (so call it after the connection, with the same
// snapshot) and returns an *ObserveError when the verdict is not Forward
// or ep is not one of its candidates: a backend sent the connection where
// SEMANTICS forbids. For a ClientIP service with an Affinity table it then
// sets or refreshes the client's record, with the service's timeout.
func (o *Oracle) Observe(snap *Snapshot, pkt Packet, ep netip.AddrPort) error {
	v := o.Explain(snap, pkt)
	if v.Action != Forward || !slices.ContainsFunc(v.Candidates, func(c Candidate) bool {
		return c.Endpoint.AddrPort() == ep
	}) {
		return &ObserveError{Packet: pkt, Endpoint: ep, Verdict: v}
	}
	if v.Affinity > 0 && o.Affinity != nil {
		o.Affinity.Set(AffinityKey{Port: v.Port, Client: pkt.Src}, ep, v.Affinity, o.now())
	}
	return nil
}

// A frontendMatch is the service port and kind of frontend a packet hits.
type frontendMatch struct {
	ps       *PortState
	frontend Frontend
}

// match finds the service port whose frontend pkt is addressed to. When
// several match (addresses shared between services), the kind of
// frontend decides in the order ClusterIP, ExternalIP, LoadBalancer,
// NodePort, then the first port in PortName order.
func (o *Oracle) match(fs *FamilyState, node Node, pkt Packet) (frontendMatch, bool) {
	nodePort := o.servesNodePorts(node, pkt)
	proto := pkt.protocol()
	var best frontendMatch
	for ps := range fs.Ports() {
		if ps.Port.Protocol.OrTCP() != proto {
			continue
		}
		f := frontendOf(ps, pkt, nodePort)
		if f != NoFrontend && (best.frontend == NoFrontend || f < best.frontend) {
			best = frontendMatch{ps: ps, frontend: f}
		}
		if best.frontend == ClusterIPFrontend {
			break
		}
	}
	return best, best.frontend != NoFrontend
}

// frontendOf returns the kind of ps's frontend that pkt is addressed to,
// protocol aside. nodePort says whether pkt.Dst serves NodePorts.
func frontendOf(ps *PortState, pkt Packet, nodePort bool) Frontend {
	if pkt.Port == ps.Port.Port {
		switch {
		case pkt.Dst == ps.ClusterIP:
			return ClusterIPFrontend
		case slices.Contains(ps.ExternalIPs, pkt.Dst):
			return ExternalIPFrontend
		case slices.Contains(ps.LoadBalancerIPs, pkt.Dst):
			return LoadBalancerFrontend
		}
	}
	if nodePort && ps.Port.NodePort != 0 && pkt.Port == ps.Port.NodePort {
		return NodePortFrontend
	}
	return NoFrontend
}

// servesNodePorts reports whether pkt.Dst serves NodePorts (SEMANTICS
// §8): a node address other than loopback, inside NodePortAddresses when
// it is set. A loopback destination serves them only with
// LocalhostNodePorts, only in IPv4 and only to the node itself; every
// 127.0.0.0/8 address is local, listed in Node.Addresses or not.
func (o *Oracle) servesNodePorts(node Node, pkt Packet) bool {
	dst := pkt.Dst
	if dst.IsLoopback() {
		if !o.Policy.LocalhostNodePorts || !dst.Is4() || pkt.From != FromNode {
			return false
		}
	} else if !node.HasAddress(dst) {
		return false
	}
	return len(o.Policy.NodePortAddresses) == 0 || prefixesContain(o.Policy.NodePortAddresses, dst)
}

// isClusterIP reports whether a is the ClusterIP of a programmed port.
func isClusterIP(fs *FamilyState, a netip.Addr) bool {
	for ps := range fs.Ports() {
		if ps.ClusterIP == a {
			return true
		}
	}
	return false
}

// sourceAllowed applies the LoadBalancer source ranges (SEMANTICS §6) to
// a packet addressed to one of ps's LoadBalancer IPs. The node itself may
// always reach the LB IP when a range contains one of its addresses,
// whatever source address it picks.
func sourceAllowed(ps *PortState, node Node, pkt Packet) bool {
	if !ps.Firewalled || prefixesContain(ps.SourceRanges, pkt.Src) {
		return true
	}
	if pkt.From != FromNode {
		return false
	}
	return slices.ContainsFunc(node.Addresses, func(a netip.Addr) bool {
		return prefixesContain(ps.SourceRanges, a)
	})
}

func prefixesContain(ps []netip.Prefix, a netip.Addr) bool {
	return slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Contains(a) })
}

// A setSelection is the endpoint set a packet uses (SEMANTICS §2).
type setSelection struct {
	// external: external frontend, not short-circuited (Verdict.External).
	external bool
	// shortCircuit: external frontend with external policy Local, reached
	// from a local pod or the node, treated as internal to the Cluster set.
	shortCircuit bool
	policy       servicemap.TrafficPolicy
	eps          []endpoints.Endpoint
}

// selectSet picks the endpoint set per SEMANTICS §2.
func selectSet(ps *PortState, f Frontend, from Origin) setSelection {
	cluster := setSelection{policy: servicemap.Cluster, eps: ps.Endpoints.Cluster}
	local := setSelection{policy: servicemap.Local, eps: ps.Endpoints.Local}
	switch {
	case f == ClusterIPFrontend && ps.Port.InternalTrafficPolicy == servicemap.Local:
		return local
	case f == ClusterIPFrontend:
		return cluster
	case ps.Port.ExternalTrafficPolicy != servicemap.Local:
		cluster.external = true
		return cluster
	case from == FromLocalPod || from == FromNode:
		cluster.shortCircuit = true
		return cluster
	}
	local.external = true
	return local
}

// reason explains a forward through the selection in one sentence.
func (s setSelection) reason(from Origin) string {
	switch {
	case s.shortCircuit:
		return "§2: external policy Local, but traffic from the " + from.String() +
			" to an external frontend is treated as internal traffic to the Cluster set"
	case s.external:
		return "§2: external traffic with external policy " + string(s.policy) + " uses the " + string(s.policy) + " set"
	}
	return "§2: internal traffic with internal policy " + string(s.policy) + " uses the " + string(s.policy) + " set"
}

// noEndpoints returns the fate of a packet whose set in use is empty
// (SEMANTICS §5).
func noEndpoints(s setSelection) (Action, string) {
	if s.external && s.policy == servicemap.Local {
		return Drop, reasonNoLocal
	}
	return Reject, "§5: no endpoints in the " + string(s.policy) + " set: reject"
}

// masquerade says whether a forwarded packet is masqueraded, before
// hairpin (SEMANTICS §7).
func (o *Oracle) masquerade(s setSelection, from Origin) bool {
	switch {
	case s.external:
		// External policy Cluster masquerades; Local keeps the client's
		// address (the node's own traffic is short-circuited, below).
		return s.policy == servicemap.Cluster
	case s.shortCircuit && from == FromNode:
		return true
	}
	return o.Policy.MasqueradeAll || !from.isPod()
}

// candidates returns eps with their probabilities weight/sum (SEMANTICS
// §3) and hairpin masquerading (§7).
func candidates(eps []endpoints.Endpoint, src netip.Addr, masq bool) []Candidate {
	var sum uint64
	for i := range eps {
		sum += uint64(eps[i].EffectiveWeight())
	}
	out := make([]Candidate, len(eps))
	for i, ep := range eps {
		out[i] = Candidate{
			Endpoint:    ep,
			Probability: float64(ep.EffectiveWeight()) / float64(sum),
			Masquerade:  masq || ep.Addr == src,
		}
	}
	return out
}

// pin applies the Oracle's affinity record to a forward verdict
// (SEMANTICS §4): a record whose endpoint is among the candidates leaves
// it as the only one; a record whose endpoint has left the set in use
// ends affinity and is deleted.
func (o *Oracle) pin(v *Verdict, pkt Packet) {
	if v.Affinity == 0 || o.Affinity == nil {
		return
	}
	key := AffinityKey{Port: v.Port, Client: pkt.Src}
	ap, ok := o.Affinity.Get(key, o.now())
	if !ok {
		return
	}
	for _, c := range v.Candidates {
		if c.Endpoint.AddrPort() == ap {
			c.Probability = 1
			v.Candidates = []Candidate{c}
			v.AffinityApplied = true
			v.Reason = "§4: ClientIP affinity sends the client to " + ap.String() + ", still in the " + string(v.Set) + " set"
			return
		}
	}
	o.Affinity.Delete(key)
}

const (
	reasonNoMatch  = "no service frontend matches"
	reasonFirewall = "§6: the source is outside every LoadBalancer source range: drop"
	reasonNoLocal  = "§5: external traffic with external policy Local and no local endpoints: drop"
)

func noMatchReason(unknownPort bool) string {
	if unknownPort {
		return "§5: the destination is a ClusterIP but its service has no such port and protocol: backends may reject it"
	}
	return reasonNoMatch
}
