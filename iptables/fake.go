package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/proxykit/proxykit"
)

// Fake is an in-memory Runner: it parses restore input enough to hold
// chains and rules (as iptables-save prints them), applies each restore
// atomically, enforces chain references, and can fail on demand. It is
// safe for concurrent use.
type Fake struct {
	mu     sync.Mutex
	tables map[fakeKey]*fakeTable

	// FailRestore, when set, is called before each restore; its error
	// fails the restore and nothing is applied.
	FailRestore func(fam proxykit.Family, table string, payload []byte) error
	// Restores records every restore call.
	Restores []RestoreCall
	// LastPayload is the input of the last restore.
	LastPayload []byte
}

// RestoreCall is one restore seen by the Fake.
type RestoreCall struct {
	Family proxykit.Family
	Table  string
	Size   int // bytes of input
	Err    error
}

type fakeKey struct {
	fam   proxykit.Family
	table string
}

type fakeTable struct {
	chains map[string][]string // rule specs, after "-A CHAIN "
	refs   map[string]int      // jumps and gotos into each chain
}

var builtinChains = map[string][]string{
	tableNAT:    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	tableFilter: {"INPUT", "FORWARD", "OUTPUT"},
}

// NewFake returns an empty Fake: the built-in chains of nat and filter in
// both families.
func NewFake() *Fake { return &Fake{tables: map[fakeKey]*fakeTable{}} }

func (f *Fake) table(fam proxykit.Family, name string) (*fakeTable, error) {
	builtin, ok := builtinChains[name]
	if !ok {
		return nil, fmt.Errorf("fake: no table %q", name)
	}
	k := fakeKey{fam, name}
	t := f.tables[k]
	if t == nil {
		t = &fakeTable{chains: map[string][]string{}, refs: map[string]int{}}
		for _, c := range builtin {
			t.chains[c] = nil
		}
		f.tables[k] = t
	}
	return t, nil
}

// Restore implements Runner.
func (f *Fake) Restore(_ context.Context, fam proxykit.Family, table string, parts [][]byte) error {
	payload := joinParts(parts)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.LastPayload = payload
	err := f.restore(fam, table, payload)
	f.Restores = append(f.Restores, RestoreCall{Family: fam, Table: table, Size: len(payload), Err: err})
	return err
}

func (f *Fake) restore(fam proxykit.Family, table string, payload []byte) error {
	if f.FailRestore != nil {
		if err := f.FailRestore(fam, table, payload); err != nil {
			return &RestoreError{Family: fam, Table: table, Err: err}
		}
	}
	t, err := f.table(fam, table)
	if err != nil {
		return err
	}
	tx := &fakeTx{t: t, saved: map[string]savedChain{}}
	n := 0
	for len(payload) > 0 {
		line := payload
		if i := bytes.IndexByte(payload, '\n'); i >= 0 {
			line, payload = payload[:i], payload[i+1:]
		} else {
			payload = nil
		}
		n++
		if err := tx.apply(table, string(line)); err != nil {
			tx.rollback()
			stderr := fmt.Sprintf("fake-restore: line %d failed: %v", n, err)
			return restoreError(fam, table, [][]byte{joinParts([][]byte{f.LastPayload})}, stderr, errors.New("exit status 1"))
		}
	}
	return nil
}

// fakeTx is one restore: it remembers each chain's rules before its first
// change, to roll back.
type fakeTx struct {
	t     *fakeTable
	saved map[string]savedChain
}

type savedChain struct {
	rules  []string
	exists bool
}

func (tx *fakeTx) touch(c string) {
	if _, ok := tx.saved[c]; !ok {
		rules, exists := tx.t.chains[c]
		tx.saved[c] = savedChain{slices.Clone(rules), exists}
	}
}

func (tx *fakeTx) rollback() {
	for c, s := range tx.saved {
		tx.t.setRules(c, nil)
		if !s.exists {
			delete(tx.t.chains, c)
			continue
		}
		tx.t.setRules(c, s.rules)
	}
}

// setRules replaces a chain's rules, keeping refs.
func (t *fakeTable) setRules(c string, rules []string) {
	for _, r := range t.chains[c] {
		if to := targetOf(r); to != "" {
			t.refs[to]--
		}
	}
	for _, r := range rules {
		if to := targetOf(r); to != "" {
			t.refs[to]++
		}
	}
	t.chains[c] = rules
}

// ref counts the reference a rule makes, up or down.
func (t *fakeTable) ref(spec string, d int) {
	if to := targetOf(spec); to != "" {
		t.refs[to] += d
	}
}

// targetOf returns the chain a rule jumps or goes to, or "" for a
// built-in target.
func targetOf(spec string) string {
	i := strings.LastIndex(spec, " -j ")
	if g := strings.LastIndex(spec, " -g "); g > i {
		i = g
	}
	var rest string
	switch {
	case i >= 0:
		rest = spec[i+4:]
	case strings.HasPrefix(spec, "-j ") || strings.HasPrefix(spec, "-g "):
		rest = spec[3:]
	default:
		return ""
	}
	name, _, _ := strings.Cut(rest, " ")
	switch name {
	case "ACCEPT", "DROP", "RETURN", "REJECT", "DNAT", "SNAT", "MASQUERADE", "MARK":
		return ""
	}
	return name
}

func (tx *fakeTx) apply(table, line string) error {
	t := tx.t
	switch {
	case line == "" || line[0] == '#' || line == "COMMIT":
		return nil
	case line[0] == '*':
		if line[1:] != table {
			return fmt.Errorf("table %q in the input of a %s restore", line[1:], table)
		}
		return nil
	case line[0] == ':':
		name, _, _ := strings.Cut(line[1:], " ")
		if slices.Contains(builtinChains[table], name) {
			return nil
		}
		tx.touch(name)
		if _, ok := t.chains[name]; !ok {
			t.chains[name] = nil
		}
		t.setRules(name, nil)
		return nil
	}
	cmd, rest, _ := strings.Cut(line, " ")
	chain, spec, _ := strings.Cut(rest, " ")
	rules, ok := t.chains[chain]
	if !ok {
		return fmt.Errorf("chain %q does not exist", chain)
	}
	if to := targetOf(spec); (cmd == "-A" || cmd == "-I") && to != "" {
		if _, ok := t.chains[to]; !ok {
			return fmt.Errorf("target chain %q does not exist", to)
		}
	}
	tx.touch(chain)
	switch cmd {
	case "-A":
		t.ref(spec, 1)
		t.chains[chain] = append(rules, spec)
	case "-I":
		pos := 1
		if n, s, ok := strings.Cut(spec, " "); ok {
			if p, err := strconv.Atoi(n); err == nil {
				pos, spec = p, s
			}
		}
		if pos < 1 || pos > len(rules)+1 {
			return fmt.Errorf("index %d out of range", pos)
		}
		t.ref(spec, 1)
		t.chains[chain] = slices.Insert(rules, pos-1, spec)
	case "-D":
		i := slices.Index(rules, spec)
		if i < 0 {
			return errors.New("Bad rule (does a matching rule exist in that chain?)")
		}
		t.ref(spec, -1)
		t.chains[chain] = slices.Delete(rules, i, i+1)
	case "-F":
		t.setRules(chain, nil)
	case "-X":
		if len(rules) > 0 || t.refs[chain] > 0 || slices.Contains(builtinChains[table], chain) {
			return fmt.Errorf("cannot delete chain %q: not empty, referenced or built-in", chain)
		}
		delete(t.chains, chain)
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}
	return nil
}

// Save implements Runner: the table as iptables-save prints it, built-in
// chains first, then the others sorted by name.
func (f *Fake) Save(_ context.Context, fam proxykit.Family, table string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.table(fam, table)
	if err != nil {
		return nil, err
	}
	builtin := builtinChains[table]
	var user []string
	for c := range t.chains {
		if !slices.Contains(builtin, c) {
			user = append(user, c)
		}
	}
	slices.Sort(user)
	var b bytes.Buffer
	b.WriteString("# Generated by the fake\n*" + table + "\n")
	for _, c := range builtin {
		b.WriteString(":" + c + " ACCEPT [0:0]\n")
	}
	for _, c := range user {
		b.WriteString(":" + c + " - [0:0]\n")
	}
	for _, c := range append(slices.Clone(builtin), user...) {
		for _, r := range t.chains[c] {
			b.WriteString("-A " + c + " " + r + "\n")
		}
	}
	b.WriteString("COMMIT\n")
	return b.Bytes(), nil
}

// specText joins rule arguments as iptables-save prints them.
func specText(spec []string) string {
	out := make([]string, len(spec))
	for i, a := range spec {
		if strings.ContainsAny(a, " \"'") {
			a = strconv.Quote(a)
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// RuleExists implements Runner.
func (f *Fake) RuleExists(_ context.Context, fam proxykit.Family, table, chain string, spec []string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.table(fam, table)
	if err != nil {
		return false, err
	}
	return slices.Contains(t.chains[chain], specText(spec)), nil
}

// InsertRule implements Runner.
func (f *Fake) InsertRule(_ context.Context, fam proxykit.Family, table, chain string, pos int, spec []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.table(fam, table)
	if err != nil {
		return err
	}
	tx := &fakeTx{t: t, saved: map[string]savedChain{}}
	line := fmt.Sprintf("-I %s %d %s", chain, pos, specText(spec))
	if err := tx.apply(table, line); err != nil {
		return fmt.Errorf("fake: %s: %w", line, err)
	}
	return nil
}

// DeleteRule implements Runner.
func (f *Fake) DeleteRule(_ context.Context, fam proxykit.Family, table, chain string, spec []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.table(fam, table)
	if err != nil {
		return err
	}
	rules := t.chains[chain]
	if i := slices.Index(rules, specText(spec)); i >= 0 {
		t.setRules(chain, slices.Delete(slices.Clone(rules), i, i+1))
	}
	return nil
}

// Version implements Runner.
func (f *Fake) Version(context.Context, proxykit.Family) (string, Variant, error) {
	return "1.8.9", NFT, nil
}

// Rules returns the rules of a chain, as iptables-save prints them
// after "-A <chain> ", and whether the chain exists.
func (f *Fake) Rules(fam proxykit.Family, table, chain string) ([]string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.table(fam, table)
	if err != nil {
		return nil, false
	}
	rules, ok := t.chains[chain]
	return slices.Clone(rules), ok
}

// FlushAll empties a table as `iptables -F; iptables -X` would (a
// firewall manager starting over): every rule and every user chain
// goes.
func (f *Fake) FlushAll(fam proxykit.Family, table string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.table(fam, table)
	if err != nil {
		return
	}
	for c := range t.chains {
		if slices.Contains(builtinChains[table], c) {
			t.chains[c] = nil
		} else {
			delete(t.chains, c)
		}
	}
	clear(t.refs)
}
