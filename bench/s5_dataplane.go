package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/iptables"
	"github.com/proxykit/proxykit/nftables"
	"github.com/proxykit/proxykit/servicemap"
)

// s5Eps is the number of endpoints of every service in scenario 5.
const s5Eps = 2

// dpBackend programs a snapshot into a node namespace. install returns how
// long the Sync took and, for the iptables backends, the ClusterIPs of the
// IPv4 nat dispatch chain (PROXYKIT-SERVICES) in the kernel's order, read
// back with iptables-save; nil for nftables, whose dispatch is one map
// lookup.
type dpBackend struct {
	name  string
	tools []string
	// maxServices caps the sizes the backend runs (0: none).
	maxServices int
	install     func(ctx context.Context, node *NetNS, snap *proxykit.Snapshot) (time.Duration, []netip.Addr, error)
}

// s5IptNFTMax caps iptables-nft: iptables-nft-restore of tens of thousands
// of chains takes minutes.
const s5IptNFTMax = 5000

var dpBackends = []dpBackend{
	{name: "nftables", tools: []string{"nft"}, install: nftInstall},
	{name: "iptables-legacy", tools: []string{"iptables-legacy", "iptables-legacy-restore", "iptables-legacy-save",
		"ip6tables-legacy", "ip6tables-legacy-restore", "ip6tables-legacy-save"}, install: iptInstall(iptables.Legacy)},
	{name: "iptables-nft", tools: []string{"iptables-nft", "iptables-nft-restore", "iptables-nft-save",
		"ip6tables-nft", "ip6tables-nft-restore", "ip6tables-nft-save"}, maxServices: s5IptNFTMax, install: iptInstall(iptables.NFT)},
}

func nftInstall(ctx context.Context, node *NetNS, snap *proxykit.Snapshot) (time.Duration, []netip.Addr, error) {
	conn, err := nftables.NewConn(node.Fd())
	if err != nil {
		return 0, nil, err
	}
	s, err := nftables.NewSyncer(nftConfig, nftables.WithConn(conn))
	if err != nil {
		return 0, nil, err
	}
	start := time.Now()
	err = s.Sync(ctx, snap)
	return time.Since(start), nil, err
}

func iptInstall(v iptables.Variant) func(ctx context.Context, node *NetNS, snap *proxykit.Snapshot) (time.Duration, []netip.Addr, error) {
	return func(ctx context.Context, node *NetNS, snap *proxykit.Snapshot) (time.Duration, []netip.Addr, error) {
		r, err := iptables.NewRunner(v, node.Fd())
		if err != nil {
			return 0, nil, err
		}
		cfg := iptConfig
		cfg.Variant = v
		s, err := iptables.NewSyncer(cfg, iptables.WithRunner(r))
		if err != nil {
			return 0, nil, err
		}
		start := time.Now()
		if err := s.Sync(ctx, snap); err != nil {
			return 0, nil, err
		}
		took := time.Since(start)
		save, err := r.Save(ctx, proxykit.IPv4, "nat")
		if err != nil {
			return 0, nil, err
		}
		return took, dispatchOrder(save, s5DispatchChain), nil
	}
}

// s5DispatchChain is the iptables backend's dispatch chain in nat.
const s5DispatchChain = iptables.DefaultPrefix + "-SERVICES"

// dispatchOrder returns the destination addresses of the service rules of
// chain in an iptables-save (or iptables-restore) text, in rule order: the
// rules "-A chain -d ADDR[/32] ... -j|-g PREFIX-SVC-…". The kernel tries
// them first to last; a connection to the last one's address is matched
// only after every other one failed.
func dispatchOrder(save []byte, chain string) []netip.Addr {
	var out []netip.Addr
	svc := strings.TrimSuffix(chain, "-SERVICES") + "-SVC-"
	sc := bufio.NewScanner(bytes.NewReader(save))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "-A" || f[1] != chain {
			continue
		}
		var dst netip.Addr
		toSvc := false
		for i := 2; i+1 < len(f); i++ {
			switch f[i] {
			case "-d", "--destination":
				if p, err := netip.ParsePrefix(f[i+1]); err == nil && p.IsSingleIP() {
					dst = p.Addr()
				} else if a, err := netip.ParseAddr(f[i+1]); err == nil {
					dst = a
				}
			case "-j", "-g", "--jump", "--goto":
				toSvc = strings.HasPrefix(f[i+1], svc)
			}
		}
		if toSvc && dst.IsValid() {
			out = append(out, dst)
		}
	}
	return out
}

// s5Last is the service that scenario 5 connects to: the one of the last
// rule of the iptables backend's rendered IPv4 nat dispatch chain.
type s5Last struct {
	snap      *proxykit.Snapshot // of Cluster(n, s5Eps)
	clusterIP netip.AddrPort     // its ClusterIP and port
	endpoints []netip.Addr       // its endpoints' addresses: the pod's
}

// lastService renders the snapshot of Cluster(n, s5Eps) for iptables and
// picks the service of the last dispatch rule.
func lastService(n int) (*s5Last, error) {
	svcs, slcs := Cluster(n, s5Eps)
	snap, err := proxykit.NewSnapshot(Node, svcs, slcs)
	if err != nil {
		return nil, err
	}
	rs, err := iptables.Render(snap, iptConfig)
	if err != nil {
		return nil, err
	}
	nat := rs.Table(proxykit.IPv4, "nat")
	if nat == nil {
		return nil, errors.New("iptables.Render: no IPv4 nat table")
	}
	var text bytes.Buffer
	if _, err := nat.WriteTo(&text); err != nil {
		return nil, err
	}
	order := dispatchOrder(text.Bytes(), s5DispatchChain)
	if len(order) != n {
		return nil, fmt.Errorf("rendered %s has %d service rules, want %d", s5DispatchChain, len(order), n)
	}
	ip := order[len(order)-1]
	i := slices.IndexFunc(svcs, func(s *servicemap.Service) bool { return slices.Contains(s.ClusterIPs, ip) })
	if i < 0 {
		return nil, fmt.Errorf("no service has the ClusterIP %s of the last dispatch rule", ip)
	}
	last := &s5Last{snap: snap, clusterIP: netip.AddrPortFrom(ip, uint16(svcs[i].Ports[0].Port))}
	for _, ep := range slcs[i].Endpoints {
		last.endpoints = append(last.endpoints, ep.Addr)
	}
	if int(slcs[i].Ports[0].Port) != s5PodPort {
		return nil, fmt.Errorf("endpoint port %d, the pod listens on %d", slcs[i].Ports[0].Port, s5PodPort)
	}
	return last, nil
}

// dpRun is one backend's measurement at one size.
type dpRun struct {
	sync        time.Duration
	position    string // of the connection's dispatch rule
	svc, direct []time.Duration
}

// measureBackend installs last.snap with b into a fresh topology's node
// and connects to the last ClusterIP from its client, interleaved with
// connects to the pod's address in bare (the same topology, no rules).
func measureBackend(ctx context.Context, b dpBackend, last *s5Last, bare *s5Topo, warmup, rounds int) (r dpRun, err error) {
	topo, err := newS5Topo(last.endpoints)
	if err != nil {
		return r, err
	}
	defer func() { err = errors.Join(err, topo.Close()) }()
	sync, dispatch, err := b.install(ctx, topo.Node, last.snap)
	if err != nil {
		return r, fmt.Errorf("install: %w", err)
	}
	r.sync = sync
	if dispatch == nil {
		r.position = "– (one map lookup)"
	} else {
		k := slices.Index(dispatch, last.clusterIP.Addr())
		if k != len(dispatch)-1 {
			return r, fmt.Errorf("%s's rule is number %d of %d in the kernel's %s, not the last", last.clusterIP.Addr(), k+1, len(dispatch), s5DispatchChain)
		}
		r.position = fmt.Sprintf("%d of %d", k+1, len(dispatch))
	}
	direct := netip.AddrPortFrom(last.endpoints[0], s5PodPort)
	out, err := connectRounds([]s5Target{{topo, last.clusterIP}, {bare, direct}}, warmup, rounds, s5Timeout)
	if err != nil {
		return r, err
	}
	r.svc, r.direct = out[0], out[1]
	return r, nil
}

// s5Timeout bounds one connect.
const s5Timeout = 2 * time.Second

// runDataPlane is scenario 5: the TCP connect time through the ClusterIP
// of the last service of the ruleset, against connecting to the pod
// directly without rules.
func runDataPlane(ctx context.Context, env *Env) (Result, error) {
	backends, skipped, err := available(dpBackends, func(b dpBackend) (string, []string) { return b.name, b.tools })
	if err != nil {
		return Result{}, err
	}
	rounds, warmup := 500, 5
	switch {
	case env.Sizes != nil: // a test
		rounds = 100
	case env.Quick:
		rounds = 300
	}
	sizes := env.sizes([]int{100, 1000, 5000, 10000, 30000}, []int{100, 1000, 5000})
	t := Table{Title: fmt.Sprintf("First-packet latency: TCP connect through the last ClusterIP (n services × %d endpoints)", s5Eps),
		Columns: []string{"services", "path", "dispatch rule", "connects", "p50", "p99", "added (paired p50)", "direct p50", "direct p99"}}
	p50s := make([]Series, len(backends)+1)
	p99s := make([]Series, len(backends)+1)
	for i, b := range backends {
		p50s[i] = Series{Name: b.name + " p50", Group: i}
		p99s[i] = Series{Name: b.name + " p99", Group: i, Dashed: true}
	}
	p50s[len(backends)] = Series{Name: "direct p50", Group: len(backends)}
	p99s[len(backends)] = Series{Name: "direct p99", Group: len(backends), Dashed: true}
	add := func(s []Series, i, n int, d time.Duration) {
		s[i].X, s[i].Y = append(s[i].X, float64(n)), append(s[i].Y, float64(d)/1e3)
	}
	var capped []string
	for _, n := range sizes {
		last, err := lastService(n)
		if err != nil {
			return Result{}, fmt.Errorf("%d services: %w", n, err)
		}
		bare, err := newS5Topo(last.endpoints)
		if err != nil {
			return Result{}, fmt.Errorf("topology: %w", err)
		}
		var pooled []time.Duration
		for i, b := range backends {
			if b.maxServices > 0 && n > b.maxServices {
				if !slices.Contains(capped, b.name) {
					capped = append(capped, b.name)
				}
				continue
			}
			env.Logf("  first-packet %d services: %s", n, b.name)
			r, err := measureBackend(ctx, b, last, bare, warmup, rounds)
			if err != nil {
				_ = bare.Close()
				return Result{}, fmt.Errorf("%s %d: %w", b.name, n, err)
			}
			p50, p99 := percentile(r.svc, 50), percentile(r.svc, 99)
			d50, d99 := percentile(r.direct, 50), percentile(r.direct, 99)
			t.AddRow(n, b.name, r.position, len(r.svc), p50, p99, fmtDelta(pairedMedian(r.svc, r.direct)), d50, d99)
			env.Logf("    sync %s; p50 %s, p99 %s; direct p50 %s, p99 %s", fmtDur(r.sync), fmtDur(p50), fmtDur(p99), fmtDur(d50), fmtDur(d99))
			add(p50s, i, n, p50)
			add(p99s, i, n, p99)
			pooled = append(pooled, r.direct...)
		}
		if err := bare.Close(); err != nil {
			return Result{}, fmt.Errorf("topology: %w", err)
		}
		if len(pooled) > 0 {
			p50, p99 := percentile(pooled, 50), percentile(pooled, 99)
			t.AddRow(n, "direct to pod (no rules)", "–", len(pooled), p50, p99, "–", "–", "–")
			add(p50s, len(backends), n, p50)
			add(p99s, len(backends), n, p99)
		}
	}
	t.Note = fmt.Sprintf("Topology (namespaces built in Go): client — veth — node — veth — pod; the rules under test are in the node, which forwards; "+
		"the pod holds the %d endpoint addresses of the measured service and one TCP listener. "+
		"Measured service: the one of the last rule of the IPv4 nat dispatch chain %s in the rendered iptables ruleset (svc-(n−1) of the synthetic cluster); "+
		"for the iptables backends the kernel's order is read back with iptables-save after the sync and must put it last (dispatch rule: its position). "+
		"Its SYN is tried against every service rule of that chain before it matches, and then against every rule of the filter table's %s chain (one per service, jumped to for new connections only); "+
		"nftables looks the ClusterIP up in one verdict map, whatever n. "+
		"A connect is one blocking connect(2) (SYN, SYN/ACK, ACK) of a fresh socket with its own source port, so every connection is a new conntrack entry; closed with a reset. "+
		"Each backend and size: a fresh topology, one cold sync, %d warm-up then %d rounds, each round one connect to the ClusterIP and one, interleaved, "+
		"to the pod's address in a second topology of the same shape without any rules (direct p50/p99: those connects; "+
		"the \"direct to pod\" row pools them over the backends of that size). Added (paired p50): the median over the rounds of "+
		"(connect through the ClusterIP − connect to the pod) of the same round, which cancels most of the machine's changing load.",
		s5Eps, s5DispatchChain, s5DispatchChain, warmup, rounds)
	if len(capped) > 0 {
		t.Note += fmt.Sprintf(" %s runs only up to %d services: iptables-nft-restore of more chains takes minutes.", strings.Join(capped, ", "), s5IptNFTMax)
	}
	series := append(p50s, p99s...)
	return Result{Skipped: skipped, Tables: []Table{t}, Plots: []Plot{{File: "s5-first-packet.png",
		Title: "First-packet latency through the last ClusterIP", XLabel: fmt.Sprintf("services (×%d endpoints)", s5Eps),
		YLabel: "TCP connect time (µs)", LogX: true, LogY: true, Series: series}}}, nil
}

// pairedMedian returns the median of a[i] − b[i] over the common length.
func pairedMedian(a, b []time.Duration) time.Duration {
	n := min(len(a), len(b))
	d := make([]time.Duration, n)
	for i := range n {
		d[i] = a[i] - b[i]
	}
	return median(d)
}

// fmtDelta prints a signed duration difference.
func fmtDelta(d time.Duration) string {
	if d < 0 {
		return "−" + fmtDur(-d)
	}
	return "+" + fmtDur(d)
}
