package proxykit

import (
	"context"
	"sync"

	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// Proxy glues the pieces together: it takes service and slice changes from
// any goroutine, and its Run loop turns the pending changes into a
// Snapshot and hands it to the Syncer at a bounded frequency (see Runner).
type Proxy struct {
	syncer   Syncer
	runner   *Runner
	services *servicemap.Tracker
	slices   *endpoints.Tracker

	mu       sync.Mutex
	node     Node
	nodeDirt bool
	last     *Snapshot

	// Owned by whoever holds syncMu: the loop, or SyncNow.
	syncMu    sync.Mutex
	b         *builder
	changed   []servicemap.PortName // since the last successful sync, sorted
	conntrack []servicemap.PortName
}

// New returns a Proxy for node that syncs through s. Options tune the sync
// loop (WithMinSyncInterval, WithMaxSyncInterval, WithHealthTimeout,
// WithRetryBackoff, WithLogger) and report on it (WithObserver); they are
// checked when Run starts.
func New(node Node, s Syncer, opts ...Option) *Proxy {
	p := &Proxy{
		syncer:   s,
		services: servicemap.NewTracker(),
		slices:   endpoints.NewTracker(),
		node:     node,
		b:        newBuilder(node),
	}
	p.runner = NewRunner(p.sync, opts...)
	return p
}

// OnServiceUpdate records that a service was added (prev nil), changed,
// or deleted (cur nil). An invalid cur is rejected with an error that
// lists every problem, and the service keeps its previous rules.
func (p *Proxy) OnServiceUpdate(prev, cur *servicemap.Service) error {
	if err := p.services.Update(prev, cur); err != nil {
		return err
	}
	p.runner.Trigger()
	return nil
}

// OnServiceDelete records that a service was deleted.
func (p *Proxy) OnServiceDelete(svc *servicemap.Service) {
	p.services.Delete(svc)
	p.runner.Trigger()
}

// OnSliceUpdate records a new or changed endpoint slice. An invalid slice
// is rejected with an error and the previous version stays in force.
func (p *Proxy) OnSliceUpdate(s *endpoints.Slice) error {
	if err := p.slices.Update(s); err != nil {
		return err
	}
	p.runner.Trigger()
	return nil
}

// OnSliceDelete records that an endpoint slice was deleted.
func (p *Proxy) OnSliceDelete(s *endpoints.Slice) {
	p.slices.Delete(s)
	p.runner.Trigger()
}

// SetNode changes what the proxy knows of its node (zone, addresses);
// every port is recategorised at the next sync.
func (p *Proxy) SetNode(n Node) {
	p.mu.Lock()
	if !p.node.Equal(n) {
		p.node = n
		p.nodeDirt = true
	}
	p.mu.Unlock()
	p.runner.Trigger()
}

// Run runs the sync loop until ctx is done. It returns ctx's error, or at
// once an error about invalid options.
func (p *Proxy) Run(ctx context.Context) error { return p.runner.Run(ctx) }

// Healthy returns nil while every queued change was applied within the
// health timeout, and an error saying what is late otherwise.
func (p *Proxy) Healthy() error { return p.runner.Healthy() }

// Snapshot returns the last snapshot that was synced successfully, or nil
// before the first one.
func (p *Proxy) Snapshot() *Snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// bulkChanges is the number of pending changes from which next applies
// the service and slice trackers in parallel.
const bulkChanges = 2048

// SyncNow applies every pending change at once and returns the Syncer's
// error: a full sync the first time, a partial one (the changed ports)
// after that. It is for programs without a Run loop (one-shot tools,
// tests, benchmarks); with one, it is serialized with the loop's syncs.
func (p *Proxy) SyncNow(ctx context.Context) error { return p.sync(ctx, p.Snapshot() == nil) }

// sync is the Runner's SyncFunc.
func (p *Proxy) sync(ctx context.Context, full bool) error {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	snap := p.next(full)
	if err := p.syncer.Sync(ctx, snap); err != nil {
		return err
	}
	p.applied(snap)
	return nil
}

// applied records a successful sync of snap: the changes it carried are
// done.
func (p *Proxy) applied(snap *Snapshot) {
	p.changed, p.conntrack = nil, nil
	p.mu.Lock()
	p.last = snap
	p.mu.Unlock()
}

// next applies the pending changes and makes the next snapshot.
func (p *Proxy) next(full bool) *Snapshot {
	p.mu.Lock()
	node, nodeDirt := p.node, p.nodeDirt
	p.nodeDirt = false
	p.mu.Unlock()

	b := p.b
	var sch servicemap.Changes
	var ech endpoints.Changes
	if p.services.Pending()+p.slices.Pending() < bulkChanges {
		b.services, sch = p.services.Apply(b.services)
		b.endpoints, ech = p.slices.Apply(b.endpoints)
	} else {
		// A bulk load (start-up, resync): the two trackers are
		// independent, so apply them side by side.
		done := make(chan struct{})
		go func() {
			b.services, sch = p.services.Apply(b.services)
			close(done)
		}()
		b.endpoints, ech = p.slices.Apply(b.endpoints)
		<-done
	}
	b.node = node

	names, conntrack := b.recompute(mergeNames(sch.Updated, sch.Deleted, ech.Ports), nodeDirt)
	p.changed = mergeNames(p.changed, names)
	p.conntrack = mergeNames(p.conntrack, conntrack)
	// A new node address or zone can change any port: program everything.
	return b.snapshot(full || nodeDirt, p.changed, p.conntrack)
}
