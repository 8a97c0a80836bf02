//go:build linux

package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// setWire is the netlink definition of a set or map (no elements).
type setWire struct {
	name              string
	id                uint32
	flags             uint32
	keyType, keyLen   uint32
	dataType, dataLen uint32
	timeoutMS         uint64
	size              uint32
	udata             []byte
}

// dataType is an nft data type: its id and its length in bytes.
type dataType struct{ id, len uint32 }

// The data types of set keys and data, by their nft names. The verdict
// type is the kernel's NFT_DATA_VERDICT.
var dataTypes = map[string]dataType{
	"ipv4_addr": {7, 4}, "ipv6_addr": {8, 16}, "inet_proto": {12, 1}, "inet_service": {13, 2},
	"mark": {19, 4}, "integer": {4, 4}, "verdict": {unix.NFT_DATA_VERDICT, 0},
}

// concatBits is the shift between the types of a concatenation's id.
const concatBits = 6

// concatType returns the id and length of a concatenation of types: each
// part takes a whole number of 32-bit registers. A single type keeps its
// own length.
func concatType(parts []dataType) dataType {
	if len(parts) == 1 {
		return parts[0]
	}
	var t dataType
	for _, p := range parts {
		t.id = t.id<<concatBits | p.id
		t.len += (p.len + 3) &^ 3
	}
	return t
}

// typeofExpr is an expression a typeof set is declared with: its data
// type, and the description nft keeps in the set's userdata to print it.
type typeofExpr struct {
	typ   dataType
	udata []byte
}

// nft's ids in a typeof description (src/expression.c, src/proto.c).
const (
	udExprPayload = 7
	udExprMeta    = 9
	udExprConcat  = 13
	udExprNumgen  = 23
	protoDescTH   = 11
	protoDescIP   = 12
	protoDescIP6  = 13
	metaL4Proto   = 16
)

// The expressions proxykit declares typeof sets with.
var typeofExprs = map[string]typeofExpr{
	"ip daddr":            {dataTypes["ipv4_addr"], udExpr(udExprPayload, protoDescIP, 12)},
	"ip6 daddr":           {dataTypes["ipv6_addr"], udExpr(udExprPayload, protoDescIP6, 9)},
	"meta l4proto":        {dataTypes["inet_proto"], udExpr(udExprMeta, metaL4Proto)},
	"th dport":            {dataTypes["inet_service"], udExpr(udExprPayload, protoDescTH, 2)},
	"numgen random mod 1": {dataTypes["integer"], udExpr(udExprNumgen, unix.NFT_NG_RANDOM, 1, 0)},
}

// udAttr appends a userdata attribute: type, length, value (at most 255
// bytes).
func udAttr(b []byte, typ byte, v []byte) []byte {
	return append(append(b, typ, byte(len(v))), v...)
}

func udU32(b []byte, typ byte, v uint32) []byte {
	return udAttr(b, typ, binary.NativeEndian.AppendUint32(nil, v))
}

// udExpr describes an expression: its id, then its fields in order.
func udExpr(id uint32, fields ...uint32) []byte {
	var data []byte
	for i, f := range fields {
		data = udU32(data, byte(i), f)
	}
	return udAttr(udU32(nil, 0, id), 1, data)
}

// parseType parses a set's key or data: type names ("ipv4_addr .
// inet_service") or, with typeof, expressions ("ip daddr . th dport").
// It returns the data type and, for typeof, the userdata description.
func parseType(s string, typeof bool) (dataType, []byte, error) {
	names := strings.Split(s, " . ")
	parts := make([]dataType, len(names))
	var descs [][]byte
	for i, n := range names {
		if typeof {
			e, ok := typeofExprs[n]
			if !ok {
				return dataType{}, nil, fmt.Errorf("unsupported typeof expression %q in %q", n, s)
			}
			parts[i], descs = e.typ, append(descs, e.udata)
			continue
		}
		t, ok := dataTypes[n]
		if !ok {
			return dataType{}, nil, fmt.Errorf("unsupported set type %q in %q", n, s)
		}
		parts[i] = t
	}
	// nft describes a concatenation of types too, without its parts.
	var desc []byte
	switch {
	case len(parts) > 1:
		var list []byte
		for i, d := range descs {
			list = udAttr(list, byte(i), d)
		}
		desc = udAttr(udU32(nil, 0, udExprConcat), 1, list)
	case typeof:
		desc = descs[0]
	}
	return concatType(parts), desc, nil
}

// Userdata attributes of a set (libnftnl's NFTNL_UDATA_SET_*).
const (
	udSetKeyByteorder  = 0
	udSetDataByteorder = 1
	udSetKeyTypeof     = 3
	udSetDataTypeof    = 4
	udSetDataInterval  = 6
	byteorderBig       = 2
)

// setDef is the netlink definition of a named set or map.
func setDef(s *Set) (*setWire, error) {
	if s == nil || !validObjectName(s.Name) {
		return nil, errors.New("missing or invalid set")
	}
	key, keyDesc, err := parseType(s.Type, s.Typeof)
	if err != nil {
		return nil, err
	}
	if s.Size < 0 || int64(s.Size) > int64(^uint32(0)) {
		return nil, fmt.Errorf("size %d out of range", s.Size)
	}
	def := &setWire{name: s.Name, keyType: key.id, keyLen: key.len, size: uint32(s.Size),
		timeoutMS: uint64(s.Timeout.Milliseconds())}
	if s.Interval {
		def.flags |= unix.NFT_SET_INTERVAL
	}
	if s.Dynamic || s.Timeout > 0 {
		def.flags |= unix.NFT_SET_TIMEOUT
	}
	if s.Dynamic {
		def.flags |= unix.NFT_SET_EVAL
	}
	// As nft: a typeof or concatenated key has no byte order of its own.
	if keyDesc != nil {
		def.udata = udU32(def.udata, udSetKeyByteorder, 0)
	} else {
		def.udata = udU32(def.udata, udSetKeyByteorder, byteorderBig)
	}
	if !s.IsMap() {
		if keyDesc != nil {
			def.udata = udAttr(def.udata, udSetKeyTypeof, keyDesc)
		}
		return def, nil
	}
	data, dataDesc, err := parseType(s.Data, s.Typeof && s.Data != "verdict")
	if err != nil {
		return nil, err
	}
	def.flags |= unix.NFT_SET_MAP
	def.dataType, def.dataLen = data.id, data.len
	def.udata = udU32(def.udata, udSetDataByteorder, 0)
	if keyDesc != nil {
		def.udata = udAttr(def.udata, udSetKeyTypeof, keyDesc)
	}
	if dataDesc != nil {
		def.udata = udAttr(def.udata, udSetDataTypeof, dataDesc)
	}
	def.udata = udU32(def.udata, udSetDataInterval, 0)
	return def, nil
}

// addSet encodes a set definition.
func (b *nlBatch) addSet(fam byte, table string, s *setWire) {
	w := b.w
	w.msg(unix.NFT_MSG_NEWSET, fam, unix.NLM_F_CREATE)
	w.str(unix.NFTA_SET_TABLE, table)
	w.str(unix.NFTA_SET_NAME, s.name)
	w.u32(unix.NFTA_SET_FLAGS, s.flags)
	w.u32(unix.NFTA_SET_KEY_TYPE, s.keyType)
	w.u32(unix.NFTA_SET_KEY_LEN, s.keyLen)
	if s.flags&unix.NFT_SET_MAP != 0 {
		w.u32(unix.NFTA_SET_DATA_TYPE, s.dataType)
		w.u32(unix.NFTA_SET_DATA_LEN, s.dataLen)
	}
	if s.timeoutMS > 0 {
		w.u64(unix.NFTA_SET_TIMEOUT, s.timeoutMS)
	}
	if s.size > 0 {
		w.nest(unix.NFTA_SET_DESC)
		w.u32(unix.NFTA_SET_DESC_SIZE, s.size)
		_ = w.end()
	}
	w.u32(unix.NFTA_SET_ID, s.id)
	if len(s.udata) > 0 {
		w.attr(unix.NFTA_SET_USERDATA, s.udata)
	}
	w.done()
}
