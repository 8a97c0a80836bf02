package bench

import (
	"fmt"
	"net/netip"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// The client binds its source ports itself, counting up from s5FirstPort
// (below the kernel's ephemeral range, wrapping at s5LastPort): every
// connection of a topology is a new 5-tuple, so a new conntrack entry whose
// first packet (the SYN) goes through the whole ruleset.
const (
	s5FirstPort = 20000
	s5LastPort  = 32000
)

// nextSourcePort returns the client's next source port.
func (t *s5Topo) nextSourcePort() int {
	p := t.nextPort
	t.nextPort++
	if t.nextPort > s5LastPort {
		t.nextPort = s5FirstPort
	}
	return p
}

// s5Target is where a series of connects goes: dst from topo's client.
type s5Target struct {
	topo *s5Topo
	dst  netip.AddrPort
}

// connectRounds connects rounds times to every target, interleaved: each
// round makes one connection to each target, the order rotating with the
// round, so that both series see the same load of the machine. The first
// warmup rounds are not recorded. out[i] are target i's connect times.
//
// A connect is one blocking connect(2) of a fresh socket, timed from the
// call to its return: SYN out, SYN/ACK back, ACK out. The socket is
// created (in the target's client namespace) and bound before the clock
// starts, and closed with a reset afterwards (SO_LINGER 0: no TIME_WAIT
// piles up, the conntrack entry closes).
func connectRounds(targets []s5Target, warmup, rounds int, timeout time.Duration) ([][]time.Duration, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	out := make([][]time.Duration, len(targets))
	for i := range out {
		out[i] = make([]time.Duration, 0, rounds)
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// withNetNS returns the thread to its own namespace afterwards,
		// whichever client namespace the loop left it in.
		done <- withNetNS(targets[0].topo.Client.Fd(), func() error {
			for r := range warmup + rounds {
				for k := range targets {
					i := (k + r) % len(targets)
					tg := targets[i]
					d, err := connectOnce(tg.topo.Client.Fd(), tg.topo.nextSourcePort(), tg.dst, timeout)
					if err != nil {
						return err
					}
					if r >= warmup {
						out[i] = append(out[i], d)
					}
				}
			}
			return nil
		})
	}()
	if err := <-done; err != nil {
		return nil, err
	}
	return out, nil
}

// connectOnce must run on a locked thread: it moves the thread into the
// namespace nsFd, creates an IPv4 TCP socket bound to port and times its
// blocking connect to dst.
func connectOnce(nsFd, port int, dst netip.AddrPort, timeout time.Duration) (time.Duration, error) {
	if err := unix.Setns(nsFd, unix.CLONE_NEWNET); err != nil {
		return 0, fmt.Errorf("enter client namespace: %w", err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return 0, fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return 0, fmt.Errorf("SO_SNDTIMEO: %w", err)
	}
	if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
		return 0, fmt.Errorf("SO_LINGER: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return 0, fmt.Errorf("SO_REUSEADDR: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port}); err != nil {
		return 0, fmt.Errorf("bind source port %d: %w", port, err)
	}
	sa := &unix.SockaddrInet4{Port: int(dst.Port()), Addr: dst.Addr().As4()}
	start := time.Now()
	err = unix.Connect(fd, sa)
	for err == unix.EINTR { // a signal (the Go runtime's preemption); the handshake goes on
		err = awaitConnect(fd, start.Add(timeout))
	}
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("connect %s from port %d: %w", dst, port, err)
	}
	return took, nil
}

// awaitConnect waits until the connection of fd is established or has
// failed, or until deadline: its result, or EINTR when a signal came
// first.
func awaitConnect(fd int, deadline time.Time) error {
	ms := int(time.Until(deadline).Milliseconds())
	if ms <= 0 {
		return unix.ETIMEDOUT
	}
	n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}, ms)
	switch {
	case err != nil:
		return err
	case n == 0:
		return unix.ETIMEDOUT
	}
	if soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil {
		return err
	} else if soErr != 0 {
		return unix.Errno(soErr)
	}
	return nil
}
