//go:build linux

package nftables

import (
	"context"
	"testing"
)

// The kernel here has every feature the backend needs (CI fails, not
// skips, when it does not), and the probes leave nothing behind.
func TestSupportedOnTheKernel(t *testing.T) {
	ns := newTestNS(t)
	s, err := NewSyncer(testConfig, WithConn(ns.conn))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Supported(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, fam := range []Family{IPv4, IPv6} {
		if l, err := ns.conn.List(context.Background(), fam, probeTable); err != nil || l.Exists {
			t.Errorf("probe table %s: exists=%v err=%v", fam, l.Exists, err)
		}
	}
}
