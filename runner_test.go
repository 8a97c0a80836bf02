package proxykit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

var errBoom = errors.New("boom")

// syncCall is one call of a SyncFunc: when it started, relative to the
// recorder's creation, and whether it was full.
type syncCall struct {
	at   time.Duration
	full bool
}

func (c syncCall) String() string { return fmt.Sprintf("{%v %v}", c.at, c.full) }

// recorder is a SyncFunc that records its calls. Inside a synctest bubble
// time is virtual, so the recorded times are exact.
type recorder struct {
	start time.Time
	took  time.Duration // how long each sync takes

	mu    sync.Mutex
	calls []syncCall
	fail  func(n int) error // the error of call n (from 0), if set
}

func newRecorder() *recorder { return &recorder{start: time.Now()} }

func (rec *recorder) sync(ctx context.Context, full bool) error {
	rec.mu.Lock()
	n := len(rec.calls)
	rec.calls = append(rec.calls, syncCall{time.Since(rec.start), full})
	fail := rec.fail
	rec.mu.Unlock()
	if rec.took > 0 {
		select {
		case <-time.After(rec.took):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail != nil {
		return fail(n)
	}
	return nil
}

func (rec *recorder) setFail(f func(n int) error) {
	rec.mu.Lock()
	rec.fail = f
	rec.mu.Unlock()
}

func (rec *recorder) get() []syncCall {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.calls)
}

// want lets the bubble settle and checks every call so far.
func (rec *recorder) want(t *testing.T, want ...syncCall) {
	t.Helper()
	synctest.Wait()
	if got := rec.get(); !slices.Equal(got, want) {
		t.Errorf("at %v: sync calls\n got %v\nwant %v", time.Since(rec.start), got, want)
	}
}

// sleepUntil sleeps until d after the recorder's creation, which must not
// have passed: it would be a mistake in the test.
func (rec *recorder) sleepUntil(d time.Duration) {
	wait := time.Until(rec.start.Add(d))
	if wait < 0 {
		panic(fmt.Sprintf("sleepUntil(%v): already %v", d, time.Since(rec.start)))
	}
	time.Sleep(wait)
}

// start runs r in the background and returns a function that cancels it
// and checks that Run returned context.Canceled.
func start(t *testing.T, r *Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	synctest.Wait()
	return func() {
		t.Helper()
		cancel()
		synctest.Wait()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run = %v, want context.Canceled", err)
			}
		default:
			t.Error("Run did not return after cancel")
		}
	}
}

func TestRunnerFirstSyncImmediateAndFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		r := NewRunner(rec.sync)
		// Triggers before Run are covered by the first sync.
		for range 5 {
			r.Trigger()
		}
		time.Sleep(time.Minute)
		rec.start = time.Now()
		defer start(t, r)()
		rec.want(t, syncCall{0, true})
		time.Sleep(10 * time.Minute)
		rec.want(t, syncCall{0, true})
	})
}

func TestRunnerCoalescesTriggers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		r := NewRunner(rec.sync, WithMinSyncInterval(time.Second))
		defer start(t, r)()
		for i := range 100 {
			rec.sleepUntil(time.Duration(i+1) * 9 * time.Millisecond) // 9ms … 900ms
			r.Trigger()
		}
		rec.want(t, syncCall{0, true})
		rec.sleepUntil(time.Second)
		rec.want(t, syncCall{0, true}, syncCall{time.Second, false})
		time.Sleep(time.Minute)
		rec.want(t, syncCall{0, true}, syncCall{time.Second, false})

		// Long after the last sync, a trigger syncs at once.
		r.Trigger()
		rec.want(t, syncCall{0, true}, syncCall{time.Second, false}, syncCall{61 * time.Second, false})
	})
}

func TestRunnerTriggerNeverBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		rec.took = time.Hour // Run's goroutine is busy syncing
		r := NewRunner(rec.sync, WithMaxSyncInterval(2*time.Hour))
		for range 1000 {
			r.Trigger() // before Run
		}
		defer start(t, r)()
		for range 1000 {
			r.Trigger() // during a sync
		}
		rec.want(t, syncCall{0, true})
		time.Sleep(time.Hour)
		rec.want(t, syncCall{0, true}, syncCall{time.Hour, false})
	})
}

func TestRunnerMinIntervalBetweenStarts(t *testing.T) {
	tests := []struct {
		name    string
		took    time.Duration
		wantGap time.Duration
	}{
		{"short syncs", 300 * time.Millisecond, time.Second},
		{"syncs longer than the interval", 1500 * time.Millisecond, 1500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := newRecorder()
				rec.took = tt.took
				r := NewRunner(rec.sync, WithMinSyncInterval(time.Second))
				stop := start(t, r)
				for range 10 * time.Second / (70 * time.Millisecond) {
					time.Sleep(70 * time.Millisecond)
					r.Trigger()
				}
				time.Sleep(5 * time.Second)
				stop()
				calls := rec.get()
				if len(calls) < 8 {
					t.Fatalf("%d syncs in 10s of triggers, want at least 8", len(calls))
				}
				for i := 1; i < len(calls); i++ {
					if gap := calls[i].at - calls[i-1].at; gap != tt.wantGap {
						t.Errorf("sync %d started %v after sync %d, want %v", i, gap, i-1, tt.wantGap)
					}
					if calls[i].full {
						t.Errorf("sync %d is full, want partial", i)
					}
				}
			})
		})
	}
}

func TestRunnerPeriodicFullSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		r := NewRunner(rec.sync, WithMaxSyncInterval(10*time.Second))
		defer start(t, r)()
		rec.sleepUntil(31 * time.Second)
		want := []syncCall{{0, true}, {10 * time.Second, true}, {20 * time.Second, true}, {30 * time.Second, true}}
		rec.want(t, want...)

		// A triggered sync is partial and restarts the period.
		rec.sleepUntil(32 * time.Second)
		r.Trigger()
		want = append(want, syncCall{32 * time.Second, false})
		rec.want(t, want...)
		rec.sleepUntil(41 * time.Second)
		rec.want(t, want...)
		rec.sleepUntil(42 * time.Second)
		rec.want(t, append(want, syncCall{42 * time.Second, true})...)
	})
}

// Under constant churn every sync is triggered; full syncs must still come
// once per max sync interval.
func TestRunnerFullSyncUnderChurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		r := NewRunner(rec.sync, WithMinSyncInterval(time.Second), WithMaxSyncInterval(10*time.Second))
		defer start(t, r)()
		for i := 1; i <= 25; i++ {
			rec.sleepUntil(time.Duration(i)*time.Second - time.Second/2)
			r.Trigger()
		}
		rec.sleepUntil(25 * time.Second)
		synctest.Wait()
		var fullAt []time.Duration
		for _, c := range rec.get() {
			if c.full {
				fullAt = append(fullAt, c.at)
			}
		}
		if want := []time.Duration{0, 10 * time.Second, 20 * time.Second}; !slices.Equal(fullAt, want) {
			t.Errorf("full syncs at %v, want %v (calls %v)", fullAt, want, rec.get())
		}
	})
}

func TestRunnerRetryBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		rec.fail = func(n int) error {
			if n < 5 || n == 6 {
				return errBoom
			}
			return nil
		}
		r := NewRunner(rec.sync, WithMinSyncInterval(100*time.Millisecond), WithRetryBackoff(time.Second, 4*time.Second))
		defer start(t, r)()
		s := time.Second
		// Failures at 0, 1, 3, 7, 11 s (backoff 1, 2, 4, 4 s), success at 15 s.
		want := []syncCall{{0, true}, {1 * s, true}, {3 * s, true}, {7 * s, true}, {11 * s, true}, {15 * s, true}}
		rec.sleepUntil(20 * s)
		rec.want(t, want...)

		// The backoff starts afresh after a success; a retry is full even
		// when the failed sync was partial.
		r.Trigger()
		want = append(want, syncCall{20 * s, false})
		rec.want(t, want...)
		rec.sleepUntil(21 * s)
		want = append(want, syncCall{21 * s, true})
		rec.want(t, want...)

		// Once a sync succeeded, triggered syncs are partial again.
		rec.sleepUntil(30 * s)
		r.Trigger()
		rec.want(t, append(want, syncCall{30 * s, false})...)
	})
}

func TestRunnerTriggerDuringBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		rec.fail = func(n int) error {
			if n == 0 {
				return errBoom
			}
			return nil
		}
		r := NewRunner(rec.sync, WithMinSyncInterval(time.Second), WithRetryBackoff(5*time.Second, time.Minute))
		defer start(t, r)()
		for i := 1; i <= 4; i++ {
			rec.sleepUntil(time.Duration(i) * time.Second)
			r.Trigger()
		}
		rec.sleepUntil(4900 * time.Millisecond)
		rec.want(t, syncCall{0, true})
		rec.sleepUntil(5 * time.Second)
		rec.want(t, syncCall{0, true}, syncCall{5 * time.Second, true})
		// The retry covered the triggers: nothing more to do.
		rec.sleepUntil(time.Minute)
		rec.want(t, syncCall{0, true}, syncCall{5 * time.Second, true})
	})
}

func TestRunnerRetryBounds(t *testing.T) {
	tests := []struct {
		name      string
		opts      []Option
		wantRetry time.Duration
	}{
		{"backoff shorter than the min interval", []Option{
			WithMinSyncInterval(time.Second), WithRetryBackoff(100*time.Millisecond, time.Second),
		}, time.Second},
		{"backoff longer than the max interval", []Option{
			WithMaxSyncInterval(10 * time.Second), WithRetryBackoff(time.Minute, time.Hour),
		}, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := newRecorder()
				rec.fail = func(n int) error {
					if n == 0 {
						return errBoom
					}
					return nil
				}
				defer start(t, NewRunner(rec.sync, tt.opts...))()
				rec.sleepUntil(tt.wantRetry - time.Millisecond)
				rec.want(t, syncCall{0, true})
				rec.sleepUntil(tt.wantRetry)
				rec.want(t, syncCall{0, true}, syncCall{tt.wantRetry, true})
			})
		})
	}
}

func TestRunnerHealthy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		rec.fail = func(int) error { return errBoom }
		r := NewRunner(rec.sync, WithHealthTimeout(10*time.Second), WithRetryBackoff(time.Second, 2*time.Second))
		r.Trigger()
		time.Sleep(time.Minute)
		if err := r.Healthy(); err != nil {
			t.Fatalf("Healthy before Run = %v, want nil", err)
		}

		// Run's first sync is queued from Run's start and keeps failing.
		rec.start = time.Now()
		defer start(t, r)()
		checkHealthy(t, r, rec, 10*time.Second, "")
		checkHealthy(t, r, rec, 10*time.Second+time.Millisecond,
			"oldest queued change has waited 10.001s, longer than the health timeout 10s; last sync failed: boom")
		rec.setFail(nil)
		rec.sleepUntil(12 * time.Second) // next retry at most 2s later
		checkHealthy(t, r, rec, 12*time.Second, "")

		// A change triggered at 20s while syncs fail stays the oldest,
		// whatever triggers come after it.
		rec.setFail(func(int) error { return errBoom })
		rec.sleepUntil(20 * time.Second)
		r.Trigger()
		rec.sleepUntil(25 * time.Second)
		r.Trigger()
		checkHealthy(t, r, rec, 30*time.Second, "")
		checkHealthy(t, r, rec, 30*time.Second+500*time.Millisecond, "waited 10.5s")
		rec.setFail(nil)
		rec.sleepUntil(33 * time.Second)
		checkHealthy(t, r, rec, 33*time.Second, "")
	})
}

// TestRunnerHealthySlowSync checks that a sync covers only the triggers
// that came before it started.
func TestRunnerHealthySlowSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		rec.took = 20 * time.Second
		r := NewRunner(rec.sync, WithHealthTimeout(10*time.Second))
		defer start(t, r)()
		rec.sleepUntil(5 * time.Second)
		r.Trigger() // during the first sync
		checkHealthy(t, r, rec, 10*time.Second, "")
		checkHealthy(t, r, rec, 15*time.Second, "waited 15s")
		if err := r.Healthy(); err != nil && strings.Contains(err.Error(), "last sync failed") {
			t.Errorf("Healthy = %v, want no sync error: none failed", err)
		}
		// The first sync is done, the trigger at 5s waits for the second.
		checkHealthy(t, r, rec, 20*time.Second, "waited 15s")
		checkHealthy(t, r, rec, 40*time.Second, "")
		rec.want(t, syncCall{0, true}, syncCall{20 * time.Second, false})
	})
}

// checkHealthy sleeps until d after rec's start and checks Healthy: nil if
// wantErr is empty, else an error containing wantErr.
func checkHealthy(t *testing.T, r *Runner, rec *recorder, d time.Duration, wantErr string) {
	t.Helper()
	rec.sleepUntil(d)
	synctest.Wait()
	err := r.Healthy()
	switch {
	case wantErr == "" && err != nil:
		t.Errorf("at %v: Healthy = %v, want nil", d, err)
	case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
		t.Errorf("at %v: Healthy = %v, want an error containing %q", d, err, wantErr)
	case wantErr != "" && strings.Contains(wantErr, "last sync failed") && !errors.Is(err, errBoom):
		t.Errorf("at %v: Healthy = %v, want it to wrap the sync error", d, err)
	}
}

func TestRunnerInvalidOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    []Option
		nilFunc bool
		wantErr string
	}{
		{name: "negative min interval", opts: []Option{WithMinSyncInterval(-time.Second)}, wantErr: "min sync interval -1s"},
		{name: "zero max interval", opts: []Option{WithMaxSyncInterval(0)}, wantErr: "max sync interval 0s"},
		{name: "min above max", opts: []Option{WithMinSyncInterval(time.Minute), WithMaxSyncInterval(time.Second)}, wantErr: "min sync interval 1m0s"},
		{name: "zero health timeout", opts: []Option{WithHealthTimeout(0)}, wantErr: "health timeout 0s"},
		{name: "zero retry backoff", opts: []Option{WithRetryBackoff(0, time.Second)}, wantErr: "retry backoff 0s"},
		{name: "retry max below initial", opts: []Option{WithRetryBackoff(time.Minute, time.Second)}, wantErr: "retry backoff maximum 1s"},
		{name: "nil SyncFunc", nilFunc: true, wantErr: "nil SyncFunc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			fn := rec.sync
			if tt.nilFunc {
				fn = nil
			}
			r := NewRunner(fn, tt.opts...)
			for range 2 { // an invalid Runner does not count as run
				err := r.Run(context.Background())
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Run = %v, want an error containing %q", err, tt.wantErr)
				}
			}
			if calls := rec.get(); len(calls) != 0 {
				t.Errorf("SyncFunc called %d times, want 0", len(calls))
			}
		})
	}
	o := buildOptions(nil)
	if err := o.validate(); err != nil {
		t.Errorf("default options: validate() = %v, want nil", err)
	}
	o = buildOptions([]Option{WithMinSyncInterval(0), WithMaxSyncInterval(1), WithRetryBackoff(1, 1)})
	if err := o.validate(); err != nil {
		t.Errorf("smallest valid options: validate() = %v, want nil", err)
	}
}

func TestRunnerStops(t *testing.T) {
	tests := []struct {
		name  string
		setup func(rec *recorder)
	}{
		{"idle", func(*recorder) {}},
		{"mid-backoff", func(rec *recorder) { rec.fail = func(int) error { return errBoom } }},
		{"mid-sync", func(rec *recorder) { rec.took = 10 * time.Hour }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := newRecorder()
				tt.setup(rec)
				var logs bytes.Buffer
				r := NewRunner(rec.sync, WithRetryBackoff(time.Hour, time.Hour),
					WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
				stop := start(t, r)
				time.Sleep(time.Minute)
				stop() // checks that Run returned context.Canceled at once
				rec.want(t, syncCall{0, true})
				if tt.name == "mid-sync" && strings.Contains(logs.String(), "sync failed") {
					t.Errorf("a sync canceled by Run's ctx was logged as a failure:\n%s", logs.String())
				}
			})
		})
	}
	t.Run("canceled before Run", func(t *testing.T) {
		rec := newRecorder()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := NewRunner(rec.sync).Run(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
		if n := len(rec.get()); n != 0 {
			t.Errorf("SyncFunc called %d times, want 0", n)
		}
	})
}

func TestRunnerRunTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		r := NewRunner(rec.sync)
		stop := start(t, r)
		err := r.Run(context.Background())
		if err == nil || errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "more than once") {
			t.Errorf("second Run = %v, want an error saying it was called more than once", err)
		}
		stop()
		if err := r.Run(context.Background()); err == nil {
			t.Error("Run after the first returned = nil, want an error")
		}
		rec.want(t, syncCall{0, true})
	})
}

func TestRunnerLogs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		rec.took = 250 * time.Millisecond
		rec.fail = func(n int) error {
			if n == 0 {
				return errBoom
			}
			return nil
		}
		var logs bytes.Buffer
		h := slog.NewTextHandler(&logs, &slog.HandlerOptions{
			Level: slog.LevelDebug,
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			},
		})
		r := NewRunner(rec.sync, WithLogger(slog.New(h)), WithRetryBackoff(time.Second, time.Minute))
		defer start(t, r)()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		want := `level=WARN msg="proxykit: sync failed" full=true took=250ms error=boom failures=1 retryIn=1s
level=DEBUG msg="proxykit: sync done" full=true took=250ms
`
		if got := logs.String(); got != want {
			t.Errorf("logs:\n%s\nwant:\n%s", got, want)
		}
	})
}
