package k8s_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/k8s"
)

// describe prints the Cluster set of every port of a snapshot, one line
// per family and port.
func describe(snap *proxykit.Snapshot) string {
	if snap == nil {
		return "<no snapshot>"
	}
	var lines []string
	for _, fam := range proxykit.Families {
		for ps := range snap.Family(fam).Ports() {
			var eps []string
			for _, e := range ps.Endpoints.Cluster {
				eps = append(eps, e.AddrPort().String())
			}
			lines = append(lines, fmt.Sprintf("%v %v -> %s", ps.Name, ps.ClusterIP, strings.Join(eps, " ")))
		}
	}
	return fmt.Sprintf("node=%s/%s %s", snap.Node().Name, snap.Node().Zone, strings.Join(lines, "; "))
}

// A Source feeding a real Proxy from a fake clientset: dual stack, zone
// hints, node zone from the Node object, and an update.
func TestSourceFeedsProxy(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{
			ClusterIP:  "10.96.0.10",
			ClusterIPs: []string{"10.96.0.10", "fd00:10:96::a"},
			Ports:      []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}},
		},
	}
	slice := func(name string, typ discoveryv1.AddressType, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name,
				Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
			AddressType: typ,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Protocol: ptr(corev1.ProtocolTCP), Port: ptr[int32](8080)}},
			Endpoints:   eps,
		}
	}
	ep := func(addr, zone string) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: []string{addr}, Zone: ptr(zone),
			Hints: &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: zone}}}}
	}
	v4 := slice("web-v4", discoveryv1.AddressTypeIPv4, ep("10.244.1.5", "zone-1"), ep("10.244.2.5", "zone-2"))
	v6 := slice("web-v6", discoveryv1.AddressTypeIPv6, ep("fd00:244::5", "zone-1"))
	nodeA := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{k8s.LabelZone: "zone-1"}},
		Status:     corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.10"}}},
	}
	client := fake.NewClientset(svc, v4, v6, nodeA)

	var last atomic.Pointer[proxykit.Snapshot]
	syncer := proxykit.SyncerFunc(func(_ context.Context, snap *proxykit.Snapshot) error {
		last.Store(snap)
		return nil
	})
	p := proxykit.New(proxykit.Node{Name: "node-a"}, syncer, proxykit.WithMinSyncInterval(0))
	src := k8s.NewSource(client, p, k8s.WithNodeName("node-a"),
		k8s.WithErrorHandler(func(err error) { t.Errorf("source error: %v", err) }))

	srcDone := make(chan error, 1)
	go func() { srcDone <- src.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := src.WaitForSync(wctx); err != nil {
		t.Fatal(err)
	}
	proxyDone := make(chan error, 1)
	go func() { proxyDone <- p.Run(ctx) }()

	// The zone hints keep the zone-2 endpoint out of node-a's Cluster set.
	want := "node=node-a/zone-1 default/web:http/TCP 10.96.0.10 -> 10.244.1.5:8080; " +
		"default/web:http/TCP fd00:10:96::a -> [fd00:244::5]:8080"
	waitSnapshot(t, &last, want)

	// Without hints on one endpoint, hints are ignored (SEMANTICS §2).
	v4.Endpoints[1].Hints = nil
	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, v4, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want = "node=node-a/zone-1 default/web:http/TCP 10.96.0.10 -> 10.244.1.5:8080 10.244.2.5:8080; " +
		"default/web:http/TCP fd00:10:96::a -> [fd00:244::5]:8080"
	waitSnapshot(t, &last, want)

	// The service goes away, and so do its rules.
	if err := client.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, &last, "node=node-a/zone-1 ")

	cancel()
	for _, done := range []chan error{srcDone, proxyDone} {
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run() = %v, want context.Canceled", err)
		}
	}
	if err := p.Healthy(); err != nil {
		t.Errorf("Healthy() = %v", err)
	}
}

func waitSnapshot(t *testing.T, last *atomic.Pointer[proxykit.Snapshot], want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := describe(last.Load())
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshot:\n got %s\nwant %s", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
