package nftables

import (
	"context"
	"fmt"
)

// OpKind is the kind of one operation of a transaction.
type OpKind uint8

// The operations a sync is made of.
const (
	// AddTable creates the table if it does not exist (Table.Comment set).
	AddTable OpKind = iota + 1
	// DeleteTable deletes the table and everything in it.
	DeleteTable
	// AddChain creates Chain (a base chain when Chain.Hook is set) if it
	// does not exist. Its Rules are ignored: AddRule adds them.
	AddChain
	// FlushChain deletes every rule of chain Name.
	FlushChain
	// DeleteChain deletes chain Name, which must have no rules and no
	// references left.
	DeleteChain
	// AddRule appends Rule to chain Name.
	AddRule
	// AddSet creates Set (without its Elements) if it does not exist.
	AddSet
	// FlushSet deletes every element of set Name.
	FlushSet
	// DeleteSet deletes set Name.
	DeleteSet
	// AddElements adds Elements to set Name.
	AddElements
	// DeleteElements deletes Elements (keys only) from set Name.
	DeleteElements
)

var opNames = [...]string{"", "add table", "delete table", "add chain", "flush chain", "delete chain",
	"add rule", "add set", "flush set", "delete set", "add elements", "delete elements"}

func (k OpKind) String() string {
	if int(k) < len(opNames) {
		return opNames[k]
	}
	return fmt.Sprintf("OpKind(%d)", k)
}

// Op is one operation on one table.
type Op struct {
	Kind     OpKind
	Family   Family
	Table    string
	Name     string // chain or set name, for all but the table ops
	Comment  string // AddTable
	Chain    *Chain // AddChain
	Rule     Rule   // AddRule
	Set      *Set   // AddSet
	Elements []Element
}

func (o Op) String() string {
	s := fmt.Sprintf("%s %s %s", o.Kind, o.Family, o.Table)
	if o.Name != "" {
		s += " " + o.Name
	}
	switch o.Kind {
	case AddRule:
		s += " { " + o.Rule.text(o.Family) + " }"
	case AddElements, DeleteElements:
		s += fmt.Sprintf(" (%d elements)", len(o.Elements))
	}
	return s
}

// Conn is the kernel access of the backend: a small interface with a real
// implementation over netlink and an in-memory Fake.
type Conn interface {
	// Run applies ops as one transaction: all of them, or on error none.
	Run(ctx context.Context, ops []Op) error
	// List returns the names of the chains and sets of a table, and
	// whether the table exists.
	List(ctx context.Context, fam Family, table string) (Listing, error)
}

// Listing is what a table holds, by name.
type Listing struct {
	Exists bool
	Chains []string
	Sets   []string
}
