package proxykit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// SyncFunc does one sync. full asks for a full sync (first run, retry
// after an error, periodic).
type SyncFunc func(ctx context.Context, full bool) error

// Runner calls a SyncFunc at a bounded frequency, like kube-proxy's
// BoundedFrequencyRunner:
//
//   - Run syncs at once (full), then whenever Trigger was called, but the
//     starts of two syncs are at least the min sync interval apart: any
//     number of triggers inside that window coalesce into one sync at the
//     earliest allowed time.
//   - With nothing triggered, a full sync runs when the max sync interval
//     has passed since the start of the last one. Under constant churn,
//     the first triggered sync after the max sync interval since the last
//     full one is full too, so full syncs never stop.
//   - A failed sync is retried, full, after a backoff that starts at the
//     initial retry backoff and doubles with each further failure up to its
//     maximum; triggers do not cut it short. Every sync is full until one
//     succeeds, and a success resets the backoff.
//
// Healthy reports whether queued changes are applied in time, and an
// Observer (WithObserver) is told about every sync attempt. Trigger and
// Healthy may be called from any goroutine; the SyncFunc and the
// Observer are called by Run's goroutine only.
type Runner struct {
	fn      SyncFunc
	o       options
	trigger chan struct{} // holds a token while a trigger awaits the loop

	mu      sync.Mutex
	started bool
	// pending is when the oldest trigger not yet picked up by a sync came,
	// inflight when the oldest one picked up by a sync that has not
	// succeeded yet (it survives failures) came; zero means none.
	pending, inflight time.Time
	lastErr           error
}

// NewRunner returns a Runner of fn. Options (WithMinSyncInterval,
// WithMaxSyncInterval, WithHealthTimeout, WithRetryBackoff, WithLogger,
// WithObserver) are checked when Run starts.
func NewRunner(fn SyncFunc, opts ...Option) *Runner {
	return &Runner{fn: fn, o: buildOptions(opts), trigger: make(chan struct{}, 1)}
}

// Run syncs at once, then as described on Runner until ctx is done, and
// returns ctx's error. It returns at once an error about invalid options,
// a nil SyncFunc, or a Runner that was run before: Run may be called only
// once.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.o.validate(); err != nil {
		return err
	}
	if r.fn == nil {
		return errors.New("proxykit: runner has a nil SyncFunc")
	}
	r.mu.Lock()
	if r.started {
		r.mu.Unlock()
		return errors.New("proxykit: Runner.Run called more than once")
	}
	// The first sync covers every earlier trigger, and counts as queued
	// from now.
	r.started, r.pending = true, time.Now()
	r.mu.Unlock()
	return r.loop(ctx)
}

// Trigger asks for a sync. It never blocks; triggers coalesce.
func (r *Runner) Trigger() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started && r.pending.IsZero() {
		r.pending = time.Now()
	}
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Healthy returns nil while every queued change was applied within the
// health timeout: a change is queued from the first Trigger (or from the
// start of Run) not yet covered by a successful sync, and a sync covers
// the triggers that came before it started. Otherwise it returns an error
// saying how long the oldest change has waited, which wraps the last sync
// error if the last sync failed. Before Run, Healthy returns nil; after
// Run returns, new triggers stay queued and Healthy reports them in time.
func (r *Runner) Healthy() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	oldest := r.inflight
	if oldest.IsZero() {
		oldest = r.pending
	}
	if oldest.IsZero() {
		return nil
	}
	waited := time.Since(oldest)
	if waited <= r.o.healthTimeout {
		return nil
	}
	if r.lastErr != nil {
		return fmt.Errorf("proxykit: oldest queued change has waited %v, longer than the health timeout %v; last sync failed: %w",
			waited, r.o.healthTimeout, r.lastErr)
	}
	return fmt.Errorf("proxykit: oldest queued change has waited %v, longer than the health timeout %v",
		waited, r.o.healthTimeout)
}

// schedule is the state of Run's loop.
type schedule struct {
	lastStart, lastEnd time.Time
	lastFull           time.Time     // start of the last full sync
	triggered          bool          // a trigger came since lastStart
	failures           int           // consecutive failed syncs
	backoff            time.Duration // wait after the last failure
}

// loop is Run's body.
func (r *Runner) loop(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var s schedule
	r.step(ctx, &s, true)
	timer := time.NewTimer(time.Until(s.next(&r.o)))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.trigger:
			s.triggered = true
		case <-timer.C:
			r.step(ctx, &s, false)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		timer.Reset(time.Until(s.next(&r.o)))
	}
}

// next returns when the next sync is due.
func (s *schedule) next(o *options) time.Time {
	earliest := s.lastStart.Add(o.minInterval)
	latest := s.lastStart.Add(o.maxInterval)
	at := latest
	switch {
	case s.failures > 0:
		if retry := s.lastEnd.Add(s.backoff); retry.Before(latest) {
			at = retry
		}
	case s.triggered:
		at = earliest
	}
	if at.Before(earliest) {
		at = earliest
	}
	return at
}

// step runs one sync and updates s.
func (r *Runner) step(ctx context.Context, s *schedule, first bool) {
	now := time.Now()
	full := first || s.failures > 0 || !s.triggered || now.Sub(s.lastFull) >= r.o.maxInterval
	s.triggered = false
	s.lastStart = now
	if full {
		s.lastFull = now
	}
	err := r.sync(ctx, full)
	s.lastEnd = time.Now()
	took := s.lastEnd.Sub(s.lastStart)
	if r.o.observer != nil {
		r.observe(ctx, SyncInfo{Full: full, Start: now, Duration: took, Err: err})
	}
	switch {
	case err == nil:
		s.failures, s.backoff = 0, 0
		r.o.logger.Debug("proxykit: sync done", "full", full, "took", took)
	case ctx.Err() != nil:
		// Canceled: Run returns ctx's error, this one is no news.
	default:
		s.failures++
		switch {
		case s.failures == 1:
			s.backoff = r.o.retryInitial
		case s.backoff > r.o.retryMax/2: // also keeps 2*backoff from overflowing
			s.backoff = r.o.retryMax
		default:
			s.backoff *= 2
		}
		r.o.logger.Warn("proxykit: sync failed", "full", full, "took", took,
			"error", err, "failures", s.failures, "retryIn", s.backoff)
	}
}

// sync calls the SyncFunc and keeps track of what it covered.
func (r *Runner) sync(ctx context.Context, full bool) error {
	r.mu.Lock()
	select {
	case <-r.trigger: // covered by this sync
	default:
	}
	if r.inflight.IsZero() {
		r.inflight = r.pending
	}
	r.pending = time.Time{}
	r.mu.Unlock()

	err := r.fn(ctx, full)

	r.mu.Lock()
	r.lastErr = err
	if err == nil {
		r.inflight = time.Time{}
	}
	r.mu.Unlock()
	return err
}
