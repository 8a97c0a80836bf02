package nftables

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// Errors of the Fake, shaped like the kernel's.
var (
	ErrNotFound = errors.New("no such object")
	ErrBusy     = errors.New("object in use")
	ErrExists   = errors.New("object exists with other content")
)

// Fake is an in-memory Conn. Like the kernel it applies a transaction
// whole or not at all, and refuses references to missing chains and sets,
// deleting what is still referenced, and unknown elements. FailOn injects
// faults. It is safe for concurrent use.
type Fake struct {
	mu     sync.Mutex
	tables map[fakeKey]*fakeTable

	// FailOn, when set, is asked about each op of a transaction (its
	// index and the op); an error fails the whole transaction.
	FailOn func(i int, op Op) error
	// Transactions and Ops count the successful transactions and their
	// operations; LastOps is the last successful transaction.
	Transactions, Ops int
	LastOps           []Op
}

type fakeKey struct {
	fam  Family
	name string
}

type fakeTable struct {
	comment string
	chains  map[string]*Chain
	sets    map[string]*fakeSet
}

type fakeSet struct {
	def   Set // without Elements
	elems map[elementKey]Element
}

// NewFake returns an empty Fake.
func NewFake() *Fake { return &Fake{tables: map[fakeKey]*fakeTable{}} }

// Run applies ops to a copy of the state and keeps it only if every op
// succeeds.
func (f *Fake) Run(ctx context.Context, ops []Op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	next := make(map[fakeKey]*fakeTable, len(f.tables))
	for k, t := range f.tables {
		next[k] = t.clone()
	}
	for i, op := range ops {
		if f.FailOn != nil {
			if err := f.FailOn(i, op); err != nil {
				return fmt.Errorf("nftables: %s: %w", op, err)
			}
		}
		if err := applyOp(next, op); err != nil {
			return fmt.Errorf("nftables: %s: %w", op, err)
		}
	}
	f.tables = next
	f.Transactions++
	f.Ops += len(ops)
	f.LastOps = slices.Clone(ops)
	return nil
}

// List returns the chains and sets of a table, sorted.
func (f *Fake) List(ctx context.Context, fam Family, table string) (Listing, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tables[fakeKey{fam, table}]
	if t == nil {
		return Listing{}, nil
	}
	return Listing{Exists: true, Chains: slices.Sorted(maps.Keys(t.chains)), Sets: slices.Sorted(maps.Keys(t.sets))}, nil
}

// Table returns the table as the Fake holds it, sets and chains sorted by
// name, elements in key order; nil when absent.
func (f *Fake) Table(fam Family, name string) *Table {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tables[fakeKey{fam, name}]
	if t == nil {
		return nil
	}
	out := &Table{Family: fam, Name: name, Comment: t.comment}
	for _, n := range slices.Sorted(maps.Keys(t.sets)) {
		s := t.sets[n]
		def := s.def
		def.Elements = slices.SortedFunc(maps.Values(s.elems), compareElements)
		out.Sets = append(out.Sets, &def)
	}
	for _, n := range slices.Sorted(maps.Keys(t.chains)) {
		c := *t.chains[n]
		out.Chains = append(out.Chains, &c)
	}
	return out
}

func (t *fakeTable) clone() *fakeTable {
	c := &fakeTable{comment: t.comment, chains: maps.Clone(t.chains), sets: make(map[string]*fakeSet, len(t.sets))}
	for n, s := range t.sets {
		c.sets[n] = &fakeSet{def: s.def, elems: maps.Clone(s.elems)}
	}
	return c
}

func applyOp(tables map[fakeKey]*fakeTable, op Op) error {
	key := fakeKey{op.Family, op.Table}
	t := tables[key]
	switch op.Kind {
	case AddTable:
		if t == nil {
			tables[key] = &fakeTable{comment: op.Comment, chains: map[string]*Chain{}, sets: map[string]*fakeSet{}}
		}
		return nil
	case DeleteTable:
		if t == nil {
			return ErrNotFound
		}
		delete(tables, key)
		return nil
	}
	if t == nil {
		return fmt.Errorf("table: %w", ErrNotFound)
	}
	switch op.Kind {
	case AddChain, FlushChain, DeleteChain, AddRule:
		return t.chainOp(op)
	case AddSet, FlushSet, DeleteSet, AddElements, DeleteElements:
		return t.setOp(op)
	}
	return fmt.Errorf("unknown op kind %d", op.Kind)
}

func (t *fakeTable) chainOp(op Op) error {
	c, ok := t.chains[op.Name]
	if op.Kind == AddChain {
		if !ok {
			t.chains[op.Name] = &Chain{Name: op.Name, Hook: op.Chain.Hook}
		}
		return nil
	}
	if !ok {
		return ErrNotFound
	}
	switch op.Kind {
	case FlushChain:
		t.chains[op.Name] = &Chain{Name: c.Name, Hook: c.Hook}
	case DeleteChain:
		if len(c.Rules) > 0 || t.chainReferenced(op.Name) {
			return ErrBusy
		}
		delete(t.chains, op.Name)
	case AddRule:
		chains, sets := ruleRefs(op.Rule)
		if err := t.check(chains, sets); err != nil {
			return err
		}
		nc := *c
		nc.Rules = append(slices.Clip(nc.Rules), op.Rule)
		t.chains[op.Name] = &nc
	}
	return nil
}

func (t *fakeTable) setOp(op Op) error {
	s, ok := t.sets[op.Name]
	if op.Kind == AddSet {
		def := *op.Set
		def.Elements = nil
		if ok && (s.def.Type != def.Type || s.def.Data != def.Data) {
			return ErrExists
		}
		if !ok {
			t.sets[op.Name] = &fakeSet{def: def, elems: map[elementKey]Element{}}
		}
		return nil
	}
	if !ok {
		return ErrNotFound
	}
	switch op.Kind {
	case FlushSet:
		clear(s.elems)
	case DeleteSet:
		if t.setReferenced(op.Name) {
			return ErrBusy
		}
		delete(t.sets, op.Name)
	case AddElements:
		return t.addElements(s, op.Elements)
	case DeleteElements:
		for _, e := range op.Elements {
			if _, ok := s.elems[e.key()]; !ok {
				return fmt.Errorf("element %s: %w", e, ErrNotFound)
			}
			delete(s.elems, e.key())
		}
	}
	return nil
}

func (t *fakeTable) addElements(s *fakeSet, es []Element) error {
	for _, e := range es {
		if e.Verdict != nil && e.Verdict.Chain != "" {
			if _, ok := t.chains[e.Verdict.Chain]; !ok {
				return fmt.Errorf("element %s: chain: %w", e, ErrNotFound)
			}
		}
		if old, ok := s.elems[e.key()]; ok && old.String() != e.String() {
			return fmt.Errorf("element %s: %w", e, ErrExists)
		}
		s.elems[e.key()] = e
	}
	return nil
}

func (t *fakeTable) check(chains, sets []string) error {
	for _, c := range chains {
		if _, ok := t.chains[c]; !ok {
			return fmt.Errorf("chain %q: %w", c, ErrNotFound)
		}
	}
	for _, s := range sets {
		if _, ok := t.sets[s]; !ok {
			return fmt.Errorf("set %q: %w", s, ErrNotFound)
		}
	}
	return nil
}

// chainReferenced and setReferenced report whether a rule (or, for a
// chain, a verdict-map element) still refers to the object: the kernel
// refuses to delete it then.
func (t *fakeTable) chainReferenced(name string) bool {
	for _, s := range t.sets {
		for _, e := range s.elems {
			if e.Verdict != nil && e.Verdict.Chain == name {
				return true
			}
		}
	}
	return t.ruleRefers(func(chains, _ []string) bool { return slices.Contains(chains, name) })
}

func (t *fakeTable) setReferenced(name string) bool {
	return t.ruleRefers(func(_, sets []string) bool { return slices.Contains(sets, name) })
}

// ruleRefers reports whether match holds for the references of any rule.
func (t *fakeTable) ruleRefers(match func(chains, sets []string) bool) bool {
	for _, c := range t.chains {
		for _, r := range c.Rules {
			if match(ruleRefs(r)) {
				return true
			}
		}
	}
	return false
}

// ruleRefs returns the chains and named sets a rule refers to.
func ruleRefs(r Rule) (chains, sets []string) {
	for _, st := range r {
		switch s := st.(type) {
		case Verdict:
			if s.Chain != "" {
				chains = append(chains, s.Chain)
			}
		case SaddrInSet:
			sets = append(sets, s.Set)
		case DaddrInSet:
			sets = append(sets, s.Set)
		case SaddrDaddrInSet:
			sets = append(sets, s.Set)
		case VmapDaddrProtoPort:
			sets = append(sets, s.Map)
		case VmapProtoPort:
			sets = append(sets, s.Map)
		case UpdateSaddr:
			sets = append(sets, s.Set)
		case DnatMap:
			sets = append(sets, s.Map)
		}
	}
	return chains, sets
}
