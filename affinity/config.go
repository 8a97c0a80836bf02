package affinity

import (
	"fmt"
	"time"
)

// Timeout limits for ClientIP affinity (SEMANTICS §4).
const (
	DefaultTimeout = 10800 * time.Second
	MinTimeout     = 1 * time.Second
	MaxTimeout     = 86400 * time.Second
)

// Config is a service's session affinity. The zero Config means no
// affinity.
type Config struct {
	// ClientIP turns on ClientIP affinity.
	ClientIP bool
	// Timeout is how long an affinity record lives without a new
	// connection. Zero means DefaultTimeout; otherwise it must lie within
	// MinTimeout..MaxTimeout and be a whole number of seconds, since every
	// kernel backend counts in seconds.
	Timeout time.Duration
}

// EffectiveTimeout returns the timeout in force: Timeout, or
// DefaultTimeout when it is zero. It is zero when ClientIP is off.
func (c Config) EffectiveTimeout() time.Duration {
	switch {
	case !c.ClientIP:
		return 0
	case c.Timeout == 0:
		return DefaultTimeout
	}
	return c.Timeout
}

// Validate reports a timeout outside 1–86400 s or not a whole number of
// seconds. A timeout set while ClientIP is off is an error too: it would
// silently do nothing.
func (c Config) Validate() error {
	switch {
	case c.Timeout == 0:
		return nil
	case !c.ClientIP:
		return &Error{Value: c.Timeout, Reason: "timeout is set but ClientIP affinity is off"}
	case c.Timeout < MinTimeout || c.Timeout > MaxTimeout:
		return &Error{Value: c.Timeout, Reason: fmt.Sprintf("must be between %ds and %ds", MinTimeout/time.Second, MaxTimeout/time.Second)}
	case c.Timeout%time.Second != 0:
		return &Error{Value: c.Timeout, Reason: "must be a whole number of seconds"}
	}
	return nil
}

// Error is a problem with a Config's Timeout.
type Error struct {
	Value  time.Duration
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("affinity timeout %v: %s", e.Value, e.Reason)
}
