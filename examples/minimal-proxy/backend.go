package main

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/iptables"
	"github.com/proxykit/proxykit/ipvs"
	"github.com/proxykit/proxykit/nftables"
)

// backendConfig is the node-wide configuration common to the backends,
// from the flags.
type backendConfig struct {
	backend           string
	clusterCIDRs      []netip.Prefix
	nodePortAddresses []netip.Prefix
	masqueradeAll     bool
}

var backends = []string{"nftables", "iptables", "ipvs"}

func (c backendConfig) nftables() nftables.Config {
	return nftables.Config{ClusterCIDRs: c.clusterCIDRs, MasqueradeAll: c.masqueradeAll, NodePortAddresses: c.nodePortAddresses}
}

func (c backendConfig) iptables() iptables.Config {
	return iptables.Config{ClusterCIDRs: c.clusterCIDRs, MasqueradeAll: c.masqueradeAll, NodePortAddresses: c.nodePortAddresses}
}

func (c backendConfig) ipvs() ipvs.Config {
	return ipvs.Config{ClusterCIDRs: c.clusterCIDRs, MasqueradeAll: c.masqueradeAll, NodePortAddresses: c.nodePortAddresses}
}

// policy is what Explain needs of the configuration.
func (c backendConfig) policy() proxykit.Policy {
	return proxykit.Policy{MasqueradeAll: c.masqueradeAll, NodePortAddresses: c.nodePortAddresses}
}

// validate checks the configuration the way the backend will.
func (c backendConfig) validate() error {
	switch c.backend {
	case "nftables":
		return c.nftables().Validate()
	case "iptables":
		return c.iptables().Validate()
	case "ipvs":
		return c.ipvs().Validate()
	}
	return usageError{fmt.Errorf("--backend %q: must be one of %s", c.backend, strings.Join(backends, ", "))}
}

// render returns the text of what the backend would install for snap,
// in the kernel tool's syntax.
func (c backendConfig) render(snap *proxykit.Snapshot) (string, error) {
	if err := c.validate(); err != nil {
		return "", err
	}
	switch c.backend {
	case "nftables":
		rs, err := nftables.Render(snap, c.nftables())
		if err != nil {
			return "", err
		}
		return rs.String(), nil
	case "iptables":
		rs, err := iptables.Render(snap, c.iptables())
		if err != nil {
			return "", err
		}
		return rs.String(), nil
	default:
		st, err := ipvs.Plan(snap, c.ipvs())
		if err != nil {
			return "", err
		}
		rules, err := ipvs.Rules(snap, c.ipvs())
		if err != nil {
			return "", err
		}
		return "# IPVS\n" + st.String() + "# companion rules (nftables)\n" + rules.String(), nil
	}
}

// cleaner is a backend that can remove everything it owns.
type cleaner interface {
	proxykit.Syncer
	Cleanup(ctx context.Context) error
}

// newSyncer returns the kernel backend, in the caller's network
// namespace.
func (c backendConfig) newSyncer() (cleaner, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	switch c.backend {
	case "nftables":
		return nftables.NewSyncer(c.nftables())
	case "iptables":
		return iptables.NewSyncer(c.iptables())
	default:
		return ipvs.NewSyncer(c.ipvs())
	}
}

// parsePrefixes parses a comma-separated list of CIDRs (empty: none).
func parsePrefixes(flag, s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flag, err)
		}
		out = append(out, p)
	}
	return out, nil
}
