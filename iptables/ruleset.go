package iptables

import (
	"bytes"
	"io"
	"strings"

	"github.com/proxykit/proxykit"
)

// Table names.
const (
	tableNAT    = "nat"
	tableFilter = "filter"
)

// Ruleset is the desired state of the chains the backend owns: for each
// family, the nat and the filter table. Its String is byte-identical for
// the same snapshot and config.
type Ruleset struct {
	// Tables are IPv4 nat, IPv4 filter, IPv6 nat and IPv6 filter.
	Tables []*Table
}

// String returns every table's restore input, each family introduced by
// a comment line ("# IPv4"), which iptables-restore ignores.
func (r *Ruleset) String() string {
	var b strings.Builder
	last := proxykit.Family(0)
	for _, t := range r.Tables {
		if t.Family != last {
			b.WriteString("# " + t.Family.String() + "\n")
			last = t.Family
		}
		_, _ = t.WriteTo(&b)
	}
	return b.String()
}

// Table returns the table of family f called name ("nat" or "filter"), or
// nil.
func (r *Ruleset) Table(f proxykit.Family, name string) *Table {
	for _, t := range r.Tables {
		if t.Family == f && t.Name == name {
			return t
		}
	}
	return nil
}

// Table is one table of one family: exactly the input of
// `iptables-restore --noflush` (ip6tables-restore for IPv6) that programs
// it. It declares every owned chain (which creates it, or flushes it when
// it exists) and then appends every rule, in iptables-save syntax.
type Table struct {
	Family proxykit.Family
	Name   string   // "nat" or "filter"
	decls  [][]byte // ":CHAIN - [0:0]" lines, in chunks
	rules  [][]byte // "-A CHAIN …" lines, in chunks
}

// Size returns the length of the restore input in bytes.
func (t *Table) Size() int {
	n := len(t.Name) + 9
	for _, c := range t.decls {
		n += len(c)
	}
	for _, c := range t.rules {
		n += len(c)
	}
	return n
}

// String returns the restore input.
func (t *Table) String() string {
	var b strings.Builder
	b.Grow(t.Size())
	_, _ = t.WriteTo(&b)
	return b.String()
}

// WriteTo writes the restore input to w.
func (t *Table) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for _, p := range t.parts(nil, nil) {
		k, err := w.Write(p)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// parts returns the restore input in pieces, with extra declarations
// after the table's and extra lines after its rules (a full sync's stale
// chains), without copying.
func (t *Table) parts(extraDecls, extraRules []byte) [][]byte {
	out := make([][]byte, 0, len(t.decls)+len(t.rules)+4)
	out = append(out, []byte("*"+t.Name+"\n"))
	out = append(out, t.decls...)
	out = append(out, extraDecls)
	out = append(out, t.rules...)
	return append(out, extraRules, []byte("COMMIT\n"))
}

// Chains returns the names of the chains the table declares, in order.
func (t *Table) Chains() []string {
	var out []string
	for _, c := range t.decls {
		out = append(out, chainsOf(c)...)
	}
	return out
}

// chunkSize is the size of the buffers rules are written into: a large
// ruleset grows by adding chunks, never by copying what is written.
const chunkSize = 1 << 20

// chunkBuf is a buffer in chunks. Writers append to cur; rotate starts a
// new chunk, at a line boundary, once cur is nearly full.
type chunkBuf struct {
	full [][]byte
	cur  []byte
}

func (c *chunkBuf) rotate() {
	if len(c.cur) >= chunkSize-64<<10 {
		c.full = append(c.full, c.cur)
		c.cur = make([]byte, 0, chunkSize)
	}
}

func (c *chunkBuf) chunks() [][]byte {
	return append(c.full[:len(c.full):len(c.full)], c.cur)
}

func (c *chunkBuf) bytes() []byte { return bytes.Join(c.chunks(), nil) }

// chainsOf returns the chain names of ":NAME …" lines.
func chainsOf(decls []byte) []string {
	out := make([]string, 0, bytes.Count(decls, []byte{'\n'}))
	for len(decls) > 0 {
		line := decls
		if i := bytes.IndexByte(decls, '\n'); i >= 0 {
			line, decls = decls[:i], decls[i+1:]
		} else {
			decls = nil
		}
		if len(line) > 1 && line[0] == ':' {
			if sp := bytes.IndexByte(line, ' '); sp > 0 {
				out = append(out, string(line[1:sp]))
			}
		}
	}
	return out
}
