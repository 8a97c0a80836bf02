//go:build linux

package conntrack

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"

	"github.com/mdlayher/socket"
	"golang.org/x/sys/unix"
)

// Sizes of the netlink sockets and writes.
const (
	// maxWrite bounds one write of requests, below the default send
	// buffer (net.core.wmem_default, 212992 bytes): about 1500 deletions.
	maxWrite = 128 << 10
	// recvBuffer is the socket receive buffer asked for: the kernel's
	// errors for a whole failing write must fit (each is an skb of
	// about 768 bytes).
	recvBuffer = 4 << 20
	// readSize is the read buffer: more than a dump's 32 KB messages.
	readSize = 64 << 10
)

// NewConn returns a Conn on the network namespace with the file descriptor
// netnsFd (0: the namespace of the calling process), over ctnetlink with
// github.com/mdlayher/socket. It checks that the namespace's conntrack
// table can be reached; the descriptor must stay open while the Conn is
// used.
//
// Dump asks the kernel to filter (CTA_FILTER, Linux 5.8+; older kernels
// send every flow of the family, which callers filter) and decodes flows
// as they arrive, without keeping the table.
// Delete pipelines its deletions: one write of up to about 1500 requests
// of which only the last asks for an acknowledgement, then the kernel's
// errors and that acknowledgement are read back.
//
// The Conn is safe for concurrent use: every call opens its own socket.
// The context bounds the netlink exchange.
func NewConn(netnsFd int) (Conn, error) {
	if netnsFd < 0 {
		return nil, fmt.Errorf("conntrack: invalid network namespace fd %d", netnsFd)
	}
	c := &netlinkConn{netns: netnsFd}
	s, err := c.open()
	if err != nil {
		return nil, fmt.Errorf("conntrack: open netlink in network namespace fd %d: %w", netnsFd, translateError(err))
	}
	_ = s.c.Close()
	return c, nil
}

// netlinkConn is the Conn of NewConn.
type netlinkConn struct {
	netns int
	// Counters, for benchmarks: requests (netlink messages) sent, and
	// writes and reads (system calls) on the sockets.
	requests, writes, reads atomic.Int64
}

// nlsock is one netlink socket.
type nlsock struct {
	c    *socket.Conn
	conn *netlinkConn
	seq  uint32
	buf  []byte
}

// open opens and binds a socket in the Conn's namespace.
func (c *netlinkConn) open() (*nlsock, error) {
	s, err := socket.Socket(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_NETFILTER, "netlink", &socket.Config{NetNS: c.netns})
	if err != nil {
		return nil, err
	}
	if err := s.Bind(&unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		_ = s.Close()
		return nil, err
	}
	// Errors echo only the failed request's header, so that many fit;
	// best effort, like the buffer sizes (FORCE needs CAP_NET_ADMIN,
	// which changing conntrack needs anyway).
	_ = s.SetsockoptInt(unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	_ = s.SetReadBuffer(recvBuffer)
	_ = s.SetWriteBuffer(2 * maxWrite)
	return &nlsock{c: s, conn: c, buf: make([]byte, readSize)}, nil
}

func (s *nlsock) close() { _ = s.c.Close() }

func (s *nlsock) nextSeq() uint32 {
	s.seq++
	return s.seq
}

// write sends b, which holds n requests.
func (s *nlsock) write(ctx context.Context, b []byte, n int) error {
	s.conn.writes.Add(1)
	s.conn.requests.Add(int64(n))
	_, err := s.c.Sendmsg(ctx, b, nil, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}, 0)
	return err
}

// read reads one datagram: one or more messages.
func (s *nlsock) read(ctx context.Context) ([]byte, error) {
	s.conn.reads.Add(1)
	n, _, flags, _, err := s.c.Recvmsg(ctx, s.buf, nil, 0)
	if err != nil {
		return nil, err
	}
	if flags&unix.MSG_TRUNC != 0 {
		return nil, fmt.Errorf("netlink message longer than %d bytes", len(s.buf))
	}
	return s.buf[:n], nil
}

// Dump sends one filtered dump request and decodes the flows as they come.
func (c *netlinkConn) Dump(ctx context.Context, flt Filter, fn func(*Flow)) error {
	s, err := c.open()
	if err != nil {
		return translateError(err)
	}
	defer s.close()
	seq := s.nextSeq()
	var e encoder
	e.dumpRequest(seq, flt)
	if err := s.write(ctx, e.b, 1); err != nil {
		return translateError(err)
	}
	var f Flow
	for {
		b, err := s.read(ctx)
		if err != nil {
			return translateError(err)
		}
		for len(b) > 0 {
			h, payload, rest, err := nextMessage(b)
			if err != nil {
				return err
			}
			b = rest
			switch {
			case h.seq != seq:
				continue // not ours
			case h.typ == nlmsgDone || h.typ == nlmsgError:
				if code := errnoOf(payload); code != 0 {
					return translateError(syscall.Errno(code))
				}
				if h.typ == nlmsgDone {
					return nil
				}
			case h.typ == ctMsgNew:
				if err := decodeFlow(payload, &f); err != nil {
					return fmt.Errorf("decode flow: %w", err)
				}
				fn(&f)
			}
		}
	}
}

// Delete deletes flows in writes of up to maxWrite bytes; only the last
// request of a write asks for an acknowledgement.
func (c *netlinkConn) Delete(ctx context.Context, flows []Flow) (int, error) {
	if len(flows) == 0 {
		return 0, nil
	}
	s, err := c.open()
	if err != nil {
		return 0, translateError(err)
	}
	defer s.close()
	var t tally
	var e encoder
	for i := 0; i < len(flows); {
		e.b = e.b[:0]
		first, last, n := s.seq+1, -1, 0
		for ; i < len(flows) && len(e.b) < maxWrite; i++ {
			start, err := e.deleteRequest(s.nextSeq(), &flows[i], false)
			if err != nil {
				t.fail(err)
				continue
			}
			last = start
			n++
		}
		if n == 0 {
			continue
		}
		e.setAck(last)
		if err := s.write(ctx, e.b, n); err != nil {
			return t.done, t.err(translateError(err))
		}
		if err := s.collect(ctx, first, n, &t); err != nil {
			return t.done, t.err(err)
		}
	}
	return t.done, t.err(nil)
}

// tally counts the outcomes of pipelined requests.
type tally struct {
	done, gone, failed int
	first              error
}

func (t *tally) fail(err error) {
	t.failed++
	if t.first == nil {
		t.first = err
	}
}

// err returns the error of the requests so far, with abort (an error
// that stopped the exchange) when not nil.
func (t *tally) err(abort error) error {
	switch {
	case abort != nil && t.failed > 0:
		return fmt.Errorf("%w (and %d requests failed before: %w)", abort, t.failed, t.first)
	case abort != nil:
		return abort
	case t.failed > 0:
		return fmt.Errorf("%d requests failed, the first with: %w", t.failed, t.first)
	}
	return nil
}

// collect reads the answers to the n requests with sequence numbers from
// first: an error for each one that failed, and an acknowledgement (or
// error) for the last. A request found nothing to delete (ENOENT) is
// gone already, not failed.
func (s *nlsock) collect(ctx context.Context, first uint32, n int, t *tally) error {
	last := first + uint32(n) - 1
	bad := 0
	for {
		b, err := s.read(ctx)
		if err != nil {
			// ENOBUFS: answers were lost; which requests failed is unknown.
			return translateError(err)
		}
		for len(b) > 0 {
			h, payload, rest, err := nextMessage(b)
			if err != nil {
				return err
			}
			b = rest
			if h.typ != nlmsgError || h.seq-first >= uint32(n) {
				continue // not an answer to this write
			}
			switch code := errnoOf(payload); {
			case code == 0:
			case syscall.Errno(code) == unix.ENOENT:
				t.gone++
				bad++
			default:
				t.fail(translateError(syscall.Errno(code)))
				bad++
			}
			if h.seq == last {
				t.done += n - bad
				return nil
			}
		}
	}
}
