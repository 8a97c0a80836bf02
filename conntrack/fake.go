package conntrack

import (
	"context"
	"slices"
	"sync"
)

// Fake is an in-memory conntrack table, a Conn for tests. Like the kernel
// it filters dumps by family and protocol, matches a delete by original
// tuple and zone (and ID when the delete carries one), and ignores
// deletes of flows that are gone. Flows without an ID get one when added.
// It is safe for concurrent use.
type Fake struct {
	mu     sync.Mutex
	flows  []Flow
	nextID uint32

	// Unfiltered makes Dump return every flow of the family, like a
	// kernel without dump filters.
	Unfiltered bool
	// FailDump, when set, is asked before each dump; an error fails it.
	FailDump func(Filter) error
	// FailDelete, when set, is asked before each delete with its batch
	// (the n-th call, from 0); an error fails the batch, which deletes
	// nothing.
	FailDelete func(n int, batch []Flow) error

	dumps, deletes int
}

// NewFake returns a Fake holding flows.
func NewFake(flows ...Flow) *Fake {
	f := &Fake{}
	f.Add(flows...)
	return f
}

// Add adds flows to the table.
func (f *Fake) Add(flows ...Flow) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fl := range flows {
		if fl.ID == 0 {
			f.nextID++
			fl.ID = f.nextID
		}
		f.flows = append(f.flows, fl)
	}
}

// Flows returns the table's flows, in the order they were added.
func (f *Fake) Flows() []Flow {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.flows)
}

// Calls returns the number of Dump and Delete calls so far, failed ones
// included.
func (f *Fake) Calls() (dumps, deletes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dumps, f.deletes
}

// Dump calls fn with a copy of each flow that flt selects (of the
// family, when Unfiltered).
func (f *Fake) Dump(ctx context.Context, flt Filter, fn func(*Flow)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	f.dumps++
	if f.FailDump != nil {
		if err := f.FailDump(flt); err != nil {
			f.mu.Unlock()
			return err
		}
	}
	var out []Flow
	for _, fl := range f.flows {
		if fl.Family() == flt.Family && (f.Unfiltered || fl.Proto == flt.Proto && (flt.Port == 0 || fl.Orig.Dst.Port() == flt.Port)) {
			out = append(out, fl)
		}
	}
	f.mu.Unlock()
	for i := range out {
		fn(&out[i])
	}
	return nil
}

// Delete deletes the flows it finds and returns how many.
func (f *Fake) Delete(ctx context.Context, flows []Flow) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.deletes
	f.deletes++
	if f.FailDelete != nil {
		if err := f.FailDelete(n, flows); err != nil {
			return 0, err
		}
	}
	deleted := 0
	for _, d := range flows {
		i := slices.IndexFunc(f.flows, func(fl Flow) bool {
			return fl.Proto == d.Proto && fl.Orig == d.Orig && fl.Zone == d.Zone && (d.ID == 0 || fl.ID == d.ID)
		})
		if i >= 0 {
			f.flows = slices.Delete(f.flows, i, i+1)
			deleted++
		}
	}
	return deleted, nil
}
