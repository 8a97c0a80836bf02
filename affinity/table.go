package affinity

import (
	"sync"
	"time"
)

// DefaultMaxEntries bounds a Table made with a non-positive size.
const DefaultMaxEntries = 65536

// Table is an expiring, size-bounded map from a client (K) to the endpoint
// it was sent to (V), the userspace counterpart of a kernel recent-list or
// dynamic set.
//
// A record set with timeout d at time now expires at now+d and is expired
// for every time at or after that instant (now >= expiry): Get no longer
// returns it. Setting a record again refreshes it. Time is passed in by
// the caller, which should not let it go backwards; if it does, Get still
// treats each record correctly, but Expire and eviction may remove an
// expired record late.
//
// When the table is full, Set first evicts an expired record if there is
// one, else the record least recently set or refreshed. Records are kept
// in one list per distinct timeout, ordered by when they were set, so the
// head of each list is both its oldest and its earliest to expire: every
// operation costs O(1) plus, for an eviction or Expire, the number of
// distinct timeouts in use (one per table, or a handful, in practice).
//
// A Table is safe for concurrent use. The zero Table is empty and ready
// to use, with DefaultMaxEntries as its bound.
type Table[K comparable, V any] struct {
	mu      sync.Mutex
	max     int
	seq     uint64 // counts Set calls; orders records across lists
	entries map[K]*entry[K, V]
	lists   map[time.Duration]*list[K, V]
}

type entry[K comparable, V any] struct {
	key        K
	val        V
	expires    time.Time
	seq        uint64
	list       *list[K, V]
	prev, next *entry[K, V]
}

// list is an intrusive doubly linked list of the records sharing one
// timeout, oldest first.
type list[K comparable, V any] struct {
	timeout    time.Duration
	head, tail *entry[K, V]
}

// NewTable returns an empty table holding at most maxEntries records, or
// DefaultMaxEntries if maxEntries is zero or negative.
func NewTable[K comparable, V any](maxEntries int) *Table[K, V] {
	return &Table[K, V]{max: maxEntries}
}

// Get returns the value recorded for k, and whether there is one that has
// not expired at now. An expired record is removed.
func (t *Table[K, V]) Get(k K, now time.Time) (V, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[k]
	if !ok {
		var zero V
		return zero, false
	}
	if e.expired(now) {
		t.remove(e)
		var zero V
		return zero, false
	}
	return e.val, true
}

// Set records v for k, or replaces and refreshes k's record, so that it
// expires at now+timeout. A timeout of zero or less removes k's record
// instead, since the record would be expired at once. If k is new and the
// table is full, Set evicts one record first (see Table).
func (t *Table[K, V]) Set(k K, v V, timeout time.Duration, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[k]
	if timeout <= 0 {
		if ok {
			t.remove(e)
		}
		return
	}
	if ok {
		t.detach(e)
	} else {
		if t.entries == nil {
			t.entries = make(map[K]*entry[K, V])
			t.lists = make(map[time.Duration]*list[K, V])
		}
		if len(t.entries) >= t.limit() {
			t.evict(now)
		}
		e = &entry[K, V]{key: k}
		t.entries[k] = e
	}
	t.seq++
	e.val, e.expires, e.seq = v, now.Add(timeout), t.seq
	l := t.lists[timeout]
	if l == nil {
		l = &list[K, V]{timeout: timeout}
		t.lists[timeout] = l
	}
	l.pushBack(e)
}

// Delete removes k's record and reports whether there was one, expired or
// not.
func (t *Table[K, V]) Delete(k K) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[k]
	if ok {
		t.remove(e)
	}
	return ok
}

// DeleteFunc removes every record for which del returns true, expired or
// not, and returns how many it removed. It is how a caller ends affinity
// to an endpoint that left the set in use (SEMANTICS §4). del is called
// with the table locked and must not call the table's methods.
func (t *Table[K, V]) DeleteFunc(del func(K, V) bool) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for k, e := range t.entries {
		if del(k, e.val) {
			t.remove(e)
			n++
		}
	}
	return n
}

// Expire removes every record expired at now and returns how many it
// removed. Calling it now and then bounds the memory held by clients that
// went away; Get and Set work correctly without it.
func (t *Table[K, V]) Expire(now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, l := range t.lists {
		for l.head != nil && l.head.expired(now) {
			t.remove(l.head) // may delete l from t.lists: allowed in range
			n++
		}
	}
	return n
}

// Len returns the number of records, including expired ones not removed
// yet.
func (t *Table[K, V]) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

func (t *Table[K, V]) limit() int {
	if t.max <= 0 {
		return DefaultMaxEntries
	}
	return t.max
}

// evict removes the oldest expired record if any, else the least recently
// set one. Only list heads need looking at: each is its list's oldest and
// earliest to expire.
func (t *Table[K, V]) evict(now time.Time) {
	var oldest, oldestExpired *entry[K, V]
	for _, l := range t.lists {
		h := l.head
		if oldest == nil || h.seq < oldest.seq {
			oldest = h
		}
		if h.expired(now) && (oldestExpired == nil || h.seq < oldestExpired.seq) {
			oldestExpired = h
		}
	}
	if oldestExpired != nil {
		oldest = oldestExpired
	}
	if oldest != nil {
		t.remove(oldest)
	}
}

// remove deletes e from the table.
func (t *Table[K, V]) remove(e *entry[K, V]) {
	t.detach(e)
	delete(t.entries, e.key)
}

// detach takes e off its list, and drops the list once it is empty so
// that every list in t.lists has a head.
func (t *Table[K, V]) detach(e *entry[K, V]) {
	l := e.list
	l.unlink(e)
	if l.head == nil {
		delete(t.lists, l.timeout)
	}
}

func (e *entry[K, V]) expired(now time.Time) bool { return !now.Before(e.expires) }

func (l *list[K, V]) pushBack(e *entry[K, V]) {
	e.list, e.prev, e.next = l, l.tail, nil
	if l.tail != nil {
		l.tail.next = e
	} else {
		l.head = e
	}
	l.tail = e
}

func (l *list[K, V]) unlink(e *entry[K, V]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.list, e.prev, e.next = nil, nil, nil
}
