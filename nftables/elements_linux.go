//go:build linux

package nftables

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// The netlink encoding of set elements: keys (single, concatenated, with
// a numgen slot), map data (verdicts, address . port), and the intervals
// of prefix sets, as nft sends them.

// keyInterval is [start, end) of an interval set's keys (end nil: up to the
// largest key), with a map element's data.
type keyInterval struct {
	start, end []byte
	data       []byte
	verdict    *expr.Verdict
}

// prefixInterval is the interval of the addresses of p.
func (fi famInfo) prefixInterval(p netip.Prefix) (keyInterval, error) {
	if !p.IsValid() {
		return keyInterval{}, fmt.Errorf("invalid prefix %v", p)
	}
	start, err := fi.addr(p.Masked().Addr())
	if err != nil {
		return keyInterval{}, err
	}
	if p.Bits() == 0 {
		return keyInterval{start: start}, nil // up to the largest address
	}
	end := slices.Clone(start)
	if carry := addAtBit(end, p.Bits()-1); carry {
		end = nil // the prefix ends at the largest address
	}
	return keyInterval{start: start, end: end}, nil
}

// addAtBit adds 1 at bit (0: the most significant) of the big-endian
// number b, in place, and reports a carry out of b.
func addAtBit(b []byte, bit int) bool {
	inc := uint16(1) << (7 - bit%8)
	for i := bit / 8; i >= 0; i-- {
		sum := uint16(b[i]) + inc
		b[i] = byte(sum)
		if sum < 0x100 {
			return false
		}
		inc = 1
	}
	return true
}

// intervalElements returns the elements of an interval set or map, as
// nft sends them: a start element per interval (with the map data) and an
// end element (flag interval-end) at its end, unless it reaches the
// largest key.
func intervalElements(rs []keyInterval) []nftables.SetElement {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b keyInterval) int { return bytes.Compare(a.start, b.start) })
	out := make([]nftables.SetElement, 0, 2*len(rs))
	for _, r := range rs {
		out = append(out, nftables.SetElement{Key: r.start, Val: r.data, VerdictData: r.verdict})
		if r.end != nil {
			out = append(out, nftables.SetElement{Key: r.end, IntervalEnd: true})
		}
	}
	return out
}

// appendKey appends the key of a non-interval element to dst: the parts
// that are set, in the order address(es), protocol, port, slot; in a
// concatenation each part is padded to 4 bytes.
func (fi famInfo) appendKey(dst []byte, e *Element) ([]byte, error) {
	start, parts := len(dst), 0
	pad := func() {
		for (len(dst)-start)%4 != 0 {
			dst = append(dst, 0)
		}
	}
	for _, a := range []netip.Addr{e.Addr, e.Addr2} {
		if a.IsValid() {
			var err error
			if dst, err = fi.appendAddr(dst, a); err != nil {
				return nil, err
			}
			parts++
		}
	}
	if e.Proto != "" {
		n, err := protoNumber(e.Proto)
		if err != nil {
			return nil, err
		}
		dst = append(dst, n)
		pad()
		parts++
	}
	if e.Port != 0 {
		dst = binary.BigEndian.AppendUint16(dst, e.Port)
		pad()
		parts++
	}
	if e.Slotted {
		// numgen leaves its number in host byte order.
		dst = binary.NativeEndian.AppendUint32(dst, e.Slot)
		parts++
	}
	switch parts {
	case 0:
		return nil, fmt.Errorf("element %q has no key", e.String())
	case 1:
		// A single part keeps its own length (a protocol, a port).
		n := 0
		switch {
		case e.Proto != "":
			n = 1
		case e.Port != 0:
			n = 2
		}
		if n > 0 {
			dst = dst[:start+n]
		}
	}
	return dst, nil
}

// appendAddr appends the bytes of a, which must be of the family.
func (fi famInfo) appendAddr(dst []byte, a netip.Addr) ([]byte, error) {
	switch {
	case fi.fam == IPv4 && a.Is4():
		b := a.As4()
		return append(dst, b[:]...), nil
	case fi.fam == IPv6 && a.Is6() && !a.Is4In6() && a.Zone() == "":
		b := a.As16()
		return append(dst, b[:]...), nil
	}
	return nil, fmt.Errorf("address %v is not a plain %s address", a, fi.fam)
}

// setElements encodes elements of a named set: prefixes as intervals,
// other keys directly, with their verdicts unless keysOnly.
func (fi famInfo) setElements(es []Element, keysOnly bool) ([]nftables.SetElement, error) {
	out := make([]nftables.SetElement, 0, len(es))
	// Keys and data in one array each: no allocation per element.
	var keys, data []byte
	var ranges []keyInterval
	for i := range es {
		e := &es[i]
		if e.IsPrefix {
			if e.Addr2.IsValid() || e.Proto != "" || e.Port != 0 || e.Slotted || e.Verdict != nil || e.To.IsValid() {
				return nil, fmt.Errorf("element %q: a prefix cannot be part of a concatenation or a map key", e.String())
			}
			r, err := fi.prefixInterval(e.prefix())
			if err != nil {
				return nil, err
			}
			ranges = append(ranges, r)
			continue
		}
		if keys == nil {
			keys = make([]byte, 0, len(es)*48)
		}
		n := len(keys)
		var err error
		if keys, err = fi.appendKey(keys, e); err != nil {
			return nil, err
		}
		se := nftables.SetElement{Key: keys[n:len(keys):len(keys)]}
		if e.Verdict != nil && !keysOnly {
			if se.VerdictData, err = verdictExpr(*e.Verdict); err != nil {
				return nil, fmt.Errorf("element %q: %w", e.String(), err)
			}
		}
		if e.To.IsValid() && !keysOnly {
			if data == nil {
				data = make([]byte, 0, len(es)*20)
			}
			// addr . port: the port padded to a register.
			n := len(data)
			if data, err = fi.appendAddr(data, e.To.Addr()); err != nil {
				return nil, fmt.Errorf("element %q: %w", e.String(), err)
			}
			data = append(binary.BigEndian.AppendUint16(data, e.To.Port()), 0, 0)
			se.Val = data[n:len(data):len(data)]
		}
		out = append(out, se)
	}
	return append(out, intervalElements(ranges)...), nil
}
