package conntrack

import (
	"errors"
	"fmt"
)

// ErrNoResync is returned by Run when the Syncer has no resync interval
// (WithResync).
var ErrNoResync = errors.New("conntrack: no resync interval: Run needs WithResync")

// DumpError is the failure of a dump: nothing is deleted then.
type DumpError struct {
	Filter Filter
	Err    error
}

func (e *DumpError) Error() string {
	return fmt.Sprintf("conntrack: dump %s flows: %v", e.Filter, e.Err)
}

// Unwrap returns the Conn's error.
func (e *DumpError) Unwrap() error { return e.Err }

// BatchError is the failure of one batch of deletions. The other batches
// of the reconcile were still sent; the next reconcile covers every port
// and deletes what is still stale.
type BatchError struct {
	// Batch is the batch's index among Batches.
	Batch, Batches int
	// Flows is the batch's size, Deleted how many of them were deleted.
	Flows, Deleted int
	Err            error
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("conntrack: delete batch %d of %d (%d flows, %d deleted): %v",
		e.Batch+1, e.Batches, e.Flows, e.Deleted, e.Err)
}

// Unwrap returns the Conn's error.
func (e *BatchError) Unwrap() error { return e.Err }
