package nftables

import (
	"strconv"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// Map mode: most service ports have no chain of their own. Their
// frontends jump to a chain shared by every port with the same number of
// slots, which DNATs through one map per table:
//
//	service-ips:  10.96.0.10 . udp . 53 : goto pick-int-2
//	backends:     10.96.0.10 . udp . 53 . 0 : 10.244.1.5 . 53,
//	              10.96.0.10 . udp . 53 . 1 : 10.244.2.7 . 53
//	pick-int-2:   ip saddr != @cluster-cidrs meta mark set meta mark | 0x4000
//	              dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 2 map @backends
//
// An endpoint of weight w holds w consecutive slots (weights divided by
// their greatest common divisor), so it is picked with probability
// w / (sum of weights), exactly (SEMANTICS §3).
//
// Why: whenever a transaction adds a jump, a verdict-map element or a
// rule, the kernel re-validates every chain that the table's base chains
// reach. With a chain per service port that walk is O(all rules): about
// 210 ms at 30k services × 10 endpoints, for one changed endpoint. In map
// mode the walk covers a few shared chains, and an endpoint change is a
// few map elements.
//
// Ports that map mode cannot express keep their chains (chain mode, see
// dispatch): ClientIP affinity, external policy Local on an externally
// accessible port, and sets of more than maxSlots slots.

// maxSlots bounds the slots of a map-mode endpoint set: the elements one
// frontend puts in its backends map.
const maxSlots = 256

// The kinds of pick chains, by the masquerade rule before their DNAT.
const (
	pickInternal = "int" // ClusterIPs: from outside the cluster CIDRs (§7)
	pickExternal = "ext" // ExternalIPs and LB IPs, external policy Cluster: always
	pickNodePort = "np"  // NodePorts, external policy Cluster: always
)

// frontends are the keys of one kind of frontend (for service-ips or
// service-nodeports), with their verdicts, in the order of their ports;
// the slots of the map-mode ones (for backends or nodeport-backends) are
// in one array, span[i] being key i's.
type frontends struct {
	keys  []Element
	spans []span
	slots []Element
}

type span struct{ lo, hi int }

// add adds a chain-mode frontend: a key with its verdict, no slots.
func (fs *frontends) add(key Element) {
	fs.keys = append(fs.keys, key)
	fs.spans = append(fs.spans, span{len(fs.slots), len(fs.slots)})
}

// slotCount returns the greatest common divisor of the endpoints'
// weights, g, and the number of slots they take, the sum of the weights
// divided by g; ok is false above maxSlots.
func slotCount(eps []endpoints.Endpoint) (g, n uint32, ok bool) {
	var sum uint64
	for i := range eps {
		w := eps[i].EffectiveWeight()
		g = gcd(g, w)
		sum += uint64(w)
	}
	if g == 0 {
		return 0, 0, true
	}
	n64 := sum / uint64(g)
	return g, uint32(n64), n64 <= maxSlots
}

func gcd(a, b uint32) uint32 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// fits reports whether eps can be a map-mode set.
func fits(eps []endpoints.Endpoint) bool {
	_, _, ok := slotCount(eps)
	return ok
}

// mapped reports whether a port is programmed in map mode: its internal
// set and, if it has external frontends, its external set are each one
// weighted pick, without affinity or the external policy Local
// short-circuit.
func mapped(ps *proxykit.PortState, internal []endpoints.Endpoint) bool {
	sp := ps.Port
	if sp.Affinity.ClientIP || !fits(internal) {
		return false
	}
	if !sp.ExternallyAccessible() {
		return true
	}
	return sp.ExternalTrafficPolicy != servicemap.Local && fits(ps.Endpoints.Cluster)
}

// pick is a pick chain: its kind and number of slots.
type pick struct {
	kind  string
	slots uint32
}

func (p pick) name() string { return "pick-" + p.kind + "-" + strconv.FormatUint(uint64(p.slots), 10) }

// addMapped adds key as a map-mode frontend of eps to fs: a goto to the
// pick chain of its kind, and its slots. It records the pick chain's use.
func (tb *tableBuilder) addMapped(fs *frontends, key Element, kind string, eps []endpoints.Endpoint) {
	g, n, _ := slotCount(eps)
	p := pick{kind, n}
	tb.picks = append(tb.picks, p)
	lo := len(fs.slots)
	var s uint32
	for i := range eps {
		to := eps[i].AddrPort()
		for range eps[i].EffectiveWeight() / g {
			e := key
			e.Slot, e.Slotted, e.To = s, true, to
			fs.slots = append(fs.slots, e)
			s++
		}
	}
	fs.keys = append(fs.keys, withVerdict(key, Goto(p.name())))
	fs.spans = append(fs.spans, span{lo, len(fs.slots)})
}

// winners returns the keys of the frontends, the first of each key (the
// first kind, then the first port, as in proxykit.Explain), and the slots
// of those. Without duplicates, which is the rule, it copies nothing when
// only one kind of frontend has any.
func winners(lists ...*frontends) (keys, slots []Element) {
	n, withKeys, withSlots := 0, 0, 0
	var only *frontends
	for _, fs := range lists {
		n += len(fs.keys)
		if len(fs.keys) > 0 {
			withKeys++
			only = fs
		}
		if len(fs.slots) > 0 {
			withSlots++
		}
	}
	seen := make(map[elementKey]struct{}, n)
	dup := false
	for _, fs := range lists {
		for i := range fs.keys {
			k := fs.keys[i].key()
			_, dup = seen[k]
			if dup {
				break
			}
			seen[k] = struct{}{}
		}
		if dup {
			break
		}
	}
	if !dup && withKeys == 1 {
		return only.keys, only.slots
	}
	if !dup && withKeys == 0 {
		return nil, nil
	}
	clear(seen)
	for _, fs := range lists {
		for i := range fs.keys {
			k := fs.keys[i].key()
			if _, ok := seen[k]; ok {
				continue
			}
			seen[k] = struct{}{}
			keys = append(keys, fs.keys[i])
			slots = append(slots, fs.slots[fs.spans[i].lo:fs.spans[i].hi]...)
		}
	}
	return keys, slots
}

// pickChain returns a pick chain: the masquerade mark of its kind, then
// the DNAT through the backends map of its kind.
func (tb *tableBuilder) pickChain(p pick) *Chain {
	dnat := DnatMap{Map: mapBackends, Slots: p.slots}
	masq := Rule{tb.markMasq()}
	switch p.kind {
	case pickInternal:
		masq = tb.masqueradeInternal()
	case pickNodePort:
		dnat = DnatMap{Map: mapNodePortBackends, Slots: p.slots, NodePort: true}
	}
	return &Chain{Name: p.name(), Rules: []Rule{masq, {dnat}}}
}
