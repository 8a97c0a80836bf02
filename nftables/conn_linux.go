//go:build linux

package nftables

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
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

// opError wraps err with the operation and its object.
func opError(op Op, err error) error {
	obj := fmt.Sprintf("%q", op.Name)
	switch op.Kind {
	case AddTable, DeleteTable:
		return fmt.Errorf("nftables: %s %s %s: %w", op.Kind, op.Family, op.Table, err)
	case AddRule:
		return fmt.Errorf("nftables: add rule to chain %s: %w", obj, err)
	case AddElements:
		return fmt.Errorf("nftables: add %d elements to set %s: %w", len(op.Elements), obj, err)
	case DeleteElements:
		return fmt.Errorf("nftables: delete %d elements from set %s: %w", len(op.Elements), obj, err)
	case AddChain, AddSet:
		if op.Chain != nil {
			obj = fmt.Sprintf("%q", op.Chain.Name)
		} else if op.Set != nil {
			obj = fmt.Sprintf("%q", op.Set.Name)
		}
	}
	return fmt.Errorf("nftables: %s %s: %w", op.Kind, obj, err)
}

// kernelError is an error of the kernel (an errno) with what it means for
// proxykit's operations. errors.Is matches the Fake's errors (ENOENT is
// ErrNotFound, EBUSY ErrBusy, EEXIST ErrExists) and its errno, and through
// it fs.ErrNotExist, fs.ErrExist, fs.ErrPermission (EPERM) and
// errors.ErrUnsupported (EOPNOTSUPP).
type kernelError struct {
	errno syscall.Errno
	hint  string
}

// errnoSentinels are the errors of the Fake that errnos stand for.
var errnoSentinels = map[syscall.Errno]error{
	unix.ENOENT: ErrNotFound, unix.EBUSY: ErrBusy, unix.EEXIST: ErrExists,
}

// Is reports whether target is the Fake's error for the errno.
func (e *kernelError) Is(target error) bool {
	s, ok := errnoSentinels[e.errno]
	return ok && s == target
}

func (e *kernelError) Error() string {
	if e.hint == "" {
		return e.errno.Error()
	}
	return e.hint + " (" + e.errno.Error() + ")"
}

func (e *kernelError) Unwrap() error { return e.errno }

// errnoHints say what an errno means for the operations of a Conn.
var errnoHints = map[syscall.Errno]string{
	unix.ENOENT:     "no such table, chain or set, or a reference to one",
	unix.EEXIST:     "the object exists with a different definition, an element exists with other data, or intervals overlap",
	unix.EBUSY:      "the object is in use: a chain with rules or references, a set referenced by a rule",
	unix.EOPNOTSUPP: "not supported by the kernel (nf_tables module or feature missing)",
	unix.ENOBUFS:    "the acks of the batch overflowed the netlink receive buffer",
	unix.EMSGSIZE:   "the batch is larger than the netlink send buffer",
	unix.EPERM:      "operation not permitted (needs CAP_NET_ADMIN in the network namespace)",
	unix.EINVAL:     "invalid argument",
	unix.ENOTEMPTY:  "the object is not empty",
	unix.ENOSPC:     "the set is full",
	unix.ELOOP:      "the chains jump in a loop",
	unix.EMLINK:     "too many jumps between chains",
	unix.ENFILE:     "too many objects",
	unix.ERANGE:     "a value or name is out of range",
	unix.E2BIG:      "a value is too large",
	unix.EAFNOSUPPORT: "the family is not supported by the kernel " +
		"(nf_tables for ip or ip6 missing)",
	unix.EPROTONOSUPPORT: "a protocol or expression is not supported by the kernel",
}

// translateError is the one place where kernel errors become the
// backend's: the first errno in err (a batch reports one per failed
// message) with what it means. Other errors are returned as they are.
func translateError(err error) error {
	errnos := errnosOf(err)
	if len(errnos) == 0 {
		return err
	}
	return &kernelError{errno: errnos[0], hint: errnoHints[errnos[0]]}
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

// nlBatch queues the netlink messages of a transaction on one
// google/nftables Conn.
type nlBatch struct {
	nc     *nftables.Conn
	lastID uint32 // set IDs of this batch (the kernel scopes them to it)
}

// setID allocates a set ID. google/nftables would use a global counter
// otherwise, shared by concurrent Conns.
func (b *nlBatch) setID() uint32 {
	b.lastID++
	return b.lastID
}

// add queues the messages of op.
func (b *nlBatch) add(op Op) error {
	fi, err := familyInfo(op.Family)
	if err != nil {
		return err
	}
	if !validName(op.Table) {
		return fmt.Errorf("invalid table name %q", op.Table)
	}
	t := &nftables.Table{Name: op.Table, Family: fi.proto}
	if op.Kind != AddTable && op.Kind != DeleteTable && op.Kind != AddChain && op.Kind != AddSet && !validObjectName(op.Name) {
		return fmt.Errorf("invalid name %q", op.Name)
	}
	switch op.Kind {
	case AddTable:
		b.nc.AddTable(t)
	case DeleteTable:
		b.nc.DelTable(t)
	case AddChain, FlushChain, DeleteChain, AddRule:
		return b.chainOp(t, fi, op)
	case AddSet, FlushSet, DeleteSet, AddElements, DeleteElements:
		return b.setOp(t, fi, op)
	default:
		return fmt.Errorf("unknown operation %v", op.Kind)
	}
	return nil
}

// chainOp queues a chain or rule operation.
func (b *nlBatch) chainOp(t *nftables.Table, fi famInfo, op Op) error {
	ch := &nftables.Chain{Name: op.Name, Table: t}
	switch op.Kind {
	case AddChain:
		def, err := chainDef(t, op.Chain)
		if err != nil {
			return err
		}
		b.nc.AddChain(def)
	case FlushChain:
		b.nc.FlushChain(ch)
	case DeleteChain:
		b.nc.DelChain(ch)
	case AddRule:
		if len(op.Rule) == 0 {
			return errors.New("empty rule")
		}
		exprs, err := (&ruleBuilder{b: b, table: t, f: fi}).rule(op.Rule)
		if err != nil {
			return err
		}
		b.nc.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs})
	}
	return nil
}

// setOp queues a set or element operation.
func (b *nlBatch) setOp(t *nftables.Table, fi famInfo, op Op) error {
	s := &nftables.Set{Table: t, Name: op.Name}
	switch op.Kind {
	case AddSet:
		def, err := setDef(t, op.Set)
		if err != nil {
			return err
		}
		def.ID = b.setID()
		return b.nc.AddSet(def, nil)
	case FlushSet:
		b.nc.FlushSet(s)
	case DeleteSet:
		b.nc.DelSet(s)
	case AddElements, DeleteElements:
		if len(op.Elements) == 0 {
			return nil
		}
		elems, err := fi.setElements(op.Elements, op.Kind == DeleteElements)
		if err != nil {
			return err
		}
		return b.elements(s, elems, op.Kind == DeleteElements)
	}
	return nil
}

// elements queues the addition or deletion of elems, in as many messages
// as elementChunks needs.
func (b *nlBatch) elements(s *nftables.Set, elems []nftables.SetElement, del bool) error {
	for _, chunk := range elementChunks(elems) {
		var err error
		if del {
			err = b.nc.SetDeleteElements(s, chunk)
		} else {
			err = b.nc.SetAddElements(s, chunk)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// setTypes maps the names of Set.Type and Set.Data to netlink data types.
var setTypes = map[string]nftables.SetDatatype{
	"ipv4_addr": nftables.TypeIPAddr, "ipv6_addr": nftables.TypeIP6Addr,
	"inet_proto": nftables.TypeInetProto, "inet_service": nftables.TypeInetService,
	"mark": nftables.TypeMark, "integer": nftables.TypeInteger, "verdict": nftables.TypeVerdict,
}

// parseSetType parses a type such as "ipv4_addr . inet_proto .
// inet_service"; concat reports a concatenation.
func parseSetType(s string) (t nftables.SetDatatype, concat bool, err error) {
	names := strings.Split(s, " . ")
	parts := make([]nftables.SetDatatype, len(names))
	for i, n := range names {
		var ok bool
		if parts[i], ok = setTypes[n]; !ok {
			return t, false, fmt.Errorf("unsupported set type %q in %q", n, s)
		}
	}
	if len(parts) == 1 {
		return parts[0], false, nil
	}
	t, err = nftables.ConcatSetType(parts...)
	return t, true, err
}

// setDef is the netlink definition of a named set or map (no elements).
func setDef(t *nftables.Table, s *Set) (*nftables.Set, error) {
	if s == nil || !validObjectName(s.Name) {
		return nil, errors.New("missing or invalid set")
	}
	key, concat, err := parseSetType(s.Type)
	if err != nil {
		return nil, err
	}
	ns := &nftables.Set{Table: t, Name: s.Name, KeyType: key, Concatenation: concat, Interval: s.Interval,
		KeyByteOrder: binaryutil.BigEndian, Dynamic: s.Dynamic, HasTimeout: s.Dynamic || s.Timeout > 0,
		Timeout: s.Timeout}
	if s.Size < 0 || int64(s.Size) > int64(^uint32(0)) {
		return nil, fmt.Errorf("size %d out of range", s.Size)
	}
	ns.Size = uint32(s.Size)
	if s.IsMap() {
		ns.IsMap = true
		if ns.DataType, _, err = parseSetType(s.Data); err != nil {
			return nil, err
		}
	}
	return ns, nil
}

// validObjectName reports whether s is a chain or set name as names.go
// makes them: sanitized parts joined by '-' and '/'. Names are sent as
// netlink strings, so this only guards against NUL and the length limit.
func validObjectName(s string) bool {
	return s != "" && len(s) < unix.NFT_NAME_MAXLEN && !strings.ContainsRune(s, 0)
}

// chainHooks and chainTypes map Hook fields to netlink.
var (
	chainHooks = map[string]*nftables.ChainHook{
		"prerouting": nftables.ChainHookPrerouting, "input": nftables.ChainHookInput,
		"forward": nftables.ChainHookForward, "output": nftables.ChainHookOutput,
		"postrouting": nftables.ChainHookPostrouting,
	}
	chainTypes = map[string]nftables.ChainType{
		"filter": nftables.ChainTypeFilter, "nat": nftables.ChainTypeNAT, "route": nftables.ChainTypeRoute,
	}
	// stdPriorities are nft's named priorities of the ip and ip6 families.
	stdPriorities = map[string]int32{
		"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100,
	}
)

// chainDef is the netlink definition of c (a base chain when it has a
// Hook; base chains get policy accept).
func chainDef(t *nftables.Table, c *Chain) (*nftables.Chain, error) {
	if c == nil || !validObjectName(c.Name) {
		return nil, errors.New("missing or invalid chain")
	}
	nc := &nftables.Chain{Name: c.Name, Table: t}
	if c.Hook == nil {
		return nc, nil
	}
	hook, ok := chainHooks[c.Hook.Hook]
	if !ok {
		return nil, fmt.Errorf("unknown hook %q", c.Hook.Hook)
	}
	typ, ok := chainTypes[c.Hook.Type]
	if !ok {
		return nil, fmt.Errorf("unknown chain type %q", c.Hook.Type)
	}
	prio, err := parsePriority(c.Hook.Priority)
	if err != nil {
		return nil, err
	}
	accept := nftables.ChainPolicyAccept
	nc.Hooknum, nc.Type, nc.Priority, nc.Policy = hook, typ, nftables.ChainPriorityRef(nftables.ChainPriority(prio)), &accept
	return nc, nil
}

// parsePriority parses a priority as nft prints it: "dstnat",
// "filter - 10", "srcnat + 5" or a number such as "-100".
func parsePriority(s string) (int32, error) {
	f := strings.Fields(s)
	bad := fmt.Errorf("invalid priority %q", s)
	if len(f) == 1 {
		if p, ok := stdPriorities[f[0]]; ok {
			return p, nil
		}
		n, err := strconv.ParseInt(f[0], 10, 32)
		if err != nil {
			return 0, bad
		}
		return int32(n), nil
	}
	base, ok := stdPriorities[f[0]]
	if len(f) != 3 || !ok || (f[1] != "+" && f[1] != "-") {
		return 0, bad
	}
	n, err := strconv.ParseInt(f[2], 10, 32)
	if err != nil || n < 0 {
		return 0, bad
	}
	if f[1] == "-" {
		n = -n
	}
	return base + int32(n), nil
}
