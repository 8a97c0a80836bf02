package iptables

import (
	"errors"
	"fmt"
	"math/bits"
	"net/netip"

	"github.com/proxykit/proxykit/internal/cidr"
)

// Defaults of Config.
const (
	DefaultPrefix         = "PROXYKIT"
	DefaultMasqueradeMark = 0x4000
	// DefaultLargeClusterEndpoints is the endpoint count above which
	// per-endpoint comments are dropped (kube-proxy's threshold).
	DefaultLargeClusterEndpoints = 1000
	// maxPrefix keeps every chain name within 28 characters with at least
	// 13 characters (65 bits) of hash: prefix + "-SVC-" + hash.
	maxPrefix = 10
)

// Variant selects the iptables implementation.
type Variant string

// The variants. Auto follows what the system's `iptables --version`
// reports.
const (
	Auto   Variant = ""
	Legacy Variant = "legacy"
	NFT    Variant = "nft"
)

// Config is the node-wide configuration of the iptables backend.
type Config struct {
	// Prefix starts the name of every chain the backend owns, in every
	// table and family; chains with this prefix and a dash are ours
	// (SEMANTICS §11). Default "PROXYKIT"; 1-10 characters of A-Z, 0-9
	// and '-', starting with a letter.
	Prefix string
	// MasqueradeMark is the one packet-mark bit that asks for masquerade
	// (SEMANTICS §7). Default 0x4000.
	MasqueradeMark uint32
	// ClusterCIDRs are the pod CIDRs of the cluster: internal traffic from
	// outside them is masqueraded (SEMANTICS §7). Required unless
	// MasqueradeAll is set.
	ClusterCIDRs []netip.Prefix
	// LocalPodCIDRs are this node's pod CIDRs (the external policy Local
	// short-circuit, SEMANTICS §2). Empty means ClusterCIDRs.
	LocalPodCIDRs []netip.Prefix
	// MasqueradeAll masquerades all internal traffic.
	MasqueradeAll bool
	// NodePortAddresses narrows the node addresses that serve NodePorts;
	// empty means every local address except loopback (SEMANTICS §8).
	NodePortAddresses []netip.Prefix
	// LocalhostNodePorts serves IPv4 NodePorts on 127.0.0.0/8 to the node
	// itself (SEMANTICS §8). Off by default. The kernel routes such
	// packets only with net.ipv4.conf.all.route_localnet=1, which the
	// caller sets.
	LocalhostNodePorts bool
	// Variant is the iptables implementation: Auto (default), Legacy or
	// NFT. Used by NewRunner; Render does not depend on it.
	Variant Variant
	// LargeClusterEndpoints: above this many endpoints in a snapshot,
	// per-endpoint rules carry no comment (smaller restore payloads).
	// Zero means DefaultLargeClusterEndpoints; negative means never.
	LargeClusterEndpoints int
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.MasqueradeMark == 0 {
		c.MasqueradeMark = DefaultMasqueradeMark
	}
	if len(c.LocalPodCIDRs) == 0 {
		c.LocalPodCIDRs = c.ClusterCIDRs
	}
	if c.LargeClusterEndpoints == 0 {
		c.LargeClusterEndpoints = DefaultLargeClusterEndpoints
	}
	return c
}

// Validate reports every problem of the configuration, each naming the
// field and the value. Zero values that have defaults are valid.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, value any, reason string) {
		errs = append(errs, fmt.Errorf("iptables: Config.%s: invalid value %v: %s", field, value, reason))
	}
	if c.Prefix != "" && !validPrefix(c.Prefix) {
		bad("Prefix", fmt.Sprintf("%q", c.Prefix), "must be 1-10 characters of A-Z, 0-9 and '-', starting with a letter and not ending with '-'")
	}
	if c.MasqueradeMark != 0 && bits.OnesCount32(c.MasqueradeMark) != 1 {
		bad("MasqueradeMark", fmt.Sprintf("%#x", c.MasqueradeMark), "must be a single bit")
	}
	if len(c.ClusterCIDRs) == 0 && !c.MasqueradeAll {
		bad("ClusterCIDRs", "[]", "must not be empty unless MasqueradeAll is set: masquerading internal traffic needs to tell pods from other sources")
	}
	switch c.Variant {
	case Auto, Legacy, NFT:
	default:
		bad("Variant", fmt.Sprintf("%q", c.Variant), `must be "", "legacy" or "nft"`)
	}
	for _, f := range []struct {
		name string
		ps   []netip.Prefix
	}{{"ClusterCIDRs", c.ClusterCIDRs}, {"LocalPodCIDRs", c.LocalPodCIDRs}, {"NodePortAddresses", c.NodePortAddresses}} {
		for i, p := range f.ps {
			if r := cidr.Problem(p); r != "" {
				bad(fmt.Sprintf("%s[%d]", f.name, i), p, r)
			}
		}
	}
	return errors.Join(errs...)
}

func validPrefix(s string) bool {
	if len(s) == 0 || len(s) > maxPrefix || s[0] < 'A' || s[0] > 'Z' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
