package proxykit

import (
	"context"
	"time"
)

// Observer is told about every sync attempt of a Runner's loop (and so of
// a Proxy's Run loop): the hook for metrics such as the sync duration,
// failures, the last success and how long changes wait. Set it with
// WithObserver. Syncs done with Proxy.SyncNow are not reported.
//
// SyncDone runs on the loop's goroutine after each attempt, before the
// next one can start: it must be quick (update counters, or hand the
// info to another goroutine without blocking) and must not call
// Proxy.SyncNow. It may call Proxy.Snapshot, Proxy.Healthy and
// Runner.Healthy. An attempt that ends with an error because the loop's
// context was canceled is not reported.
type Observer interface {
	SyncDone(SyncInfo)
}

// ObserverFunc adapts a function to an Observer.
type ObserverFunc func(SyncInfo)

// SyncDone calls f.
func (f ObserverFunc) SyncDone(i SyncInfo) { f(i) }

// SyncInfo describes one sync attempt.
type SyncInfo struct {
	// Full is set for a full sync, clear for a partial one.
	Full bool
	// Start is when the attempt started; Duration is how long it took.
	Start    time.Time
	Duration time.Duration
	// Err is the attempt's error; nil means the sync succeeded.
	Err error
	// QueuedSince is when the oldest change still to apply when the
	// attempt ended was queued (the Trigger that announced it): a change
	// that came during the attempt, or, after a failure, the oldest one
	// the attempt carried. Zero when nothing is queued. Healthy compares
	// the same time with the health timeout.
	QueuedSince time.Time
}

// Pending reports whether changes were still queued when the attempt
// ended.
func (i SyncInfo) Pending() bool { return !i.QueuedSince.IsZero() }

// WithObserver sets an Observer told about every sync attempt of the
// loop. By default there is none, which costs nothing.
func WithObserver(obs Observer) Option { return func(o *options) { o.observer = obs } }

// observe completes info with the queue's state and tells the observer.
func (r *Runner) observe(ctx context.Context, info SyncInfo) {
	if info.Err != nil && ctx.Err() != nil {
		return
	}
	r.mu.Lock()
	info.QueuedSince = r.inflight
	if info.QueuedSince.IsZero() {
		info.QueuedSince = r.pending
	}
	r.mu.Unlock()
	r.o.observer.SyncDone(info)
}
