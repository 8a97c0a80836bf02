//go:build linux

package nftables

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"golang.org/x/sys/unix"
)

// nlBatch queues the netlink messages of a transaction on one
// google/nftables Conn.
type nlBatch struct {
	nc     *nftables.Conn
	lastID uint32 // set IDs of this batch (the kernel scopes them to it)
}

// setID allocates a set ID. google/nftables would use a global counter
// otherwise, shared by concurrent Conns.
func (b *nlBatch) setID() uint32 {
	b.lastID++
	return b.lastID
}

// add queues the messages of op.
func (b *nlBatch) add(op Op) error {
	fi, err := familyInfo(op.Family)
	if err != nil {
		return err
	}
	if !validName(op.Table) {
		return fmt.Errorf("invalid table name %q", op.Table)
	}
	t := &nftables.Table{Name: op.Table, Family: fi.proto}
	if op.Kind != AddTable && op.Kind != DeleteTable && op.Kind != AddChain && op.Kind != AddSet && !validObjectName(op.Name) {
		return fmt.Errorf("invalid name %q", op.Name)
	}
	switch op.Kind {
	case AddTable:
		b.nc.AddTable(t)
	case DeleteTable:
		b.nc.DelTable(t)
	case AddChain, FlushChain, DeleteChain, AddRule:
		return b.chainOp(t, fi, op)
	case AddSet, FlushSet, DeleteSet, AddElements, DeleteElements:
		return b.setOp(t, fi, op)
	default:
		return fmt.Errorf("unknown operation %v", op.Kind)
	}
	return nil
}

// chainOp queues a chain or rule operation.
func (b *nlBatch) chainOp(t *nftables.Table, fi famInfo, op Op) error {
	ch := &nftables.Chain{Name: op.Name, Table: t}
	switch op.Kind {
	case AddChain:
		def, err := chainDef(t, op.Chain)
		if err != nil {
			return err
		}
		b.nc.AddChain(def)
	case FlushChain:
		b.nc.FlushChain(ch)
	case DeleteChain:
		b.nc.DelChain(ch)
	case AddRule:
		if len(op.Rule) == 0 {
			return errors.New("empty rule")
		}
		exprs, err := (&ruleBuilder{b: b, table: t, f: fi}).rule(op.Rule)
		if err != nil {
			return err
		}
		b.nc.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs})
	}
	return nil
}

// setOp queues a set or element operation.
func (b *nlBatch) setOp(t *nftables.Table, fi famInfo, op Op) error {
	s := &nftables.Set{Table: t, Name: op.Name}
	switch op.Kind {
	case AddSet:
		def, err := setDef(t, op.Set)
		if err != nil {
			return err
		}
		def.ID = b.setID()
		return b.nc.AddSet(def, nil)
	case FlushSet:
		b.nc.FlushSet(s)
	case DeleteSet:
		b.nc.DelSet(s)
	case AddElements, DeleteElements:
		if len(op.Elements) == 0 {
			return nil
		}
		elems, err := fi.setElements(op.Elements, op.Kind == DeleteElements)
		if err != nil {
			return err
		}
		return b.elements(s, elems, op.Kind == DeleteElements)
	}
	return nil
}

// elements queues the addition or deletion of elems, in as many messages
// as elementChunks needs.
func (b *nlBatch) elements(s *nftables.Set, elems []nftables.SetElement, del bool) error {
	for _, chunk := range elementChunks(elems) {
		var err error
		if del {
			err = b.nc.SetDeleteElements(s, chunk)
		} else {
			err = b.nc.SetAddElements(s, chunk)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// setTypes maps the names of Set.Type and Set.Data to netlink data types.
var setTypes = map[string]nftables.SetDatatype{
	"ipv4_addr": nftables.TypeIPAddr, "ipv6_addr": nftables.TypeIP6Addr,
	"inet_proto": nftables.TypeInetProto, "inet_service": nftables.TypeInetService,
	"mark": nftables.TypeMark, "integer": nftables.TypeInteger, "verdict": nftables.TypeVerdict,
}

// parseSetType parses a type such as "ipv4_addr . inet_proto .
// inet_service"; concat reports a concatenation.
func parseSetType(s string) (t nftables.SetDatatype, concat bool, err error) {
	names := strings.Split(s, " . ")
	parts := make([]nftables.SetDatatype, len(names))
	for i, n := range names {
		var ok bool
		if parts[i], ok = setTypes[n]; !ok {
			return t, false, fmt.Errorf("unsupported set type %q in %q", n, s)
		}
	}
	if len(parts) == 1 {
		return parts[0], false, nil
	}
	t, err = nftables.ConcatSetType(parts...)
	return t, true, err
}

// setDef is the netlink definition of a named set or map (no elements).
func setDef(t *nftables.Table, s *Set) (*nftables.Set, error) {
	if s == nil || !validObjectName(s.Name) {
		return nil, errors.New("missing or invalid set")
	}
	key, concat, err := parseSetType(s.Type)
	if err != nil {
		return nil, err
	}
	ns := &nftables.Set{Table: t, Name: s.Name, KeyType: key, Concatenation: concat, Interval: s.Interval,
		KeyByteOrder: binaryutil.BigEndian, Dynamic: s.Dynamic, HasTimeout: s.Dynamic || s.Timeout > 0,
		Timeout: s.Timeout}
	if s.Size < 0 || int64(s.Size) > int64(^uint32(0)) {
		return nil, fmt.Errorf("size %d out of range", s.Size)
	}
	ns.Size = uint32(s.Size)
	if s.IsMap() {
		ns.IsMap = true
		if ns.DataType, _, err = parseSetType(s.Data); err != nil {
			return nil, err
		}
	}
	return ns, nil
}

// validObjectName reports whether s is a chain or set name as names.go
// makes them: sanitized parts joined by '-' and '/'. Names are sent as
// netlink strings, so this only guards against NUL and the length limit.
func validObjectName(s string) bool {
	return s != "" && len(s) < unix.NFT_NAME_MAXLEN && !strings.ContainsRune(s, 0)
}

// chainHooks and chainTypes map Hook fields to netlink.
var (
	chainHooks = map[string]*nftables.ChainHook{
		"prerouting": nftables.ChainHookPrerouting, "input": nftables.ChainHookInput,
		"forward": nftables.ChainHookForward, "output": nftables.ChainHookOutput,
		"postrouting": nftables.ChainHookPostrouting,
	}
	chainTypes = map[string]nftables.ChainType{
		"filter": nftables.ChainTypeFilter, "nat": nftables.ChainTypeNAT, "route": nftables.ChainTypeRoute,
	}
	// stdPriorities are nft's named priorities of the ip and ip6 families.
	stdPriorities = map[string]int32{
		"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100,
	}
)

// chainDef is the netlink definition of c (a base chain when it has a
// Hook; base chains get policy accept).
func chainDef(t *nftables.Table, c *Chain) (*nftables.Chain, error) {
	if c == nil || !validObjectName(c.Name) {
		return nil, errors.New("missing or invalid chain")
	}
	nc := &nftables.Chain{Name: c.Name, Table: t}
	if c.Hook == nil {
		return nc, nil
	}
	hook, ok := chainHooks[c.Hook.Hook]
	if !ok {
		return nil, fmt.Errorf("unknown hook %q", c.Hook.Hook)
	}
	typ, ok := chainTypes[c.Hook.Type]
	if !ok {
		return nil, fmt.Errorf("unknown chain type %q", c.Hook.Type)
	}
	prio, err := parsePriority(c.Hook.Priority)
	if err != nil {
		return nil, err
	}
	accept := nftables.ChainPolicyAccept
	nc.Hooknum, nc.Type, nc.Priority, nc.Policy = hook, typ, nftables.ChainPriorityRef(nftables.ChainPriority(prio)), &accept
	return nc, nil
}

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
