package ipvs

import (
	"errors"
	"fmt"
	"strings"

	"github.com/proxykit/proxykit/servicemap"
)

// ErrNotFound is the error of a Handle when the object is absent.
// Deleting an absent object is not an error for the Syncer.
var ErrNotFound = errors.New("not found")

// ErrExists is the error of a Handle when the object already exists.
var ErrExists = errors.New("already exists")

// ErrUnsupported is wrapped by Supported when the kernel lacks something.
var ErrUnsupported = errors.New("not supported by the kernel")

// ConfigError is one problem of a Config.
type ConfigError struct {
	Field  string
	Value  any
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("ipvs: Config.%s: invalid value %q: %s", e.Field, fmt.Sprint(e.Value), e.Reason)
}

// SchedulerError is a scheduler that IPVS does not offer. Service names
// the service it came from, if any.
type SchedulerError struct {
	Service   servicemap.ServiceName
	Scheduler string
}

func (e *SchedulerError) reason() string {
	return "must be one of " + strings.Join(Schedulers, ", ")
}

func (e *SchedulerError) Error() string {
	if e.Service.Name == "" {
		return fmt.Sprintf("ipvs: unknown scheduler %q: %s", e.Scheduler, e.reason())
	}
	return fmt.Sprintf("ipvs: service %s: Scheduler: invalid value %q: %s", e.Service, e.Scheduler, e.reason())
}

// OpError is a failed kernel operation: the operation, the object and the
// cause (errors.Is works with ErrNotFound, ErrExists and syscall.Errno).
type OpError struct {
	Op     string // e.g. "add real server"
	Object string // e.g. "TCP 10.0.0.1:80 -> 10.244.1.10:8080"
	Err    error
}

func (e *OpError) Error() string { return fmt.Sprintf("ipvs: %s %s: %v", e.Op, e.Object, e.Err) }

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }
