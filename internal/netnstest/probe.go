//go:build linux

package netnstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultTimeout bounds a probe, an exchange or a dial when no timeout is
// given. Drop assertions should pass a short explicit timeout (≈300ms).
const DefaultTimeout = 2 * time.Second

// Outcome is what came back for a probe.
type Outcome int

// Outcomes, from the socket's point of view. Only a TCP RST and an ICMP
// port unreachable are Refused (what nftables' plain "reject" and "reject
// with tcp reset" send); every other ICMP destination-unreachable code,
// such as admin prohibited, host prohibited or no route, is Unreachable.
const (
	Failed      Outcome = iota // anything else: a cancelled context, a bad reply, a local error
	Reply                      // a responder answered
	Refused                    // a reject: TCP RST or ICMP port unreachable (ECONNREFUSED, ECONNRESET)
	Unreachable                // another ICMP error (EHOSTUNREACH, ENETUNREACH, EACCES, ENOPROTOOPT, …)
	Timeout                    // no answer before the timeout, or EPERM from the sender's own output hooks: a drop
)

// String returns the outcome's name.
func (o Outcome) String() string {
	switch o {
	case Reply:
		return "Reply"
	case Refused:
		return "Refused"
	case Unreachable:
		return "Unreachable"
	case Timeout:
		return "Timeout"
	case Failed:
		return "Failed"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result is the classified answer to one request.
type Result struct {
	Outcome Outcome
	Server  string         // the answering pod ("pod-a"), for Reply
	Source  netip.AddrPort // the client address and port the pod saw, for Reply
	Err     error          // why there was no Reply; nil for Reply
}

// String describes r for test messages.
func (r Result) String() string {
	if r.Outcome == Reply {
		return fmt.Sprintf("Reply from %s (source %s)", r.Server, r.Source)
	}
	return fmt.Sprintf("%s: %v", r.Outcome, r.Err)
}

// ProbeOptions tune [NS.Probe]; the zero value is a probe from an ephemeral
// port with [DefaultTimeout].
type ProbeOptions struct {
	// Timeout bounds the whole probe (connect, request, reply).
	Timeout time.Duration
	// LocalPort fixes the source port (for conntrack tests). TCP probes
	// from a fixed port end with a RST instead of a FIN, so the port is
	// free again at once.
	LocalPort uint16
	// LocalAddr fixes the source address; by default routing chooses it.
	LocalAddr netip.Addr
}

// Probe sends one request from n to dst with proto ("tcp" or "udp", any
// case) and classifies the answer. A TCP probe connects, writes a line and
// reads the reply line; a UDP probe sends one datagram on a connected
// socket and waits for the reply datagram or an ICMP error.
func (n *NS) Probe(ctx context.Context, proto string, dst netip.AddrPort, o ProbeOptions) Result {
	network := strings.ToLower(proto)
	if network != "tcp" && network != "udp" {
		return Result{Err: fmt.Errorf("netnstest: probe %s from %q: unsupported protocol %q", dst, n.Name, proto)}
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	wrap := func(err error) Result {
		return failure(ctx, fmt.Errorf("netnstest: probe %s %s from %q: %w", network, dst, n.Name, err))
	}
	c, err := n.dial(pctx, network, dst, o, true)
	if err != nil {
		return wrap(err)
	}
	defer closeConn(c, o.LocalPort != 0)
	server, src, err := exchange(pctx, c)
	if err != nil {
		return wrap(err)
	}
	return Result{Outcome: Reply, Server: server, Source: src}
}

// Dial opens a TCP connection from n to dst, for tests that keep a
// connection open (for example across a proxy restart). Each line written
// to it is answered with a reply line; [Exchange] does one round trip. The
// connection may be used from any goroutine; the caller closes it. The
// connect is bounded by ctx and [DefaultTimeout].
func (n *NS) Dial(ctx context.Context, dst netip.AddrPort) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	c, err := n.dial(dctx, "tcp", dst, ProbeOptions{}, false)
	if err != nil {
		return nil, fmt.Errorf("netnstest: dial tcp %s from %q: %w", dst, n.Name, err)
	}
	return c, nil
}

// Exchange writes one request line on c (from [NS.Dial]) and classifies
// the reply, waiting at most timeout ([DefaultTimeout] when zero). After an
// outcome other than Reply, a late reply may still arrive: close c.
func Exchange(ctx context.Context, c net.Conn, timeout time.Duration) Result {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ectx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	server, src, err := exchange(ectx, c)
	if err != nil {
		return failure(ctx, fmt.Errorf("netnstest: exchange with %s: %w", c.RemoteAddr(), err))
	}
	return Result{Outcome: Reply, Server: server, Source: src}
}

// failure classifies err; a cancelled parent context is a Failed probe
// whatever the socket said.
func failure(parent context.Context, err error) Result {
	o := classify(err)
	if errors.Is(parent.Err(), context.Canceled) {
		o = Failed
	}
	return Result{Outcome: o, Err: err}
}

// classify maps a socket error to an outcome.
func classify(err error) Outcome {
	var errno syscall.Errno
	switch {
	case err == nil:
		return Reply
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return Timeout
	case !errors.As(err, &errno):
		return Failed
	}
	switch errno {
	case unix.ECONNREFUSED, unix.ECONNRESET:
		return Refused
	case unix.EHOSTUNREACH, unix.ENETUNREACH, unix.EACCES, unix.ENOPROTOOPT, unix.EHOSTDOWN, unix.ENONET:
		return Unreachable // ICMP codes: host/net unreachable or prohibited, protocol unreachable, …
	case unix.EPERM: // a UDP send dropped by netfilter in the sender's namespace
		return Timeout
	}
	return Failed
}

// dial connects a socket created inside n, honouring o's local address and
// port. With recverr, the socket gets IP_RECVERR or IPV6_RECVERR, so that
// every ICMP error is reported at once: UDP sockets otherwise ignore "net
// unreachable" and "host unreachable", and since Linux 6.10 a connecting TCP
// socket treats them as soft errors and keeps retrying.
func (n *NS) dial(ctx context.Context, network string, dst netip.AddrPort, o ProbeOptions, recverr bool) (net.Conn, error) {
	d := net.Dialer{Control: sockopts(o.LocalPort != 0, recverr, dst.Addr().Is4())}
	if o.LocalPort != 0 || o.LocalAddr.IsValid() {
		local := o.LocalAddr
		if !local.IsValid() && dst.Addr().Is4() {
			local = netip.IPv4Unspecified()
		} else if !local.IsValid() {
			local = netip.IPv6Unspecified()
		}
		la := netip.AddrPortFrom(local, o.LocalPort)
		if network == "udp" {
			d.LocalAddr = net.UDPAddrFromAddrPort(la)
		} else {
			d.LocalAddr = net.TCPAddrFromAddrPort(la)
		}
	}
	var c net.Conn
	err := n.Do(func() error {
		var err error
		c, err = d.DialContext(ctx, network, dst.String())
		return err
	})
	return c, err
}

// sockopts returns a Dialer.Control function setting SO_REUSEADDR (for a
// fixed local port) and IP_RECVERR or IPV6_RECVERR.
func sockopts(reuse, recverr, v4 bool) func(string, string, syscall.RawConn) error {
	return func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if reuse {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			}
			if recverr && serr == nil && v4 {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVERR, 1)
			} else if recverr && serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1)
			}
		})
		return errors.Join(err, serr)
	}
}

// closeConn closes c; with reset, a TCP connection ends with a RST so that
// its local port can be bound again at once (no TIME_WAIT).
func closeConn(c net.Conn, reset bool) {
	if tc, ok := c.(*net.TCPConn); ok && reset {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// exchange writes a request line on c and reads and parses the reply
// line, within ctx.
func exchange(ctx context.Context, c net.Conn) (string, netip.AddrPort, error) {
	if dl, ok := ctx.Deadline(); ok {
		if err := c.SetDeadline(dl); err != nil {
			return "", netip.AddrPort{}, err
		}
		defer func() { _ = c.SetDeadline(time.Time{}) }()
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := io.WriteString(c, "probe\n"); err != nil {
		return "", netip.AddrPort{}, err
	}
	line, err := readLine(c)
	if err != nil {
		return "", netip.AddrPort{}, err
	}
	return parseReply(line)
}

// readLine reads up to a newline: one datagram on UDP, one or more reads on
// TCP (a responder sends exactly one line per request, so nothing is lost).
func readLine(c net.Conn) (string, error) {
	buf := make([]byte, 0, 256)
	for len(buf) < cap(buf) {
		k, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			return string(buf[:i]), nil
		}
		if err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("reply longer than %d bytes without a newline", cap(buf))
}

// parseReply parses a responder's "<pod name> <addr:port>" line.
func parseReply(line string) (string, netip.AddrPort, error) {
	name, src, ok := strings.Cut(line, " ")
	if !ok || name == "" {
		return "", netip.AddrPort{}, fmt.Errorf("malformed reply %q", line)
	}
	ap, err := netip.ParseAddrPort(src)
	if err != nil {
		return "", netip.AddrPort{}, fmt.Errorf("malformed reply %q: %w", line, err)
	}
	return name, ap, nil
}
