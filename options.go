package proxykit

import (
	"fmt"
	"log/slog"
	"time"
)

// Defaults of the sync loop. They follow kube-proxy: at most one sync a
// second, a full resync at least every hour.
const (
	DefaultMinSyncInterval = time.Second
	DefaultMaxSyncInterval = time.Hour
	DefaultHealthTimeout   = time.Minute
	DefaultRetryInitial    = time.Second
	DefaultRetryMax        = time.Minute
)

// Option configures a Proxy or a Runner.
type Option func(*options)

type options struct {
	minInterval, maxInterval time.Duration
	healthTimeout            time.Duration
	retryInitial, retryMax   time.Duration
	logger                   *slog.Logger
	observer                 Observer
}

func buildOptions(opts []Option) options {
	o := options{
		minInterval:   DefaultMinSyncInterval,
		maxInterval:   DefaultMaxSyncInterval,
		healthTimeout: DefaultHealthTimeout,
		retryInitial:  DefaultRetryInitial,
		retryMax:      DefaultRetryMax,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func (o *options) validate() error {
	switch {
	case o.minInterval < 0:
		return fmt.Errorf("proxykit: min sync interval %v: must not be negative", o.minInterval)
	case o.maxInterval <= 0:
		return fmt.Errorf("proxykit: max sync interval %v: must be positive", o.maxInterval)
	case o.minInterval > o.maxInterval:
		return fmt.Errorf("proxykit: min sync interval %v: must not exceed the max sync interval %v", o.minInterval, o.maxInterval)
	case o.healthTimeout <= 0:
		return fmt.Errorf("proxykit: health timeout %v: must be positive", o.healthTimeout)
	case o.retryInitial <= 0:
		return fmt.Errorf("proxykit: retry backoff %v: must be positive", o.retryInitial)
	case o.retryMax < o.retryInitial:
		return fmt.Errorf("proxykit: retry backoff maximum %v: must not be below the initial backoff %v", o.retryMax, o.retryInitial)
	}
	return nil
}

// WithMinSyncInterval sets the shortest time between the starts of two
// syncs; triggers inside it coalesce into one sync. Zero syncs at once.
func WithMinSyncInterval(d time.Duration) Option { return func(o *options) { o.minInterval = d } }

// WithMaxSyncInterval sets the longest time without a sync; when it
// passes, a full sync runs even if nothing changed.
func WithMaxSyncInterval(d time.Duration) Option { return func(o *options) { o.maxInterval = d } }

// WithHealthTimeout sets how long a queued change may wait to be applied
// before the loop reports itself unhealthy.
func WithHealthTimeout(d time.Duration) Option { return func(o *options) { o.healthTimeout = d } }

// WithRetryBackoff sets the wait before retrying a failed sync: initial
// after the first failure, doubling after each further one, up to max.
func WithRetryBackoff(initial, max time.Duration) Option {
	return func(o *options) { o.retryInitial, o.retryMax = initial, max }
}

// WithLogger sets the logger. By default nothing is logged.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }
