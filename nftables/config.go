package nftables

import (
	"errors"
	"fmt"
	"math/bits"
	"net/netip"

	"github.com/proxykit/proxykit/internal/cidr"
)

// Defaults of Config.
const (
	DefaultTable          = "proxykit"
	DefaultMasqueradeMark = 0x4000
)

// Config is the node-wide configuration of the nftables backend.
type Config struct {
	// Table names the table the backend owns in each family (ip and
	// ip6). Default "proxykit".
	Table string
	// MasqueradeMark is the one packet-mark bit that asks for masquerade
	// (SEMANTICS §7). Default 0x4000, kube-proxy's.
	MasqueradeMark uint32
	// ClusterCIDRs are the pod CIDRs of the cluster: internal traffic from
	// outside them is masqueraded (SEMANTICS §7). Required unless
	// MasqueradeAll is set.
	ClusterCIDRs []netip.Prefix
	// LocalPodCIDRs are this node's pod CIDRs: traffic from them counts as
	// "from a pod on this node" (the external policy Local short-circuit,
	// SEMANTICS §2). Empty means ClusterCIDRs, as kube-proxy's
	// cluster-CIDR detection does; then pods on other nodes count as local.
	LocalPodCIDRs []netip.Prefix
	// MasqueradeAll masquerades all internal traffic.
	MasqueradeAll bool
	// NodePortAddresses narrows the node addresses that serve NodePorts;
	// empty means every local address except loopback (SEMANTICS §8).
	NodePortAddresses []netip.Prefix
}

func (c Config) withDefaults() Config {
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if c.MasqueradeMark == 0 {
		c.MasqueradeMark = DefaultMasqueradeMark
	}
	if len(c.LocalPodCIDRs) == 0 {
		c.LocalPodCIDRs = c.ClusterCIDRs
	}
	return c
}

// Validate reports every problem of the configuration, each naming the
// field and the value. Zero values that have defaults are valid.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, value any, reason string) {
		errs = append(errs, fmt.Errorf("nftables: Config.%s: invalid value %v: %s", field, value, reason))
	}
	if c.Table != "" && !validName(c.Table) {
		bad("Table", fmt.Sprintf("%q", c.Table), "must be 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter")
	}
	if c.MasqueradeMark != 0 && bits.OnesCount32(c.MasqueradeMark) != 1 {
		bad("MasqueradeMark", fmt.Sprintf("%#x", c.MasqueradeMark), "must be a single bit")
	}
	if len(c.ClusterCIDRs) == 0 && !c.MasqueradeAll {
		bad("ClusterCIDRs", "[]", "must not be empty unless MasqueradeAll is set: masquerading internal traffic needs to tell pods from other sources")
	}
	for field, ps := range map[string][]netip.Prefix{
		"ClusterCIDRs": c.ClusterCIDRs, "LocalPodCIDRs": c.LocalPodCIDRs, "NodePortAddresses": c.NodePortAddresses,
	} {
		for i, p := range ps {
			if r := cidr.Problem(p); r != "" {
				bad(fmt.Sprintf("%s[%d]", field, i), p, r)
			}
		}
	}
	return errors.Join(errs...)
}

// validName reports whether s is a safe nft identifier of ours.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
