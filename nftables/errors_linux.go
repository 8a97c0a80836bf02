//go:build linux

package nftables

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

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
