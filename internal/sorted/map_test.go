package sorted

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

// check verifies order, balance and size, and compares with a model.
func check(t *testing.T, m Map[int, int], model map[int]int) {
	t.Helper()
	if m.Len() != len(model) {
		t.Fatalf("Len() = %d, want %d", m.Len(), len(model))
	}
	var keys []int
	for k, v := range m.All() {
		if model[k] != v {
			t.Fatalf("value of %d = %d, want %d", k, v, model[k])
		}
		keys = append(keys, k)
	}
	if !slices.IsSorted(keys) || len(keys) != len(model) {
		t.Fatalf("keys not sorted or wrong count: %v", keys)
	}
	var depth func(n *node[int, int]) int8
	depth = func(n *node[int, int]) int8 {
		if n == nil {
			return 0
		}
		l, r := depth(n.left), depth(n.right)
		if l-r > 1 || r-l > 1 {
			t.Fatalf("unbalanced at %d: %d vs %d", n.key, l, r)
		}
		if h := max(l, r) + 1; h != n.height {
			t.Fatalf("height of %d = %d, want %d", n.key, n.height, h)
		}
		return n.height
	}
	depth(m.root)
	for k, v := range model {
		if got, ok := m.Get(k); !ok || got != v {
			t.Fatalf("Get(%d) = %d, %v; want %d", k, got, ok, v)
		}
	}
}

func TestRandomOperationsMatchModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	m := New[int, int](cmp.Compare[int])
	model := map[int]int{}
	var history []Map[int, int]
	var models []map[int]int
	for i := range 3000 {
		k := r.IntN(500)
		switch r.IntN(3) {
		case 0, 1:
			m = m.Set(k, i)
			model[k] = i
		case 2:
			m = m.Delete(k)
			delete(model, k)
		}
		if i%100 == 0 {
			check(t, m, model)
			history = append(history, m)
			models = append(models, clonemap(model))
		}
	}
	// Older versions are untouched by later changes.
	for i := range history {
		check(t, history[i], models[i])
	}
}

func clonemap(m map[int]int) map[int]int {
	c := make(map[int]int, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func TestApplyBothPaths(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, size := range []int{0, 1, 10, 1000} {
		for _, nEdits := range []int{1, 5, 50, 2000} {
			m := New[int, int](cmp.Compare[int])
			model := map[int]int{}
			for i := range size {
				m = m.Set(i*2, i)
				model[i*2] = i
			}
			before := clonemap(model)
			old := m
			var edits []Edit[int, int]
			for i := range nEdits {
				k := r.IntN(size*2 + 10)
				del := r.IntN(3) == 0
				edits = append(edits, Edit[int, int]{Key: k, Value: 1000 + i, Delete: del})
			}
			// Later edits of a key win.
			for _, e := range edits {
				if e.Delete {
					delete(model, e.Key)
				} else {
					model[e.Key] = e.Value
				}
			}
			m = m.Apply(edits)
			check(t, m, model)
			check(t, old, before)
		}
	}
}

func TestDeleteAbsentAndIterationStop(t *testing.T) {
	m := New[int, string](cmp.Compare[int]).Set(1, "a").Set(2, "b").Set(3, "c")
	if m2 := m.Delete(42); m2.Len() != 3 {
		t.Fatalf("deleting an absent key changed the size: %d", m2.Len())
	}
	var seen []int
	for k := range m.Keys() {
		seen = append(seen, k)
		if k == 2 {
			break
		}
	}
	if !slices.Equal(seen, []int{1, 2}) {
		t.Fatalf("early stop: got %v", seen)
	}
	var vals []string
	for v := range m.Values() {
		vals = append(vals, v)
	}
	if !slices.Equal(vals, []string{"a", "b", "c"}) {
		t.Fatalf("Values() = %v", vals)
	}
	if _, ok := m.Get(9); ok {
		t.Fatal("Get of an absent key reported ok")
	}
}

func BenchmarkSetInto30k(b *testing.B) {
	m := New[int, int](cmp.Compare[int])
	edits := make([]Edit[int, int], 30000)
	for i := range edits {
		edits[i] = Edit[int, int]{Key: i, Value: i}
	}
	m = m.Apply(edits)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = m.Set(i%30000, i)
	}
}

func TestFrom(t *testing.T) {
	m := New[int, int](cmp.Compare[int])
	for i := 0; i < 100; i += 2 {
		m = m.Set(i, i)
	}
	for _, from := range []int{-5, 0, 1, 37, 98, 99, 200} {
		var got []int
		for k := range m.From(from) {
			got = append(got, k)
		}
		var want []int
		for i := 0; i < 100; i += 2 {
			if i >= from {
				want = append(want, i)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("From(%d) = %v, want %v", from, got, want)
		}
	}
	n := 0
	for range m.From(10) {
		n++
		if n == 3 {
			break
		}
	}
	if n != 3 {
		t.Fatalf("early stop failed: %d", n)
	}
}

func TestGetSorted(t *testing.T) {
	m := New[int, int](cmp.Compare[int])
	for i := 0; i < 1000; i += 2 {
		m = m.Set(i, i*10)
	}
	// Few keys take the search path, many keys the walk; both must agree
	// with Get, including absent keys, duplicates and keys past the end.
	for _, keys := range [][]int{
		{3, 4, 998},
		{-1, 0, 0, 1, 2, 500, 997, 998, 999, 2000},
		func() []int {
			var ks []int
			for i := -5; i < 1010; i++ {
				ks = append(ks, i)
			}
			return ks
		}(),
	} {
		seen := 0
		m.GetSorted(keys, func(i int, v int, ok bool) {
			seen++
			wv, wok := m.Get(keys[i])
			if v != wv || ok != wok {
				t.Errorf("GetSorted key %d = %d, %v; Get says %d, %v", keys[i], v, ok, wv, wok)
			}
		})
		if seen != len(keys) {
			t.Errorf("fn called %d times for %d keys", seen, len(keys))
		}
	}
}
