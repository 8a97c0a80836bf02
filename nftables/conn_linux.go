//go:build linux

package nftables

import (
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
// failed, found by replaying prefixes of the batch that are always
// aborted (see locate); for batches of more than maxLocateOps, or when
// that does not single one out, it names the batch.
func (c *netlinkConn) Run(ctx context.Context, ops []Op) error {
	if len(ops) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nftables: run %d operations: %w", len(ops), err)
	}
	err := c.send(ctx, ops, false)
	var be *buildError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &be):
		return err
	case ctx.Err() != nil:
		return fmt.Errorf("nftables: run %d operations: %w (the batch may or may not have been applied)", len(ops), ctx.Err())
	}
	kerr := translateError(err)
	if locatable(err) && len(ops) <= maxLocateOps {
		if i := c.locate(ctx, ops); i >= 0 {
			return opError(ops[i], kerr)
		}
	}
	return fmt.Errorf("nftables: run %d operations: %w", len(ops), kerr)
}

// buildError is an operation that could not be translated to netlink: an
// invalid Op, found before anything was sent.
type buildError struct{ err error }

func (e *buildError) Error() string { return e.err.Error() }
func (e *buildError) Unwrap() error { return e.err }

// send translates ops into one batch and flushes it. With probe, a
// sentinel operation that always fails ends the batch, so that the kernel
// aborts it whatever the ops do.
func (c *netlinkConn) send(ctx context.Context, ops []Op, probe bool) error {
	sock := &ctxSockets{ctx: ctx, rcvbuf: batchRcvbuf(ops)}
	defer sock.release()
	nc, err := nftables.New(nftables.WithNetNSFd(c.netns), nftables.WithSockOptions(sock.option))
	if err != nil {
		return err
	}
	b := &nlBatch{nc: nc}
	for _, op := range ops {
		if err := b.add(op); err != nil {
			return &buildError{opError(op, err)}
		}
	}
	if probe {
		b.sentinel()
	}
	return nc.Flush()
}

// maxLocateOps bounds the batches whose failing op locate looks for: each
// of its probes costs up to a whole batch in the kernel, and a full sync
// of thousands of services takes seconds there.
const maxLocateOps = 4096

// locatable reports whether a batch error comes from one of its messages,
// so that locate can look for it: not a lack of permission or memory, nor
// an overflow of the socket buffer, which concern the whole batch.
func locatable(err error) bool {
	errnos := errnosOf(err)
	if len(errnos) == 0 {
		return false
	}
	for _, e := range errnos {
		switch e {
		case unix.EPERM, unix.EACCES, unix.ENOMEM, unix.ENOBUFS, unix.EMSGSIZE:
			return false
		}
	}
	return true
}

// locate returns the index of the first op that fails, or -1. It sends
// prefixes of ops, each ended by a sentinel that fails, so the kernel
// aborts every one of them; a prefix fails when the kernel reports an
// error besides the sentinel's. Binary search: about log2(len(ops))
// batches, only on the error path.
func (c *netlinkConn) locate(ctx context.Context, ops []Op) int {
	fails := func(n int) (bool, bool) {
		err := c.send(ctx, ops[:n], true)
		errnos := errnosOf(err)
		if len(errnos) == 0 || ctx.Err() != nil {
			return false, false // not even the sentinel's error: give up
		}
		return len(errnos) > 1, true
	}
	lo, hi := 1, len(ops)
	for lo < hi {
		mid := lo + (hi-lo)/2
		failed, ok := fails(mid)
		if !ok {
			return -1
		}
		if failed {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	// hi may never have been tried: an error raised only when the kernel
	// commits the whole batch is not one op's.
	if failed, ok := fails(hi); !ok || !failed {
		return -1
	}
	return hi - 1
}

// sentinelTable is a table name longer than the kernel allows
// (NFT_NAME_MAXLEN): deleting it always fails.
var sentinelTable = strings.Repeat("x", unix.NFT_NAME_MAXLEN+1)

// sentinel queues an operation that the kernel always rejects.
func (b *nlBatch) sentinel() {
	b.nc.DelTable(&nftables.Table{Name: sentinelTable, Family: nftables.TableFamilyIPv4})
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
	mu     sync.Mutex
	stops  []func() bool
}

// Socket buffers of a batch. The kernel takes the whole batch in one
// message, which must fit the send buffer (else EMSGSIZE), and queues one
// ack per message (google/nftables asks for them all) before the sender
// reads any, which must fit the receive buffer (else ENOBUFS, with the
// batch applied). Both are limits, not allocations.
const (
	batchSndbuf    = 1 << 29 // the kernel doubles it: 1 GiB of batch
	ackSize        = 1024    // receive buffer per message, as nft allows
	minBatchRcvbuf = 4 << 20
	maxBatchRcvbuf = 1<<30 - 1 // the kernel's limit: INT_MAX / 2
)

// batchRcvbuf is the receive buffer for the acks of ops: one per message;
// a rule matching several source prefixes adds an anonymous set and its
// elements.
func batchRcvbuf(ops []Op) int {
	msgs := 4 // batch begin and end, a sentinel
	for _, op := range ops {
		msgs++
		for _, st := range op.Rule {
			if p, ok := st.(SaddrPrefixes); ok && len(p.Prefixes) > 1 {
				msgs += 2
			}
		}
	}
	return min(maxBatchRcvbuf, max(minBatchRcvbuf, msgs*ackSize))
}

// option is the nftables.SockOption that applies the context and the
// buffer sizes to a socket.
func (s *ctxSockets) option(c *netlink.Conn) error {
	if d, ok := s.ctx.Deadline(); ok {
		if err := c.SetDeadline(d); err != nil {
			return err
		}
	}
	if s.rcvbuf > 0 {
		if err := setBuffers(c, batchSndbuf, s.rcvbuf); err != nil {
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
