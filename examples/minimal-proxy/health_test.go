package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/conntrack"
	"github.com/proxykit/proxykit/servicemap"
)

// get fetches url and returns the status code and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// healthSwitch is a healthFunc whose answer the test sets.
type healthSwitch struct{ err atomic.Pointer[error] }

func (h *healthSwitch) healthy() error {
	if p := h.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (h *healthSwitch) set(err error) { h.err.Store(&err) }

func TestHealthz(t *testing.T) {
	var hs healthSwitch
	last := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	srv := newTestServer(t, healthHandler(hs.healthy, func() time.Time { return last }))
	for _, path := range []string{"/healthz", "/livez"} {
		hs.set(nil)
		code, body := get(t, srv+path)
		if code != 200 || !strings.Contains(body, `"healthy":true`) || !strings.Contains(body, `"lastUpdated":"2026-01-02T03:04:05Z"`) {
			t.Errorf("%s healthy: %d %s", path, code, body)
		}
		hs.set(errors.New("oldest queued change has waited 2m"))
		code, body = get(t, srv+path)
		if code != 503 || !strings.Contains(body, `"healthy":false`) || !strings.Contains(body, "waited 2m") {
			t.Errorf("%s unhealthy: %d %s", path, code, body)
		}
	}
}

func newTestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func TestHCServices(t *testing.T) {
	objs, err := loadManifests("testdata/manifests")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := objs.snapshot(objs.node("node1"))
	if err != nil {
		t.Fatal(err)
	}
	got := hcServices(snap)
	lb := servicemap.ServiceName{Namespace: "demo", Name: "lb"}
	if len(got) != 1 || got[lb] != (hcService{name: lb, port: 32000, local: 1}) {
		t.Errorf("hcServices = %+v", got)
	}
	// On another node, no local endpoint... but node2 has one too; on a
	// node with none, the count is 0.
	snap, err = objs.snapshot(proxykit.Node{Name: "node3"})
	if err != nil {
		t.Fatal(err)
	}
	if got := hcServices(snap)[lb]; got.local != 0 || got.port != 32000 {
		t.Errorf("node3: %+v", got)
	}
}

// localListen makes hcServers listen on 127.0.0.1, a free port.
func localListen(uint16) (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func TestHCServers(t *testing.T) {
	var hs healthSwitch
	h := newHCServers(hs.healthy, slog.New(slog.DiscardHandler))
	h.listen = localListen
	defer h.close()
	lb := servicemap.ServiceName{Namespace: "demo", Name: "lb"}
	other := servicemap.ServiceName{Namespace: "demo", Name: "other"}
	url := func(port uint16) string {
		t.Helper()
		a, err := h.addrOf(port)
		if err != nil {
			t.Fatal(err)
		}
		return "http://" + a.String() + "/"
	}

	h.update(map[servicemap.ServiceName]hcService{lb: {name: lb, port: 32000, local: 2}})
	code, body := get(t, url(32000))
	if want := `{"service":{"namespace":"demo","name":"lb"},"localEndpoints":2,"serviceProxyHealthy":true}` + "\n"; code != 200 || body != want {
		t.Errorf("2 local endpoints: %d %q, want 200 %q", code, body, want)
	}
	hs.set(errors.New("late"))
	code, body = get(t, url(32000))
	if want := `{"service":{"namespace":"demo","name":"lb"},"localEndpoints":2,"serviceProxyHealthy":false}` + "\n"; code != 503 || body != want {
		t.Errorf("unhealthy: %d %q, want 503 %q", code, body, want)
	}
	hs.set(nil)
	first := url(32000)
	h.update(map[servicemap.ServiceName]hcService{lb: {name: lb, port: 32000, local: 0}})
	if url(32000) != first {
		t.Error("the server was restarted for a count change")
	}
	code, body = get(t, url(32000))
	if want := `{"service":{"namespace":"demo","name":"lb"},"localEndpoints":0,"serviceProxyHealthy":true}` + "\n"; code != 503 || body != want {
		t.Errorf("no local endpoints: %d %q, want 503 %q", code, body, want)
	}

	// Two services on one port: the first (by name) gets it.
	h.update(map[servicemap.ServiceName]hcService{
		lb: {name: lb, port: 32000, local: 1}, other: {name: other, port: 32000, local: 3}})
	if code, body := get(t, url(32000)); code != 200 || !strings.Contains(body, `"name":"lb"`) {
		t.Errorf("shared port: %d %s", code, body)
	}
	// The service goes: its server stops.
	h.update(nil)
	if _, err := h.addrOf(32000); err == nil {
		t.Error("server still registered")
	}
	if _, err := http.Get(first); err == nil {
		t.Error("server still answers")
	}
}

// The daemon, with fake kernels, serves health, metrics and the
// health-check node port after its first sync.
func TestDaemon(t *testing.T) {
	dir := copyManifests(t)
	f := runFlags{
		common:      common{backend: "nftables", manifests: dir, nodeName: "node1"},
		healthzAddr: "127.0.0.1:0", metricsAddr: "127.0.0.1:0",
		minSync: 10 * time.Millisecond, poll: 10 * time.Millisecond, healthWait: time.Minute,
	}
	f.metricsAddr = "localhost:0" // a server of its own
	var syncs atomic.Int32
	rules := proxykit.SyncerFunc(func(context.Context, *proxykit.Snapshot) error {
		if syncs.Add(1) == 2 {
			return errors.New("injected failure")
		}
		return nil
	})
	// A flow to the DNS service translated to an endpoint it does not
	// have is stale: the first sync deletes it.
	client := netip.MustParseAddrPort("10.244.1.10:40000")
	stale := conntrack.Flow{Proto: conntrack.UDP,
		Orig:  conntrack.Tuple{Src: client, Dst: netip.MustParseAddrPort("10.96.0.53:53")},
		Reply: conntrack.Tuple{Src: netip.MustParseAddrPort("10.244.2.99:53"), Dst: client}}
	d, err := newDaemonWith(backendConfig{backend: "nftables"}, f, slog.New(slog.DiscardHandler), rules,
		conntrack.WithConn(conntrack.NewFake(stale)))
	if err != nil {
		t.Fatal(err)
	}
	d.hc.listen = localListen
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run = %v", err)
		}
	}()

	waitFor(t, "the health-check server", func() bool { _, err := d.hc.addrOf(32000); return err == nil })
	a, _ := d.hc.addrOf(32000)
	if code, body := get(t, "http://"+a.String()+"/"); code != 200 || !strings.Contains(body, `"localEndpoints":1`) {
		t.Errorf("health-check node port: %d %s", code, body)
	}
	healthz := "http://" + d.addr(f.healthzAddr).String()
	for _, path := range []string{"/healthz", "/livez"} {
		if code, body := get(t, healthz+path); code != 200 {
			t.Errorf("%s: %d %s", path, code, body)
		}
	}

	// A change gives a partial sync, which fails once (injected) and is
	// retried in full.
	writeFile(t, dir, "extra.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: extra, namespace: demo}\nspec: {clusterIP: 10.96.0.99, ports: [{port: 80}]}\n")
	waitFor(t, "the retry", func() bool { return syncs.Load() >= 3 })
	// A broken file counts as a manifest error.
	writeFile(t, dir, "broken.yaml", "kind: Service\napiVersion: v1\nmetadata: {name: broken}\nspec: {ports: [{port: x}]}\n")
	metrics := "http://" + d.addr(f.metricsAddr).String() + "/metrics"
	var body string
	waitFor(t, "the metrics", func() bool {
		_, body = get(t, metrics)
		return strings.Contains(body, "proxykit_manifest_errors_total 1") && strings.Contains(body, "proxykit_pending_changes 0")
	})
	for _, want := range []string{
		`proxykit_sync_duration_seconds_count{mode="full"} 2`,
		`proxykit_sync_duration_seconds_count{mode="partial"} 1`,
		"proxykit_sync_failures_total 1",
		"proxykit_conntrack_deleted_total 1",
		"proxykit_last_successful_sync_timestamp_seconds 1.",
		"proxykit_pending_changes 0",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
