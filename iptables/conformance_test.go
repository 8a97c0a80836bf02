//go:build linux

package iptables_test

import (
	"flag"
	"testing"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/internal/conformance"
	"github.com/proxykit/proxykit/internal/netnstest"
	"github.com/proxykit/proxykit/iptables"
)

var fullMatrix = flag.Bool("iptables.matrix", false, "run the conformance suite for every variant × policy (4 runs) instead of 2")

// TestConformance runs the behavioural suite (SEMANTICS) against the
// iptables backend with real packets, IPv4 and IPv6, for
// iptables-legacy (default policy) and iptables-nft (MasqueradeAll): both
// variants and both policies in about 40 s. The rules' text depends on
// the policy, not on the variant, so the full cross product
// (-iptables.matrix, twice as long) adds little.
func TestConformance(t *testing.T) {
	for _, v := range []iptables.Variant{iptables.Legacy, iptables.NFT} {
		for _, masqAll := range []bool{false, true} {
			if !*fullMatrix && masqAll != (v == iptables.NFT) {
				continue
			}
			name := "iptables-" + string(v)
			if masqAll {
				name += "-masquerade-all"
			}
			t.Run(name, func(t *testing.T) {
				conformance.Run(t, conformance.Backend{
					Name:   name,
					New:    newConformanceSyncer(v, masqAll),
					Policy: proxykit.Policy{MasqueradeAll: masqAll},
				})
			})
		}
	}
}

func newConformanceSyncer(v iptables.Variant, masqAll bool) func(testing.TB, *netnstest.Topology) proxykit.Syncer {
	return func(t testing.TB, tp *netnstest.Topology) proxykit.Syncer {
		t.Helper()
		r, err := iptables.NewRunner(v, tp.Node1.Fd())
		if err != nil {
			t.Fatalf("iptables.NewRunner(%q): %v", v, err)
		}
		cfg := iptables.Config{
			ClusterCIDRs:  tp.ClusterCIDRs,
			LocalPodCIDRs: conformance.LocalPodCIDRs,
			MasqueradeAll: masqAll,
			Variant:       v,
		}
		s, err := iptables.NewSyncer(cfg, iptables.WithRunner(r))
		if err != nil {
			t.Fatalf("iptables.NewSyncer: %v", err)
		}
		return s
	}
}
