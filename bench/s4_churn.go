package bench

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
	"golang.org/x/sys/unix"
)

// churnRate is the endpoint changes per second of scenario 4.
const churnRate = 50

// churnMinSync is the Runner's min sync interval in scenario 4: the
// library's default, like kube-proxy's --iptables-min-sync-period.
const churnMinSync = proxykit.DefaultMinSyncInterval

// churnDrain bounds the wait, after the last change, for every change to
// be applied.
const churnDrain = 2 * time.Minute

// churnDuration is how long scenario 4 drives changes: 60 s, 10 s quick,
// 1 s with the test's sizes.
func churnDuration(env *Env) time.Duration {
	switch {
	case env.Sizes != nil:
		return time.Second
	case env.Quick:
		return 10 * time.Second
	}
	return time.Minute
}

// runChurn is scenario 4: n services × 10 endpoints synced by a Proxy's
// Run loop while one goroutine changes one endpoint of a slice 50 times a
// second; the change-to-kernel latency of every change, the CPU time of
// the process and of the tools it runs, and the syncs the Runner made.
func runChurn(ctx context.Context, env *Env) (Result, error) {
	const eps = 10
	dur := churnDuration(env)
	backends, skipped, err := available(incBackends, func(b incBackend) (string, []string) { return b.name, b.tools })
	if err != nil {
		return Result{}, err
	}
	t := Table{Title: fmt.Sprintf("Churn: %d endpoint changes/s for %s through Proxy.Run (min sync interval %s)", churnRate, fmtDur(dur), fmtDur(churnMinSync)),
		Columns: []string{"backend", "services × endpoints", "changes applied", "syncs (full)", "p50", "p90", "p99", "max",
			"CPU s (process)", "CPU s (tools)", "sent", "drain", "initial sync"},
		Note: "Each backend runs in a fresh network namespace under `Proxy.Run` with the default Runner options (min sync interval " + fmtDur(churnMinSync) +
			", as kube-proxy's `--iptables-min-sync-period`); after the Runner's initial full sync, one goroutine moves the first endpoint of one slice " +
			fmt.Sprintf("(the services in turn, a different one each time until every service has had a change, each change to an address no other change uses) every %s with `OnSliceUpdate`. ", fmtDur(time.Second/churnRate)) +
			"Latency: from the return of `OnSliceUpdate` to the end of the first successful `Sync` whose snapshot holds the change. " +
			"A wrapper Syncer looks, before calling the backend's `Sync`, for each not yet applied change's address among its port's endpoints in the snapshot " +
			"(the Proxy builds the snapshot before calling `Sync`, so what the backend programs is exactly what the wrapper sees); " +
			"a snapshot holding a slice's later change holds its earlier ones too. " +
			"Every change is applied before the row is written; drain is the time from the last change to the end of the sync that applied it. " +
			"Syncs, CPU and sent cover the churn and the drain. CPU s: user + system time of this process (`getrusage(RUSAGE_SELF)`: the Proxy, the Runner, the " +
			"backend, the change generator and Go's GC) and of its finished child processes (`RUSAGE_CHILDREN`: iptables-restore). " +
			"Sent: netlink operations (nftables) or iptables-restore input bytes (iptables). Initial sync: the Runner's first, full sync (building the snapshot of the whole cluster and programming it)."}
	var capped []string
	for _, n := range env.sizes([]int{10000}, nil) {
		for _, b := range backends {
			if b.maxServices > 0 && n > b.maxServices {
				env.Logf("  churn %d×%d: %s skipped (at most %d services)", n, eps, b.name, b.maxServices)
				capped = append(capped, fmt.Sprintf("%s runs only up to %d services (its restores of many chains are too slow for the time budget)", b.name, b.maxServices))
				continue
			}
			env.Logf("  churn %d×%d: %s, %s at %d changes/s", n, eps, b.name, fmtDur(dur), churnRate)
			r, err := churnBackend(ctx, b, n, eps, dur)
			if err != nil {
				return Result{}, fmt.Errorf("%s %d×%d: %w", b.name, n, eps, err)
			}
			syncs := fmt.Sprintf("%d (%d)", r.syncs, r.full)
			if r.failed > 0 {
				syncs += fmt.Sprintf(", %d failed", r.failed)
			}
			t.AddRow(b.name, fmt.Sprintf("%d×%d", n, eps), fmt.Sprintf("%d/%d", len(r.latencies), r.changes), syncs,
				percentile(r.latencies, 50), percentile(r.latencies, 90), percentile(r.latencies, 99), percentile(r.latencies, 100),
				fmt.Sprintf("%.2f", r.cpuSelf.Seconds()), fmt.Sprintf("%.2f", r.cpuChildren.Seconds()),
				fmt.Sprintf("%d %s", r.sent, r.unit), r.drain, r.initial)
		}
	}
	slices.Sort(capped)
	for _, c := range slices.Compact(capped) {
		t.Note += " " + c + "."
	}
	return Result{Skipped: skipped, Tables: []Table{t}}, nil
}

// churnBackend runs churn on backend b in a fresh namespace.
func churnBackend(ctx context.Context, b incBackend, n, eps int, dur time.Duration) (churnResult, error) {
	ns, err := NewNetNS()
	if err != nil {
		return churnResult{}, err
	}
	defer ns.Close()
	s, count, err := b.make(ns)
	if err != nil {
		return churnResult{}, err
	}
	var before int64
	r, err := churn(ctx, s, n, eps, dur, func() { before, _ = count() }, proxykit.WithMinSyncInterval(churnMinSync))
	if err != nil {
		return r, err
	}
	after, unit := count()
	r.sent, r.unit = after-before, unit
	return r, nil
}

// churnResult is what churn measured.
type churnResult struct {
	changes   int             // changes made
	latencies []time.Duration // change-to-kernel, one per change
	// syncs is the number of sync attempts that started during the churn
	// or the drain; full and failed count the full and failed ones.
	syncs, full, failed int
	// cpuSelf and cpuChildren are the CPU time (user + system) of the
	// process and of its waited-for children over the churn and drain.
	cpuSelf, cpuChildren time.Duration
	drain                time.Duration // last change to all applied
	initial              time.Duration // the Runner's first (full) sync
	sent                 int64         // set by churnBackend
	unit                 string
}

// churn loads Cluster(n, eps) into a Proxy over s, runs its loop with
// opts, waits for the initial sync, calls started, then makes churnRate
// endpoint changes a second for dur and waits until every change is
// applied.
func churn(ctx context.Context, s proxykit.Syncer, n, eps int, dur time.Duration, started func(), opts ...proxykit.Option) (churnResult, error) {
	var res churnResult
	log := newChurnLog()
	var mu sync.Mutex
	var infos []proxykit.SyncInfo
	first := make(chan struct{})
	obs := proxykit.ObserverFunc(func(i proxykit.SyncInfo) {
		mu.Lock()
		defer mu.Unlock()
		infos = append(infos, i)
		if len(infos) == 1 {
			close(first)
		}
	})
	p, slcs, err := loadProxy(log.syncer(s), n, eps, append(slices.Clone(opts), proxykit.WithObserver(obs))...)
	if err != nil {
		return res, err
	}

	runCtx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	var runErr error
	go func() {
		defer close(stopped)
		runErr = p.Run(runCtx)
	}()
	stop := func() {
		cancel()
		<-stopped
	}
	defer stop()

	select {
	case <-first:
	case <-stopped:
		return res, fmt.Errorf("proxy run: %w", runErr)
	case <-ctx.Done():
		return res, ctx.Err()
	}
	mu.Lock()
	first0 := infos[0]
	mu.Unlock()
	if first0.Err != nil {
		return res, fmt.Errorf("initial sync: %w", first0.Err)
	}
	res.initial = first0.Duration
	if started != nil {
		started()
	}

	total := int(dur * churnRate / time.Second)
	res.changes = total
	self0, children0 := cpuTimes()
	start := time.Now()
	tick := time.NewTicker(time.Second / churnRate)
	for i := range total {
		select {
		case <-tick.C:
		case <-ctx.Done():
			tick.Stop()
			return res, ctx.Err()
		}
		k := (i * 7919) % n
		changed := changedSlice(slcs[k], i)
		c := &churnChange{
			port: servicemap.PortName{Namespace: changed.Namespace, Name: changed.Service, Port: changed.Ports[0].Name, Protocol: changed.Ports[0].Protocol},
			addr: changed.Endpoints[0].Addr,
		}
		log.issue(c)
		if err := p.OnSliceUpdate(changed); err != nil {
			tick.Stop()
			return res, fmt.Errorf("change %d: %w", i, err)
		}
		log.returned(c, time.Now())
		slcs[k] = changed
	}
	tick.Stop()
	last := time.Now()
	log.finishIssuing()
	select {
	case <-log.done:
	case <-time.After(churnDrain):
		return res, fmt.Errorf("%d of %d changes not applied %s after the last one", log.pendingLen(), total, churnDrain)
	case <-ctx.Done():
		return res, ctx.Err()
	}
	end := time.Now()
	self1, children1 := cpuTimes()
	stop() // every sync attempt reported
	res.cpuSelf, res.cpuChildren = self1-self0, children1-children0

	var lastApplied time.Time
	res.latencies, lastApplied = log.latencies()
	res.drain = max(lastApplied.Sub(last), 0)
	for _, i := range infos {
		if i.Start.Before(start) || i.Start.After(end) {
			continue
		}
		res.syncs++
		if i.Full {
			res.full++
		}
		if i.Err != nil {
			res.failed++
		}
	}
	return res, nil
}

// cpuTimes returns the user + system CPU time of the process and of its
// terminated, waited-for children.
func cpuTimes() (self, children time.Duration) {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) == nil {
		self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if unix.Getrusage(unix.RUSAGE_CHILDREN, &ru) == nil {
		children = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return self, children
}

// churnChange is one endpoint change of scenario 4.
type churnChange struct {
	port servicemap.PortName
	// addr is the slice's new first endpoint, used by no other change.
	addr netip.Addr
	// returned is when OnSliceUpdate returned; applied is the end of the
	// first successful Sync whose snapshot held the change. Both are
	// guarded by the churnLog's mutex.
	returned, applied time.Time
}

// churnLog follows the changes from OnSliceUpdate to the kernel.
type churnLog struct {
	mu      sync.Mutex
	all     []*churnChange
	pending []*churnChange // not applied yet, in issue order
	issued  bool           // no more changes come
	done    chan struct{}  // closed once issued and none pending
	closed  bool
}

func newChurnLog() *churnLog { return &churnLog{done: make(chan struct{})} }

// issue records c before it is passed to OnSliceUpdate, so that any
// snapshot holding it finds it pending.
func (l *churnLog) issue(c *churnChange) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, c)
	l.pending = append(l.pending, c)
}

// returned records when OnSliceUpdate of c returned.
func (l *churnLog) returned(c *churnChange, t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c.returned = t
}

// finishIssuing says that no more changes come.
func (l *churnLog) finishIssuing() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.issued = true
	l.checkDone()
}

func (l *churnLog) checkDone() {
	if l.issued && len(l.pending) == 0 && !l.closed {
		l.closed = true
		close(l.done)
	}
}

func (l *churnLog) pendingLen() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pending)
}

// syncer wraps s: before s.Sync it finds the pending changes the
// snapshot holds, and when s.Sync succeeds it marks them applied at its
// end. The Proxy makes the snapshot (applying the trackers' pending
// updates) before it calls Sync, and every change is issued before its
// OnSliceUpdate, so a change in the snapshot is always found pending (or
// was applied by an earlier sync).
func (l *churnLog) syncer(s proxykit.Syncer) proxykit.Syncer {
	return proxykit.SyncerFunc(func(ctx context.Context, snap *proxykit.Snapshot) error {
		l.mu.Lock()
		pend := slices.Clone(l.pending)
		l.mu.Unlock()
		held := coveredBy(pend, snapshotHas(snap))
		if err := s.Sync(ctx, snap); err != nil {
			return err // the changes stay pending: the retry holds them too
		}
		end := time.Now()
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, c := range pend {
			if held[i] {
				c.applied = end
			}
		}
		l.pending = slices.DeleteFunc(l.pending, func(c *churnChange) bool { return !c.applied.IsZero() })
		l.checkDone()
		return nil
	})
}

// latencies returns every change's change-to-kernel time (zero when the
// sync ended before OnSliceUpdate's return was timed) and when the last
// one was applied. Call it once every change is applied.
func (l *churnLog) latencies() ([]time.Duration, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ds := make([]time.Duration, len(l.all))
	var last time.Time
	for i, c := range l.all {
		ds[i] = max(c.applied.Sub(c.returned), 0)
		if c.applied.After(last) {
			last = c.applied
		}
	}
	return ds, last
}

// coveredBy reports which of pending (in issue order) a snapshot holds,
// given has, which reports whether the snapshot has a change's address
// among its port's endpoints. Changes come from one goroutine and a
// slice's later version replaces the earlier one, so a snapshot that
// holds a change of a port holds every earlier change of that port too,
// although not their addresses: they are covered by the latest one found.
func coveredBy(pending []*churnChange, has func(*churnChange) bool) []bool {
	out := make([]bool, len(pending))
	found := make(map[servicemap.PortName]bool)
	for i := len(pending) - 1; i >= 0; i-- {
		c := pending[i]
		if found[c.port] || has(c) {
			found[c.port] = true
			out[i] = true
		}
	}
	return out
}

// snapshotHas returns whether snap has a change's address among the
// endpoints of its port.
func snapshotHas(snap *proxykit.Snapshot) func(*churnChange) bool {
	return func(c *churnChange) bool {
		fam := proxykit.IPv4
		if c.addr.Is6() {
			fam = proxykit.IPv6
		}
		ps, ok := snap.Family(fam).Get(c.port)
		if !ok {
			return false
		}
		return slices.ContainsFunc(ps.Endpoints.All, func(e endpoints.Endpoint) bool { return e.Addr == c.addr })
	}
}
