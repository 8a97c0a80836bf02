package conntrack

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/servicemap"
)

// Proto is the IANA number of a flow's transport protocol.
type Proto uint8

// The protocols the package knows. Only UDP and SCTP flows are ever
// deleted; TCP is here to be recognised and left alone.
const (
	TCP  Proto = 6
	UDP  Proto = 17
	SCTP Proto = 132
)

// String returns "TCP", "UDP", "SCTP" or the number.
func (p Proto) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	}
	return "proto-" + strconv.Itoa(int(p))
}

// protoOf returns the Proto of a service port's protocol.
func protoOf(p servicemap.Protocol) (Proto, bool) {
	switch p.OrTCP() {
	case servicemap.UDP:
		return UDP, true
	case servicemap.SCTP:
		return SCTP, true
	case servicemap.TCP:
		return TCP, true
	}
	return 0, false
}

// Tuple is one direction of a flow.
type Tuple struct {
	Src, Dst netip.AddrPort
}

// Flow is one conntrack entry, reduced to what the reconcile needs.
//
// After DNAT, Orig is client → frontend (a ClusterIP, ExternalIP or LB IP
// and the service port, or a node address and the NodePort) and Reply is
// endpoint → client (or → node address, when masqueraded): Reply.Src is
// the endpoint the flow was sent to. A flow created while nothing
// translated it has Reply.Src == Orig.Dst.
type Flow struct {
	// ID is the kernel's id of the entry (CTA_ID). A delete that carries
	// it removes only that entry, never a newer one with the same tuple.
	// Zero matches any entry.
	ID uint32
	// Zone is the conntrack zone; zero is the default zone.
	Zone        uint16
	Proto       Proto
	Orig, Reply Tuple
}

// Family returns the IP family of the flow's original tuple.
func (f Flow) Family() proxykit.Family { return proxykit.FamilyOf(f.Orig.Dst.Addr()) }

// String returns the flow as "UDP 192.0.2.100:40053 -> 10.96.0.53:53
// reply 10.244.2.10:8080 -> 198.51.100.1:40053", with " zone N" and " id
// N" when set.
func (f Flow) String() string {
	s := fmt.Sprintf("%s %s -> %s reply %s -> %s", f.Proto, f.Orig.Src, f.Orig.Dst, f.Reply.Src, f.Reply.Dst)
	if f.Zone != 0 {
		s += " zone " + strconv.Itoa(int(f.Zone))
	}
	if f.ID != 0 {
		s += " id " + strconv.FormatUint(uint64(f.ID), 10)
	}
	return s
}

// Conn is the package's access to the kernel's conntrack table: the real
// one (NewConn) or the in-memory Fake.
type Conn interface {
	// Dump calls fn with every flow that f selects. It may pass other
	// flows too (a kernel without dump filters does); callers filter
	// again. fn must not keep its argument.
	Dump(ctx context.Context, f Filter, fn func(*Flow)) error
	// Delete deletes flows, matched by original tuple, zone and (when
	// non-zero) ID, and returns how many it deleted. A flow that is gone
	// already is not an error and is not counted. On error, the flows
	// before the failing ones may have been deleted: deleted counts them.
	Delete(ctx context.Context, flows []Flow) (deleted int, err error)
}

// Filter selects the flows of a dump: those of Family whose original
// tuple has protocol Proto and, when Port is not zero, destination port
// Port. The kernel applies it before copying a flow out, which costs far
// less than copying (Linux 5.8+, CTA_FILTER).
type Filter struct {
	Family proxykit.Family
	Proto  Proto
	Port   uint16
}

func (f Filter) String() string {
	s := f.Family.String() + " " + f.Proto.String()
	if f.Port != 0 {
		s += " port " + strconv.Itoa(int(f.Port))
	}
	return s
}

// Result is what one reconcile did, for WithObserver.
type Result struct {
	// Full is set when every UDP (and SCTP) service port was reconciled,
	// not only the ports the snapshot said changed.
	Full bool
	// Dumps is the number of dumps (one per IP family and protocol that
	// has a port to reconcile, or one per destination port when there are
	// few); Dumped counts the flows they returned.
	Dumps, Dumped int
	// Stale flows were found; Deleted of them were deleted, Failed were
	// in batches that failed (the next reconcile tries again). Stale -
	// Deleted - Failed flows were gone already.
	Stale, Deleted, Failed int
	// Batches is the number of delete batches sent.
	Batches int
	// Took is the reconcile's wall time: dumps, computation and deletes.
	Took time.Duration
	// Err is the reconcile's error, as Sync or Reconcile return it.
	Err error
}
