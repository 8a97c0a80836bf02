//go:build linux

package nftables

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// NewConn returns a Conn on the network namespace with the file descriptor
// netnsFd (0: the namespace of the calling process), over netlink with
// github.com/google/nftables. It checks that the namespace can be reached;
// the descriptor must stay open while the Conn is used.
//
// The Conn is safe for concurrent use: every Run and List opens its own
// netlink socket. Run sends all its operations as one netlink batch, which
// the kernel applies atomically: on error nothing is applied. The context
// bounds the netlink exchange (its deadline, or its cancellation); a Run
// cancelled after its batch was sent may or may not have been applied.
//
// Errors name the operation and its object, and match the Fake's:
// errors.Is(err, ErrNotFound), ErrBusy, ErrExists, or the errno.
//
// AddTable does not set Op.Comment: google/nftables v0.3.0 cannot send a
// table's comment (NFTA_TABLE_USERDATA).
func NewConn(netnsFd int) (Conn, error) {
	if netnsFd < 0 {
		return nil, fmt.Errorf("nftables: invalid network namespace fd %d", netnsFd)
	}
	nc, err := nftables.New(nftables.WithNetNSFd(netnsFd), nftables.AsLasting())
	if err != nil {
		return nil, fmt.Errorf("nftables: open netlink in network namespace fd %d: %w", netnsFd, translateError(err))
	}
	if err := nc.CloseLasting(); err != nil {
		return nil, fmt.Errorf("nftables: close netlink probe: %w", err)
	}
	return &netlinkConn{netns: netnsFd}, nil
}

// netlinkConn is the Conn of NewConn.
type netlinkConn struct {
	netns int
}

// Run applies ops as one netlink batch. An error names the operation that
// failed: the kernel reports it with the sequence number of its message.
func (c *netlinkConn) Run(ctx context.Context, ops []Op) error {
	if len(ops) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nftables: run %d operations: %w", len(ops), err)
	}
	b := &nlBatch{w: newWire(uint32(time.Now().Unix()))}
	for i, op := range ops {
		if err := b.add(i, op); err != nil {
			return opError(op, err)
		}
	}
	reply, err := c.send(ctx, b.w)
	switch {
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("nftables: run %d operations: %w (the batch may or may not have been applied)", len(ops), ctx.Err())
	case err != nil:
		return fmt.Errorf("nftables: run %d operations: %w", len(ops), translateError(err))
	case len(reply.errs) > 0:
		// The first error is the cause; later ones often follow from it.
		e := reply.errs[0]
		kerr := translateError(e.errno)
		if i := b.w.owned(e.seq); i >= 0 {
			return opError(ops[i], kerr)
		}
		return fmt.Errorf("nftables: commit %d operations: %w", len(ops), kerr)
	case !reply.acked:
		return fmt.Errorf("nftables: run %d operations: the kernel did not acknowledge the batch", len(ops))
	}
	return nil
}

// send sends the batch of w in one message and reads the kernel's
// answer. The kernel processes a batch while it is sent, so every reply
// is queued when the send returns.
func (c *netlinkConn) send(ctx context.Context, w *wire) (batchReply, error) {
	var reply batchReply
	msg := w.finish()
	sock := &ctxSockets{ctx: ctx, rcvbuf: minBatchRcvbuf, sndbuf: len(msg)}
	defer sock.release()
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: c.netns})
	if err != nil {
		return reply, err
	}
	defer nl.Close()
	if err := sock.option(nl); err != nil {
		return reply, err
	}
	raw, err := nl.SyscallConn()
	if err != nil {
		return reply, err
	}
	var serr error
	err = raw.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return serr != unix.EAGAIN
	})
	if err = cmp.Or(err, serr); err != nil {
		return reply, err
	}
	buf := make([]byte, 1<<16)
	for !reply.acked {
		var n int
		var rerr error
		err := raw.Control(func(fd uintptr) {
			n, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
		})
		switch {
		case rerr == unix.EAGAIN || rerr == unix.EWOULDBLOCK:
			return reply, nil // all read, without the ack: see Run
		case err != nil || rerr != nil:
			return reply, cmp.Or(err, rerr)
		}
		if err := w.parseReplies(buf[:n], &reply); err != nil {
			return reply, err
		}
	}
	return reply, nil
}

// errnosOf returns the errnos in err, in order, through wrapping and
// errors.Join (Flush joins one error per failed message).
func errnosOf(err error) []syscall.Errno {
	switch e := err.(type) {
	case nil:
		return nil
	case syscall.Errno:
		return []syscall.Errno{e}
	case interface{ Unwrap() []error }:
		var out []syscall.Errno
		for _, inner := range e.Unwrap() {
			out = append(out, errnosOf(inner)...)
		}
		return out
	}
	return errnosOf(errors.Unwrap(err))
}

// List returns the names of the chains and sets of a table, sorted,
// without the anonymous sets of rules; Exists is false, and the error
// nil, when the table does not exist.
func (c *netlinkConn) List(ctx context.Context, fam Family, table string) (Listing, error) {
	fi, err := familyInfo(fam)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return Listing{}, fmt.Errorf("nftables: list table %s %s: %w", fam, table, err)
	}
	sock := &ctxSockets{ctx: ctx}
	defer sock.release()
	nc, err := nftables.New(nftables.WithNetNSFd(c.netns), nftables.AsLasting(), nftables.WithSockOptions(sock.option))
	if err != nil {
		return Listing{}, fmt.Errorf("nftables: list table %s %s: %w", fam, table, translateError(err))
	}
	defer func() { _ = nc.CloseLasting() }()
	l, err := listTable(nc, fi.proto, table)
	switch {
	case errors.Is(err, unix.ENOENT):
		return Listing{}, nil // absent, or deleted while listing
	case err != nil && ctx.Err() != nil:
		return Listing{}, fmt.Errorf("nftables: list table %s %s: %w", fam, table, ctx.Err())
	case err != nil:
		return Listing{}, fmt.Errorf("nftables: list table %s %s: %w", fam, table, translateError(err))
	}
	return l, nil
}

// listTable reads the names of a table's chains and named sets.
func listTable(nc *nftables.Conn, fam nftables.TableFamily, table string) (Listing, error) {
	t, err := nc.ListTableOfFamily(table, fam)
	if err != nil {
		return Listing{}, err
	}
	l := Listing{Exists: true}
	chains, err := nc.ListChainsOfTableFamily(fam)
	if err != nil {
		return Listing{}, err
	}
	for _, ch := range chains {
		if ch.Table != nil && ch.Table.Name == table {
			l.Chains = append(l.Chains, ch.Name)
		}
	}
	sets, err := nc.GetSets(t)
	if err != nil {
		if strings.Contains(err.Error(), unix.ENOENT.Error()) {
			err = unix.ENOENT // GetSets drops the errno (%v): the table went away
		}
		return Listing{}, err
	}
	for _, s := range sets {
		if !s.Anonymous && !strings.HasPrefix(s.Name, "__set") && !strings.HasPrefix(s.Name, "__map") {
			l.Sets = append(l.Sets, s.Name)
		}
	}
	slices.Sort(l.Chains)
	slices.Sort(l.Sets)
	return l, nil
}

// ctxSockets sets up the netlink sockets a google/nftables Conn dials: it
// ties them to a context (its deadline, and a deadline in the past once it
// is done, so a blocked receive returns), and for a batch it sizes their
// buffers.
type ctxSockets struct {
	ctx context.Context
	// rcvbuf, when set, is the receive buffer for a batch's acks; the send
	// buffer is then raised too.
	rcvbuf int
	// sndbuf, with rcvbuf, is the size of the batch to send.
	sndbuf int
	mu     sync.Mutex
	stops  []func() bool
}

// The receive buffer of a batch: only its errors and one ack come back.
// The send buffer must hold the whole batch, which the kernel takes in
// one message (else EMSGSIZE). Both are limits, not allocations.
const minBatchRcvbuf = 4 << 20

// option is the nftables.SockOption that applies the context and the
// buffer sizes to a socket.
func (s *ctxSockets) option(c *netlink.Conn) error {
	if d, ok := s.ctx.Deadline(); ok {
		if err := c.SetDeadline(d); err != nil {
			return err
		}
	}
	if s.rcvbuf > 0 {
		if err := setBuffers(c, max(s.sndbuf+4096, minBatchRcvbuf), s.rcvbuf); err != nil {
			return err
		}
	}
	stop := context.AfterFunc(s.ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	s.mu.Lock()
	s.stops = append(s.stops, stop)
	s.mu.Unlock()
	return nil
}

// setBuffers sets the socket's buffers, beyond net.core.[rw]mem_max with
// CAP_NET_ADMIN (SO_SNDBUFFORCE, SO_RCVBUFFORCE, as nft does), else up
// to them.
func setBuffers(c *netlink.Conn, snd, rcv int) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, snd)
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcv)
		}
	})
	if err == nil && serr == nil {
		return nil
	}
	if err := c.SetWriteBuffer(snd); err != nil {
		return err
	}
	return c.SetReadBuffer(rcv)
}

// release stops watching the context.
func (s *ctxSockets) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, stop := range s.stops {
		stop()
	}
	s.stops = nil
}
