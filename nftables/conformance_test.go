//go:build linux

package nftables_test

import (
	"testing"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/internal/conformance"
	"github.com/proxykit/proxykit/internal/netnstest"
	"github.com/proxykit/proxykit/nftables"
)

// TestConformance runs the behavioural suite (SEMANTICS) against the
// nftables backend with real packets, with the default policy and with
// MasqueradeAll.
func TestConformance(t *testing.T) {
	for _, masqAll := range []bool{false, true} {
		name := "nftables"
		if masqAll {
			name = "nftables-masquerade-all"
		}
		t.Run(name, func(t *testing.T) {
			conformance.Run(t, conformance.Backend{
				Name:   name,
				New:    newConformanceSyncer(masqAll),
				Policy: proxykit.Policy{MasqueradeAll: masqAll},
			})
		})
	}
}

func newConformanceSyncer(masqAll bool) func(testing.TB, *netnstest.Topology) proxykit.Syncer {
	return func(t testing.TB, tp *netnstest.Topology) proxykit.Syncer {
		t.Helper()
		conn, err := nftables.NewConn(tp.Node1.Fd())
		if err != nil {
			t.Fatalf("nftables.NewConn: %v", err)
		}
		cfg := nftables.Config{
			ClusterCIDRs:  tp.ClusterCIDRs,
			LocalPodCIDRs: conformance.LocalPodCIDRs,
			MasqueradeAll: masqAll,
		}
		s, err := nftables.NewSyncer(cfg, nftables.WithConn(conn))
		if err != nil {
			t.Fatalf("nftables.NewSyncer: %v", err)
		}
		return s
	}
}
