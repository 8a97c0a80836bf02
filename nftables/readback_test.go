//go:build linux

package nftables

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/proxykit/proxykit/internal/golden"
	"github.com/proxykit/proxykit/internal/netnstest"
)

// TestReadback programs every golden scenario through the real Conn in a
// fresh network namespace and checks that `nft list table` prints back
// what Render printed, after normalizeNft on both sides.
func TestReadback(t *testing.T) {
	for name := range goldenScenarios() {
		t.Run(name, func(t *testing.T) {
			rs := renderScenario(t, name)
			ns := newTestNS(t)
			if err := ns.conn.Run(testContext(t), fullOps(rs)); err != nil {
				t.Fatal(err)
			}
			for _, tb := range rs.Tables {
				var want strings.Builder
				tb.write(&want)
				got := ns.list(t, tb.Family, tb.Name)
				w, g := normalizeNft(want.String()), normalizeNft(got)
				if w != g {
					t.Errorf("table %s %s: nft list differs from Render (-render +kernel):\n%s\nkernel:\n%s",
						tb.Family, tb.Name, golden.LineDiff(w, g), got)
				}
			}
		})
	}
}

// normalizeNft brings `nft list table` output and Render's text to one
// form, so that they compare byte for byte. It applies exactly one rule:
//
//   - The elements of a set or map, `elements = { … }`, which nft and
//     Render print over one or several lines (nft by its own line width,
//     Render one element a line), are joined into one line, the elements
//     separated by ", " and sorted as strings: nft prints them in the
//     kernel's order (hash order for a hash set), Render in its own.
//
// Everything else must match as is: the order of objects (fullOps
// creates them in Render's order, and the kernel lists them in creation
// order), blank lines, every rule and statement, and the elements of the
// anonymous sets and maps in rules (nft prints them sorted by key).
func normalizeNft(s string) string {
	lines := strings.Split(s, "\n")
	var out []string
	for i := 0; i < len(lines); i++ {
		prefix, rest, ok := strings.Cut(lines[i], "elements = { ")
		if !ok {
			out = append(out, lines[i])
			continue
		}
		for !strings.HasSuffix(rest, " }") && i+1 < len(lines) {
			i++
			rest += " " + strings.TrimSpace(lines[i])
		}
		elems := strings.Split(strings.TrimSuffix(rest, " }"), ", ")
		for j := range elems {
			elems[j] = strings.TrimSuffix(strings.TrimSpace(elems[j]), ",")
		}
		slices.Sort(elems)
		out = append(out, prefix+"elements = { "+strings.Join(elems, ", ")+" }")
	}
	return strings.Join(out, "\n")
}

func TestNormalizeNft(t *testing.T) {
	in := "table ip t {\n\tset b {\n\t\ttype ipv4_addr\n\t\telements = { 10.0.0.2,\n\t\t\t     10.0.0.1 }\n\t}\n\n" +
		"\tmap a {\n\t\ttype x : verdict\n\t\telements = { b : drop, a : accept,\n\t\t\t     c : drop }\n\t}\n}\n"
	want := "table ip t {\n\tset b {\n\t\ttype ipv4_addr\n\t\telements = { 10.0.0.1, 10.0.0.2 }\n\t}\n\n" +
		"\tmap a {\n\t\ttype x : verdict\n\t\telements = { a : accept, b : drop, c : drop }\n\t}\n}\n"
	if got := normalizeNft(in); got != want {
		t.Errorf("normalizeNft:\n%s\nwant:\n%s", got, want)
	}
	if got := normalizeNft(want); got != want {
		t.Errorf("normalizeNft is not idempotent:\n%s", got)
	}
}

// fullOps is the full sync of rs into empty tables: the Syncer's own
// operations, so the tests also check their order.
func fullOps(rs *Ruleset) []Op {
	var ops []Op
	for _, t := range rs.Tables {
		ops = append(ops, fullSyncOps(t, Listing{})...)
	}
	return ops
}

// testNS is a fresh network namespace with a Conn on it.
type testNS struct {
	name string
	conn Conn
}

var nsCount atomic.Int64

// newTestNS creates a named network namespace, deleted when t ends, and
// a Conn on it. It skips (or fails, see netnstest.Require) without root
// or without the nft tool the tests read back with.
func newTestNS(t testing.TB) *testNS {
	t.Helper()
	netnstest.Require(t)
	if _, err := exec.LookPath("nft"); err != nil {
		if os.Getenv(netnstest.RequireEnv) != "" {
			t.Fatalf("nft not found (needed to read back): %v", err)
		}
		t.Skipf("nft not found (needed to read back): %v", err)
	}
	name := fmt.Sprintf("pk-nft-%d-%d", os.Getpid(), nsCount.Add(1))
	type result struct {
		h   netns.NsHandle
		err error
	}
	done := make(chan result)
	go func() {
		// The thread enters the new namespace and is never unlocked: it
		// exits with the goroutine.
		runtime.LockOSThread()
		h, err := netns.NewNamed(name)
		done <- result{h, err}
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("create network namespace %s: %v", name, r.err)
	}
	t.Cleanup(func() {
		_ = r.h.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete network namespace %s: %v", name, err)
		}
	})
	c, err := NewConn(int(r.h))
	if err != nil {
		t.Fatal(err)
	}
	return &testNS{name: name, conn: c}
}

// nft runs the nft tool in the namespace.
func (ns *testNS) nft(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.name, "nft"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("nft %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// list returns `nft list table fam name` in the namespace.
func (ns *testNS) list(t *testing.T, fam Family, name string) string {
	t.Helper()
	out, err := ns.nft(t, "list", "table", string(fam), name)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
