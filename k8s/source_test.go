package k8s

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// recorder is a Handler that records what it is told, as lines like
// "service+ default/web prev=none ports=1".
type recorder struct {
	mu     sync.Mutex
	events []string
	errs   []error
	// reject makes OnServiceUpdate fail for a service of that name.
	reject string
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
}

func (r *recorder) OnServiceUpdate(prev, cur *servicemap.Service) error {
	if cur.Name == r.reject {
		return errors.New("rejected")
	}
	p := "none"
	if prev != nil {
		p = fmt.Sprint(len(prev.Ports))
	}
	r.add("service+ %s/%s prev-ports=%s ports=%d", cur.Namespace, cur.Name, p, len(cur.Ports))
	return nil
}

func (r *recorder) OnServiceDelete(svc *servicemap.Service) {
	r.add("service- %s/%s", svc.Namespace, svc.Name)
}

func (r *recorder) OnSliceUpdate(s *endpoints.Slice) error {
	r.add("slice+ %s/%s service=%s endpoints=%d", s.Namespace, s.Name, s.Service, len(s.Endpoints))
	return nil
}

func (r *recorder) OnSliceDelete(s *endpoints.Slice) {
	r.add("slice- %s/%s", s.Namespace, s.Name)
}

func (r *recorder) SetNode(n proxykit.Node) {
	r.add("node %s zone=%s addrs=%v", n.Name, n.Zone, n.Addresses)
}

func (r *recorder) onError(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

// take returns the events recorded so far and forgets them.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	return ev
}

func (r *recorder) errors() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.errs)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitEvents waits until the recorder has seen want (in any order,
// nothing else) and forgets them.
func waitEvents(t *testing.T, r *recorder, want ...string) {
	t.Helper()
	slices.Sort(want)
	var got []string
	waitFor(t, fmt.Sprintf("events %q", want), func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		got = slices.Sorted(slices.Values(r.events))
		return len(got) >= len(want)
	})
	if !slices.Equal(got, want) {
		t.Fatalf("events:\n got %q\nwant %q", got, want)
	}
	r.take()
}

func node(name, zone string, addrs ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelZone: zone}}}
	for _, a := range addrs {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: a})
	}
	return n
}

// startSource runs a Source on a fake clientset holding objs and waits
// until it has synced.
func startSource(t *testing.T, r *recorder, objs []runtime.Object, opts ...Option) (*fake.Clientset, *Source) {
	t.Helper()
	client := fake.NewClientset(objs...)
	src := NewSource(client, r, append([]Option{WithErrorHandler(r.onError)}, opts...)...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run() = %v, want context.Canceled", err)
		}
	})
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := src.WaitForSync(wctx); err != nil {
		t.Fatalf("WaitForSync: %v", err)
	}
	if !src.HasSynced() {
		t.Fatal("HasSynced() = false after WaitForSync")
	}
	return client, src
}

func TestSourceWithFakeClientset(t *testing.T) {
	ctx := context.Background()
	delegated := service(func(s *corev1.Service) {
		s.Name = "other"
		s.Labels = map[string]string{LabelServiceProxyName: "someone-else"}
	})
	headlessSlice := endpointSlice(func(es *discoveryv1.EndpointSlice) {
		es.Name = "db-xyz"
		es.Labels = map[string]string{discoveryv1.LabelServiceName: "db", LabelHeadless: ""}
	})
	fqdn := endpointSlice(func(es *discoveryv1.EndpointSlice) {
		es.Name = "ext-1"
		es.AddressType = discoveryv1.AddressTypeFQDN
		es.Endpoints[0].Addresses = []string{"example.com"}
	})
	r := &recorder{}
	client, src := startSource(t, r, []runtime.Object{
		service(), delegated, endpointSlice(), headlessSlice, fqdn,
		node("node-a", "zone-1", "192.0.2.10"), node("node-b", "zone-2", "192.0.2.11"),
	}, WithNodeName("node-a"))

	// The initial lists are in once HasSynced: no waiting needed.
	if got, want := slices.Sorted(slices.Values(r.take())), []string{
		"node node-a zone=zone-1 addrs=[192.0.2.10]",
		"service+ default/web prev-ports=none ports=1",
		"slice+ default/web-abc service=web endpoints=1",
	}; !slices.Equal(got, want) {
		t.Fatalf("initial events:\n got %q\nwant %q", got, want)
	}

	// An update hands over the previous state.
	svcs := client.CoreV1().Services("default")
	upd := service(func(s *corev1.Service) {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "https", Port: 443})
	})
	if _, err := svcs.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEvents(t, r, "service+ default/web prev-ports=1 ports=2")

	// A conversion error is reported and the previous state stays: the
	// next update's prev is still the 2-port service.
	bad := upd.DeepCopy()
	bad.Spec.ClusterIPs = []string{"10.96.0.x"}
	if _, err := svcs.Update(ctx, bad, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the conversion error", func() bool { return len(r.errors()) == 1 })
	var ce *Error
	if err := r.errors()[0]; !errors.As(err, &ce) || ce.Name != "web" || !strings.Contains(err.Error(), `spec.clusterIPs[0]: invalid value "10.96.0.x"`) {
		t.Errorf("reported error = %v", err)
	}
	if _, err := svcs.Update(ctx, service(), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEvents(t, r, "service+ default/web prev-ports=2 ports=1")

	// Delegating the service to another proxy deletes it here;
	// taking it back adds it again.
	away := service(func(s *corev1.Service) { s.Labels = map[string]string{LabelServiceProxyName: "someone-else"} })
	if _, err := svcs.Update(ctx, away, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEvents(t, r, "service- default/web")
	if _, err := svcs.Update(ctx, service(), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEvents(t, r, "service+ default/web prev-ports=none ports=1")

	// Slices: update, add, delete.
	ess := client.DiscoveryV1().EndpointSlices("default")
	two := endpointSlice(func(es *discoveryv1.EndpointSlice) {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.244.2.5"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(false)}})
	})
	if _, err := ess.Update(ctx, two, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEvents(t, r, "slice+ default/web-abc service=web endpoints=2")
	v6 := endpointSlice(func(es *discoveryv1.EndpointSlice) {
		es.Name, es.AddressType = "web-v6", discoveryv1.AddressTypeIPv6
		es.Endpoints[0].Addresses = []string{"fd00:244::5"}
	})
	if _, err := ess.Create(ctx, v6, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEvents(t, r, "slice+ default/web-v6 service=web endpoints=1")
	if err := ess.Delete(ctx, "web-v6", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEvents(t, r, "slice- default/web-v6")

	// The node: only ours, and its changes.
	nodes := client.CoreV1().Nodes()
	if _, err := nodes.Update(ctx, node("node-b", "zone-9", "192.0.2.11"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes.Update(ctx, node("node-a", "zone-3", "192.0.2.10", "fd00::10"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEvents(t, r, "node node-a zone=zone-3 addrs=[192.0.2.10 fd00::10]")

	// Deleting the service and its slice.
	if err := svcs.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := ess.Delete(ctx, "web-abc", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEvents(t, r, "service- default/web", "slice- default/web-abc")

	// Objects for other proxies or headless services never showed up.
	if n := len(r.errors()); n != 1 {
		t.Errorf("%d errors reported, want 1: %v", n, r.errors())
	}
	if !src.HasSynced() {
		t.Error("HasSynced() = false")
	}
}

func TestSourceWithProxyName(t *testing.T) {
	mine := service(func(s *corev1.Service) {
		s.Name = "mine"
		s.Labels = map[string]string{LabelServiceProxyName: "proxykit"}
	})
	theirs := service(func(s *corev1.Service) {
		s.Name = "theirs"
		s.Labels = map[string]string{LabelServiceProxyName: "someone-else"}
	})
	r := &recorder{}
	startSource(t, r, []runtime.Object{service(), mine, theirs}, WithProxyName("proxykit"))
	if got, want := slices.Sorted(slices.Values(r.take())), []string{
		"service+ default/mine prev-ports=none ports=1",
		"service+ default/web prev-ports=none ports=1",
	}; !slices.Equal(got, want) {
		t.Fatalf("events:\n got %q\nwant %q", got, want)
	}
}

func TestSourceRejectedUpdateIsReported(t *testing.T) {
	r := &recorder{reject: "web"}
	startSource(t, r, []runtime.Object{service()})
	errs := r.errors()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `k8s: Service "default/web": rejected`) {
		t.Fatalf("errors = %v", errs)
	}
	if ev := r.take(); len(ev) != 0 {
		t.Errorf("events = %q, want none", ev)
	}
}

func TestSourceRunTwice(t *testing.T) {
	r := &recorder{}
	_, src := startSource(t, r, nil)
	if err := src.Run(context.Background()); !errors.Is(err, ErrAlreadyStarted) {
		t.Errorf("second Run() = %v, want ErrAlreadyStarted", err)
	}
}

func TestSourceWaitForSyncCanceled(t *testing.T) {
	src := NewSource(fake.NewClientset(), &recorder{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := src.WaitForSync(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitForSync() = %v, want context.Canceled", err)
	}
	if src.HasSynced() {
		t.Error("HasSynced() before Run")
	}
}

// The handlers on their own: tombstones, unexpected objects.
func TestSourceHandlers(t *testing.T) {
	r := &recorder{}
	src := NewSource(fake.NewClientset(), r, WithErrorHandler(r.onError), WithNodeName("node-a"),
		WithNodeHook(func(n proxykit.Node) proxykit.Node { n.Addresses = nil; return n }))

	src.serviceChanged(service())
	src.sliceChanged(endpointSlice())
	waitEvents(t, r, "service+ default/web prev-ports=none ports=1", "slice+ default/web-abc service=web endpoints=1")

	// Tombstones: the final state is unknown, possibly stale or nil; the
	// key is enough, the Source deletes what it handed over.
	src.serviceDeleted(cache.DeletedFinalStateUnknown{Key: "default/web", Obj: nil})
	src.sliceDeleted(cache.DeletedFinalStateUnknown{Key: "default/web-abc", Obj: endpointSlice(func(es *discoveryv1.EndpointSlice) {
		es.AddressType = "garbage"
	})})
	waitEvents(t, r, "service- default/web", "slice- default/web-abc")

	// Deleting what was never handed over does nothing.
	src.serviceDeleted(service(func(s *corev1.Service) { s.Name = "never" }))
	src.sliceDeleted(cache.DeletedFinalStateUnknown{Key: "default/never"})

	// Unexpected objects are reported, never a panic.
	src.serviceChanged(&corev1.Pod{})
	src.sliceChanged("a string")
	src.nodeChanged(nil)
	src.serviceDeleted(42)
	if n := len(r.errors()); n != 4 {
		t.Errorf("%d errors, want 4: %v", n, r.errors())
	}

	// The node hook, a node that is not ours, a bad node, deletion.
	src.nodeChanged(node("node-a", "zone-1", "192.0.2.10"))
	src.nodeChanged(node("node-b", "zone-1", "192.0.2.11"))
	src.nodeChanged(node("node-a", "zone-1", "not-an-ip"))
	src.nodeDeleted(cache.DeletedFinalStateUnknown{Key: "node-a"})
	waitEvents(t, r, "node node-a zone=zone-1 addrs=[]")
	if n := len(r.errors()); n != 5 {
		t.Errorf("%d errors, want 5: %v", n, r.errors())
	}
}
