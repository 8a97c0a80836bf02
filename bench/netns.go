package bench

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// RequireEnv turns the skips of privileged scenarios into failures (CI sets
// it to 1); the same variable as the root module's netnstest.RequireEnv.
const RequireEnv = "PROXYKIT_REQUIRE_PRIVILEGED"

// Required reports whether RequireEnv asks for privileged scenarios to run:
// set to anything that strconv.ParseBool does not read as false.
func Required() bool {
	v := os.Getenv(RequireEnv)
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	return err != nil || b
}

// NetNS is an anonymous network namespace, held by a file descriptor: it
// lives until Close (and until no process or socket uses it).
type NetNS struct{ fd int }

// NewNetNS creates an empty network namespace (only a down loopback).
func NewNetNS() (*NetNS, error) {
	type result struct {
		fd  int
		err error
	}
	done := make(chan result)
	go func() {
		// The thread enters the new namespace and is never unlocked: the
		// runtime ends it with the goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("unshare network namespace: %w", err)}
			return
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		done <- result{fd, err}
	}()
	r := <-done
	if r.err != nil {
		return nil, r.err
	}
	return &NetNS{fd: r.fd}, nil
}

// Fd is the namespace's file descriptor, for nftables.NewConn and
// iptables.NewRunner.
func (n *NetNS) Fd() int { return n.fd }

// Close releases the namespace.
func (n *NetNS) Close() error { return unix.Close(n.fd) }

// CheckPrivileged returns nil when the process can create network
// namespaces and finds nft, else why not.
func CheckPrivileged() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces)")
	}
	ns, err := NewNetNS()
	if err != nil {
		return err
	}
	_ = ns.Close()
	for _, tool := range []string{"unshare", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("needs %s: %w", tool, err)
		}
	}
	return nil
}

// missingTool returns why a backend cannot run when one of tools is not in
// PATH, else "".
func missingTool(backend string, tools ...string) string {
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Sprintf("%s: %s not found", backend, tool)
		}
	}
	return ""
}
