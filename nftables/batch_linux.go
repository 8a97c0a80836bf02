//go:build linux

package nftables

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// nlBatch encodes the operations of a transaction into one wire batch.
type nlBatch struct {
	w      *wire
	lastID uint32 // set IDs of this batch (the kernel scopes them to it)
}

// setID allocates a set ID.
func (b *nlBatch) setID() uint32 {
	b.lastID++
	return b.lastID
}

// add encodes op, the i-th operation of the batch.
func (b *nlBatch) add(i int, op Op) error {
	b.w.op = i
	fi, err := familyInfo(op.Family)
	if err != nil {
		return err
	}
	if !validName(op.Table) {
		return fmt.Errorf("invalid table name %q", op.Table)
	}
	if op.Kind != AddTable && op.Kind != DeleteTable && op.Kind != AddChain && op.Kind != AddSet && !validObjectName(op.Name) {
		return fmt.Errorf("invalid name %q", op.Name)
	}
	fam := byte(fi.proto)
	switch op.Kind {
	case AddTable:
		b.w.msg(unix.NFT_MSG_NEWTABLE, fam, unix.NLM_F_CREATE)
		b.w.str(unix.NFTA_TABLE_NAME, op.Table)
		b.w.done()
	case DeleteTable:
		b.w.msg(unix.NFT_MSG_DELTABLE, fam, 0)
		b.w.str(unix.NFTA_TABLE_NAME, op.Table)
		b.w.done()
	case AddChain, FlushChain, DeleteChain, AddRule:
		return b.chainOp(fi, op)
	case AddSet, FlushSet, DeleteSet, AddElements, DeleteElements:
		return b.setOp(fi, op)
	default:
		return fmt.Errorf("unknown operation %v", op.Kind)
	}
	return nil
}

// chainOp encodes a chain or rule operation.
func (b *nlBatch) chainOp(fi famInfo, op Op) error {
	fam := byte(fi.proto)
	switch op.Kind {
	case AddChain:
		return b.addChain(fam, op.Table, op.Chain)
	case FlushChain:
		b.w.msg(unix.NFT_MSG_DELRULE, fam, 0)
		b.w.str(unix.NFTA_RULE_TABLE, op.Table)
		b.w.str(unix.NFTA_RULE_CHAIN, op.Name)
	case DeleteChain:
		b.w.msg(unix.NFT_MSG_DELCHAIN, fam, 0)
		b.w.str(unix.NFTA_CHAIN_TABLE, op.Table)
		b.w.str(unix.NFTA_CHAIN_NAME, op.Name)
	case AddRule:
		if len(op.Rule) == 0 {
			return errors.New("empty rule")
		}
		t := &nftables.Table{Name: op.Table, Family: fi.proto}
		exprs, err := (&ruleBuilder{b: b, table: t, f: fi}).rule(op.Rule)
		if err != nil {
			return err
		}
		return b.addRule(fam, op.Table, op.Name, exprs)
	}
	b.w.done()
	return nil
}

// addChain encodes a chain; a base chain gets its hook and policy accept.
func (b *nlBatch) addChain(fam byte, table string, c *Chain) error {
	if c == nil || !validObjectName(c.Name) {
		return errors.New("missing or invalid chain")
	}
	var hook, prio uint32
	var typ string
	if c.Hook != nil {
		h, ok := chainHooks[c.Hook.Hook]
		if !ok {
			return fmt.Errorf("unknown hook %q", c.Hook.Hook)
		}
		if _, ok := chainTypes[c.Hook.Type]; !ok {
			return fmt.Errorf("unknown chain type %q", c.Hook.Type)
		}
		p, err := parsePriority(c.Hook.Priority)
		if err != nil {
			return err
		}
		hook, prio, typ = h, uint32(p), c.Hook.Type
	}
	b.w.msg(unix.NFT_MSG_NEWCHAIN, fam, unix.NLM_F_CREATE)
	b.w.str(unix.NFTA_CHAIN_TABLE, table)
	b.w.str(unix.NFTA_CHAIN_NAME, c.Name)
	if c.Hook != nil {
		b.w.nest(unix.NFTA_CHAIN_HOOK)
		b.w.u32(unix.NFTA_HOOK_HOOKNUM, hook)
		b.w.u32(unix.NFTA_HOOK_PRIORITY, prio)
		if err := b.w.end(); err != nil {
			return err
		}
		b.w.u32(unix.NFTA_CHAIN_POLICY, nfAccept)
		b.w.str(unix.NFTA_CHAIN_TYPE, typ)
	}
	b.w.done()
	return nil
}

// addRule encodes a rule appended to chain.
func (b *nlBatch) addRule(fam byte, table, chain string, exprs []expr.Any) error {
	b.w.msg(unix.NFT_MSG_NEWRULE, fam, unix.NLM_F_CREATE|unix.NLM_F_APPEND)
	b.w.str(unix.NFTA_RULE_TABLE, table)
	b.w.str(unix.NFTA_RULE_CHAIN, chain)
	b.w.nest(unix.NFTA_RULE_EXPRESSIONS)
	for _, e := range exprs {
		data, err := expr.Marshal(fam, e)
		if err != nil {
			return fmt.Errorf("expression %T: %w", e, err)
		}
		b.w.nest(unix.NFTA_LIST_ELEM)
		b.w.buf = append(b.w.buf, data...)
		b.w.pad()
		if err := b.w.end(); err != nil {
			return err
		}
	}
	if err := b.w.end(); err != nil {
		return fmt.Errorf("rule too long: %w", err)
	}
	b.w.done()
	return nil
}

// setOp encodes a set or element operation.
func (b *nlBatch) setOp(fi famInfo, op Op) error {
	fam := byte(fi.proto)
	switch op.Kind {
	case AddSet:
		def, err := setDef(op.Set)
		if err != nil {
			return err
		}
		def.id = b.setID()
		b.addSet(fam, op.Table, def)
	case FlushSet:
		b.w.msg(unix.NFT_MSG_DELSETELEM, fam, 0)
		b.w.str(unix.NFTA_SET_ELEM_LIST_TABLE, op.Table)
		b.w.str(unix.NFTA_SET_ELEM_LIST_SET, op.Name)
		b.w.done()
	case DeleteSet:
		b.w.msg(unix.NFT_MSG_DELSET, fam, 0)
		b.w.str(unix.NFTA_SET_TABLE, op.Table)
		b.w.str(unix.NFTA_SET_NAME, op.Name)
		b.w.done()
	case AddElements, DeleteElements:
		elems, err := fi.setElements(op.Elements, op.Kind == DeleteElements)
		if err != nil {
			return err
		}
		return b.elements(fam, op.Table, op.Name, 0, elems, op.Kind == DeleteElements)
	}
	return nil
}

// maxElementsAttr bounds the encoded elements of one message: they are
// one netlink attribute, whose length is 16 bits. nft splits its element
// lists too.
const maxElementsAttr = 60 << 10

// elements encodes the addition or deletion of elems, in as many
// messages as the 16-bit attribute length needs. id, when not 0, names
// a set of this batch by its ID (an anonymous set).
func (b *nlBatch) elements(fam byte, table, set string, id uint32, elems []nftables.SetElement, del bool) error {
	typ, flags := unix.NFT_MSG_NEWSETELEM, uint16(unix.NLM_F_CREATE)
	if del {
		typ, flags = unix.NFT_MSG_DELSETELEM, 0
	}
	open := func() {
		b.w.msg(typ, fam, flags)
		b.w.str(unix.NFTA_SET_ELEM_LIST_TABLE, table)
		b.w.str(unix.NFTA_SET_ELEM_LIST_SET, set)
		if id != 0 {
			b.w.u32(unix.NFTA_SET_ELEM_LIST_SET_ID, id)
		}
		b.w.nest(unix.NFTA_SET_ELEM_LIST_ELEMENTS)
	}
	closeMsg := func() error {
		if err := b.w.end(); err != nil {
			return fmt.Errorf("set %q: %w", set, err)
		}
		b.w.done()
		return nil
	}
	for i := range elems {
		if i == 0 {
			open()
		} else if b.w.size() > maxElementsAttr-1024 {
			if err := closeMsg(); err != nil {
				return err
			}
			open()
		}
		if err := b.element(&elems[i]); err != nil {
			return err
		}
	}
	if len(elems) == 0 {
		return nil
	}
	return closeMsg()
}

// element encodes one element: key, interval end flag, data or verdict.
func (b *nlBatch) element(e *nftables.SetElement) error {
	w := b.w
	w.nest(unix.NFTA_LIST_ELEM)
	w.nest(unix.NFTA_SET_ELEM_KEY)
	w.attr(unix.NFTA_DATA_VALUE, e.Key)
	_ = w.end()
	if e.IntervalEnd {
		w.u32(unix.NFTA_SET_ELEM_FLAGS, unix.NFT_SET_ELEM_INTERVAL_END)
	}
	switch {
	case e.VerdictData != nil:
		w.nest(unix.NFTA_SET_ELEM_DATA)
		w.nest(unix.NFTA_DATA_VERDICT)
		w.u32(unix.NFTA_VERDICT_CODE, uint32(int32(e.VerdictData.Kind)))
		if e.VerdictData.Chain != "" {
			w.str(unix.NFTA_VERDICT_CHAIN, e.VerdictData.Chain)
		}
		_ = w.end()
		_ = w.end()
	case len(e.Val) > 0:
		w.nest(unix.NFTA_SET_ELEM_DATA)
		w.attr(unix.NFTA_DATA_VALUE, e.Val)
		_ = w.end()
	}
	return w.end()
}

// validObjectName reports whether s is a chain or set name as names.go
// makes them: sanitized parts joined by '-' and '/'. Names are sent as
// netlink strings, so this only guards against NUL and the length limit.
func validObjectName(s string) bool {
	return s != "" && len(s) < unix.NFT_NAME_MAXLEN && !strings.ContainsRune(s, 0)
}

// nfAccept is the NF_ACCEPT verdict, a base chain's policy.
const nfAccept = 1

// chainHooks and chainTypes map Hook fields to netlink.
var (
	chainHooks = map[string]uint32{
		"prerouting": unix.NF_INET_PRE_ROUTING, "input": unix.NF_INET_LOCAL_IN,
		"forward": unix.NF_INET_FORWARD, "output": unix.NF_INET_LOCAL_OUT,
		"postrouting": unix.NF_INET_POST_ROUTING,
	}
	chainTypes = map[string]bool{"filter": true, "nat": true, "route": true}
	// stdPriorities are nft's named priorities of the ip and ip6 families.
	stdPriorities = map[string]int32{
		"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100,
	}
)

// parsePriority parses a priority as nft prints it: "dstnat",
// "filter - 10", "srcnat + 5" or a number such as "-100".
func parsePriority(s string) (int32, error) {
	f := strings.Fields(s)
	bad := fmt.Errorf("invalid priority %q", s)
	if len(f) == 1 {
		if p, ok := stdPriorities[f[0]]; ok {
			return p, nil
		}
		n, err := strconv.ParseInt(f[0], 10, 32)
		if err != nil {
			return 0, bad
		}
		return int32(n), nil
	}
	base, ok := stdPriorities[f[0]]
	if len(f) != 3 || !ok || (f[1] != "+" && f[1] != "-") {
		return 0, bad
	}
	n, err := strconv.ParseInt(f[2], 10, 32)
	if err != nil || n < 0 {
		return 0, bad
	}
	if f[1] == "-" {
		n = -n
	}
	return base + int32(n), nil
}
