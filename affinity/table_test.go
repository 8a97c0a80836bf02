package affinity

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func TestTableExpiryBoundary(t *testing.T) {
	tab := NewTable[string, string](0)
	tab.Set("client", "ep", 10*time.Second, t0)
	if v, ok := tab.Get("client", at(10*time.Second-time.Nanosecond)); !ok || v != "ep" {
		t.Fatalf("Get 1ns before expiry = %q, %v; want ep, true", v, ok)
	}
	if v, ok := tab.Get("client", at(10*time.Second)); ok {
		t.Fatalf("Get at expiry = %q, true; want absent (expired at now >= expiry)", v)
	}
	if n := tab.Len(); n != 0 {
		t.Errorf("Len after Get of an expired record = %d, want 0 (removed)", n)
	}
}

func TestTableRefreshExtends(t *testing.T) {
	tab := NewTable[string, string](0)
	tab.Set("c", "ep1", 10*time.Second, t0)
	tab.Set("c", "ep2", 10*time.Second, at(5*time.Second))
	if v, ok := tab.Get("c", at(14*time.Second)); !ok || v != "ep2" {
		t.Fatalf("Get after refresh = %q, %v; want ep2, true", v, ok)
	}
	if _, ok := tab.Get("c", at(15*time.Second)); ok {
		t.Fatal("Get at refreshed expiry: present, want absent")
	}

	// A refresh may change the timeout too.
	tab.Set("c", "ep3", time.Hour, at(20*time.Second))
	tab.Set("c", "ep3", time.Second, at(21*time.Second))
	if _, ok := tab.Get("c", at(22*time.Second)); ok {
		t.Error("record refreshed with a shorter timeout outlived it")
	}
	if n := len(tab.lists); n != 0 {
		t.Errorf("%d timeout lists left in an empty table, want 0", n)
	}
}

func TestTableSetNonPositiveTimeout(t *testing.T) {
	for _, timeout := range []time.Duration{0, -time.Second} {
		tab := NewTable[string, int](0)
		tab.Set("c", 1, time.Minute, t0)
		tab.Set("c", 2, timeout, t0)
		tab.Set("d", 3, timeout, t0)
		if n := tab.Len(); n != 0 {
			t.Errorf("timeout %v: Len = %d, want 0", timeout, n)
		}
	}
}

func TestTableEviction(t *testing.T) {
	type set struct {
		key     string
		timeout time.Duration
		at      time.Duration
	}
	tests := []struct {
		name    string
		max     int
		sets    []set
		evicted string
	}{{
		name:    "least recently set",
		max:     3,
		sets:    []set{{"a", time.Hour, 0}, {"b", time.Hour, 1}, {"c", time.Hour, 2}, {"d", time.Hour, 3}},
		evicted: "a",
	}, {
		name:    "refresh counts as use",
		max:     3,
		sets:    []set{{"a", time.Hour, 0}, {"b", time.Hour, 1}, {"c", time.Hour, 2}, {"a", time.Hour, 3}, {"d", time.Hour, 4}},
		evicted: "b",
	}, {
		name: "expired before least recently set",
		max:  3,
		sets: []set{
			{"a", time.Hour, 0}, {"b", time.Second, 1}, {"c", time.Hour, 2},
			{"d", time.Hour, 2 * time.Second},
		},
		evicted: "b",
	}, {
		name: "oldest of several expired",
		max:  3,
		sets: []set{
			{"a", time.Hour, 0}, {"b", 2 * time.Second, 1}, {"c", time.Second, 2},
			{"d", time.Hour, 3 * time.Second},
		},
		evicted: "b",
	}, {
		name:    "least recently set across timeouts",
		max:     2,
		sets:    []set{{"a", time.Minute, 0}, {"b", time.Hour, 1}, {"a", time.Minute, 2}, {"c", time.Second, 3}},
		evicted: "b",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := NewTable[string, int](tt.max)
			for i, s := range tt.sets {
				tab.Set(s.key, i, s.timeout, at(s.at))
			}
			if n := tab.Len(); n != tt.max {
				t.Errorf("Len = %d, want %d", n, tt.max)
			}
			checkInvariants(t, tab)
			for _, s := range tt.sets {
				_, ok := tab.entries[s.key] // expired or not
				if s.key == tt.evicted && ok {
					t.Errorf("%q present, want it evicted", s.key)
				}
				if s.key != tt.evicted && !ok {
					t.Errorf("%q absent, want only %q evicted", s.key, tt.evicted)
				}
			}
		})
	}
}

func TestTableDelete(t *testing.T) {
	tab := NewTable[string, int](0)
	tab.Set("a", 1, time.Second, t0)
	if !tab.Delete("a") {
		t.Error("Delete(a) = false, want true")
	}
	if tab.Delete("a") {
		t.Error("second Delete(a) = true, want false")
	}
	tab.Set("b", 1, time.Second, t0)
	if !tab.Delete("b") { // expired or not, it is there
		t.Error("Delete of an expired, unremoved record = false, want true")
	}
}

func TestTableDeleteFunc(t *testing.T) {
	tab := NewTable[string, string](0)
	for i, ep := range []string{"ep1", "ep2", "ep1", "ep3", "ep1"} {
		tab.Set(fmt.Sprint("client", i), ep, time.Minute, t0)
	}
	n := tab.DeleteFunc(func(_, ep string) bool { return ep == "ep1" })
	if n != 3 {
		t.Errorf("DeleteFunc removed %d, want 3", n)
	}
	if got := tab.Len(); got != 2 {
		t.Errorf("Len = %d, want 2", got)
	}
	for _, c := range []string{"client1", "client3"} {
		if _, ok := tab.Get(c, t0); !ok {
			t.Errorf("%s removed, want it kept", c)
		}
	}
	if n := tab.DeleteFunc(func(string, string) bool { return false }); n != 0 {
		t.Errorf("DeleteFunc(false) removed %d, want 0", n)
	}
}

func TestTableExpire(t *testing.T) {
	tab := NewTable[int, int](0)
	for i := range 10 {
		// Timeouts 1..5 s, two records each, set one second apart.
		tab.Set(i, i, time.Duration(i%5+1)*time.Second, at(time.Duration(i)*time.Second))
	}
	// Expiries: i + i%5 + 1 = 1,3,5,7,9,6,8,10,12,14 seconds.
	for _, tt := range []struct {
		at        time.Duration
		want, len int
	}{
		{0, 0, 10},
		{5*time.Second - 1, 2, 8},
		{5 * time.Second, 1, 7},
		{10 * time.Second, 5, 2},
		{time.Hour, 2, 0},
		{2 * time.Hour, 0, 0},
	} {
		if n := tab.Expire(at(tt.at)); n != tt.want {
			t.Errorf("Expire(+%v) = %d, want %d", tt.at, n, tt.want)
		}
		if n := tab.Len(); n != tt.len {
			t.Errorf("after Expire(+%v): Len = %d, want %d", tt.at, n, tt.len)
		}
	}
}

func TestTableDefaultSize(t *testing.T) {
	tables := map[string]*Table[int, int]{
		"zero":             NewTable[int, int](0),
		"negative":         NewTable[int, int](-1),
		"zero Table value": new(Table[int, int]),
	}
	for name, tab := range tables {
		t.Run(name, func(t *testing.T) {
			for i := range DefaultMaxEntries + 1 {
				tab.Set(i, i, time.Hour, t0)
			}
			if n := tab.Len(); n != DefaultMaxEntries {
				t.Errorf("Len = %d, want %d", n, DefaultMaxEntries)
			}
			if _, ok := tab.Get(0, t0); ok {
				t.Error("first record kept, want it evicted")
			}
			if _, ok := tab.Get(DefaultMaxEntries, t0); !ok {
				t.Error("last record absent")
			}
		})
	}
	var zero Table[int, int]
	if _, ok := zero.Get(1, t0); ok || zero.Len() != 0 || zero.Delete(1) || zero.Expire(t0) != 0 {
		t.Error("zero Table is not empty")
	}
}

func TestTableConcurrent(t *testing.T) {
	const max, workers, ops = 64, 8, 2000
	tab := NewTable[int, int](max)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range ops {
				now := at(time.Duration(i) * time.Millisecond)
				k := r.IntN(2 * max)
				switch r.IntN(6) {
				case 0, 1:
					tab.Set(k, w, time.Duration(1+r.IntN(50))*time.Millisecond, now)
				case 2:
					if v, ok := tab.Get(k, now); ok && (v < 0 || v >= workers) {
						t.Errorf("Get(%d) = %d, a value never set", k, v)
					}
				case 3:
					tab.Delete(k)
				case 4:
					tab.Expire(now)
				default:
					tab.DeleteFunc(func(k, _ int) bool { return k%17 == 0 })
				}
				if n := tab.Len(); n > max {
					t.Errorf("Len = %d, over the bound %d", n, max)
				}
			}
		})
	}
	wg.Wait()
	checkInvariants(t, tab)
}

// model is an obviously correct, O(n) Table to compare with.
type model struct {
	max  int
	seq  int
	recs map[int]modelRec
}

type modelRec struct {
	val, seq int
	expires  time.Time
}

func (m *model) set(k, v int, timeout time.Duration, now time.Time) {
	if timeout <= 0 {
		delete(m.recs, k)
		return
	}
	if _, ok := m.recs[k]; !ok && len(m.recs) >= m.max {
		victim, victimExpired := -1, false
		for k, r := range m.recs {
			exp := !now.Before(r.expires)
			better := victim < 0 || (exp && !victimExpired) ||
				(exp == victimExpired && r.seq < m.recs[victim].seq)
			if better {
				victim, victimExpired = k, exp
			}
		}
		delete(m.recs, victim)
	}
	m.seq++
	m.recs[k] = modelRec{v, m.seq, now.Add(timeout)}
}

func (m *model) get(k int, now time.Time) (int, bool) {
	r, ok := m.recs[k]
	if ok && !now.Before(r.expires) {
		delete(m.recs, k)
		return 0, false
	}
	return r.val, ok
}

func (m *model) expire(now time.Time) int {
	n := 0
	for k, r := range m.recs {
		if !now.Before(r.expires) {
			delete(m.recs, k)
			n++
		}
	}
	return n
}

// TestTableMatchesModel runs random operations, with time moving forward,
// against both the Table and the model.
func TestTableMatchesModel(t *testing.T) {
	const max = 8
	r := rand.New(rand.NewPCG(1, 2))
	tab := NewTable[int, int](max)
	m := &model{max: max, recs: map[int]modelRec{}}
	now := t0
	for i := range 20000 {
		now = now.Add(time.Duration(r.IntN(3)) * time.Second)
		k := r.IntN(3 * max)
		switch op := r.IntN(10); {
		case op < 5:
			timeout := time.Duration(r.IntN(4)) * 3 * time.Second // 0, 3, 6, 9 s
			tab.Set(k, i, timeout, now)
			m.set(k, i, timeout, now)
		case op < 8:
			v, ok := tab.Get(k, now)
			mv, mok := m.get(k, now)
			if v != mv || ok != mok {
				t.Fatalf("op %d: Get(%d) = %d, %v; model says %d, %v", i, k, v, ok, mv, mok)
			}
		case op < 9:
			if got, want := tab.Expire(now), m.expire(now); got != want {
				t.Fatalf("op %d: Expire = %d, model says %d", i, got, want)
			}
		default:
			if got, want := tab.Delete(k), m.recs[k] != (modelRec{}); got != want {
				t.Fatalf("op %d: Delete(%d) = %v, model says %v", i, k, got, want)
			}
			delete(m.recs, k)
		}
		if got, want := tab.Len(), len(m.recs); got != want {
			t.Fatalf("op %d: Len = %d, model says %d", i, got, want)
		}
	}
	checkInvariants(t, tab)
}

// checkInvariants checks that the lists hold exactly the map's records,
// in order of setting, and that no list is empty.
func checkInvariants[K comparable, V any](t *testing.T, tab *Table[K, V]) {
	t.Helper()
	tab.mu.Lock()
	defer tab.mu.Unlock()
	seen := 0
	for d, l := range tab.lists {
		if l.head == nil || l.timeout != d {
			t.Fatalf("list for %v: empty or mislabelled (%v)", d, l.timeout)
		}
		var prev *entry[K, V]
		for e := l.head; e != nil; prev, e = e, e.next {
			if e.prev != prev || e.list != l || tab.entries[e.key] != e {
				t.Fatalf("list for %v: broken links at %v", d, e.key)
			}
			if prev != nil && prev.seq >= e.seq {
				t.Fatalf("list for %v: out of order at %v", d, e.key)
			}
			seen++
		}
		if l.tail != prev {
			t.Fatalf("list for %v: wrong tail", d)
		}
	}
	if seen != len(tab.entries) {
		t.Fatalf("lists hold %d records, map %d", seen, len(tab.entries))
	}
}
