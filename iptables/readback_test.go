//go:build linux

package iptables

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/internal/golden"
	"github.com/proxykit/proxykit/internal/netnstest"
)

var variants = []Variant{Legacy, NFT}

// TestReadback programs every golden scenario with the real tools of
// each variant in a fresh network namespace, and checks that
// iptables-save prints back what Render printed, after normalize, and
// that the jumps from the built-in chains are in place.
func TestReadback(t *testing.T) {
	for _, v := range variants {
		for name := range goldenScenarios() {
			t.Run(string(v)+"/"+name, func(t *testing.T) {
				snap, cfg := scenarioSnapshot(t, name)
				r := newTestRunner(t, v)
				s, err := NewSyncer(cfg, WithRunner(r))
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Sync(testContext(t), snap); err != nil {
					t.Fatal(err)
				}
				checkKernelHolds(t, r, snap, cfg, false)
			})
		}
	}
}

// checkKernelHolds compares iptables-save with Render, after normalize,
// and checks the jumps.
func checkKernelHolds(t *testing.T, r Runner, snap *proxykit.Snapshot, cfg Config, dispatchAnyOrder bool) {
	t.Helper()
	rs, err := Render(snap, cfg)
	if err != nil {
		t.Fatal(err)
	}
	prefix := cfg.withDefaults().Prefix
	for _, want := range rs.Tables {
		got, err := r.Save(testContext(t), want.Family, want.Name)
		if err != nil {
			t.Fatal(err)
		}
		w, g := normalize(want.String(), prefix, dispatchAnyOrder), normalize(string(got), prefix, dispatchAnyOrder)
		if w != g {
			t.Errorf("%s %s: iptables-save differs from Render (-render +kernel):\n%s", want.Family, want.Name, golden.LineDiff(w, g))
		}
	}
	for _, fam := range proxykit.Families {
		for _, j := range jumpRules(prefix) {
			ok, err := r.RuleExists(testContext(t), fam, j.table, j.chain, j.spec)
			if err != nil || !ok {
				t.Errorf("%s %s %s: jump %q missing (%v)", fam, j.table, j.chain, specText(j.spec), err)
			}
		}
	}
}

// newTestRunner returns an ExecRunner of variant v in a fresh network
// namespace, closed when t ends. It skips (or fails, see
// netnstest.Require) without root or without the tools.
func newTestRunner(t testing.TB, v Variant) *ExecRunner {
	t.Helper()
	netnstest.Require(t)
	fd := newNetNS(t)
	r, err := NewRunner(v, fd)
	if err != nil {
		if os.Getenv(netnstest.RequireEnv) != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return r
}

// newNetNS creates an anonymous network namespace and returns a file
// descriptor of it, closed (and the namespace freed) when t ends.
func newNetNS(t testing.TB) int {
	t.Helper()
	fd, err := netnstest.Anonymous(false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// inNS runs a command in the namespace fd (tests only: flushing our
// rules behind the Syncer's back).
func inNS(t *testing.T, fd int, name string, args ...string) {
	t.Helper()
	err := inNetNS(fd, func() error {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %v: %w: %s", name, args, err, out)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestSupportedOnThisKernel(t *testing.T) {
	for _, v := range variants {
		t.Run(string(v), func(t *testing.T) {
			s, err := NewSyncer(testConfig, WithRunner(newTestRunner(t, v)))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Supported(testContext(t)); err != nil {
				t.Fatal(err)
			}
		})
	}
}
