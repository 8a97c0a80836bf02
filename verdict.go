package proxykit

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// Action is the fate of a packet.
type Action uint8

// The fates of a packet.
const (
	// NoMatch: the packet is not addressed to any service frontend; the
	// service proxy leaves it alone.
	NoMatch Action = iota
	// Forward: the packet is DNATed to one of the candidates.
	Forward
	// Reject: the sender gets a TCP reset or an ICMP unreachable
	// (SEMANTICS §5).
	Reject
	// Drop: the packet is silently dropped (SEMANTICS §5, §6).
	Drop
)

func (a Action) String() string {
	switch a {
	case NoMatch:
		return "no match"
	case Forward:
		return "forward"
	case Reject:
		return "reject"
	case Drop:
		return "drop"
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// Frontend is the kind of service frontend a packet is addressed to.
type Frontend uint8

// The kinds of frontends, in the order Explain prefers them when a
// packet's destination is a frontend of several services.
const (
	NoFrontend Frontend = iota
	ClusterIPFrontend
	ExternalIPFrontend
	LoadBalancerFrontend
	NodePortFrontend
)

func (f Frontend) String() string {
	switch f {
	case NoFrontend:
		return "none"
	case ClusterIPFrontend:
		return "ClusterIP"
	case ExternalIPFrontend:
		return "ExternalIP"
	case LoadBalancerFrontend:
		return "LoadBalancer"
	case NodePortFrontend:
		return "NodePort"
	}
	return "Frontend(" + strconv.Itoa(int(f)) + ")"
}

// Candidate is an endpoint a forwarded packet may go to.
type Candidate struct {
	Endpoint endpoints.Endpoint
	// Probability is the chance that a new connection goes to this
	// endpoint (SEMANTICS §3); the candidates' probabilities sum to 1.
	Probability float64
	// Masquerade says whether the packet is masqueraded when it goes to
	// this endpoint: Verdict.Masquerade, or hairpin (the packet's source
	// is the endpoint's own address, SEMANTICS §7).
	Masquerade bool
}

// Verdict is what SEMANTICS says must happen to a packet.
type Verdict struct {
	Action Action
	// Port is the matched service port; zero when Action is NoMatch.
	Port     servicemap.PortName
	Frontend Frontend
	// External is the traffic class: true for traffic to an external
	// frontend (NodePort, ExternalIP, LoadBalancer IP) that is treated as
	// external. It is false for traffic to a ClusterIP and for traffic
	// that SEMANTICS §2 short-circuits: an external frontend with external
	// policy Local, reached from a pod on this node or from the node,
	// which is treated as internal traffic to the Cluster set.
	External bool
	// Set is the endpoint set in use, Cluster or Local (SEMANTICS §2);
	// empty for NoMatch and for a drop by source ranges, which happens
	// before a set is chosen.
	Set servicemap.TrafficPolicy
	// Candidates are the endpoints a Forward may go to, with their
	// probabilities; empty for every other Action.
	Candidates []Candidate
	// Affinity is the ClientIP affinity timeout in force for a Forward,
	// zero when the service has none (SEMANTICS §4).
	Affinity time.Duration
	// AffinityApplied says an Oracle's affinity table pinned the client
	// to its recorded endpoint, the only candidate.
	AffinityApplied bool
	// Masquerade says whether a Forward is masqueraded (SEMANTICS §7),
	// before hairpin; see Candidate.Masquerade.
	Masquerade bool
	// UnknownPort marks a NoMatch addressed to the ClusterIP of a
	// programmed service on a port (or protocol) it does not have;
	// backends may reject it (SEMANTICS §5).
	UnknownPort bool
	// Reason is one sentence saying why, citing SEMANTICS.
	Reason string
}

// String returns the verdict as deterministic text for humans: a summary
// line, the reason, affinity if any, and one line per candidate, e.g.
//
//	forward ns/web:http/TCP via ClusterIP (internal, Cluster set), masquerade=false
//	  why: §2: internal traffic with internal policy Cluster uses the Cluster set
//	  10.1.0.5:8080 p=0.500000 node=a
//	  10.1.0.6:8080 p=0.500000 node=b
func (v Verdict) String() string {
	var b strings.Builder
	b.WriteString(v.summary())
	b.WriteString("\n  why: " + v.Reason)
	if v.Affinity > 0 {
		fmt.Fprintf(&b, "\n  affinity: ClientIP, timeout %v", v.Affinity)
		if v.AffinityApplied {
			b.WriteString(", client pinned")
		}
	}
	for _, c := range v.Candidates {
		b.WriteString("\n  " + c.line(v.Masquerade))
	}
	return b.String()
}

// summary returns the first line of String.
func (v Verdict) summary() string {
	if v.Action == NoMatch {
		if v.UnknownPort {
			return "no match (a ClusterIP, but not a port of its service)"
		}
		return "no match"
	}
	class := "internal"
	switch {
	case v.External:
		class = "external"
	case v.Frontend != ClusterIPFrontend:
		class = "external frontend treated as internal"
	}
	if v.Set != "" {
		class += ", " + string(v.Set) + " set"
	}
	s := fmt.Sprintf("%v %v via %v (%s)", v.Action, v.Port, v.Frontend, class)
	if v.Action == Forward {
		s += ", masquerade=" + strconv.FormatBool(v.Masquerade)
	}
	return s
}

// line returns the candidate in one line: address, probability, and what
// is notable about it. masq is the verdict's Masquerade: a candidate
// masqueraded only by hairpin says so.
func (c Candidate) line(masq bool) string {
	e := &c.Endpoint
	s := fmt.Sprintf("%v p=%.6f", e.AddrPort(), c.Probability)
	if e.Weight > 1 {
		s += " weight=" + strconv.Itoa(int(e.Weight))
	}
	if e.NodeName != "" {
		s += " node=" + e.NodeName
	}
	if !e.Ready {
		s += " terminating (fallback)"
	}
	if c.Masquerade && !masq {
		s += " hairpin: masquerade"
	}
	return s
}

// ObserveError is what Oracle.Observe returns when a connection went
// where SEMANTICS does not allow: the verdict is not Forward, or the
// endpoint is not one of its candidates.
type ObserveError struct {
	Packet   Packet
	Endpoint netip.AddrPort
	Verdict  Verdict
}

func (e *ObserveError) Error() string {
	why := "it is not a candidate"
	if e.Verdict.Action != Forward {
		why = "the verdict is " + e.Verdict.Action.String()
	}
	return fmt.Sprintf("proxykit: %v went to %v, but %s: %s", e.Packet, e.Endpoint, why, e.Verdict.summary())
}
