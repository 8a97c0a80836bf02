//go:build linux

package nftables

import (
	"encoding/binary"
	"encoding/hex"
	"testing"

	"golang.org/x/sys/unix"
)

// nftBackendsUdata is the userdata nft 1.0.6 sends for `map backends {
// typeof ip daddr . meta l4proto . th dport . numgen random mod 1 : ip
// daddr . th dport; }`, as `nft --debug=mnl` prints it (little-endian
// host).
const nftBackendsUdata = "000400000000010400000000036000040d00000001580014000407000000010c00040c00000001040c0000" +
	"00010e00040900000001060004100000000214000407000000010c00040b000000010402000000031a000417000000" +
	"0112000401000000010401000000020400000000043400040d000000012c0014000407000000010c00040c00000001" +
	"040c0000000114000407000000010c00040b000000010402000000060400000000"

func TestSetDefTypeofMatchesNft(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the reference bytes are of a little-endian host")
	}
	def, err := setDef(&Set{Name: mapBackends, Typeof: true,
		Type: "ip daddr . meta l4proto . th dport . numgen random mod 1", Data: "ip daddr . th dport"})
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(def.udata); got != nftBackendsUdata {
		t.Errorf("userdata\n got %s\nwant %s", got, nftBackendsUdata)
	}
	// The key and data types nft sends: ipv4_addr . inet_proto .
	// inet_service . integer, and ipv4_addr . inet_service.
	if def.keyType != 0x1cc344 || def.keyLen != 16 || def.dataType != 0x1cd || def.dataLen != 8 || def.flags != unix.NFT_SET_MAP {
		t.Errorf("key %#x/%d data %#x/%d flags %#x", def.keyType, def.keyLen, def.dataType, def.dataLen, def.flags)
	}
}

func TestSetDefRejectsUnknownTypes(t *testing.T) {
	for _, s := range []*Set{
		{Name: "a", Type: "ether_addr"},
		{Name: "b", Typeof: true, Type: "ip saddr"},
		{Name: "c", Type: "ipv4_addr", Data: "cgroupsv2"},
		{Name: "", Type: "ipv4_addr"},
	} {
		if _, err := setDef(s); err == nil {
			t.Errorf("setDef(%+v) accepted", s)
		}
	}
}

// The kernel's replies: an error for one message, then the ack of the
// last one; parseReplies maps the error to its operation.
func TestParseReplies(t *testing.T) {
	w := newWire(100)
	for i := range 3 {
		w.op = i
		w.msg(unix.NFT_MSG_NEWTABLE, unix.AF_INET, unix.NLM_F_CREATE)
		w.str(unix.NFTA_TABLE_NAME, "t")
		w.done()
	}
	w.finish()
	reply := func(seq uint32, errno int32) []byte {
		b := binary.NativeEndian.AppendUint32(nil, unix.NLMSG_HDRLEN+4+unix.NLMSG_HDRLEN)
		b = binary.NativeEndian.AppendUint16(b, unix.NLMSG_ERROR)
		b = binary.NativeEndian.AppendUint16(b, 0)
		b = binary.NativeEndian.AppendUint32(b, seq)
		b = binary.NativeEndian.AppendUint32(b, 0)
		b = binary.NativeEndian.AppendUint32(b, uint32(-errno))
		// The request's header: its length, type, flags, seq, port.
		b = binary.NativeEndian.AppendUint32(b, 20)
		b = binary.NativeEndian.AppendUint32(b, 0)
		b = binary.NativeEndian.AppendUint32(b, seq)
		return binary.NativeEndian.AppendUint32(b, 0)
	}
	var r batchReply
	if err := w.parseReplies(append(reply(102, int32(unix.EEXIST)), reply(103, 0)...), &r); err != nil {
		t.Fatal(err)
	}
	if !r.acked || len(r.errs) != 1 || r.errs[0].errno != unix.EEXIST || w.owned(r.errs[0].seq) != 1 {
		t.Errorf("reply = %+v, owner of the error %d; want op 1's EEXIST and the ack", r, w.owned(r.errs[0].seq))
	}
	if w.owned(100) != -1 || w.owned(104) != -1 {
		t.Error("the batch messages have an operation")
	}
	if err := w.parseReplies([]byte{200, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, &r); err == nil {
		t.Error("a reply longer than its bytes was accepted")
	}
}
