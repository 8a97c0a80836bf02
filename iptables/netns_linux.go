//go:build linux

package iptables

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// inNetNS runs fn on a locked OS thread that has entered the network
// namespace fd (0: run fn as is). Processes that fn starts inherit the
// namespace. The thread is thrown away when it cannot return.
func inNetNS(fd int, fn func() error) error {
	if fd == 0 {
		return fn()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		origin, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- fmt.Errorf("iptables: open the current network namespace: %w", err)
			return // the thread stays locked and ends with the goroutine
		}
		defer unix.Close(origin)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("iptables: enter network namespace fd %d: %w", fd, err)
			return
		}
		err = fn()
		if unix.Setns(origin, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}
