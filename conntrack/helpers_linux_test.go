//go:build linux

package conntrack

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	ticonntrack "github.com/ti-mo/conntrack"

	"github.com/proxykit/proxykit/internal/netnstest"
)

// createRequest appends a ctnetlink "new" request that creates f with
// the given timeout in seconds: what a packet through DNAT would have
// made, without the packet.
func (e *encoder) createRequest(seq uint32, f *Flow, timeout uint32) int {
	af, err := familyOf(f.Orig)
	if err != nil {
		panic(err)
	}
	start := e.begin(ctMsgNew, nlmFRequest|nlmFCreate|nlmFExcl, seq, af)
	e.tuple(ctaTupleOrig, f.Proto, f.Orig)
	e.tuple(ctaTupleReply, f.Proto, f.Reply)
	e.be32(ctaTimeout, timeout)
	if f.Zone != 0 {
		e.be16(ctaZone, f.Zone)
	}
	e.end(start)
	return start
}

// createFlows creates flows in the conntrack table of c's namespace, with
// pipelined "new" requests (the same path as Delete), in writes of up to
// maxWrite bytes.
func createFlows(ctx context.Context, c *netlinkConn, flows []Flow, timeout uint32) error {
	s, err := c.open()
	if err != nil {
		return err
	}
	defer s.close()
	var t tally
	var e encoder
	for i := 0; i < len(flows); {
		e.b = e.b[:0]
		first, last, n := s.seq+1, 0, 0
		for ; i < len(flows) && len(e.b) < maxWrite; i++ {
			last = e.createRequest(s.nextSeq(), &flows[i], timeout)
			n++
		}
		e.setAck(last)
		if err := s.write(ctx, e.b, n); err != nil {
			return err
		}
		if err := s.collect(ctx, first, n, &t); err != nil {
			return err
		}
	}
	if err := t.err(nil); err != nil {
		return fmt.Errorf("create %d flows: %w", len(flows), err)
	}
	return nil
}

// kernelConn returns the real Conn of ns.
func kernelConn(t testing.TB, ns *netnstest.NS) *netlinkConn {
	t.Helper()
	c, err := NewConn(ns.Fd())
	if err != nil {
		t.Fatal(err)
	}
	return c.(*netlinkConn)
}

// tiDump dumps every flow of ns's table with github.com/ti-mo/conntrack,
// the reference decoder, converted to Flows.
func tiDump(t testing.TB, ns *netnstest.NS) []Flow {
	t.Helper()
	c, err := ticonntrack.Dial(&netlink.Config{NetNS: ns.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fs, err := c.Dump(nil)
	if err != nil {
		t.Fatalf("ti-mo/conntrack dump: %v", err)
	}
	out := make([]Flow, 0, len(fs))
	for _, f := range fs {
		out = append(out, Flow{
			ID: f.ID, Zone: f.Zone, Proto: Proto(f.TupleOrig.Proto.Protocol),
			Orig:  tiTuple(f.TupleOrig),
			Reply: tiTuple(f.TupleReply),
		})
	}
	return out
}

func tiTuple(t ticonntrack.Tuple) Tuple {
	return Tuple{
		Src: netip.AddrPortFrom(t.IP.SourceAddress, t.Proto.SourcePort),
		Dst: netip.AddrPortFrom(t.IP.DestinationAddress, t.Proto.DestinationPort),
	}
}

// countBy counts the flows of fs for which keep is true.
func countBy(fs []Flow, keep func(Flow) bool) int {
	n := 0
	for _, f := range fs {
		if keep(f) {
			n++
		}
	}
	return n
}

// ctMax reads net.netfilter.nf_conntrack_max in ns and tries to raise it
// to at least want. It returns the value in force.
func ctMax(t testing.TB, ns *netnstest.NS, want int) int {
	t.Helper()
	const path = "/proc/sys/net/netfilter/nf_conntrack_max"
	var have int
	err := ns.Do(func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if have, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
			return err
		}
		if have < want {
			// Read-only outside the initial namespace on most kernels.
			if os.WriteFile(path, []byte(strconv.Itoa(want)), 0o644) == nil {
				have = want
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return have
}
