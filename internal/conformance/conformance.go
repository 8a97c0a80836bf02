//go:build linux

package conformance

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/affinity"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/internal/netnstest"
	"github.com/proxykit/proxykit/servicemap"
)

// Timeouts of the probes.
const (
	// DropTimeout is how long a probe waits before it calls a packet
	// dropped.
	DropTimeout = 300 * time.Millisecond
	// RejectTimeout bounds a probe that must be rejected: a reject is
	// immediate, so anything slower is a failure.
	RejectTimeout = time.Second
	// ForwardTimeout bounds a probe that must be answered.
	ForwardTimeout = 2 * time.Second
)

// NodeZone is node1's zone in every scenario's snapshot.
const NodeZone = "zone-a"

// Backend is a backend under test.
type Backend struct {
	Name string
	// New returns a Syncer that programs tp.Node1. It is called once per
	// scenario, each with a fresh topology; it may t.Fatal.
	New func(t testing.TB, tp *netnstest.Topology) proxykit.Syncer
	// Policy is the node-wide configuration the backend was built with;
	// the oracle predicts with it.
	Policy proxykit.Policy
	// ForwardTimeout, when set, replaces ForwardTimeout: a kernel that
	// runs emulated (the IPVS tests' VM) can take longer to answer, while
	// drops and rejects keep their bounds.
	ForwardTimeout time.Duration
}

// Scenario is one situation: services and slices synced into node1, then
// probes.
type Scenario struct {
	Name    string
	Section string // the SEMANTICS section it checks, e.g. "§2 iTP Local"
	// Services and Slices are synced before the probes.
	Services []*servicemap.Service
	Slices   []*endpoints.Slice
	Probes   []Probe
	// Then, optional, continues a multi-step scenario after the probes,
	// with the same topology, syncer and oracle (and so the same affinity
	// memory).
	Then func(t *testing.T, h *Harness)
}

// Probe is one check: Count connections from one namespace to one
// destination.
type Probe struct {
	// From names the sender: "client", "node1", or a pod ("pod-a" …).
	From  string
	Proto servicemap.Protocol // zero means TCP
	Dst   netip.AddrPort
	// Count is the number of connections; zero means 1. With several
	// candidates and no affinity, their spread is checked (chi-square).
	Count int
	// Want is the action the scenario expects the oracle to predict. It
	// guards the scenario itself, not the backend: a typo in a scenario
	// must not turn a forward check into a no-match check.
	Want proxykit.Action
}

func (p Probe) String() string {
	proto := p.Proto
	if proto == "" {
		proto = servicemap.TCP
	}
	return fmt.Sprintf("%s %s -> %s", proto, p.From, p.Dst)
}

// Run runs every scenario of [Scenarios] against b, each as a subtest
// with a fresh topology.
func Run(t *testing.T, b Backend) {
	t.Helper()
	netnstest.Require(t)
	for _, sc := range Scenarios() {
		t.Run(sc.Section+"/"+sc.Name, func(t *testing.T) {
			t.Parallel() // each scenario has its own namespaces
			runScenario(t, b, sc)
		})
	}
}

// Harness is the state of one running scenario, for Scenario.Then.
type Harness struct {
	Topology *netnstest.Topology
	Oracle   *proxykit.Oracle
	// Snapshot is the last snapshot synced.
	Snapshot *proxykit.Snapshot
	syncer   proxykit.Syncer
	ctx      context.Context
	forward  time.Duration // the bound of a probe that must be answered
}

func runScenario(t *testing.T, b Backend, sc Scenario) {
	tp := netnstest.New(t)
	checkAddressBook(t, tp)
	waitReady(t, tp)
	h := &Harness{
		Topology: tp,
		Oracle: &proxykit.Oracle{
			Policy:   b.Policy,
			Affinity: affinity.NewTable[proxykit.AffinityKey, netip.AddrPort](0),
		},
		syncer:  b.New(t, tp),
		ctx:     t.Context(),
		forward: cmp.Or(b.ForwardTimeout, ForwardTimeout),
	}
	h.Sync(t, sc.Services, sc.Slices)
	for _, p := range sc.Probes {
		h.Check(t, p)
	}
	if sc.Then != nil && !t.Failed() {
		sc.Then(t, h)
	}
}

// Sync builds a full snapshot of services and slices for node1 and syncs
// it; it fails t on error.
func (h *Harness) Sync(t *testing.T, services []*servicemap.Service, slices []*endpoints.Slice) {
	t.Helper()
	node := proxykit.Node{Name: "node1", Zone: NodeZone, Addresses: h.Topology.Node1Addrs}
	snap, err := proxykit.NewSnapshot(node, services, slices)
	if err != nil {
		t.Fatalf("scenario is invalid: %v", err)
	}
	if err := h.syncer.Sync(h.ctx, snap); err != nil {
		t.Fatalf("sync: %v", err)
	}
	h.Snapshot = snap
}

// checkAddressBook fails t when the topology's addresses are not those
// the scenarios are written for.
func checkAddressBook(t *testing.T, tp *netnstest.Topology) {
	t.Helper()
	ok := tp.ClientV4 == clientAddr[v4] && tp.ClientV6 == clientAddr[v6]
	for name, addrs := range podAddr {
		p := tp.Pod(name)
		ok = ok && p != nil && p.V4 == addrs[v4] && p.V6 == addrs[v6]
	}
	if !ok {
		t.Fatal("conformance: the netnstest topology's addresses changed; update addresses.go")
	}
}

// LocalPodCIDRs are node1's pod CIDRs in the topology, for backends that
// tell local pods from remote ones.
var LocalPodCIDRs = []netip.Prefix{netip.MustParsePrefix("10.244.1.0/24"), netip.MustParsePrefix("fd00:244:1::/64")}

// waitReady waits until the client reaches every pod directly over UDP in
// both families, before any rule is synced. Under load, the first IPv6
// packet to a freshly built pod was seen to be lost (the pod counted it
// in Ip6InAddrErrors: its address was not valid yet); without this
// barrier that loss would be blamed on the backend.
func waitReady(t *testing.T, tp *netnstest.Topology) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range tp.Pods {
		for _, a := range []netip.Addr{p.V4, p.V6} {
			dst := netip.AddrPortFrom(a, netnstest.UDPPort)
			for {
				r := tp.Client.Probe(t.Context(), "udp", dst, netnstest.ProbeOptions{Timeout: 200 * time.Millisecond})
				if r.Outcome == netnstest.Reply {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("conformance: topology not ready: client -> %v (%s): %v", dst, p.Name, r)
				}
			}
		}
	}
}
