package conntrack

import (
	"testing"
)

// A delete request's payload decodes to the flow's original tuple, ID
// and zone: the encoder and the decoder agree.
func TestWireRoundTrip(t *testing.T) {
	for _, f := range []Flow{
		{ID: 7, Proto: UDP, Orig: Tuple{Src: addrPort("192.0.2.100:40053"), Dst: addrPort("10.96.0.10:53")}},
		{ID: 1 << 31, Zone: 9, Proto: SCTP, Orig: Tuple{Src: addrPort("[2001:db8::1]:1"), Dst: addrPort("[fd00:96::a]:65535")}},
	} {
		var e encoder
		if _, err := e.deleteRequest(3, &f, true); err != nil {
			t.Fatal(err)
		}
		h, payload, rest, err := nextMessage(e.b)
		if err != nil || len(rest) != 0 || h.seq != 3 || h.typ != ctMsgDelete || h.flags != nlmFRequest|nlmFAck {
			t.Fatalf("header %+v, rest %d, %v", h, len(rest), err)
		}
		var got Flow
		if err := decodeFlow(payload, &got); err != nil {
			t.Fatal(err)
		}
		if got != f {
			t.Errorf("round trip: got %v, want %v", got, f)
		}
	}
	var e encoder
	bad := Flow{Proto: UDP, Orig: Tuple{Src: addrPort("10.0.0.1:1"), Dst: addrPort("[::1]:2")}}
	if _, err := e.deleteRequest(1, &bad, false); err == nil {
		t.Error("a mixed-family tuple was encoded")
	}
}

// FuzzDecode: no input makes the decoder panic or read out of bounds.
func FuzzDecode(f *testing.F) {
	var e encoder
	fl := Flow{ID: 7, Zone: 2, Proto: UDP, Orig: Tuple{Src: addrPort("192.0.2.100:40053"), Dst: addrPort("10.96.0.10:53")}}
	_, _ = e.deleteRequest(1, &fl, false)
	f.Add(e.b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		for len(b) > 0 {
			_, payload, rest, err := nextMessage(b)
			if err != nil {
				return
			}
			var got Flow
			_ = decodeFlow(payload, &got)
			_ = errnoOf(payload)
			b = rest
		}
	})
}
