package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/iptables"
	"github.com/proxykit/proxykit/nftables"
)

// coldSize is one size of the cold apply.
type coldSize struct{ n, eps int }

// coldBackend applies a snapshot into an empty namespace (wall) and has
// its kernel tool apply the same rendered text (floor).
type coldBackend struct {
	name  string
	apply func(ctx context.Context, snap *proxykit.Snapshot) (time.Duration, error)
	floor func(ctx context.Context, snap *proxykit.Snapshot) (time.Duration, error)
	// startup is the floor's command with empty input: what starting the
	// tools costs, in every floor.
	startup []string
	// tools must be in PATH, else the backend is skipped.
	tools []string
	// maxServices, when set, caps the sizes the backend runs.
	maxServices int
}

var coldBackends = []coldBackend{
	{name: "nftables", apply: nftColdApply, floor: nftFloor,
		startup: []string{"unshare", "-n", "nft", "-f", "/dev/null"}, tools: []string{"nft"}},
	{name: "iptables-legacy", apply: iptColdApply(iptConfig), floor: iptFloor(iptConfig),
		startup: iptStartup(iptables.Legacy), tools: iptTools(iptables.Legacy)},
	// iptables-nft-restore --noflush (1.8.9) grows about quadratically
	// with the number of chains: 10k×2 takes over a minute.
	{name: "iptables-nft", apply: iptColdApply(iptNFTConfig), floor: iptFloor(iptNFTConfig),
		startup: iptStartup(iptables.NFT), tools: iptTools(iptables.NFT), maxServices: iptNFTMaxServices},
}

// iptNFTMaxServices caps iptables-nft's sizes in scenarios 2 and 3.
const iptNFTMaxServices = 1000

// iptStartup is the floor's command of an iptables variant with empty
// input.
func iptStartup(v iptables.Variant) []string {
	return []string{"unshare", "-n", "sh", "-c",
		fmt.Sprintf("iptables-%[1]s-restore --noflush -w </dev/null && ip6tables-%[1]s-restore --noflush -w </dev/null", v)}
}

// iptTools are the tools of an iptables variant that its Runner and floor
// use.
func iptTools(v iptables.Variant) []string {
	return []string{"iptables-" + string(v), "iptables-" + string(v) + "-restore", "ip6tables-" + string(v) + "-restore", "iptables-" + string(v) + "-save"}
}

// runColdApply is scenario 2: a full sync into a fresh network namespace,
// against the kernel tool applying the rendered text (`nft -f`,
// `iptables-legacy-restore`, `iptables-nft-restore`) in a fresh
// namespace: the physical floor.
func runColdApply(ctx context.Context, env *Env) (Result, error) {
	sizes := []coldSize{{1000, 2}, {10000, 2}, {30000, 10}}
	if env.Quick {
		sizes = sizes[:2]
	}
	if env.Sizes != nil {
		sizes = nil
		for _, n := range env.Sizes {
			sizes = append(sizes, coldSize{n, 2})
		}
	}
	if env.MaxServices > 0 {
		var kept []coldSize
		for _, s := range sizes {
			if s.n <= env.MaxServices {
				kept = append(kept, s)
			}
		}
		if len(kept) == 0 {
			kept = []coldSize{{env.MaxServices, 2}}
		}
		sizes = kept
	}
	reps := env.reps()
	t := Table{Title: "Cold apply into an empty namespace",
		Columns: []string{"size", "backend", "runs", "wall (Render + Sync)", "kernel tool (floor)", "wall / floor", "floor − tool startup", "wall / (floor − startup)"},
		Note: "Floor: `unshare -n nft -f -` of `nftables.Render(...).String()`; for iptables-legacy, `unshare -n` running `iptables-legacy-restore --noflush` " +
			"and `ip6tables-legacy-restore --noflush` of the rendered nat and filter tables; for iptables-nft, the same with `iptables-nft-restore --noflush` and `ip6tables-nft-restore --noflush`. " +
			fmt.Sprintf("iptables-nft runs only up to %d services: iptables-nft-restore --noflush (1.8.9) grows about quadratically with the number of chains (10k×2 took over a minute). ", iptNFTMaxServices) +
			"The floor includes starting the tool (and unshare); " +
			"tool startup is the same command with empty input (median of 3), measured once per backend. " +
			fmt.Sprintf("Each size runs %d times (median), or once when its wall and floor take more than %s.", reps, slowRun)}
	var res Result
	backends, skipped, err := available(coldBackends, func(b coldBackend) (string, []string) { return b.name, b.tools })
	if err != nil {
		return res, err
	}
	res.Skipped = skipped
	wallS := make([]Series, len(backends))
	floorS := make([]Series, len(backends))
	for i, b := range backends {
		wallS[i] = Series{Name: b.name, Group: i}
		floorS[i] = Series{Name: b.name + " floor", Group: i, Dashed: true}
	}
	startups := make([]time.Duration, len(backends))
	for i, b := range backends {
		var ds []time.Duration
		for range 3 {
			d, err := timeCmd(ctx, b.startup...)
			if err != nil {
				return res, fmt.Errorf("%s tool startup: %w", b.name, err)
			}
			ds = append(ds, d)
		}
		startups[i] = median(ds)
	}
	for _, sz := range sizes {
		snap, err := Snapshot(sz.n, sz.eps)
		if err != nil {
			return res, err
		}
		for i, b := range backends {
			if b.maxServices > 0 && sz.n > b.maxServices {
				env.Logf("  cold apply %d×%d: %s skipped (at most %d services)", sz.n, sz.eps, b.name, b.maxServices)
				continue
			}
			var walls, floors []time.Duration
			for r := range reps {
				env.Logf("  cold apply %d×%d: %s (%d/%d)", sz.n, sz.eps, b.name, r+1, reps)
				w, err := b.apply(ctx, snap)
				if err != nil {
					return res, fmt.Errorf("%s %d×%d: %w", b.name, sz.n, sz.eps, err)
				}
				f, err := b.floor(ctx, snap)
				if err != nil {
					return res, fmt.Errorf("%s floor %d×%d: %w", b.name, sz.n, sz.eps, err)
				}
				walls, floors = append(walls, w), append(floors, f)
				if w+f > slowRun {
					break // one run of this size is enough
				}
			}
			w, f := median(walls), median(floors)
			net := max(f-startups[i], 0)
			t.AddRow(fmt.Sprintf("%d×%d", sz.n, sz.eps), b.name, len(walls), w, f, ratio(w, f), net, ratio(w, net))
			x := float64(sz.n * sz.eps)
			wallS[i].X, wallS[i].Y = append(wallS[i].X, x), append(wallS[i].Y, w.Seconds())
			floorS[i].X, floorS[i].Y = append(floorS[i].X, x), append(floorS[i].Y, f.Seconds())
		}
	}
	res.Tables = []Table{t}
	res.Plots = []Plot{{File: "s2-cold-apply.png", Title: "Cold apply", XLabel: "services × endpoints",
		YLabel: "seconds", LogX: true, LogY: true, Series: append(wallS, floorS...)}}
	return res, nil
}

// slowRun: a cold apply and its floor slower than this are not repeated.
const slowRun = 10 * time.Second

func nftColdApply(ctx context.Context, snap *proxykit.Snapshot) (time.Duration, error) {
	ns, err := NewNetNS()
	if err != nil {
		return 0, err
	}
	defer ns.Close()
	conn, err := nftables.NewConn(ns.Fd())
	if err != nil {
		return 0, err
	}
	s, err := nftables.NewSyncer(nftConfig, nftables.WithConn(conn))
	if err != nil {
		return 0, err
	}
	start := time.Now()
	err = s.Sync(ctx, snap)
	return time.Since(start), err
}

func nftFloor(ctx context.Context, snap *proxykit.Snapshot) (time.Duration, error) {
	rs, err := nftables.Render(snap, nftConfig)
	if err != nil {
		return 0, err
	}
	text := rs.String()
	cmd := exec.CommandContext(ctx, "unshare", "-n", "nft", "-f", "-")
	cmd.Stdin = bytes.NewBufferString(text)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("nft -f: %w: %s", err, firstLines(out, 5))
	}
	return took, nil
}

// iptColdApply is the cold apply of the iptables backend with cfg's
// variant.
func iptColdApply(cfg iptables.Config) func(context.Context, *proxykit.Snapshot) (time.Duration, error) {
	return func(ctx context.Context, snap *proxykit.Snapshot) (time.Duration, error) {
		ns, err := NewNetNS()
		if err != nil {
			return 0, err
		}
		defer ns.Close()
		r, err := iptables.NewRunner(cfg.Variant, ns.Fd())
		if err != nil {
			return 0, err
		}
		s, err := iptables.NewSyncer(cfg, iptables.WithRunner(r))
		if err != nil {
			return 0, err
		}
		start := time.Now()
		err = s.Sync(ctx, snap)
		return time.Since(start), err
	}
}

// iptFloor restores the rendered nat and filter tables of each family
// with one tool call per family (iptables-<variant>-restore --noflush), in
// one fresh namespace.
func iptFloor(cfg iptables.Config) func(context.Context, *proxykit.Snapshot) (time.Duration, error) {
	return func(ctx context.Context, snap *proxykit.Snapshot) (time.Duration, error) {
		return iptRestoreFloor(ctx, snap, cfg)
	}
}

func iptRestoreFloor(ctx context.Context, snap *proxykit.Snapshot, cfg iptables.Config) (time.Duration, error) {
	rs, err := iptables.Render(snap, cfg)
	if err != nil {
		return 0, err
	}
	var v4, v6 bytes.Buffer
	for _, t := range rs.Tables {
		w := &v4
		if t.Family == proxykit.IPv6 {
			w = &v6
		}
		if _, err := t.WriteTo(w); err != nil {
			return 0, err
		}
	}
	dir, err := os.MkdirTemp("", "proxykit-bench-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	f4, f6 := filepath.Join(dir, "v4"), filepath.Join(dir, "v6")
	if err := os.WriteFile(f4, v4.Bytes(), 0o600); err != nil {
		return 0, err
	}
	if err := os.WriteFile(f6, v6.Bytes(), 0o600); err != nil {
		return 0, err
	}
	v := cfg.Variant
	cmd := exec.CommandContext(ctx, "unshare", "-n", "sh", "-c",
		fmt.Sprintf(`iptables-%[1]s-restore --noflush -w <"$1" && ip6tables-%[1]s-restore --noflush -w <"$2"`, v), "sh", f4, f6)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("iptables-%s-restore: %w: %s", v, err, firstLines(out, 5))
	}
	return took, nil
}

// timeCmd runs a command and returns how long it took.
func timeCmd(ctx context.Context, args ...string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%v: %w: %s", args, err, firstLines(out, 5))
	}
	return took, nil
}

func firstLines(b []byte, n int) string {
	lines := bytes.SplitN(b, []byte("\n"), n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// available returns the backends whose tools are in PATH and why the others
// are skipped; with RequireEnv set a missing tool is an error instead.
func available[B any](all []B, info func(B) (string, []string)) ([]B, []string, error) {
	var ok []B
	var skipped []string
	for _, b := range all {
		name, tools := info(b)
		if why := missingTool(name, tools...); why != "" {
			if Required() {
				return nil, nil, fmt.Errorf("%s (%s is set)", why, RequireEnv)
			}
			skipped = append(skipped, why)
			continue
		}
		ok = append(ok, b)
	}
	return ok, skipped, nil
}
