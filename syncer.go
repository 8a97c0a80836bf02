package proxykit

import (
	"context"
	"fmt"
)

// Syncer makes the kernel (or anything else) match a Snapshot. Sync is
// called by one goroutine at a time. A Syncer may use the snapshot's
// Changed set to do less work unless snap.Full() is set; it must leave
// the kernel matching the whole snapshot either way.
type Syncer interface {
	Sync(ctx context.Context, snap *Snapshot) error
}

// SyncerFunc adapts a function to a Syncer.
type SyncerFunc func(ctx context.Context, snap *Snapshot) error

// Sync calls f.
func (f SyncerFunc) Sync(ctx context.Context, snap *Snapshot) error { return f(ctx, snap) }

// Sequence returns a Syncer that runs each of syncers in order and stops
// at the first error, for example a rules backend followed by conntrack
// cleanup, which must run only after the rules are in place.
func Sequence(syncers ...Syncer) Syncer {
	s := append([]Syncer(nil), syncers...)
	return SyncerFunc(func(ctx context.Context, snap *Snapshot) error {
		for i, sy := range s {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := sy.Sync(ctx, snap); err != nil {
				return &SequenceError{Index: i, Err: err}
			}
		}
		return nil
	})
}

// SequenceError is the error of the Index'th syncer of a Sequence.
type SequenceError struct {
	Index int
	Err   error
}

func (e *SequenceError) Error() string { return fmt.Sprintf("syncer %d: %v", e.Index, e.Err) }

// Unwrap returns the syncer's error.
func (e *SequenceError) Unwrap() error { return e.Err }
