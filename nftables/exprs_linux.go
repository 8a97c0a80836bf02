//go:build linux

package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/proxykit/proxykit/servicemap"
)

// The netlink translation of the statements of stmt.go and of set
// elements: each statement becomes the expressions nft itself generates
// for its text (checked with `nft --debug=netlink`), so that `nft list`
// prints back what Render printed (TestReadback). Anonymous sets and maps
// of statements become anonymous constant sets, added in the same batch
// before their rule, as nft does.
//
// Registers: keys are loaded into the 32-bit registers NFT_REG32_00 (8)
// and up; a concatenation takes one register per 4 bytes of each part
// (ip daddr . meta l4proto . th dport: 8, 9, 10 for IPv4; 8, 12, 13 for
// IPv6). Register 0 is the verdict register.

// reg0 is the first 32-bit data register.
const reg0 uint32 = unix.NFT_REG32_00

// Bits and values of the kernel's uapi that x/sys/unix lacks.
const (
	ctStateBitNew = 1 << 3 // NF_CT_STATE_BIT(IP_CT_NEW)
	ctStatusDNAT  = 1 << 5 // IPS_DST_NAT
	rtnLocal      = 2      // RTN_LOCAL, the fib address type "local"
	thDportOffset = 2      // offset of the destination port in TCP, UDP and SCTP
)

// famInfo is what the translation needs to know of a table family.
type famInfo struct {
	fam          Family
	proto        nftables.TableFamily
	addrLen      uint32 // bytes of an address
	saddr, daddr uint32 // offsets in the network header
	addrType     nftables.SetDatatype
	rejectCode   uint8 // ICMP(v6) port unreachable
}

func familyInfo(f Family) (famInfo, error) {
	switch f {
	case IPv4:
		return famInfo{f, nftables.TableFamilyIPv4, 4, 12, 16, nftables.TypeIPAddr, 3}, nil
	case IPv6:
		return famInfo{f, nftables.TableFamilyIPv6, 16, 8, 24, nftables.TypeIP6Addr, 4}, nil
	}
	return famInfo{}, fmt.Errorf("unsupported family %q (want %q or %q)", f, IPv4, IPv6)
}

// addr returns the bytes of a, which must be of the family.
func (fi famInfo) addr(a netip.Addr) ([]byte, error) { return fi.appendAddr(nil, a) }

// ruleBuilder translates the statements of rules of one table. Anonymous
// sets that the statements need are added to the batch before the rule.
type ruleBuilder struct {
	b     *nlBatch
	table *nftables.Table
	f     famInfo
}

// rule returns the expressions of r.
func (rb *ruleBuilder) rule(r Rule) ([]expr.Any, error) {
	var exprs []expr.Any
	for i, s := range r {
		e, err := rb.stmt(s)
		if err != nil {
			return nil, fmt.Errorf("statement %d (%T): %w", i, s, err)
		}
		exprs = append(exprs, e...)
	}
	return exprs, nil
}

// stmt translates one statement: the matches here, the actions in action.
func (rb *ruleBuilder) stmt(s Stmt) ([]expr.Any, error) {
	switch s := s.(type) {
	case Verdict:
		return verdictExprs(s)
	case CtStateNew:
		return ctBit(expr.CtKeySTATE, ctStateBitNew), nil
	case CtStatusDnat:
		return ctBit(expr.CtKeySTATUS, ctStatusDNAT), nil
	case SaddrPrefixes:
		return rb.saddrPrefixes(s)
	case SaddrInSet:
		return rb.addrInSet(rb.f.saddr, s.Set, s.Negate), nil
	case DaddrInSet:
		return rb.addrInSet(rb.f.daddr, s.Set, false), nil
	case SaddrDaddrInSet:
		return rb.pairInSet(s.Set), nil
	case FibLocal:
		return fibLocal(s.Daddr), nil
	case DaddrNotLoopback:
		return rb.notLoopback(), nil
	case L4Proto:
		return l4proto(s.Proto)
	case MarkUnset:
		return markUnset(s.Mark), nil
	case VmapDaddrProtoPort:
		return rb.vmapDaddrProtoPort(s.Map), nil
	case VmapProtoPort:
		return vmapProtoPort(s.Map), nil
	}
	return rb.action(s)
}

// action translates the statements that act on the packet.
func (rb *ruleBuilder) action(s Stmt) ([]expr.Any, error) {
	switch s := s.(type) {
	case NumgenLess:
		return numgenLess(s)
	case DnatMap:
		return rb.dnatMap(s)
	case Dnat:
		return rb.dnat(s.To)
	case *Dnat:
		return rb.dnat(s.To)
	case UpdateSaddr:
		return rb.updateSaddr(s.Set), nil
	case MarkOr:
		return markSet(^s.Mark, s.Mark), nil
	case MarkXor:
		return markSet(^uint32(0), s.Mark), nil
	case Masquerade:
		return []expr.Any{&expr.Masq{FullyRandom: true}}, nil
	case Reject:
		return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: rb.f.rejectCode}}, nil
	}
	return nil, fmt.Errorf("unsupported statement %T", s)
}

// verdictKind maps Verdict.Kind to netlink.
var verdictKind = map[string]expr.VerdictKind{
	"accept": expr.VerdictAccept, "drop": expr.VerdictDrop, "return": expr.VerdictReturn,
	"jump": expr.VerdictJump, "goto": expr.VerdictGoto,
}

// verdictExpr translates v; jump and goto need a chain, the others none.
func verdictExpr(v Verdict) (*expr.Verdict, error) {
	k, ok := verdictKind[v.Kind]
	if !ok {
		return nil, fmt.Errorf("unknown verdict %q", v.Kind)
	}
	if hasChain := k == expr.VerdictJump || k == expr.VerdictGoto; hasChain != (v.Chain != "") {
		return nil, fmt.Errorf("verdict %q with chain %q", v.Kind, v.Chain)
	}
	return &expr.Verdict{Kind: k, Chain: v.Chain}, nil
}

func verdictExprs(v Verdict) ([]expr.Any, error) {
	e, err := verdictExpr(v)
	if err != nil {
		return nil, err
	}
	return []expr.Any{e}, nil
}

func native32(v uint32) []byte { return binaryutil.NativeEndian.PutUint32(v) }

func payloadLoad(base expr.PayloadBase, off, n, reg uint32) *expr.Payload {
	return &expr.Payload{OperationType: expr.PayloadLoad, DestRegister: reg, Base: base, Offset: off, Len: n}
}

func loadNet(off, n, reg uint32) *expr.Payload {
	return payloadLoad(expr.PayloadBaseNetworkHeader, off, n, reg)
}

func cmpReg(op expr.CmpOp, data []byte) *expr.Cmp {
	return &expr.Cmp{Op: op, Register: reg0, Data: data}
}

// ctBit matches a ct state or status bit: `ct state new`, `ct status dnat`.
func ctBit(key expr.CtKey, bit uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: reg0, Key: key},
		&expr.Bitwise{SourceRegister: reg0, DestRegister: reg0, Len: 4, Mask: native32(bit), Xor: native32(0)},
		cmpReg(expr.CmpOpNeq, native32(0)),
	}
}

// prefixMatch compares the address at off with p, as nft does: the
// prefix's bytes directly when it ends on a byte boundary, else (and for
// /0) the whole address through a mask.
func (rb *ruleBuilder) prefixMatch(off uint32, p netip.Prefix, negate bool) ([]expr.Any, error) {
	key, err := rb.f.addr(p.Masked().Addr())
	if err != nil {
		return nil, err
	}
	bits := p.Bits()
	n := uint32(bits) / 8
	exprs := []expr.Any{loadNet(off, n, reg0)}
	if bits%8 != 0 || bits == 0 {
		n = rb.f.addrLen
		exprs = []expr.Any{
			loadNet(off, n, reg0),
			&expr.Bitwise{SourceRegister: reg0, DestRegister: reg0, Len: n, Mask: prefixMask(n, bits), Xor: make([]byte, n)},
		}
	}
	op := expr.CmpOpEq
	if negate {
		op = expr.CmpOpNeq
	}
	return append(exprs, cmpReg(op, key[:n])), nil
}

// prefixMask is the n-byte mask of a /bits prefix.
func prefixMask(n uint32, bits int) []byte {
	m := make([]byte, n)
	for i := range m {
		switch {
		case bits >= 8:
			m[i] = 0xff
		case bits > 0:
			m[i] = ^byte(0xff >> bits)
		}
		bits -= 8
	}
	return m
}

// saddrPrefixes matches one prefix directly and several through an
// anonymous interval set, as nft does.
func (rb *ruleBuilder) saddrPrefixes(s SaddrPrefixes) ([]expr.Any, error) {
	switch len(s.Prefixes) {
	case 0:
		return nil, errors.New("no prefixes")
	case 1:
		return rb.prefixMatch(rb.f.saddr, s.Prefixes[0], s.Negate)
	}
	var ranges []keyInterval
	for _, p := range s.Prefixes {
		r, err := rb.f.prefixInterval(p)
		if err != nil {
			return nil, err
		}
		ranges = append(ranges, r)
	}
	name, id, err := rb.anonymous(intervalElements(ranges))
	if err != nil {
		return nil, err
	}
	return []expr.Any{
		loadNet(rb.f.saddr, rb.f.addrLen, reg0),
		&expr.Lookup{SourceRegister: reg0, SetName: name, SetID: id, Invert: s.Negate},
	}, nil
}

// addrInSet matches the address at off against a named set.
func (rb *ruleBuilder) addrInSet(off uint32, set string, negate bool) []expr.Any {
	return []expr.Any{
		loadNet(off, rb.f.addrLen, reg0),
		&expr.Lookup{SourceRegister: reg0, SetName: set, Invert: negate},
	}
}

// pairInSet matches `saddr . daddr` against a named set.
func (rb *ruleBuilder) pairInSet(set string) []expr.Any {
	return []expr.Any{
		loadNet(rb.f.saddr, rb.f.addrLen, reg0),
		loadNet(rb.f.daddr, rb.f.addrLen, reg0+rb.f.addrLen/4),
		&expr.Lookup{SourceRegister: reg0, SetName: set},
	}
}

// fibLocal matches `fib saddr type local` or `fib daddr type local`.
func fibLocal(daddr bool) []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: reg0, FlagSADDR: !daddr, FlagDADDR: daddr, ResultADDRTYPE: true},
		cmpReg(expr.CmpOpEq, native32(rtnLocal)),
	}
}

// notLoopback excludes loopback destinations: 127.0.0.0/8 or ::1.
func (rb *ruleBuilder) notLoopback() []expr.Any {
	p := netip.MustParsePrefix("127.0.0.0/8")
	if rb.f.fam == IPv6 {
		p = netip.MustParsePrefix("::1/128")
	}
	exprs, _ := rb.prefixMatch(rb.f.daddr, p, true) // of the family: cannot fail
	return exprs
}

// protoNumbers are the IP protocol numbers of the service protocols.
var protoNumbers = map[servicemap.Protocol]byte{
	servicemap.TCP: unix.IPPROTO_TCP, servicemap.UDP: unix.IPPROTO_UDP, servicemap.SCTP: unix.IPPROTO_SCTP,
}

func protoNumber(p servicemap.Protocol) (byte, error) {
	n, ok := protoNumbers[p]
	if !ok {
		return 0, fmt.Errorf("unknown protocol %q", p)
	}
	return n, nil
}

// l4proto matches `meta l4proto <proto>`.
func l4proto(p servicemap.Protocol) ([]expr.Any, error) {
	n, err := protoNumber(p)
	if err != nil {
		return nil, err
	}
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg0}, cmpReg(expr.CmpOpEq, []byte{n})}, nil
}

// markUnset matches `meta mark & <mark> == 0`.
func markUnset(mark uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: reg0},
		&expr.Bitwise{SourceRegister: reg0, DestRegister: reg0, Len: 4, Mask: native32(mark), Xor: native32(0)},
		cmpReg(expr.CmpOpEq, native32(0)),
	}
}

// markSet sets `meta mark set (meta mark & mask) ^ xor`: an OR of m is
// mask ^m, xor m; an XOR of m is mask all ones, xor m.
func markSet(mask, xor uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: reg0},
		&expr.Bitwise{SourceRegister: reg0, DestRegister: reg0, Len: 4, Mask: native32(mask), Xor: native32(xor)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg0},
	}
}

// protoPort loads `meta l4proto . th dport` into reg and the next one.
func protoPort(reg uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg},
		payloadLoad(expr.PayloadBaseTransportHeader, thDportOffset, 2, reg+1),
	}
}

// vmapDaddrProtoPort is `<fam> daddr . meta l4proto . th dport vmap @map`.
func (rb *ruleBuilder) vmapDaddrProtoPort(m string) []expr.Any {
	exprs := []expr.Any{loadNet(rb.f.daddr, rb.f.addrLen, reg0)}
	exprs = append(exprs, protoPort(reg0+rb.f.addrLen/4)...)
	return append(exprs, &expr.Lookup{SourceRegister: reg0, SetName: m, IsDestRegSet: true, DestRegister: unix.NFT_REG_VERDICT})
}

// vmapProtoPort is `meta l4proto . th dport vmap @map`.
func vmapProtoPort(m string) []expr.Any {
	return append(protoPort(reg0),
		&expr.Lookup{SourceRegister: reg0, SetName: m, IsDestRegSet: true, DestRegister: unix.NFT_REG_VERDICT})
}

// numgenLess is `numgen random mod <mod> < <less>`: the random number is
// turned to network byte order and compared, as nft does.
func numgenLess(s NumgenLess) ([]expr.Any, error) {
	if s.Mod == 0 || s.Less == 0 || s.Less >= s.Mod {
		return nil, fmt.Errorf("numgen random mod %d < %d: never or always true", s.Mod, s.Less)
	}
	return []expr.Any{
		&expr.Numgen{Register: reg0, Modulus: s.Mod, Type: unix.NFT_NG_RANDOM},
		&expr.Byteorder{SourceRegister: reg0, DestRegister: reg0, Op: expr.ByteorderHton, Len: 4, Size: 4},
		&expr.Cmp{Op: expr.CmpOpLt, Register: reg0, Data: binary.BigEndian.AppendUint32(nil, s.Less)},
	}, nil
}

// nat is the dnat to the address in reg0 and the port after it.
func (rb *ruleBuilder) nat() *expr.NAT {
	return &expr.NAT{Type: expr.NATTypeDestNAT, Family: uint32(rb.f.proto), RegAddrMin: reg0,
		RegProtoMin: reg0 + rb.f.addrLen/4, Specified: true}
}

// dnat is `dnat to <addr>:<port>`.
func (rb *ruleBuilder) dnat(to netip.AddrPort) ([]expr.Any, error) {
	a, err := rb.f.addr(to.Addr())
	if err != nil {
		return nil, err
	}
	return []expr.Any{
		&expr.Immediate{Register: reg0, Data: a},
		&expr.Immediate{Register: reg0 + rb.f.addrLen/4, Data: binary.BigEndian.AppendUint16(nil, to.Port())},
		rb.nat(),
	}, nil
}

// dnatMap is `dnat <fam> to [<fam> daddr .] meta l4proto . th dport .
// numgen random mod <n> map @<map>`, as nft encodes it: the key in
// consecutive registers, the map's data (address . port) back into them.
func (rb *ruleBuilder) dnatMap(s DnatMap) ([]expr.Any, error) {
	if s.Slots == 0 {
		return nil, errors.New("numgen random mod 0")
	}
	var exprs []expr.Any
	next := reg0
	if !s.NodePort {
		exprs = append(exprs, loadNet(rb.f.daddr, rb.f.addrLen, reg0))
		next += rb.f.addrLen / 4
	}
	exprs = append(exprs, protoPort(next)...)
	return append(exprs,
		&expr.Numgen{Register: next + 2, Modulus: s.Slots, Type: unix.NFT_NG_RANDOM},
		&expr.Lookup{SourceRegister: reg0, SetName: s.Map, IsDestRegSet: true, DestRegister: reg0},
		rb.nat(),
	), nil
}

// updateSaddr is `update @set { <fam> saddr }`; the element's timeout is
// the set's.
func (rb *ruleBuilder) updateSaddr(set string) []expr.Any {
	return []expr.Any{
		loadNet(rb.f.saddr, rb.f.addrLen, reg0),
		&expr.Dynset{SrcRegKey: reg0, SetName: set, Operation: unix.NFT_DYNSET_OP_UPDATE},
	}
}

// anonymous adds an anonymous constant interval set of addresses to the
// rule's table, with its elements, as nft does; the rule looks it up by
// ID.
func (rb *ruleBuilder) anonymous(elems []nftables.SetElement) (name string, id uint32, err error) {
	key := dataTypes["ipv4_addr"]
	if rb.f.fam == IPv6 {
		key = dataTypes["ipv6_addr"]
	}
	s := &setWire{name: "__set%d", id: rb.b.setID(),
		flags:   unix.NFT_SET_ANONYMOUS | unix.NFT_SET_CONSTANT | unix.NFT_SET_INTERVAL,
		keyType: key.id, keyLen: key.len, size: uint32(len(elems)),
		udata: udU32(nil, udSetKeyByteorder, byteorderBig)}
	fam := byte(rb.f.proto)
	rb.b.addSet(fam, rb.table.Name, s)
	if err := rb.b.elements(fam, rb.table.Name, s.name, s.id, elems, false); err != nil {
		return "", 0, fmt.Errorf("anonymous set: %w", err)
	}
	return s.name, s.id, nil
}
