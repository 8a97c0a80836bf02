//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/proxykit/proxykit/internal/netnstest"
)

// served is how soon an edit of the manifests must carry real traffic.
const served = time.Second

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// e2e is the built binary running in node1 of a topology.
type e2e struct {
	t       *testing.T
	tp      *netnstest.Topology
	bin     string
	dir     string
	stderr  *lockedBuffer
	stopFn  func()
	backend string
}

// TestEndToEnd runs the minimal-proxy binary in node1's namespace against
// a manifest directory and checks with real traffic from the client
// that each edit is served within a second.
// IPVS is not in this machine's kernel (see TESTING.md); its VM tests
// cover the backend.
func TestEndToEnd(t *testing.T) {
	for _, backend := range []string{"nftables", "iptables"} {
		t.Run(backend, func(t *testing.T) { testEndToEnd(t, backend) })
	}
}

func testEndToEnd(t *testing.T, backend string) {
	tp := netnstest.New(t)
	for _, tool := range []string{"go", "nsenter", "nft", "iptables-save"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed: %v", tool, err)
		}
	}
	e := &e2e{t: t, tp: tp, backend: backend, bin: filepath.Join(t.TempDir(), "minimal-proxy"), dir: t.TempDir(), stderr: &lockedBuffer{}}
	if out, err := exec.Command("go", "build", "-o", e.bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	e.write("web.yaml", webYAML("Cluster", "pod-a", "pod-c"))
	e.write("api.yaml", apiYAML)
	e.start()

	web := netip.MustParseAddrPort("10.96.0.10:80")
	api := netip.MustParseAddrPort("10.96.0.11:80")
	nodePort := netip.AddrPortFrom(tp.Node1Addrs[2], 30080) // 192.0.2.1, the client's side

	// The first sync: both services answer.
	e.waitServers("start: ClusterIP", web, 10*time.Second, "pod-a", "pod-c")
	e.waitServers("start: api", api, time.Second, "pod-d")
	e.checkHealthz()

	// Add an endpoint.
	e.write("web.yaml", webYAML("Cluster", "pod-a", "pod-b", "pod-c"))
	e.waitServers("endpoint added", web, served, "pod-a", "pod-b", "pod-c")

	// Remove a service.
	if err := os.Remove(filepath.Join(e.dir, "api.yaml")); err != nil {
		t.Fatal(err)
	}
	e.waitGone("service removed", api, served)

	// External traffic policy Cluster: the NodePort reaches every
	// endpoint, masqueraded. Switch to Local: only node1's endpoints, and
	// the client's address is kept.
	e.waitServers("eTP Cluster: NodePort", nodePort, time.Second, "pod-a", "pod-b", "pod-c")
	e.write("web.yaml", webYAML("Local", "pod-a", "pod-b", "pod-c"))
	e.waitLocal("eTP Local", nodePort, served)
	e.checkHealthCheckNodePort(2)

	// A broken file is logged and changes nothing.
	e.write("broken.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: broken, namespace: demo}\nspec: {clusterIP: 10.96.0.x, ports: [{port: 80}]}\n")
	deadline := time.Now().Add(served)
	for !strings.Contains(e.stderr.String(), `broken.yaml: document 1 (line 1): Service \"demo/broken\": spec.clusterIP`) {
		if time.Now().After(deadline) {
			t.Fatalf("the broken file was not logged within %v:\n%s", served, e.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.waitServers("after the broken file: ClusterIP", web, time.Second, "pod-a", "pod-b", "pod-c")
	e.waitLocal("after the broken file: NodePort", nodePort, time.Second)
	e.checkMetrics()

	// Stop, then clean up: nothing of ours is left in node1.
	e.stop()
	if out, err := e.nsExec(e.bin, "cleanup", "--backend", backend).CombinedOutput(); err != nil {
		t.Fatalf("cleanup: %v\n%s", err, out)
	}
	for _, dump := range [][]string{{"nft", "list", "ruleset"}, {"iptables-save"}, {"ip6tables-save"}} {
		out, err := e.nsExec(dump...).CombinedOutput()
		if err != nil || strings.Contains(strings.ToLower(string(out)), "proxykit") {
			t.Errorf("after cleanup, %s: %v\n%s", dump[0], err, out)
		}
	}
}

func (e *e2e) write(name, content string) {
	e.t.Helper()
	// Write and rename, as editors and kubectl-like tools do, so the
	// poller never reads half a file.
	tmp := filepath.Join(e.dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(e.dir, name)); err != nil {
		e.t.Fatal(err)
	}
}

func (e *e2e) nsExec(args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=/run/netns/" + e.tp.Node1.Name}, args...)...)
}

// start runs the binary in node1 with the default intervals.
func (e *e2e) start() {
	cmd := e.nsExec(e.bin, "run", "--backend", e.backend, "--manifests", e.dir, "--node-name", "node1",
		"--cluster-cidr", "10.244.0.0/16,fd00:244::/32")
	cmd.Stdout, cmd.Stderr = e.stderr, e.stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stopped := false
	e.stopFn = func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if e.t.Failed() {
			e.t.Logf("minimal-proxy output:\n%s", e.stderr.String())
		}
	}
	e.t.Cleanup(e.stop)
}

func (e *e2e) stop() { e.stopFn() }

// probe sends one TCP request from the client.
func (e *e2e) probe(dst netip.AddrPort) netnstest.Result {
	return e.tp.Client.Probe(context.Background(), "tcp", dst, netnstest.ProbeOptions{Timeout: 300 * time.Millisecond})
}

// waitServers probes dst until every one of want answered and nothing
// else did since the first reply, within d.
func (e *e2e) waitServers(step string, dst netip.AddrPort, d time.Duration, want ...string) {
	e.t.Helper()
	start := time.Now()
	seen := map[string]int{}
	var last netnstest.Result
	for time.Since(start) < d {
		last = e.probe(dst)
		if last.Outcome != netnstest.Reply {
			clear(seen)
			continue
		}
		ok := false
		for _, w := range want {
			ok = ok || last.Server == w
		}
		if !ok {
			clear(seen)
			continue
		}
		seen[last.Server]++
		if len(seen) == len(want) {
			e.t.Logf("%s: %s served by %v after %v", step, dst, want, time.Since(start).Round(time.Millisecond))
			return
		}
	}
	e.t.Fatalf("%s: %s not served by exactly %v within %v; seen %v, last %v", step, dst, want, d, seen, last)
}

// waitGone probes dst until it gets no reply (a service that is gone).
func (e *e2e) waitGone(step string, dst netip.AddrPort, d time.Duration) {
	e.t.Helper()
	start := time.Now()
	for time.Since(start) < d {
		if r := e.probe(dst); r.Outcome != netnstest.Reply {
			e.t.Logf("%s: %s gone after %v (%v)", step, dst, time.Since(start).Round(time.Millisecond), r.Outcome)
			return
		}
	}
	e.t.Fatalf("%s: %s still answers after %v", step, dst, d)
}

// waitLocal probes dst until 30 requests in a row reach node1's pods and
// see the client's own address, the first of them within d.
func (e *e2e) waitLocal(step string, dst netip.AddrPort, d time.Duration) {
	e.t.Helper()
	start := time.Now()
	var first time.Time
	var last netnstest.Result
	for n := 0; n < 30; {
		if first.IsZero() && time.Since(start) > d {
			e.t.Fatalf("%s: %s not served by local endpoints only within %v; last %v", step, dst, d, last)
		}
		at := time.Now()
		last = e.probe(dst)
		local := last.Outcome == netnstest.Reply && (last.Server == "pod-a" || last.Server == "pod-b") &&
			last.Source.Addr() == e.tp.ClientV4
		switch {
		case !local:
			n, first = 0, time.Time{}
		case n == 0:
			first, n = at, 1
		default:
			n++
		}
		if time.Since(start) > d+5*time.Second {
			e.t.Fatalf("%s: %s: replies keep varying; last %v", step, dst, last)
		}
	}
	e.t.Logf("%s: %s served locally, client address kept, after %v", step, dst, first.Sub(start).Round(time.Millisecond))
}

// nodeHTTP returns an HTTP client whose connections start in ns.
func nodeHTTP(ns *netnstest.NS) *http.Client {
	return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			ap, err := netip.ParseAddrPort(addr)
			if err != nil {
				return nil, err
			}
			return ns.Dial(ctx, ap)
		},
	}}
}

func (e *e2e) get(ns *netnstest.NS, url string) (int, string) {
	e.t.Helper()
	code, body, err := tryGet(ns, url)
	if err != nil {
		e.t.Fatalf("GET %s: %v", url, err)
	}
	return code, body
}

func tryGet(ns *netnstest.NS, url string) (int, string, error) {
	resp, err := nodeHTTP(ns).Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func (e *e2e) checkHealthz() {
	e.t.Helper()
	for _, path := range []string{"/healthz", "/livez"} {
		if code, body := e.get(e.tp.Node1, "http://127.0.0.1:10256"+path); code != 200 || !strings.Contains(body, `"healthy":true`) {
			e.t.Errorf("%s in node1: %d %s", path, code, body)
		}
	}
}

// checkHealthCheckNodePort asks the web service's health-check node port
// from the client, as a load balancer would.
func (e *e2e) checkHealthCheckNodePort(local int) {
	e.t.Helper()
	url := fmt.Sprintf("http://%s:32000/", e.tp.Node1Addrs[2])
	want := fmt.Sprintf(`{"service":{"namespace":"demo","name":"web"},"localEndpoints":%d,"serviceProxyHealthy":true}`, local)
	deadline := time.Now().Add(served)
	for {
		code, body, err := tryGet(e.tp.Client, url)
		if err == nil && code == 200 && strings.TrimSpace(body) == want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("health-check node port: %d %s (%v), want 200 %s", code, body, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *e2e) checkMetrics() {
	e.t.Helper()
	_, body := e.get(e.tp.Node1, "http://127.0.0.1:10249/metrics")
	for _, want := range []string{
		`proxykit_sync_duration_seconds_bucket{mode="full"`, `proxykit_sync_duration_seconds_count{mode="partial"}`,
		"proxykit_last_successful_sync_timestamp_seconds 1", "proxykit_pending_changes 0",
		"proxykit_sync_failures_total 0", "proxykit_conntrack_deleted_total", "proxykit_manifest_errors_total 1",
	} {
		if !strings.Contains(body, want) {
			e.t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

// webYAML is the web service (a LoadBalancer, ClusterIP 10.96.0.10, NodePort
// 30080) with external policy etp and the named pods as endpoints.
func webYAML(etp string, pods ...string) string {
	hc := ""
	if etp == "Local" {
		hc = "\n  healthCheckNodePort: 32000"
	}
	s := `apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.10
  externalTrafficPolicy: ` + etp + hc + `
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: 30080}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: demo
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports:
- {name: http, port: 8080}
endpoints:
`
	for _, p := range pods {
		s += fmt.Sprintf("- {addresses: [%s], nodeName: %s}\n", podV4[p], podNode[p])
	}
	return s
}

var (
	podV4   = map[string]string{"pod-a": "10.244.1.10", "pod-b": "10.244.1.11", "pod-c": "10.244.2.10", "pod-d": "10.244.2.11"}
	podNode = map[string]string{"pod-a": "node1", "pod-b": "node1", "pod-c": "node2", "pod-d": "node2"}
)

const apiYAML = `apiVersion: v1
kind: Service
metadata: {name: api, namespace: demo}
spec:
  clusterIP: 10.96.0.11
  ports:
  - {name: http, port: 80}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: api-1
  namespace: demo
  labels: {kubernetes.io/service-name: api}
addressType: IPv4
ports:
- {name: http, port: 8080}
endpoints:
- {addresses: [10.244.2.11], nodeName: node2}
`
