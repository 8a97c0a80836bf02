//go:build linux

package conntrack

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// kernelError is an errno of the kernel with what it means for the
// package's operations. errors.Is matches the errno, and through it
// fs.ErrPermission (EPERM), errors.ErrUnsupported (EOPNOTSUPP) and so on.
type kernelError struct {
	errno syscall.Errno
	hint  string
}

func (e *kernelError) Error() string {
	if e.hint == "" {
		return e.errno.Error()
	}
	return e.hint + " (" + e.errno.Error() + ")"
}

func (e *kernelError) Unwrap() error { return e.errno }

// errnoHints say what an errno means for a dump or a delete.
var errnoHints = map[syscall.Errno]string{
	unix.EPERM:           "operation not permitted (needs CAP_NET_ADMIN in the network namespace)",
	unix.EOPNOTSUPP:      "not supported by the kernel (nf_conntrack_netlink missing, or a dump filter it does not know)",
	unix.EPROTONOSUPPORT: "conntrack netlink is not available (load nf_conntrack_netlink)",
	unix.ENOBUFS:         "the kernel's answers overflowed the netlink receive buffer; which requests succeeded is unknown",
	unix.EMSGSIZE:        "the requests are larger than the netlink send buffer",
	unix.EINVAL:          "invalid request",
	unix.EBUSY:           "the flow is in use",
}

// translateError is the one place where kernel errors become the
// package's: an errno in err, with what it means. Other errors are
// returned as they are.
func translateError(err error) error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return err
	}
	var ke *kernelError
	if errors.As(err, &ke) {
		return err
	}
	return &kernelError{errno: errno, hint: errnoHints[errno]}
}
