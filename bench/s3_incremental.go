package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/iptables"
	"github.com/proxykit/proxykit/nftables"
)

// countingConn counts the netlink operations sent through a Conn.
type countingConn struct {
	nftables.Conn
	ops, txns atomic.Int64
}

func (c *countingConn) Run(ctx context.Context, ops []nftables.Op) error {
	c.ops.Add(int64(len(ops)))
	c.txns.Add(1)
	return c.Conn.Run(ctx, ops)
}

// countingRunner counts the restore input bytes and tool calls of a Runner.
type countingRunner struct {
	iptables.Runner
	bytes, calls atomic.Int64
}

func (r *countingRunner) Restore(ctx context.Context, fam proxykit.Family, table string, parts [][]byte) error {
	for _, p := range parts {
		r.bytes.Add(int64(len(p)))
	}
	r.calls.Add(1)
	return r.Runner.Restore(ctx, fam, table, parts)
}

func (r *countingRunner) InsertRule(ctx context.Context, fam proxykit.Family, table, chain string, pos int, spec []string) error {
	r.calls.Add(1)
	return r.Runner.InsertRule(ctx, fam, table, chain, pos, spec)
}

func (r *countingRunner) DeleteRule(ctx context.Context, fam proxykit.Family, table, chain string, spec []string) error {
	r.calls.Add(1)
	return r.Runner.DeleteRule(ctx, fam, table, chain, spec)
}

func (r *countingRunner) RuleExists(ctx context.Context, fam proxykit.Family, table, chain string, spec []string) (bool, error) {
	r.calls.Add(1)
	return r.Runner.RuleExists(ctx, fam, table, chain, spec)
}

// incBackend is a syncer in a fresh namespace and a counter of what it
// sends: count returns the volume and its unit.
type incBackend struct {
	name  string
	tools []string
	make  func(ns *NetNS) (proxykit.Syncer, func() (int64, string), error)
	// maxServices, when set, caps the sizes the backend runs.
	maxServices int
}

var incBackends = []incBackend{
	{"nftables", []string{"nft"}, func(ns *NetNS) (proxykit.Syncer, func() (int64, string), error) {
		conn, err := nftables.NewConn(ns.Fd())
		if err != nil {
			return nil, nil, err
		}
		cc := &countingConn{Conn: conn}
		s, err := nftables.NewSyncer(nftConfig, nftables.WithConn(cc))
		return s, func() (int64, string) { return cc.ops.Load(), "netlink ops" }, err
	}, 0},
	{"iptables-legacy", iptTools(iptables.Legacy), iptIncremental(iptConfig), 0},
	{"iptables-nft", iptTools(iptables.NFT), iptIncremental(iptNFTConfig), iptNFTMaxServices},
}

// iptIncremental makes the iptables backend with cfg's variant.
func iptIncremental(cfg iptables.Config) func(ns *NetNS) (proxykit.Syncer, func() (int64, string), error) {
	return func(ns *NetNS) (proxykit.Syncer, func() (int64, string), error) {
		r, err := iptables.NewRunner(cfg.Variant, ns.Fd())
		if err != nil {
			return nil, nil, err
		}
		cr := &countingRunner{Runner: r}
		s, err := iptables.NewSyncer(cfg, iptables.WithRunner(cr))
		return s, func() (int64, string) { return cr.bytes.Load(), "restore bytes" }, err
	}
}

// runIncremental is scenario 3: with n services × 10 endpoints installed,
// change one slice (one endpoint's address) and sync through a Proxy's
// SyncNow; p50 and p99 of the update-to-kernel time, and what was sent.
func runIncremental(ctx context.Context, env *Env) (Result, error) {
	const eps = 10
	changes := env.changes()
	t := Table{Title: fmt.Sprintf("One service changed, %d changes (n services × 10 endpoints installed)", changes),
		Columns: []string{"services", "backend", "initial full sync", "changes", "p50", "p99", "sent per change"},
		Note: "Each change moves the first endpoint of one slice (a different service each time) and calls `Proxy.SyncNow`: a partial sync. Sent: netlink operations (nftables) or iptables-restore input bytes (iptables). " +
			fmt.Sprintf("A backend and size stops after %s of changes once it has %d (the changes column): p99 of fewer than 50 is the maximum. ", changeBudget(env), minChanges) +
			fmt.Sprintf("iptables-nft runs only up to %d services installed: iptables-nft-restore --noflush (1.8.9) grows about quadratically with the number of chains.", iptNFTMaxServices)}
	backends, skipped, err := available(incBackends, func(b incBackend) (string, []string) { return b.name, b.tools })
	if err != nil {
		return Result{}, err
	}
	p50s := make([]Series, len(backends))
	p99s := make([]Series, len(backends))
	for i, b := range backends {
		p50s[i] = Series{Name: b.name + " p50", Group: i}
		p99s[i] = Series{Name: b.name + " p99", Group: i, Dashed: true}
	}
	for _, n := range env.sizes([]int{1000, 10000, 30000}, []int{1000, 10000}) {
		for i, b := range backends {
			if b.maxServices > 0 && n > b.maxServices {
				env.Logf("  incremental %d services: %s skipped (at most %d services)", n, b.name, b.maxServices)
				continue
			}
			env.Logf("  incremental %d services: %s", n, b.name)
			took, sent, unit, full, err := incremental(ctx, b, n, eps, changes, changeBudget(env))
			if err != nil {
				return Result{}, fmt.Errorf("%s %d: %w", b.name, n, err)
			}
			t.AddRow(n, b.name, full, len(took), percentile(took, 50), percentile(took, 99), fmt.Sprintf("%.0f %s", sent, unit))
			x := float64(n)
			p50s[i].X, p50s[i].Y = append(p50s[i].X, x), append(p50s[i].Y, float64(percentile(took, 50))/1e6)
			p99s[i].X, p99s[i].Y = append(p99s[i].X, x), append(p99s[i].Y, float64(percentile(took, 99))/1e6)
		}
	}
	return Result{Skipped: skipped, Tables: []Table{t}, Plots: []Plot{{File: "s3-incremental.png", Title: "One service changed",
		XLabel: "installed services (×10 endpoints)", YLabel: "ms", LogX: true, LogY: true, Series: append(p50s, p99s...)}}}, nil
}

// minChanges is the least number of changes measured, whatever the budget.
const minChanges = 5

// changeBudget bounds the time of the changes of one backend and size:
// iptables-legacy takes seconds per change at 30k services.
func changeBudget(env *Env) time.Duration {
	if env.Quick {
		return 15 * time.Second
	}
	return 45 * time.Second
}

func incremental(ctx context.Context, b incBackend, n, eps, changes int, budget time.Duration) (took []time.Duration, sentPerChange float64, unit string, full time.Duration, err error) {
	ns, err := NewNetNS()
	if err != nil {
		return nil, 0, "", 0, err
	}
	defer ns.Close()
	s, count, err := b.make(ns)
	if err != nil {
		return nil, 0, "", 0, err
	}
	p, slcs, err := loadProxy(s, n, eps)
	if err != nil {
		return nil, 0, "", 0, err
	}
	start := time.Now()
	if err := p.SyncNow(ctx); err != nil {
		return nil, 0, "", 0, fmt.Errorf("initial sync: %w", err)
	}
	full = time.Since(start)
	before, unit := count()
	began := time.Now()
	for i := range changes {
		if i >= minChanges && time.Since(began) > budget {
			break
		}
		k := (i * 7919) % len(slcs)
		changed := changedSlice(slcs[k], i)
		start := time.Now()
		if err := p.OnSliceUpdate(changed); err != nil {
			return nil, 0, "", 0, err
		}
		if err := p.SyncNow(ctx); err != nil {
			return nil, 0, "", 0, fmt.Errorf("change %d: %w", i, err)
		}
		took = append(took, time.Since(start))
		slcs[k] = changed
	}
	after, _ := count()
	return took, float64(after-before) / float64(len(took)), unit, full, nil
}
