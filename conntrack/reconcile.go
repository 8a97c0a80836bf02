package conntrack

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/proxykit/proxykit"
)

// reconcile dumps the flows of the families and protocols that have
// ports in scope, once each, and deletes the stale ones in batches while
// the dumps go on. s.mu must be held.
func (s *Syncer) reconcile(ctx context.Context, snap *proxykit.Snapshot, full bool, in covers) (Result, error) {
	start := time.Now()
	ix := buildIndex(snap, s.cfg, in)
	s.track(ix)
	res := Result{Full: full}
	err := s.run(ctx, ix, &res)
	res.Took, res.Err = time.Since(start), err
	s.dirty = err != nil
	if err == nil {
		s.retired = nil
	}
	s.log.Debug("conntrack: reconciled", "generation", snap.Generation(), "full", full,
		"dumped", res.Dumped, "stale", res.Stale, "deleted", res.Deleted, "failed", res.Failed, "took", res.Took)
	if s.observe != nil {
		s.observe(res)
	}
	return res, err
}

// track updates the known and retired frontends with ix's, and adds the
// retired ones to ix: a frontend that no port owns any more keeps its
// flows until a reconcile succeeds in deleting them.
func (s *Syncer) track(ix *index) {
	cur := ix.frontends()
	for _, fe := range s.known {
		if _, ok := slices.BinarySearchFunc(cur, fe, compareFrontends); !ok {
			s.retired = append(s.retired, fe)
		}
	}
	s.retired = slices.DeleteFunc(s.retired, func(fe frontend) bool {
		_, ok := slices.BinarySearchFunc(cur, fe, compareFrontends)
		return ok // owned again: judged by its new port
	})
	slices.SortFunc(s.retired, compareFrontends)
	s.retired = slices.Compact(s.retired)
	s.known = cur
	ix.retire(s.retired)
}

// run runs the dumps ix needs and deletes the stale flows they find, in
// batches of s.batch handed to a second goroutine as they fill up: the
// deletes overlap the dump, whose kernel side is most of the time. A
// failed batch does not stop the others.
func (s *Syncer) run(ctx context.Context, ix *index, res *Result) error {
	batches := make(chan []Flow, 4)
	var (
		wg   sync.WaitGroup
		errs []error
	)
	wg.Add(1)
	skipped := 0
	go func() { // owns res.Batches, Deleted, Failed, skipped and errs until wg.Wait
		defer wg.Done()
		for b := range batches {
			if ctx.Err() != nil {
				skipped += len(b) // drain
				continue
			}
			n, err := s.conn.Delete(ctx, b)
			res.Deleted += n
			if err != nil {
				res.Failed += len(b) - n
				errs = append(errs, &BatchError{Batch: res.Batches, Flows: len(b), Deleted: n, Err: err})
			}
			res.Batches++
		}
	}()
	cur := make([]Flow, 0, s.batch)
	var dumpErr error
	for _, flt := range ix.dumps() {
		res.Dumps++
		err := s.conn.Dump(ctx, flt, func(f *Flow) {
			res.Dumped++
			if !ix.stale(f) {
				return
			}
			res.Stale++
			cur = append(cur, *f)
			if len(cur) == s.batch {
				batches <- cur
				cur = make([]Flow, 0, s.batch)
			}
		})
		if err != nil {
			dumpErr = &DumpError{Filter: flt, Err: err}
			break
		}
	}
	if len(cur) > 0 {
		batches <- cur
	}
	close(batches)
	wg.Wait()
	for _, e := range errs {
		var be *BatchError
		if errors.As(e, &be) {
			be.Batches = res.Batches
		}
	}
	if skipped > 0 {
		res.Failed += skipped
		errs = append(errs, fmt.Errorf("conntrack: %d stale flows not deleted: %w", skipped, ctx.Err()))
	}
	return errors.Join(append([]error{dumpErr}, errs...)...)
}
