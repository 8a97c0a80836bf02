//go:build linux

package iptables

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	"github.com/proxykit/proxykit"
)

// With the real tools: partial syncs keep the kernel equal to the full
// render, a flushed table (firewalld starting over) is repaired by the
// next sync through the canary, and Cleanup leaves nothing.
func TestKernelPartialSyncAndCanary(t *testing.T) {
	for _, v := range variants {
		t.Run(string(v), func(t *testing.T) {
			r := newTestRunner(t, v)
			var last *proxykit.Snapshot
			s, err := NewSyncer(testConfig, WithRunner(r))
			if err != nil {
				t.Fatal(err)
			}
			rec := proxykit.SyncerFunc(func(ctx context.Context, snap *proxykit.Snapshot) error {
				last = snap
				return s.Sync(ctx, snap)
			})
			p := proxykit.New(testNode, rec)
			svcs, slcs := benchCluster(30, 3)
			for i := range svcs {
				_ = p.OnServiceUpdate(nil, svcs[i])
				_ = p.OnSliceUpdate(slcs[i])
			}
			if err := p.SyncNow(testContext(t)); err != nil {
				t.Fatal(err)
			}
			// A changed endpoint, a removed service: partial syncs.
			changed := *slcs[4]
			changed.Endpoints = slices.Clone(changed.Endpoints)
			changed.Endpoints[0].Addr = netip.MustParseAddr("10.200.0.1")
			_ = p.OnSliceUpdate(&changed)
			p.OnServiceDelete(svcs[7])
			if err := p.SyncNow(testContext(t)); err != nil {
				t.Fatal(err)
			}
			if last.Full() {
				t.Fatal("want a partial sync")
			}
			checkKernelHolds(t, r, last, testConfig, true)
			// Someone flushes and deletes every chain of the nat table.
			tool := "iptables-" + string(v)
			inNS(t, r.netns, tool, "-t", "nat", "-F")
			inNS(t, r.netns, tool, "-t", "nat", "-X")
			if err := p.SyncNow(testContext(t)); err != nil {
				t.Fatal(err)
			}
			checkKernelHolds(t, r, last, testConfig, true)
			if err := s.Cleanup(testContext(t)); err != nil {
				t.Fatal(err)
			}
			for _, fam := range proxykit.Families {
				for _, table := range []string{tableNAT, tableFilter} {
					have, err := s.ownedChains(testContext(t), fam, table)
					if err != nil || len(have) > 0 {
						t.Errorf("after Cleanup, %s %s holds %v (%v)", fam, table, have, err)
					}
				}
			}
		})
	}
}
