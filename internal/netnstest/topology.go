//go:build linux

package netnstest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"testing"
)

// Ports of the responders that every pod runs on all its addresses.
const (
	TCPPort = 8080
	UDPPort = 8080
)

// Pod is a namespace with one veth to its node and the responders.
type Pod struct {
	Name     string     // "pod-a" … "pod-d"; the responders answer with it
	Node     string     // "node1" (pod-a, pod-b) or "node2" (pod-c, pod-d)
	NS       *NS        // the pod's namespace
	V4, V6   netip.Addr // the pod's addresses
	HostLink string     // the node side of the pod's veth, in the node's namespace ("veth-pod-a")
}

// Topology is a client, two nodes and four pods in network namespaces; see
// the package documentation for the addresses and routes.
type Topology struct {
	Client       *NS            // the external client
	Node1, Node2 *NS            // the nodes; rules under test go into Node1
	Pods         []*Pod         // pod-a, pod-b (on node1), pod-c, pod-d (on node2)
	ClientV4     netip.Addr     // 192.0.2.100
	ClientV6     netip.Addr     // 2001:db8:c::100
	Node1Addrs   []netip.Addr   // 198.51.100.1, 2001:db8:1::1 (node link), 192.0.2.1, 2001:db8:c::1 (client link)
	Node2Addrs   []netip.Addr   // 198.51.100.2, 2001:db8:1::2
	ClusterCIDRs []netip.Prefix // 10.244.0.0/16, fd00:244::/32: all pod addresses

	closers []func() error // in creation order; run in reverse
}

var (
	mustAddr = netip.MustParseAddr
	clientV4 = mustAddr("192.0.2.100")
	clientV6 = mustAddr("2001:db8:c::100")
	n1Client = []netip.Addr{mustAddr("192.0.2.1"), mustAddr("2001:db8:c::1")}
	n1Node   = []netip.Addr{mustAddr("198.51.100.1"), mustAddr("2001:db8:1::1")}
	n2Node   = []netip.Addr{mustAddr("198.51.100.2"), mustAddr("2001:db8:1::2")}
	podGW    = []netip.Addr{mustAddr("169.254.1.1"), mustAddr("fe80::1")} // on the node side of every pod veth
	podSpecs = []Pod{
		{Name: "pod-a", Node: "node1", V4: mustAddr("10.244.1.10"), V6: mustAddr("fd00:244:1::10")},
		{Name: "pod-b", Node: "node1", V4: mustAddr("10.244.1.11"), V6: mustAddr("fd00:244:1::11")},
		{Name: "pod-c", Node: "node2", V4: mustAddr("10.244.2.10"), V6: mustAddr("fd00:244:2::10")},
		{Name: "pod-d", Node: "node2", V4: mustAddr("10.244.2.11"), V6: mustAddr("fd00:244:2::11")},
	}
	node2PodCIDRs = []netip.Prefix{netip.MustParsePrefix("10.244.2.0/24"), netip.MustParsePrefix("fd00:244:2::/64")}
	clusterCIDRs  = []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00:244::/32")}
	defaultRoutes = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
)

// New builds a topology with fresh namespaces, starts the pods' responders
// and registers a cleanup that stops them and deletes the namespaces. It
// calls [Require] first, and t.Fatal on any error, so call it from the test's
// goroutine.
func New(t testing.TB) *Topology {
	t.Helper()
	Require(t)
	tp := newTopology()
	t.Cleanup(func() {
		if err := tp.close(); err != nil {
			t.Errorf("netnstest: cleanup: %v", err)
		}
	})
	if err := tp.build(); err != nil {
		t.Fatal(err)
	}
	return tp
}

// Build builds a topology for a program rather than a test (the demo):
// the caller must Close it. On error nothing is left behind.
func Build() (*Topology, error) {
	tp := newTopology()
	if err := tp.build(); err != nil {
		return nil, errors.Join(err, tp.close())
	}
	return tp, nil
}

// Close stops the responders and deletes the namespaces of a topology made
// by Build.
func (tp *Topology) Close() error { return tp.close() }

func newTopology() *Topology {
	return &Topology{
		ClientV4:     clientV4,
		ClientV6:     clientV6,
		Node1Addrs:   append(append([]netip.Addr(nil), n1Node...), n1Client...),
		Node2Addrs:   append([]netip.Addr(nil), n2Node...),
		ClusterCIDRs: append([]netip.Prefix(nil), clusterCIDRs...),
	}
}

// Pod returns the pod with the given name ("pod-a" … "pod-d"), or nil.
func (tp *Topology) Pod(name string) *Pod {
	for _, p := range tp.Pods {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// close undoes build in reverse order and returns every error.
func (tp *Topology) close() error {
	var errs []error
	for i := len(tp.closers) - 1; i >= 0; i-- {
		errs = append(errs, tp.closers[i]())
	}
	tp.closers = nil
	return errors.Join(errs...)
}

// build creates and configures everything; on error, close removes what
// was created.
func (tp *Topology) build() error {
	prefix, err := randomPrefix()
	if err != nil {
		return err
	}
	if err := tp.createNamespaces(prefix); err != nil {
		return err
	}
	for _, step := range []func() error{tp.configure, tp.wire, tp.route, tp.serve} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// randomPrefix returns a namespace name prefix unique with high probability
// among concurrent and repeated test runs: "pk-" and 6 hex digits.
func randomPrefix() (string, error) {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("netnstest: random namespace prefix: %w", err)
	}
	return "pk-" + hex.EncodeToString(b), nil
}

// createNamespaces creates the client, node and pod namespaces.
func (tp *Topology) createNamespaces(prefix string) error {
	mk := func(role string) (*NS, error) {
		ns, err := newNS(prefix + "-" + role)
		if err == nil {
			tp.closers = append(tp.closers, ns.close)
		}
		return ns, err
	}
	var err error
	if tp.Client, err = mk("client"); err != nil {
		return err
	}
	if tp.Node1, err = mk("node1"); err != nil {
		return err
	}
	if tp.Node2, err = mk("node2"); err != nil {
		return err
	}
	for _, spec := range podSpecs {
		p := spec
		p.HostLink = "veth-" + p.Name
		if p.NS, err = mk(p.Name); err != nil {
			return err
		}
		tp.Pods = append(tp.Pods, &p)
	}
	return nil
}

// nodeNS returns the namespace of the node called name.
func (tp *Topology) nodeNS(name string) *NS {
	if name == "node1" {
		return tp.Node1
	}
	return tp.Node2
}

// nodeAddrs returns the node-link addresses of the node called name.
func nodeAddrs(name string) []netip.Addr {
	if name == "node1" {
		return n1Node
	}
	return n2Node
}
