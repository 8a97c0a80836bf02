package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/conntrack"
	"github.com/proxykit/proxykit/k8s"
)

// runFlags are the flags of run.
type runFlags struct {
	common
	kubeconfig                string
	healthzAddr, metricsAddr  string
	minSync, poll, healthWait time.Duration
	verbose                   bool
}

// runCmd programs the kernel and keeps it up to date until ctx is done.
func runCmd(ctx context.Context, args []string, _, stderr io.Writer) error {
	var f runFlags
	fs := newFlagSet("run", stderr)
	f.register(fs, true, true)
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "read the objects from the cluster of this kubeconfig instead of --manifests")
	fs.StringVar(&f.healthzAddr, "healthz-bind-address", "127.0.0.1:10256", "address of /healthz and /livez; empty: off")
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", "127.0.0.1:10249", "address of /metrics; empty: off")
	fs.DurationVar(&f.minSync, "min-sync-interval", 250*time.Millisecond, "shortest time between two syncs")
	fs.DurationVar(&f.poll, "poll-interval", 200*time.Millisecond, "how often the manifests are checked for changes")
	fs.DurationVar(&f.healthWait, "health-timeout", proxykit.DefaultHealthTimeout, "how long a change may wait before the proxy is unhealthy")
	fs.BoolVar(&f.verbose, "v", false, "log every sync")
	if err := parse(fs, args); err != nil {
		return err
	}
	if (f.manifests == "") == (f.kubeconfig == "") {
		return usageError{errors.New("exactly one of --manifests and --kubeconfig is required")}
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if f.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	d, err := newDaemon(cfg, f, log)
	if err != nil {
		return err
	}
	return d.run(ctx)
}

// daemon is a running minimal-proxy.
type daemon struct {
	f       runFlags
	log     *slog.Logger
	m       *metrics
	p       *proxykit.Proxy
	hc      *hcServers
	kick    chan struct{} // a sync succeeded: update the health-check servers
	last    atomic.Int64  // end of the last successful sync, Unix ns
	handler k8s.Handler

	mu    sync.Mutex
	addrs map[string]net.Addr // bind address → listening address
}

// addr returns where the server of bind address a listens, once it does.
func (d *daemon) addr(a string) net.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addrs[a]
}

func newDaemon(cfg backendConfig, f runFlags, log *slog.Logger) (*daemon, error) {
	rules, err := cfg.newSyncer()
	if err != nil {
		return nil, err
	}
	return newDaemonWith(cfg, f, log, rules)
}

// newDaemonWith returns a daemon that syncs with rules (tests pass a
// fake, and the conntrack options to fake it too).
func newDaemonWith(cfg backendConfig, f runFlags, log *slog.Logger, rules proxykit.Syncer, ctOpts ...conntrack.Option) (*daemon, error) {
	d := &daemon{f: f, log: log, m: newMetrics(), kick: make(chan struct{}, 1), addrs: map[string]net.Addr{}}
	ct, err := conntrack.NewSyncer(conntrack.Config{NodePortAddresses: cfg.nodePortAddresses},
		append([]conntrack.Option{conntrack.WithObserver(d.m.conntrack), conntrack.WithLogger(log)}, ctOpts...)...)
	if err != nil {
		return nil, err
	}
	node := localNode(proxykit.Node{Name: f.nodeName})
	// Conntrack cleanup runs after the rules are in place (SEMANTICS §9).
	d.p = proxykit.New(node, proxykit.Sequence(rules, ct),
		proxykit.WithLogger(log), proxykit.WithObserver(d),
		proxykit.WithMinSyncInterval(f.minSync), proxykit.WithHealthTimeout(f.healthWait))
	d.hc = newHCServers(d.p.Healthy, log)
	d.handler = counting{Handler: d.p, m: d.m}
	return d, nil
}

// SyncDone implements proxykit.Observer: metrics, and a kick to the
// health-check servers after each success.
func (d *daemon) SyncDone(i proxykit.SyncInfo) {
	d.m.SyncDone(i)
	if i.Err != nil {
		return
	}
	d.last.Store(i.Start.Add(i.Duration).UnixNano())
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

func (d *daemon) lastSync() time.Time {
	if ns := d.last.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// run starts the source of objects, waits for its first complete view,
// then runs the sync loop, the HTTP servers and the health-check node
// ports until ctx is done.
func (d *daemon) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	errc := make(chan error, 4)
	goRun := func(fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil && ctx.Err() == nil {
				errc <- err
			}
		}()
	}

	if err := d.startSource(ctx, goRun); err != nil {
		return err
	}
	if err := d.serveHTTP(ctx, goRun); err != nil {
		return err
	}
	goRun(func() error { d.hc.run(ctx, d.kick, d.p.Snapshot); return nil })
	goRun(func() error { return d.p.Run(ctx) })
	d.log.Info("minimal-proxy running", "node", d.f.nodeName, "backend", d.f.backend)
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

// startSource feeds the proxy from the manifests or the cluster and
// returns once the proxy has a complete first view.
func (d *daemon) startSource(ctx context.Context, goRun func(func() error)) error {
	if d.f.manifests != "" {
		w := newWatcher(d.f.manifests, d.f.nodeName, d.handler, d.log)
		w.nodeHook = localNode
		w.onError = func(error) { d.m.manifestErrors.Inc() }
		w.poll()
		goRun(func() error { return w.run(ctx, d.f.poll) })
		return nil
	}
	rc, err := clientcmd.BuildConfigFromFlags("", d.f.kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	src := k8s.NewSource(client, d.handler, k8s.WithNodeName(d.f.nodeName), k8s.WithLogger(d.log),
		k8s.WithErrorHandler(func(error) { d.m.manifestErrors.Inc() }), k8s.WithNodeHook(localNode))
	goRun(func() error { return src.Run(ctx) })
	return src.WaitForSync(ctx)
}

// serveHTTP starts the health and metrics servers (one server when they
// share an address).
func (d *daemon) serveHTTP(ctx context.Context, goRun func(func() error)) error {
	health, metrics := healthHandler(d.p.Healthy, d.lastSync), d.m.handler()
	muxes := map[string]*http.ServeMux{}
	mux := func(addr string) *http.ServeMux {
		if muxes[addr] == nil {
			muxes[addr] = http.NewServeMux()
		}
		return muxes[addr]
	}
	if d.f.healthzAddr != "" {
		mux(d.f.healthzAddr).Handle("/healthz", health)
		mux(d.f.healthzAddr).Handle("/livez", health)
	}
	if d.f.metricsAddr != "" {
		mux(d.f.metricsAddr).Handle("/metrics", metrics)
	}
	for addr, m := range muxes {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		d.mu.Lock()
		d.addrs[addr] = ln.Addr()
		d.mu.Unlock()
		srv := &http.Server{Handler: m, ReadHeaderTimeout: 5 * time.Second}
		goRun(func() error {
			go func() { <-ctx.Done(); _ = srv.Close() }()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	return nil
}

// localNode replaces the node's addresses with the addresses of the
// local interfaces (loopback and link-local excluded): NodePorts are
// served on what the machine has, whatever its Node object says.
func localNode(n proxykit.Node) proxykit.Node {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return n
	}
	n.Addresses = nil
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() {
			continue
		}
		n.Addresses = append(n.Addresses, ip)
	}
	return n
}
