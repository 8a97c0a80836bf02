package proxykit

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/proxykit/proxykit/servicemap"
)

// observed is an Observer that records what it is told, as offsets from
// start (exact inside a synctest bubble).
type observed struct {
	start time.Time

	mu    sync.Mutex
	infos []SyncInfo
}

func (o *observed) SyncDone(i SyncInfo) {
	o.mu.Lock()
	o.infos = append(o.infos, i)
	o.mu.Unlock()
}

func (o *observed) get() []SyncInfo {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.infos)
}

// obsCall is a SyncInfo with times relative to the test's start.
type obsCall struct {
	at, took, queued time.Duration // queued: -1 when nothing is queued
	full, failed     bool
}

func (o *observed) want(t *testing.T, want ...obsCall) {
	t.Helper()
	synctest.Wait()
	var got []obsCall
	for _, i := range o.get() {
		q := time.Duration(-1)
		if i.Pending() {
			q = i.QueuedSince.Sub(o.start)
		}
		got = append(got, obsCall{i.Start.Sub(o.start), i.Duration, q, i.Full, i.Err != nil})
	}
	if !slices.Equal(got, want) {
		t.Errorf("at %v: observed\n got %+v\nwant %+v", time.Since(o.start), got, want)
	}
}

func TestObserverSeesEverySync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		rec.took = 100 * time.Millisecond
		obs := &observed{start: rec.start}
		r := NewRunner(rec.sync, WithMinSyncInterval(time.Second), WithRetryBackoff(time.Second, time.Minute), WithObserver(obs))
		defer start(t, r)()
		// A trigger during the first sync stays queued after it.
		rec.sleepUntil(50 * time.Millisecond)
		r.Trigger()
		rec.sleepUntil(200 * time.Millisecond)
		obs.want(t, obsCall{0, 100 * time.Millisecond, 50 * time.Millisecond, true, false})

		// The second, partial sync fails: its change stays queued.
		rec.setFail(func(int) error { return errBoom })
		rec.sleepUntil(1500 * time.Millisecond)
		obs.want(t,
			obsCall{0, 100 * time.Millisecond, 50 * time.Millisecond, true, false},
			obsCall{time.Second, 100 * time.Millisecond, 50 * time.Millisecond, false, true})
		if got := obs.get()[1].Err; !errors.Is(got, errBoom) {
			t.Errorf("Err = %v, want %v", got, errBoom)
		}

		// The retry, full, succeeds and nothing is queued any more.
		rec.setFail(nil)
		rec.sleepUntil(2500 * time.Millisecond)
		obs.want(t,
			obsCall{0, 100 * time.Millisecond, 50 * time.Millisecond, true, false},
			obsCall{time.Second, 100 * time.Millisecond, 50 * time.Millisecond, false, true},
			obsCall{2100 * time.Millisecond, 100 * time.Millisecond, -1, true, false})
	})
}

func TestObserverNotToldOfCanceledSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		rec.took = time.Minute
		obs := &observed{start: rec.start}
		r := NewRunner(rec.sync, WithObserver(ObserverFunc(obs.SyncDone)))
		stop := start(t, r)
		time.Sleep(time.Second)
		stop()
		obs.want(t)
	})
}

// A Proxy passes the option to its loop; the observer may read the
// snapshot just synced.
func TestProxyObserver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var gens []uint64
		var p *Proxy
		obs := ObserverFunc(func(i SyncInfo) {
			if i.Err == nil {
				gens = append(gens, p.Snapshot().Generation())
			}
		})
		p = New(Node{Name: "n"}, SyncerFunc(func(context.Context, *Snapshot) error { return nil }), WithObserver(obs))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		synctest.Wait()
		svc := &servicemap.Service{Namespace: "ns", Name: "web", Type: servicemap.ClusterIP,
			ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.1")},
			Ports:      []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80}}}
		if err := p.OnServiceUpdate(nil, svc); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		cancel()
		<-done
		if want := []uint64{1, 2}; !slices.Equal(gens, want) {
			t.Errorf("generations seen = %v, want %v", gens, want)
		}
	})
}
