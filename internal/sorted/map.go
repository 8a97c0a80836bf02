// Package sorted provides Map, an immutable ordered map with structural
// sharing. It is what lets proxykit hand out immutable, sorted snapshots
// while an incremental change costs O(changes · log n) instead of O(n):
// an update copies only the path from the root to the changed keys, and
// every older Map value stays valid and unchanged.
//
// The tree is an AVL tree. Large batches of edits (Apply with many edits
// relative to the size) are merged and rebuilt in O(n + m) instead, which
// keeps bulk loads cheap in both time and garbage.
//
// Map values are safe for concurrent reads. They are never modified.
package sorted

import (
	"iter"
	"slices"
)

type node[K, V any] struct {
	key         K
	val         V
	left, right *node[K, V]
	height      int8
}

func height[K, V any](n *node[K, V]) int8 {
	if n == nil {
		return 0
	}
	return n.height
}

// Map is an immutable ordered map. The zero Map is not usable: make one
// with New. Methods that change the map return a new Map and leave the
// receiver as it was.
type Map[K, V any] struct {
	root *node[K, V]
	n    int
	cmp  func(a, b K) int
}

// New returns an empty Map ordered by cmp, which returns a negative
// number, zero or a positive number like strings.Compare.
func New[K, V any](cmp func(a, b K) int) Map[K, V] {
	return Map[K, V]{cmp: cmp}
}

// Len returns the number of keys.
func (m Map[K, V]) Len() int { return m.n }

// Get returns the value stored for k.
func (m Map[K, V]) Get(k K) (V, bool) {
	n := m.root
	for n != nil {
		c := m.cmp(k, n.key)
		switch {
		case c < 0:
			n = n.left
		case c > 0:
			n = n.right
		default:
			return n.val, true
		}
	}
	var zero V
	return zero, false
}

// GetSorted looks up keys, which must be sorted, and calls fn with the
// index of each key and its value. With many keys it walks the map once
// instead of searching for each, which makes a bulk lookup O(n + m).
func (m Map[K, V]) GetSorted(keys []K, fn func(i int, v V, ok bool)) {
	var zero V
	if len(keys)*log2(m.n+1) < m.n {
		for i, k := range keys {
			v, ok := m.Get(k)
			fn(i, v, ok)
		}
		return
	}
	i := 0
	walk(m.root, func(k K, v V) bool {
		for ; i < len(keys) && m.cmp(keys[i], k) < 0; i++ {
			fn(i, zero, false)
		}
		for ; i < len(keys) && m.cmp(keys[i], k) == 0; i++ {
			fn(i, v, true)
		}
		return i < len(keys)
	})
	for ; i < len(keys); i++ {
		fn(i, zero, false)
	}
}

// All yields the entries in key order.
func (m Map[K, V]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		walk(m.root, yield)
	}
}

// Keys yields the keys in order.
func (m Map[K, V]) Keys() iter.Seq[K] {
	return func(yield func(K) bool) {
		walk(m.root, func(k K, _ V) bool { return yield(k) })
	}
}

// Values yields the values in key order.
func (m Map[K, V]) Values() iter.Seq[V] {
	return func(yield func(V) bool) {
		walk(m.root, func(_ K, v V) bool { return yield(v) })
	}
}

// From yields the entries with keys at or after from, in order.
func (m Map[K, V]) From(from K) iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		m.walkFrom(m.root, from, yield)
	}
}

func (m Map[K, V]) walkFrom(n *node[K, V], from K, yield func(K, V) bool) bool {
	for n != nil {
		if m.cmp(n.key, from) < 0 {
			n = n.right
			continue
		}
		if !m.walkFrom(n.left, from, yield) || !yield(n.key, n.val) {
			return false
		}
		return walk(n.right, yield)
	}
	return true
}

func walk[K, V any](n *node[K, V], yield func(K, V) bool) bool {
	for n != nil {
		if !walk(n.left, yield) || !yield(n.key, n.val) {
			return false
		}
		n = n.right
	}
	return true
}

// Set returns a Map with k mapped to v.
func (m Map[K, V]) Set(k K, v V) Map[K, V] {
	root, added := m.insert(m.root, k, v)
	if added {
		m.n++
	}
	m.root = root
	return m
}

// Delete returns a Map without k. Deleting an absent key returns m.
func (m Map[K, V]) Delete(k K) Map[K, V] {
	root, removed := m.remove(m.root, k)
	if removed {
		m.n--
		m.root = root
	}
	return m
}

// Edit is one change for Apply: set Key to Value, or delete Key.
type Edit[K, V any] struct {
	Key    K
	Value  V
	Delete bool
}

// Apply returns a Map with all edits made. When a key appears more than
// once, the last edit wins. Apply sorts edits in place.
func (m Map[K, V]) Apply(edits []Edit[K, V]) Map[K, V] {
	if len(edits) == 0 {
		return m
	}
	byKey := func(a, b Edit[K, V]) int { return m.cmp(a.Key, b.Key) }
	if !slices.IsSortedFunc(edits, byKey) { // callers often pass sorted edits
		slices.SortStableFunc(edits, byKey)
	}
	// Keep the last edit of each key.
	out := edits[:0]
	for i := range edits {
		if len(out) > 0 && m.cmp(out[len(out)-1].Key, edits[i].Key) == 0 {
			out[len(out)-1] = edits[i]
			continue
		}
		out = append(out, edits[i])
	}
	edits = out
	// Path copying costs about log2(n) nodes per edit; a merge and rebuild
	// costs n nodes in all. Pick the cheaper.
	if len(edits)*log2(m.n+1) < m.n {
		for _, e := range edits {
			if e.Delete {
				m = m.Delete(e.Key)
			} else {
				m = m.Set(e.Key, e.Value)
			}
		}
		return m
	}
	return m.merge(edits)
}

func log2(n int) int {
	l := 1
	for n > 1 {
		n >>= 1
		l++
	}
	return l
}

// merge rebuilds the tree from its entries merged with sorted edits.
func (m Map[K, V]) merge(edits []Edit[K, V]) Map[K, V] {
	nodes := make([]node[K, V], 0, m.n+len(edits))
	i := 0
	emit := func(k K, v V) bool {
		for i < len(edits) && m.cmp(edits[i].Key, k) < 0 {
			if !edits[i].Delete {
				nodes = append(nodes, node[K, V]{key: edits[i].Key, val: edits[i].Value})
			}
			i++
		}
		if i < len(edits) && m.cmp(edits[i].Key, k) == 0 {
			if !edits[i].Delete {
				nodes = append(nodes, node[K, V]{key: k, val: edits[i].Value})
			}
			i++
			return true
		}
		nodes = append(nodes, node[K, V]{key: k, val: v})
		return true
	}
	walk(m.root, emit)
	for ; i < len(edits); i++ {
		if !edits[i].Delete {
			nodes = append(nodes, node[K, V]{key: edits[i].Key, val: edits[i].Value})
		}
	}
	m.root = build(nodes)
	m.n = len(nodes)
	return m
}

// build links a sorted slice of nodes into a balanced tree. The nodes are
// allocated together, so a bulk load costs one allocation.
func build[K, V any](nodes []node[K, V]) *node[K, V] {
	if len(nodes) == 0 {
		return nil
	}
	mid := len(nodes) / 2
	n := &nodes[mid]
	n.left = build(nodes[:mid])
	n.right = build(nodes[mid+1:])
	n.height = max(height(n.left), height(n.right)) + 1
	return n
}

func (m Map[K, V]) insert(n *node[K, V], k K, v V) (*node[K, V], bool) {
	if n == nil {
		return &node[K, V]{key: k, val: v, height: 1}, true
	}
	c := m.cmp(k, n.key)
	cp := *n
	if c == 0 {
		cp.key, cp.val = k, v
		return &cp, false
	}
	var added bool
	if c < 0 {
		cp.left, added = m.insert(n.left, k, v)
	} else {
		cp.right, added = m.insert(n.right, k, v)
	}
	return balance(&cp), added
}

func (m Map[K, V]) remove(n *node[K, V], k K) (*node[K, V], bool) {
	if n == nil {
		return nil, false
	}
	c := m.cmp(k, n.key)
	var removed bool
	cp := *n
	switch {
	case c < 0:
		cp.left, removed = m.remove(n.left, k)
	case c > 0:
		cp.right, removed = m.remove(n.right, k)
	default:
		if n.left == nil {
			return n.right, true
		}
		if n.right == nil {
			return n.left, true
		}
		// Replace with the smallest key of the right subtree.
		min := n.right
		for min.left != nil {
			min = min.left
		}
		cp.key, cp.val = min.key, min.val
		cp.right, _ = m.remove(n.right, min.key)
		removed = true
	}
	if !removed {
		return n, false
	}
	return balance(&cp), true
}

// balance restores the AVL invariant at n, which the caller owns (it is a
// fresh copy). The nodes a rotation changes are copied first.
func balance[K, V any](n *node[K, V]) *node[K, V] {
	fix(n)
	switch b := height(n.left) - height(n.right); {
	case b > 1:
		l := clone(n.left)
		if height(l.left) < height(l.right) {
			l.right = clone(l.right)
			l = rotateLeft(l)
		}
		n.left = l
		return rotateRight(n)
	case b < -1:
		r := clone(n.right)
		if height(r.right) < height(r.left) {
			r.left = clone(r.left)
			r = rotateRight(r)
		}
		n.right = r
		return rotateLeft(n)
	}
	return n
}

func clone[K, V any](n *node[K, V]) *node[K, V] {
	c := *n
	return &c
}

// rotateRight and rotateLeft take an owned node whose child on the rising
// side is owned too.
func rotateRight[K, V any](n *node[K, V]) *node[K, V] {
	l := n.left
	n.left = l.right
	fix(n)
	l.right = n
	fix(l)
	return l
}

func rotateLeft[K, V any](n *node[K, V]) *node[K, V] {
	r := n.right
	n.right = r.left
	fix(n)
	r.left = n
	fix(r)
	return r
}

func fix[K, V any](n *node[K, V]) {
	n.height = max(height(n.left), height(n.right)) + 1
}
