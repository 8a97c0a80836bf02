package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proxykit/proxykit"
)

// copyManifests copies testdata/manifests to a new directory.
func copyManifests(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ents, err := os.ReadDir("testdata/manifests")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join("testdata/manifests", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, e.Name(), string(data))
	}
	return dir
}

// syncedProxy is a Proxy with a syncer that keeps the last snapshot.
type syncedProxy struct {
	*proxykit.Proxy
	mu   sync.Mutex
	last *proxykit.Snapshot
}

func newSyncedProxy() *syncedProxy {
	sp := &syncedProxy{}
	sp.Proxy = proxykit.New(proxykit.Node{Name: "node1"}, proxykit.SyncerFunc(func(_ context.Context, s *proxykit.Snapshot) error {
		sp.mu.Lock()
		sp.last = s
		sp.mu.Unlock()
		return nil
	}))
	return sp
}

// ports syncs and returns the IPv4 service ports, with the addresses of
// their endpoint set in use for cluster traffic, as "name: a b".
func (sp *syncedProxy) ports(t *testing.T) []string {
	t.Helper()
	if err := sp.SyncNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	var out []string
	for ps := range sp.Snapshot().Family(proxykit.IPv4).Ports() {
		s := ps.Name.String() + ":"
		for _, ep := range ps.Endpoints.All {
			s += " " + ep.Addr.String()
		}
		out = append(out, s)
	}
	return out
}

func TestWatcher(t *testing.T) {
	dir := copyManifests(t)
	sp := newSyncedProxy()
	var logs bytes.Buffer
	w := newWatcher(dir, "node1", sp, slog.New(slog.NewTextHandler(&logs, nil)))
	var errs []error
	w.onError = func(err error) { errs = append(errs, err) }
	if !w.poll() {
		t.Fatal("first poll handed nothing over")
	}
	want := []string{
		"demo/lb:http/TCP: 10.244.1.11 10.244.2.11",
		"demo/web:http/TCP: 10.244.1.10 10.244.2.10",
		"kube-system/dns:dns/UDP: 10.244.2.53",
	}
	check := func(step string, want []string) {
		t.Helper()
		if got := sp.ports(t); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: ports\n got %q\nwant %q", step, got, want)
		}
	}
	check("start", want)
	if w.poll() {
		t.Error("a poll without changes handed something over")
	}
	if n := sp.Snapshot().Node(); n.Zone != "zone-a" {
		t.Errorf("node %+v: want the zone of the Node object", n)
	}

	// Remove a service's file.
	if err := os.Remove(filepath.Join(dir, "dns.yaml")); err != nil {
		t.Fatal(err)
	}
	w.poll()
	check("dns removed", want[:2])

	// Break a file: the error names file, object and field, and the
	// previous objects of the file stay.
	web, err := os.ReadFile(filepath.Join(dir, "web.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "web.yaml", strings.Replace(string(web), "10.244.2.10", "10.244.2.x", 1))
	if w.poll() {
		t.Error("a broken file handed something over")
	}
	check("web broken", want[:2])
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `web.yaml: document 2 (line 17): EndpointSlice "demo/web-1": endpoints[1].addresses[0]: invalid value "10.244.2.x"`) {
		t.Errorf("errors %v", errs)
	}
	// Fix it with an extra endpoint.
	writeFile(t, dir, "web.yaml", strings.Replace(string(web), "endpoints:\n", "endpoints:\n- addresses: [\"10.244.1.12\"]\n  nodeName: node1\n", 1))
	w.poll()
	check("web fixed", []string{want[0], "demo/web:http/TCP: 10.244.1.10 10.244.1.12 10.244.2.10"})
	if !strings.Contains(logs.String(), "manifest fixed") {
		t.Errorf("log lacks the fix:\n%s", logs.String())
	}

	// A duplicate in another file is reported and ignored.
	writeFile(t, dir, "z-dup.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: lb, namespace: demo}\nspec: {clusterIP: 10.96.9.9, ports: [{port: 1}]}\n")
	w.poll()
	if last := errs[len(errs)-1]; !strings.Contains(last.Error(), `z-dup.yaml: Service "demo/lb": defined in an earlier file too`) {
		t.Errorf("last error %v", last)
	}
	check("dup", []string{want[0], "demo/web:http/TCP: 10.244.1.10 10.244.1.12 10.244.2.10"})
}

// The watcher's run loop picks up a change within a few poll intervals.
func TestWatcherRun(t *testing.T) {
	dir := copyManifests(t)
	sp := newSyncedProxy()
	w := newWatcher(dir, "node1", sp, slog.New(slog.DiscardHandler))
	w.poll()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.run(ctx, 10*time.Millisecond) }()
	if err := os.Remove(filepath.Join(dir, "lb.yaml")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(sp.ports(t)) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("ports %v: lb not removed", sp.ports(t))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("run = %v", err)
	}
}
