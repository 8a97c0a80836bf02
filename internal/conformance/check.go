//go:build linux

package conformance

import (
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/internal/netnstest"
	"github.com/proxykit/proxykit/servicemap"
)

// sender is where a probe comes from.
type sender struct {
	ns     *netnstest.NS
	origin proxykit.Origin
	src    netip.Addr // the source address of the probe's packets
	opts   netnstest.ProbeOptions
}

// sender resolves p.From. The node's probes use a fixed source address
// (its node-link address) so that the oracle knows the packet's source.
func (h *Harness) sender(p Probe) (sender, error) {
	tp := h.Topology
	is4 := p.Dst.Addr().Is4()
	pick := func(a4, a6 netip.Addr) netip.Addr {
		if is4 {
			return a4
		}
		return a6
	}
	switch p.From {
	case "client":
		return sender{ns: tp.Client, origin: proxykit.FromExternal, src: pick(tp.ClientV4, tp.ClientV6)}, nil
	case "node1":
		src := nodeLinkAddr[v6]
		if is4 {
			src = nodeLinkAddr[v4]
		}
		return sender{ns: tp.Node1, origin: proxykit.FromNode, src: src, opts: netnstest.ProbeOptions{LocalAddr: src}}, nil
	}
	pod := tp.Pod(p.From)
	if pod == nil {
		return sender{}, fmt.Errorf("unknown sender %q", p.From)
	}
	origin := proxykit.FromRemotePod
	if pod.Node == "node1" {
		origin = proxykit.FromLocalPod
	}
	return sender{ns: pod.NS, origin: origin, src: pick(pod.V4, pod.V6)}, nil
}

// Check sends p's connections and checks each against the oracle's
// verdict; it returns the endpoints that answered, in order.
func (h *Harness) Check(t *testing.T, p Probe) []netip.AddrPort {
	t.Helper()
	s, err := h.sender(p)
	if err != nil {
		t.Fatalf("probe %v: %v", p, err)
	}
	pkt := proxykit.Packet{Src: s.src, Dst: p.Dst.Addr(), Protocol: p.Proto, Port: p.Dst.Port(), From: s.origin}
	first := h.Oracle.Explain(h.Snapshot, pkt)
	if first.Action != p.Want {
		t.Fatalf("probe %v: scenario expects %v but the oracle says:\n%v", p, p.Want, first)
	}
	count := max(p.Count, 1)
	var got []netip.AddrPort
	tally := map[netip.AddrPort]int{}
	for i := range count {
		v := first
		if i > 0 {
			v = h.Oracle.Explain(h.Snapshot, pkt)
		}
		ep, ok := h.checkOne(t, p, s, pkt, v)
		if !ok {
			return got // one failure tells enough; the rest would repeat it
		}
		if ep.IsValid() {
			got = append(got, ep)
			tally[ep]++
		}
	}
	if first.Action == proxykit.Forward && first.Affinity == 0 && len(first.Candidates) > 1 && count > 1 {
		checkSpread(t, p, first, tally, count)
	}
	return got
}

// checkOne sends one connection and checks its outcome against v. It
// returns the endpoint that answered a forward, and false after a failure.
func (h *Harness) checkOne(t *testing.T, p Probe, s sender, pkt proxykit.Packet, v proxykit.Verdict) (netip.AddrPort, bool) {
	t.Helper()
	opts := s.opts
	switch v.Action {
	case proxykit.Forward:
		opts.Timeout = h.forward
	case proxykit.Reject:
		opts.Timeout = RejectTimeout
	default:
		opts.Timeout = DropTimeout
	}
	proto := string(p.Proto)
	if proto == "" {
		proto = string(servicemap.TCP)
	}
	r := s.ns.Probe(h.ctx, proto, p.Dst, opts)
	fail := func(format string, args ...any) (netip.AddrPort, bool) {
		t.Errorf("probe %v (%v): %s\noracle: %v\n%s", p, pkt, fmt.Sprintf(format, args...), v, h.ruleDump())
		return netip.AddrPort{}, false
	}
	switch v.Action {
	case proxykit.Forward:
		if r.Outcome != netnstest.Reply {
			return fail("got %v, want a reply from a candidate", r)
		}
		c, ok := h.candidateOf(v, r.Server, p.Dst.Addr().Is4())
		if !ok {
			return fail("got %v, which is not a candidate", r)
		}
		if msg := h.sourceProblem(c, s, r); msg != "" {
			return fail("got %v: %s", r, msg)
		}
		ep := c.Endpoint.AddrPort()
		if err := h.Oracle.Observe(h.Snapshot, pkt, ep); err != nil {
			return fail("observe: %v", err)
		}
		return ep, true
	case proxykit.Reject:
		if localUDPReject(s, p, r) {
			return netip.AddrPort{}, true
		}
		if r.Outcome != netnstest.Refused {
			return fail("got %v, want Refused (a reject, SEMANTICS §5)", r)
		}
	case proxykit.Drop:
		if r.Outcome != netnstest.Timeout {
			return fail("got %v, want Timeout (a drop)", r)
		}
	case proxykit.NoMatch:
		if v.UnknownPort && (r.Outcome == netnstest.Refused || r.Outcome == netnstest.Timeout) {
			return netip.AddrPort{}, true
		}
		if !v.UnknownPort && r.Outcome != netnstest.Reply {
			return netip.AddrPort{}, true
		}
		if r.Outcome == netnstest.Reply && h.podAddr(r.Server, p.Dst.Addr().Is4()) == p.Dst.Addr() {
			return netip.AddrPort{}, true // sent to the pod itself
		}
		return fail("got %v, want no service handling", r)
	}
	return netip.AddrPort{}, true
}

// candidateOf returns the candidate whose address is the answering pod's.
func (h *Harness) candidateOf(v proxykit.Verdict, server string, is4 bool) (proxykit.Candidate, bool) {
	a := h.podAddr(server, is4)
	for _, c := range v.Candidates {
		if c.Endpoint.Addr == a {
			return c, true
		}
	}
	return proxykit.Candidate{}, false
}

// podAddr returns the named pod's address of one family, or the zero
// Addr.
func (h *Harness) podAddr(name string, is4 bool) netip.Addr {
	p := h.Topology.Pod(name)
	switch {
	case p == nil:
		return netip.Addr{}
	case is4:
		return p.V4
	}
	return p.V6
}

// sourceProblem checks the source address the endpoint saw (SEMANTICS
// §7): one of node1's addresses when masqueraded, else the sender's own.
func (h *Harness) sourceProblem(c proxykit.Candidate, s sender, r netnstest.Result) string {
	saw := r.Source.Addr().Unmap()
	if c.Masquerade {
		if !slices.Contains(h.Topology.Node1Addrs, saw) {
			return fmt.Sprintf("the endpoint saw source %v, want masquerade to one of node1's addresses %v", saw, h.Topology.Node1Addrs)
		}
		return ""
	}
	if saw != s.src {
		return fmt.Sprintf("the endpoint saw source %v, want the sender's own %v (no masquerade)", saw, s.src)
	}
	return ""
}

// checkSpread checks the endpoints' shares against the candidates'
// probabilities with Pearson's chi-square test at level Alpha.
func checkSpread(t *testing.T, p Probe, v proxykit.Verdict, tally map[netip.AddrPort]int, count int) {
	t.Helper()
	obs := make([]int, len(v.Candidates))
	probs := make([]float64, len(v.Candidates))
	var desc []string
	for i, c := range v.Candidates {
		obs[i], probs[i] = tally[c.Endpoint.AddrPort()], c.Probability
		if probs[i]*float64(count) < 5 {
			t.Fatalf("probe %v: %d connections are too few for a chi-square check (expected count %.1f < 5 for %v)",
				p, count, probs[i]*float64(count), c.Endpoint.AddrPort())
		}
		desc = append(desc, fmt.Sprintf("%v: %d (expected %.1f)", c.Endpoint.AddrPort(), obs[i], probs[i]*float64(count)))
	}
	stat, df := ChiSquare(obs, probs)
	if crit := ChiSquareCritical(df, Alpha); stat > crit {
		t.Errorf("probe %v: the spread over %d connections does not fit SEMANTICS §3: chi-square %.1f > %.1f (df %d, p < %g)\n  %s",
			p, count, stat, crit, df, Alpha, strings.Join(desc, "\n  "))
	}
}

// ruleDump returns node1's ruleset as `nft list ruleset` prints it, when
// nft is installed, for failure messages.
func (h *Harness) ruleDump() string {
	out, err := nftList(h.Topology.Node1)
	if err != nil {
		return "(no rule dump: " + err.Error() + ")"
	}
	return "node1 ruleset:\n" + out
}

// nftList runs `nft list ruleset` in ns.
func nftList(ns *netnstest.NS) (string, error) {
	var out []byte
	err := ns.Do(func() error {
		var err error
		out, err = exec.Command("nft", "list", "ruleset").CombinedOutput()
		return err
	})
	return string(out), err
}

// localUDPReject reports whether r is how a reject of the node's own UDP
// datagram shows: a reject in the output hook makes send fail at once
// with EPERM (the ICMP error it generates arrives after the failed send,
// which the probe never reads). A drop in the output hook looks the same
// to the sender, so for this one case the check is only "fails fast".
func localUDPReject(s sender, p Probe, r netnstest.Result) bool {
	return s.origin == proxykit.FromNode && p.Proto == servicemap.UDP &&
		r.Outcome == netnstest.Timeout && errors.Is(r.Err, unix.EPERM)
}
