package main

import (
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/conntrack"
)

// metrics are the proxy's Prometheus metrics. They are fed by the
// library's observers (proxykit.WithObserver, conntrack.WithObserver) and
// by the changes the program hands to the proxy.
type metrics struct {
	reg             *prometheus.Registry
	syncDuration    *prometheus.HistogramVec
	lastSuccess     prometheus.Gauge
	pending         prometheus.Gauge
	syncFailures    prometheus.Counter
	conntrackDelete prometheus.Counter
	manifestErrors  prometheus.Counter

	mu sync.Mutex
	// changes holds when each change not yet covered by a successful
	// sync was handed to the proxy.
	changes []time.Time
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		syncDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "proxykit_sync_duration_seconds",
			Help:    "How long a sync of the rules took, by mode (full or partial); failed syncs included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"mode"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "proxykit_last_successful_sync_timestamp_seconds",
			Help: "When the last successful sync ended, in seconds since the Unix epoch.",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "proxykit_pending_changes",
			Help: "Service, EndpointSlice and Node changes handed to the proxy and not yet covered by a successful sync.",
		}),
		syncFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "proxykit_sync_failures_total",
			Help: "Syncs that failed (each is retried).",
		}),
		conntrackDelete: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "proxykit_conntrack_deleted_total",
			Help: "Stale conntrack flows deleted after endpoint changes.",
		}),
		manifestErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "proxykit_manifest_errors_total",
			Help: "Manifests (or objects from the API) that could not be converted; the previous version stays in force.",
		}),
	}
	m.reg.MustRegister(m.syncDuration, m.lastSuccess, m.pending, m.syncFailures, m.conntrackDelete, m.manifestErrors)
	// Both modes are exported from the start, at zero.
	m.syncDuration.WithLabelValues("full")
	m.syncDuration.WithLabelValues("partial")
	return m
}

// SyncDone implements proxykit.Observer.
func (m *metrics) SyncDone(i proxykit.SyncInfo) {
	mode := "partial"
	if i.Full {
		mode = "full"
	}
	m.syncDuration.WithLabelValues(mode).Observe(i.Duration.Seconds())
	if i.Err != nil {
		m.syncFailures.Inc()
		return
	}
	m.lastSuccess.Set(float64(i.Start.Add(i.Duration).UnixNano()) / 1e9)
	// A sync covers the changes that came before it started.
	m.mu.Lock()
	n := 0
	for _, t := range m.changes {
		if !t.Before(i.Start) {
			m.changes[n] = t
			n++
		}
	}
	m.changes = m.changes[:n]
	m.pending.Set(float64(n))
	m.mu.Unlock()
}

// changed records a change about to be handed to the proxy; done takes
// it back if the proxy rejected it. A change recorded before a sync
// starts is covered by it (the proxy's Trigger comes after its tracker
// has the change, so a change that a sync missed gets one more sync).
func (m *metrics) changed() (done func(ok bool)) {
	m.mu.Lock()
	t := time.Now()
	m.changes = append(m.changes, t)
	m.pending.Set(float64(len(m.changes)))
	m.mu.Unlock()
	return func(ok bool) {
		if ok {
			return
		}
		m.mu.Lock()
		if i := slices.Index(m.changes, t); i >= 0 {
			m.changes = slices.Delete(m.changes, i, i+1)
		}
		m.pending.Set(float64(len(m.changes)))
		m.mu.Unlock()
	}
}

// conntrack is the conntrack syncer's observer.
func (m *metrics) conntrack(r conntrack.Result) { m.conntrackDelete.Add(float64(r.Deleted)) }

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
