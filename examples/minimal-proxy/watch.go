package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"reflect"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/k8s"
)

// fileState is what the watcher knows of one manifest file: its size and
// modification time when it was last read, and the objects of its last
// good version.
type fileState struct {
	size    int64
	mtime   time.Time
	objects *objects
	bad     bool // the last version read failed
}

// watcher polls a manifest file or directory and hands the differences
// to a k8s.Handler (a *proxykit.Proxy). A file that fails to parse or
// convert is logged and keeps its previous objects in force, so the
// rules stay as they were.
type watcher struct {
	path     string
	nodeName string
	h        k8s.Handler
	log      *slog.Logger
	// nodeHook adjusts the node before SetNode (the local addresses).
	nodeHook func(proxykit.Node) proxykit.Node
	// onError is called with each error, for tests and metrics.
	onError func(error)

	files map[string]*fileState
	cur   *objects // what h has
	node  proxykit.Node
}

func newWatcher(path, nodeName string, h k8s.Handler, log *slog.Logger) *watcher {
	return &watcher{path: path, nodeName: nodeName, h: h, log: log, files: map[string]*fileState{}, cur: newObjects()}
}

// run polls every interval until ctx is done.
func (w *watcher) run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			w.poll()
		}
	}
}

// poll reads the files that changed since the last poll and hands over
// what changed. It reports whether anything was handed over.
func (w *watcher) poll() bool {
	names, err := manifestFiles(w.path)
	if err != nil {
		w.report(err)
		return false
	}
	seen := map[string]bool{}
	changed := false
	for _, f := range names {
		seen[f] = true
		if w.read(f) {
			changed = true
		}
	}
	for f := range w.files {
		if !seen[f] {
			delete(w.files, f)
			changed = true
		}
	}
	if !changed {
		return false
	}
	next := newObjects()
	for _, f := range names {
		if st := w.files[f]; st != nil && st.objects != nil {
			for _, err := range next.merge(f, st.objects) {
				w.report(err)
			}
		}
	}
	return w.apply(next)
}

// read rereads f if its size or mtime changed, and reports whether its
// objects changed.
func (w *watcher) read(f string) bool {
	fi, err := os.Stat(f)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			w.report(err)
		}
		return false
	}
	st := w.files[f]
	if st != nil && st.size == fi.Size() && st.mtime.Equal(fi.ModTime()) {
		return false
	}
	if st == nil {
		st = &fileState{}
		w.files[f] = st
	}
	st.size, st.mtime = fi.Size(), fi.ModTime()
	data, err := os.ReadFile(f)
	if err == nil {
		var o *objects
		o, err = parseFile(f, data)
		if err == nil {
			if st.bad {
				w.log.Info("manifest fixed", "file", f)
			}
			st.objects, st.bad = o, false
			return true
		}
	}
	st.bad = true
	for _, e := range unjoin(err) {
		w.report(e)
	}
	if st.objects != nil {
		w.log.Warn("keeping the previous version of the file", "file", f)
	}
	return false
}

func (w *watcher) report(err error) {
	w.log.Error("bad manifest", "error", err)
	if w.onError != nil {
		w.onError(err)
	}
}

// unjoin splits an errors.Join.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// apply hands the differences between w.cur and next to the handler and
// reports whether there were any.
func (w *watcher) apply(next *objects) bool {
	changed := false
	for k, prev := range w.cur.services {
		if _, ok := next.services[k]; !ok {
			w.h.OnServiceDelete(prev)
			changed = true
		}
	}
	for _, k := range sortedKeys(next.services) {
		cur, prev := next.services[k], w.cur.services[k]
		if prev != nil && reflect.DeepEqual(prev, cur) {
			next.services[k] = prev
			continue
		}
		if err := w.h.OnServiceUpdate(prev, cur); err != nil {
			w.report(err)
			if prev != nil {
				next.services[k] = prev
			} else {
				delete(next.services, k)
			}
			continue
		}
		changed = true
	}
	for k, prev := range w.cur.slices {
		if _, ok := next.slices[k]; !ok {
			w.h.OnSliceDelete(prev)
			changed = true
		}
	}
	for _, k := range sortedKeys(next.slices) {
		cur, prev := next.slices[k], w.cur.slices[k]
		if prev != nil && reflect.DeepEqual(prev, cur) {
			continue
		}
		if err := w.h.OnSliceUpdate(cur); err != nil {
			w.report(err)
			if prev != nil {
				next.slices[k] = prev
			} else {
				delete(next.slices, k)
			}
			continue
		}
		changed = true
	}
	node := next.node(w.nodeName)
	if w.nodeHook != nil {
		node = w.nodeHook(node)
	}
	if !node.Equal(w.node) {
		w.node = node
		w.h.SetNode(node)
		changed = true
	}
	w.cur = next
	return changed
}
