package nftables

import (
	"net/netip"
	"strings"

	"github.com/proxykit/proxykit/servicemap"
)

// Names of the fixed chains, sets and maps of a table.
const (
	chainNatPrerouting   = "nat-prerouting"
	chainNatOutput       = "nat-output"
	chainNatPostrouting  = "nat-postrouting"
	chainFilterPre       = "filter-prerouting"
	chainFilterOutputFW  = "filter-output-firewall"
	chainFilterInput     = "filter-input"
	chainFilterForward   = "filter-forward"
	chainFilterOutput    = "filter-output"
	chainServices        = "services"
	chainMasquerading    = "masquerading"
	chainFirewallCheck   = "firewall-check"
	chainEndpointsCheck  = "endpoints-check"
	chainReject          = "reject-chain"
	chainExternalDrop    = "external-drop"
	mapServiceIPs        = "service-ips"
	mapServiceNodePorts  = "service-nodeports"
	mapNoEndpointIPs     = "no-endpoint-services"
	mapNoEndpointNPs     = "no-endpoint-nodeports"
	mapFirewallIPs       = "firewall-ips"
	setClusterIPs        = "cluster-ips"
	setClusterCIDRs      = "cluster-cidrs"
	setLocalPods         = "local-pods"
	setNodePortAddresses = "nodeport-addresses"
	setHairpin           = "hairpin"
	mapBackends          = "backends"
	mapNodePortBackends  = "nodeport-backends"
)

const b32 = "abcdefghijklmnopqrstuvwxyz234567"

// hash8 is a stable 8-character (40-bit) hash of s: FNV-1a, base32. The
// names it goes into also carry the readable identity, so a collision of
// hashes alone does not make two names equal.
func hash8(s string) string {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	var out [8]byte
	for i := range out {
		out[i] = b32[h&31]
		h >>= 5
	}
	return string(out[:])
}

// portNames are the per-port object names of one service port. They carry
// a hash of the port's identity, so they are unique and stable, and a
// readable part, sanitized so that no input can break out of a name.
type portNames struct {
	hash, readable string
}

func namesOf(n servicemap.PortName) portNames {
	return portNames{
		hash:     hash8(n.String()),
		readable: sanitize(n.Namespace) + "/" + sanitize(n.Name) + "/" + sanitize(n.Port) + "/" + protoName(n.Protocol),
	}
}

func (p portNames) chain(kind string) string { return kind + "-" + p.hash + "-" + p.readable }

// endpoint returns the names of an endpoint's chain and affinity set.
func (p portNames) endpoint(ap netip.AddrPort) (chain, set string) {
	h := hash8(p.hash + "/" + ap.String())
	return "ep-" + p.hash + "-" + h, "aff-" + p.hash + "-" + h
}

// sanitize keeps the characters nft allows unquoted in a name, replaces
// the others with '_', and bounds the length. Validated names pass
// unchanged; the hash keeps sanitized names unique.
func sanitize(s string) string {
	const max = 63 // a DNS label: valid names pass whole
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < max; i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
