//go:build linux

package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// wire encodes one nf_tables batch by hand, as netlink bytes: the batch
// begin message, the messages of the operations, the batch end.
//
// google/nftables asks for an ack of every message and an echo of every
// rule, which the kernel then sends back one by one: at 30k services that
// is most of a cold sync's time in Go, and a receive buffer that must
// hold them all. Here only the last message asks for an ack; the kernel
// reports an error with the failing message's sequence number anyway, so
// an error is still mapped to its operation, exactly. Building the bytes
// here also lets sets carry the typeof description nft needs to print
// and re-read a map keyed on a numgen expression.
type wire struct {
	buf []byte
	// seq is the sequence number of the last message; begin's is first.
	first, seq uint32
	// owner[i] is the index of the operation of message first+1+i.
	owner []int
	op    int // the operation being encoded
	last  int // offset of the last operation message
	// nests are the offsets of the open nested attributes.
	nests []int
}

// Netlink constants of the nf_tables batch that x/sys/unix lacks.
const (
	nfnlMsgBatchBegin = unix.NLMSG_MIN_TYPE // NFNL_MSG_BATCH_BEGIN
	nfnlMsgBatchEnd   = unix.NLMSG_MIN_TYPE + 1
	nlaFNested        = unix.NLA_F_NESTED
	maxAttrLen        = 0xffff // an attribute's length is 16 bits
)

// errAttrTooLong is a nested attribute whose contents overflow the 16-bit
// length: an element list or a rule too large for one message.
var errAttrTooLong = errors.New("netlink attribute longer than 64 KiB")

func newWire(seq uint32) *wire {
	w := &wire{first: seq, seq: seq}
	w.header(nfnlMsgBatchBegin, unix.AF_UNSPEC, unix.NLM_F_REQUEST, unix.NFNL_SUBSYS_NFTABLES)
	w.done()
	return w
}

// header starts a message: nlmsghdr, then nfgenmsg with the family and
// the resource id (the subsystem, for batch messages).
func (w *wire) header(typ uint16, fam byte, flags uint16, resID uint16) {
	w.last = len(w.buf)
	w.buf = binary.NativeEndian.AppendUint32(w.buf, 0) // length, set by done
	w.buf = binary.NativeEndian.AppendUint16(w.buf, typ)
	w.buf = binary.NativeEndian.AppendUint16(w.buf, flags)
	w.buf = binary.NativeEndian.AppendUint32(w.buf, w.seq)
	w.buf = binary.NativeEndian.AppendUint32(w.buf, 0) // port id: the kernel
	w.buf = append(w.buf, fam, unix.NFNETLINK_V0)
	w.buf = binary.BigEndian.AppendUint16(w.buf, resID)
}

// msg starts the message of an operation (type NFT_MSG_*).
func (w *wire) msg(typ int, fam byte, flags uint16) {
	w.seq++
	w.owner = append(w.owner, w.op)
	w.header(uint16(unix.NFNL_SUBSYS_NFTABLES<<8|typ), fam, unix.NLM_F_REQUEST|flags, 0)
}

// done ends the message started last, setting its length.
func (w *wire) done() {
	binary.NativeEndian.PutUint32(w.buf[w.last:], uint32(len(w.buf)-w.last))
}

// finish ends the batch; the last operation message asks for the ack
// that tells the batch has been processed.
func (w *wire) finish() []byte {
	if len(w.owner) > 0 {
		flags := binary.NativeEndian.Uint16(w.buf[w.last+6:])
		binary.NativeEndian.PutUint16(w.buf[w.last+6:], flags|unix.NLM_F_ACK)
	}
	w.seq++
	w.header(nfnlMsgBatchEnd, unix.AF_UNSPEC, unix.NLM_F_REQUEST, unix.NFNL_SUBSYS_NFTABLES)
	w.done()
	return w.buf
}

// attr appends an attribute, padded to 4 bytes.
func (w *wire) attr(typ uint16, data []byte) {
	w.buf = binary.NativeEndian.AppendUint16(w.buf, uint16(unix.NLA_HDRLEN+len(data)))
	w.buf = binary.NativeEndian.AppendUint16(w.buf, typ)
	w.buf = append(w.buf, data...)
	w.pad()
}

func (w *wire) pad() {
	for len(w.buf)%unix.NLA_ALIGNTO != 0 {
		w.buf = append(w.buf, 0)
	}
}

func (w *wire) u32(typ uint16, v uint32) { w.attr(typ, binary.BigEndian.AppendUint32(nil, v)) }
func (w *wire) u64(typ uint16, v uint64) { w.attr(typ, binary.BigEndian.AppendUint64(nil, v)) }
func (w *wire) str(typ uint16, s string) { w.attr(typ, append([]byte(s), 0)) }

// nest opens a nested attribute; end closes it.
func (w *wire) nest(typ uint16) {
	w.nests = append(w.nests, len(w.buf))
	w.buf = binary.NativeEndian.AppendUint16(w.buf, 0)
	w.buf = binary.NativeEndian.AppendUint16(w.buf, typ|nlaFNested)
}

func (w *wire) end() error {
	start := w.nests[len(w.nests)-1]
	w.nests = w.nests[:len(w.nests)-1]
	n := len(w.buf) - start
	if n > maxAttrLen {
		return errAttrTooLong
	}
	binary.NativeEndian.PutUint16(w.buf[start:], uint16(n))
	return nil
}

// size is the number of bytes since the innermost open nest began.
func (w *wire) size() int { return len(w.buf) - w.nests[len(w.nests)-1] }

// owned returns the operation index of the message with sequence number
// seq, or -1 for the batch messages (an error at commit is reported
// against the batch begin).
func (w *wire) owned(seq uint32) int {
	i := int(seq) - int(w.first) - 1
	if i < 0 || i >= len(w.owner) {
		return -1
	}
	return w.owner[i]
}

// lastSeq is the sequence number of the message that asks for an ack.
func (w *wire) lastSeq() uint32 { return w.first + uint32(len(w.owner)) }

// batchReply is what the kernel answered a batch: the errors of its
// messages in order, and whether the final ack came.
type batchReply struct {
	errs  []seqError
	acked bool
}

type seqError struct {
	seq   uint32
	errno unix.Errno
}

// parseReplies reads netlink messages from b (one receive) into r.
func (w *wire) parseReplies(b []byte, r *batchReply) error {
	for len(b) >= unix.NLMSG_HDRLEN {
		n := int(binary.NativeEndian.Uint32(b))
		if n < unix.NLMSG_HDRLEN || n > len(b) {
			return fmt.Errorf("malformed netlink reply of %d bytes", n)
		}
		typ := binary.NativeEndian.Uint16(b[4:])
		if typ == unix.NLMSG_ERROR && n >= unix.NLMSG_HDRLEN+4+unix.NLMSG_HDRLEN {
			code := int32(binary.NativeEndian.Uint32(b[unix.NLMSG_HDRLEN:]))
			// The request's header follows the code: its sequence number.
			seq := binary.NativeEndian.Uint32(b[unix.NLMSG_HDRLEN+4+8:])
			if code != 0 {
				r.errs = append(r.errs, seqError{seq: seq, errno: unix.Errno(-code)})
			}
			if seq == w.lastSeq() {
				r.acked = true
			}
		}
		b = b[(n+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1):]
	}
	return nil
}
