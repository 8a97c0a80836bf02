package conntrack

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/servicemap"
)

// Option configures a Syncer.
type Option func(*Syncer)

// WithConn sets the kernel access, e.g. a Fake in tests. By default the
// Syncer talks netlink in the current network namespace.
func WithConn(c Conn) Option { return func(s *Syncer) { s.conn = c } }

// WithLogger sets the logger. By default nothing is logged.
func WithLogger(l *slog.Logger) Option { return func(s *Syncer) { s.log = l } }

// WithObserver sets a function called after every reconcile (from Sync,
// Reconcile or Run) with what it did: for metrics. It runs on the
// reconciling goroutine, with the Syncer locked: it must be quick and
// must not call the Syncer.
func WithObserver(fn func(Result)) Option { return func(s *Syncer) { s.observe = fn } }

// WithResync makes Run reconcile every port of the last synced snapshot
// every d: a safety net for flows that slipped through (for example,
// created by a packet that raced a sync). Zero, the default, turns it off.
func WithResync(d time.Duration) Option { return func(s *Syncer) { s.resync = d } }

// WithBatchSize sets how many deletions go to the kernel in one batch;
// default DefaultBatchSize, at most MaxBatchSize.
func WithBatchSize(n int) Option { return func(s *Syncer) { s.batch = n } }

// Syncer deletes stale conntrack flows after the rules of a snapshot are
// in place (SEMANTICS §9): a proxykit.Syncer to put after a rules backend
// with proxykit.Sequence.
type Syncer struct {
	cfg     Config
	conn    Conn
	log     *slog.Logger
	observe func(Result)
	resync  time.Duration
	batch   int

	mu sync.Mutex
	// last is the last snapshot synced, for Run.
	last *proxykit.Snapshot
	// known holds the frontends of the last snapshot indexed; retired the
	// frontends that left since and whose flows are not deleted yet.
	known   []frontend
	retired []frontend
	// dirty is set when a reconcile failed: the next sync covers every
	// port, whatever its snapshot says.
	dirty bool
}

var _ proxykit.Syncer = (*Syncer)(nil)

// NewSyncer returns a Syncer for cfg, or an error about cfg or the
// options.
func NewSyncer(cfg Config, opts ...Option) (*Syncer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Syncer{cfg: cfg, log: slog.New(slog.DiscardHandler), batch: DefaultBatchSize}
	for _, o := range opts {
		o(s)
	}
	switch {
	case s.batch < 1 || s.batch > MaxBatchSize:
		return nil, fmt.Errorf("conntrack: batch size %d: must be 1 to %d", s.batch, MaxBatchSize)
	case s.resync < 0:
		return nil, fmt.Errorf("conntrack: resync interval %v: must not be negative", s.resync)
	case s.log == nil:
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.conn == nil {
		c, err := NewConn(0)
		if err != nil {
			return nil, err
		}
		s.conn = c
	}
	return s, nil
}

// Sync deletes the flows that snap makes stale (SEMANTICS §9). It does
// nothing, not even a dump, unless snap says cleanup is needed:
//
//   - a full snapshot (the first sync, a retry, the periodic full sync)
//     reconciles every UDP (and SCTP) service port: after a restart with
//     a consistent table it dumps and deletes nothing;
//   - a partial one reconciles the ports of snap.ConntrackCleanup(), and
//     the frontends that left since the last sync (a deleted service's
//     flows go with it).
//
// After a failed reconcile, the next Sync covers every port. A failed
// batch of deletions does not stop the other batches; Sync returns every
// batch's error joined, so that the caller retries.
func (s *Syncer) Sync(ctx context.Context, snap *proxykit.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = snap
	full := snap.Full() || s.dirty
	var names []servicemap.PortName
	if !full {
		for _, n := range snap.ConntrackCleanup() {
			if _, ok := s.cfg.reconciled(n.Protocol); ok {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			return nil
		}
	}
	in := coverAll
	if !full {
		in = func(n servicemap.PortName) bool {
			_, ok := slices.BinarySearchFunc(names, n, servicemap.PortName.Compare)
			return ok
		}
	}
	_, err := s.reconcile(ctx, snap, full, in)
	return err
}

// Reconcile reconciles every UDP (and SCTP) service port of snap now,
// whatever snap says changed, and returns what it did: for one-shot tools
// and tests. Sync is what a sync loop calls.
func (s *Syncer) Reconcile(ctx context.Context, snap *proxykit.Snapshot) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reconcile(ctx, snap, true, coverAll)
}

// Run reconciles every port of the last synced snapshot every resync
// interval (WithResync) until ctx is done, and returns ctx's error. Its
// failures are logged and observed, and make the next Sync full. Without
// a resync interval it returns ErrNoResync at once.
func (s *Syncer) Run(ctx context.Context) error {
	if s.resync == 0 {
		return ErrNoResync
	}
	t := time.NewTicker(s.resync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		s.mu.Lock()
		if s.last != nil {
			if _, err := s.reconcile(ctx, s.last, true, coverAll); err != nil && ctx.Err() == nil {
				s.log.Warn("conntrack: resync failed", "error", err)
			}
		}
		s.mu.Unlock()
	}
}

// Supported reports whether the kernel's conntrack table can be dumped
// and written through the Conn, with an error that says what is missing.
func (s *Syncer) Supported(ctx context.Context) error {
	flt := Filter{Family: proxykit.IPv4, Proto: UDP, Port: 53}
	if err := s.conn.Dump(ctx, flt, func(*Flow) {}); err != nil {
		return &DumpError{Filter: flt, Err: err}
	}
	// Deleting nothing checks nothing; deleting a flow that no real flow
	// can be (0.0.0.0 port 0 both ways) checks the permission and the
	// message format.
	zero := netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	probe := Flow{Proto: UDP, Orig: Tuple{Src: zero, Dst: zero}, Reply: Tuple{Src: zero, Dst: zero}}
	if _, err := s.conn.Delete(ctx, []Flow{probe}); err != nil {
		return fmt.Errorf("conntrack: delete a flow: %w", err)
	}
	return nil
}
