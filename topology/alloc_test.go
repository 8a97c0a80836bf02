package topology

import (
	"fmt"
	"testing"

	"github.com/proxykit/proxykit/endpoints"
)

// aliases reports whether a and b share an element.
func aliases(a, b []endpoints.Endpoint) bool {
	for i := range a {
		for j := range b {
			if &a[i] == &b[j] {
				return true
			}
		}
	}
	return false
}

func TestCategorizeAliasing(t *testing.T) {
	allReady := make([]endpoints.Endpoint, 3, 10)
	for i := range allReady {
		allReady[i] = ep(byte(i+1), ready, on([]string{"n1", "n2", "n2"}[i]))
	}
	oneUnready := eps(ep(1, ready, on("n1")), ep(2), ep(3, ready, on("n2")))
	disjoint := eps(ep(1, ready, on("n2"), zh("z1")), ep(2, ready, on("n1"), zh("z2")))

	t.Run("no filtering: eps itself, capacity cut", func(t *testing.T) {
		r := Categorize(internalCluster, allReady, node1)
		if &r.Cluster[0] != &allReady[0] || len(r.Cluster) != 3 || cap(r.Cluster) != 3 {
			t.Errorf("Cluster does not alias eps[:3:3] (len %d cap %d)", len(r.Cluster), cap(r.Cluster))
		}
		if &r.All[0] != &allReady[0] || cap(r.All) != 3 {
			t.Errorf("All does not alias eps[:3:3]")
		}
		if n := testing.AllocsPerRun(100, func() { Categorize(internalCluster, allReady, node1) }); n != 0 {
			t.Errorf("Categorize() allocates %v times, want 0", n)
		}
	})
	t.Run("local contained in cluster: All shares Cluster", func(t *testing.T) {
		r := Categorize(externalLocalNodePort, allReady, node1)
		if &r.All[0] != &r.Cluster[0] || &r.Cluster[0] != &allReady[0] {
			t.Errorf("All does not share Cluster, which aliases eps")
		}
		if aliases(r.Local, allReady) {
			t.Errorf("the filtered Local set aliases eps")
		}
	})
	t.Run("filtering copies", func(t *testing.T) {
		r := Categorize(externalLocalNodePort, oneUnready, node1)
		if aliases(r.Cluster, oneUnready) || aliases(r.Local, oneUnready) || aliases(r.All, oneUnready) {
			t.Errorf("a filtered set aliases eps")
		}
	})
	t.Run("a union is a copy", func(t *testing.T) {
		r := Categorize(externalLocalNodePort, disjoint, node1)
		if fmtSet(r.All) != "1 2" {
			t.Fatalf("All = %s, want 1 2", fmtSet(r.All))
		}
		if aliases(r.All, disjoint) || aliases(r.All, r.Cluster) || aliases(r.All, r.Local) {
			t.Errorf("All aliases eps or a set")
		}
	})
	t.Run("empty sets are non-nil and alias nothing", func(t *testing.T) {
		r := Categorize(externalLocalNodePort, eps(ep(1)), node1)
		if r.Cluster == nil || r.Local == nil || r.All == nil || cap(r.Cluster) != 0 {
			t.Errorf("Categorize() = %v, want empty non-nil sets with no capacity", fmtResult(r))
		}
	})
}

func BenchmarkCategorize(b *testing.B) {
	list := make([]endpoints.Endpoint, 10)
	for i := range list {
		list[i] = ep(byte(i+1), ready, on(fmt.Sprintf("n%d", i)))
	}
	b.ReportAllocs()
	for b.Loop() {
		if r := Categorize(internalCluster, list, node1); len(r.All) != 10 {
			b.Fatalf("len(All) = %d", len(r.All))
		}
	}
}

// BenchmarkCategorizeExternalLocal is the costlier common case: both sets
// in use, so the Local set is a copy.
func BenchmarkCategorizeExternalLocal(b *testing.B) {
	list := make([]endpoints.Endpoint, 10)
	for i := range list {
		list[i] = ep(byte(i+1), ready, on(fmt.Sprintf("n%d", i)))
	}
	b.ReportAllocs()
	for b.Loop() {
		if r := Categorize(externalLocalNodePort, list, node1); len(r.Local) != 1 {
			b.Fatalf("len(Local) = %d", len(r.Local))
		}
	}
}
