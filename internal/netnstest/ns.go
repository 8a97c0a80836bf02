//go:build linux

package netnstest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsDir is where named network namespaces are bind-mounted (as by ip-netns).
const netnsDir = "/run/netns"

// NS is one network namespace of a topology.
type NS struct {
	// Name is the namespace's name in /run/netns, for example
	// "pk-3fa2c1-node1".
	Name string

	handle netns.NsHandle
	nl     *netlink.Handle
}

// newNS creates the named namespace and opens a netlink handle in it.
func newNS(name string) (*NS, error) {
	var h netns.NsHandle
	err := onDisposableThread(func() error {
		var err error
		h, err = netns.NewNamed(name)
		return err
	})
	if err != nil {
		if !errors.Is(err, fs.ErrExist) {
			_ = os.Remove(filepath.Join(netnsDir, name)) // a half-created entry
		}
		return nil, fmt.Errorf("netnstest: create namespace %q: %w", name, err)
	}
	nl, err := netlink.NewHandleAt(h, unix.NETLINK_ROUTE)
	if err != nil {
		_ = h.Close()
		_ = netns.DeleteNamed(name)
		return nil, fmt.Errorf("netnstest: open netlink in namespace %q: %w", name, err)
	}
	return &NS{Name: name, handle: h, nl: nl}, nil
}

// close releases the handles and deletes the namespace's name; the kernel
// frees the namespace, and the veths in it, once no socket uses it.
func (n *NS) close() error {
	n.nl.Close()
	err := n.handle.Close()
	if derr := netns.DeleteNamed(n.Name); derr != nil {
		err = errors.Join(err, derr)
	}
	if err != nil {
		return fmt.Errorf("netnstest: delete namespace %q: %w", n.Name, err)
	}
	return nil
}

// Fd returns the namespace's file descriptor, for libraries that take one
// (for example nftables.WithNetNSFd). It stays valid until the topology's
// cleanup; do not close it.
func (n *NS) Fd() int { return int(n.handle) }

// String returns the namespace's name.
func (n *NS) String() string { return n.Name }

// Do runs fn on a locked OS thread that has entered the namespace and
// returns fn's error. Sockets and listeners that fn creates stay in the
// namespace, and so do processes that fn starts with os/exec; goroutines
// that fn starts do not. /proc/sys/net follows the thread, but
// /proc/net is the process's: read /proc/thread-self/net instead. A panic in
// fn is re-raised in the caller; fn must not call t.FailNow (or t.Fatal),
// which Do reports as an error.
func (n *NS) Do(fn func() error) error {
	type outcome struct {
		err      error
		panicked any
	}
	done := make(chan outcome, 1)
	go func() {
		runtime.LockOSThread()
		var out outcome
		finished := false
		defer func() {
			if !finished {
				if out.panicked = recover(); out.panicked == nil {
					out.err = fmt.Errorf("netnstest: in namespace %q: function exited through runtime.Goexit (t.FailNow?)", n.Name)
				}
			}
			done <- out
		}()
		out.err = n.enter(func() error {
			err := fn()
			finished = true
			return err
		})
		finished = true
	}()
	out := <-done
	if out.panicked != nil {
		panic(out.panicked)
	}
	return out.err
}

// enter switches the locked calling thread into n, runs fn and switches
// back. If switching back fails, the thread stays locked so that the runtime
// discards it when its goroutine ends.
func (n *NS) enter(fn func() error) error {
	origin, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netnstest: get current namespace: %w", err)
	}
	defer origin.Close()
	if err := netns.Set(n.handle); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netnstest: enter namespace %q: %w", n.Name, err)
	}
	defer func() {
		if err := netns.Set(origin); err == nil {
			runtime.UnlockOSThread()
		}
	}()
	return fn()
}

// onDisposableThread runs fn on a locked OS thread that is thrown away
// afterwards, for functions that leave the thread in another namespace.
func onDisposableThread(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		done <- fn()
	}()
	return <-done
}

// setSysctls writes each key (dotted, for example "net.ipv4.ip_forward")
// to /proc/sys inside the namespace, in order.
func (n *NS) setSysctls(kv [][2]string) error {
	return n.Do(func() error {
		for _, e := range kv {
			p := filepath.Join("/proc/sys", strings.ReplaceAll(e[0], ".", "/"))
			if err := os.WriteFile(p, []byte(e[1]+"\n"), 0o644); err != nil {
				return fmt.Errorf("netnstest: set sysctl %s=%q in %q: %w", e[0], e[1], n.Name, err)
			}
		}
		return nil
	})
}

// Anonymous creates a network namespace without a name, holding only its
// loopback interface (up when loUp: that also creates the local routing
// table, which IPVS needs for real servers), and returns a file
// descriptor of it. The namespace lives until the caller closes the
// descriptor and nothing else uses it.
func Anonymous(loUp bool) (int, error) {
	fd := -1
	err := onDisposableThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		if loUp {
			lo, err := netlink.LinkByName("lo")
			if err == nil {
				err = netlink.LinkSetUp(lo)
			}
			if err != nil {
				return fmt.Errorf("loopback up: %w", err)
			}
		}
		var err error
		fd, err = unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return -1, fmt.Errorf("netnstest: create an anonymous network namespace: %w", err)
	}
	return fd, nil
}
