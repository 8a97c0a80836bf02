//go:build linux

package netnstest

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
)

// RequireEnv is the environment variable that turns the skips of [Require]
// into failures. CI sets it to 1. Any value that strconv.ParseBool does not
// read as false counts as set, so a typo fails rather than skips.
const RequireEnv = "PROXYKIT_REQUIRE_PRIVILEGED"

// Require skips t unless the test can build topologies: running as root,
// with network namespaces, veth and a writable /run/netns (checked once per
// process by creating and deleting a namespace with a veth pair). When
// [RequireEnv] is set, it fails t instead of skipping.
func Require(t testing.TB) {
	t.Helper()
	root := os.Geteuid() == 0
	var support error
	if root {
		support = kernelSupport()
	}
	switch act, why := decide(root, support, os.Getenv(RequireEnv)); act {
	case skip:
		t.Skip(why)
	case fail:
		t.Fatal(why)
	}
}

// action is what Require does.
type action int

const (
	run action = iota
	skip
	fail
)

// decide is Require's decision: run when root and the kernel support
// check passed; otherwise fail if required by env, else skip.
func decide(root bool, support error, env string) (action, string) {
	var why string
	switch {
	case !root:
		why = "netnstest: privileged test needs root"
	case support != nil:
		why = fmt.Sprintf("netnstest: privileged test needs network namespaces and veth: %v", support)
	default:
		return run, ""
	}
	if required, err := strconv.ParseBool(env); env == "" || (err == nil && !required) {
		return skip, why + " (set " + RequireEnv + "=1 to fail instead of skipping)"
	}
	return fail, why + " (" + RequireEnv + " is set)"
}

var (
	supportOnce sync.Once
	supportErr  error
)

// kernelSupport reports, once per process, whether a named namespace with
// a veth pair can be created.
func kernelSupport() error {
	supportOnce.Do(func() { supportErr = checkKernel() })
	return supportErr
}

// checkKernel creates a named namespace with a veth pair and deletes it.
func checkKernel() error {
	prefix, err := randomPrefix()
	if err != nil {
		return err
	}
	ns, err := newNS(prefix + "-check")
	if err != nil {
		return err
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "check0"}, PeerName: "check1"}
	err = ns.nl.LinkAdd(veth)
	if err != nil {
		err = fmt.Errorf("netnstest: add veth %q in %q: %w", "check0", ns.Name, err)
	}
	if cerr := ns.close(); err == nil {
		err = cerr
	}
	return err
}
