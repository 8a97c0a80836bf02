package iptables

import (
	"crypto/sha256"
	"net/netip"
	"strconv"

	"github.com/proxykit/proxykit/servicemap"
)

// Kinds of per-port chains. Each name is prefix + "-" + kind + "-" + hash,
// exactly 28 characters (the kernel's limit is 28 plus the NUL): the hash
// fills what the prefix leaves, 15 characters (75 bits) for the default.
const (
	kindSVC = "SVC" // Cluster set
	kindSVL = "SVL" // Local set
	kindEXT = "EXT" // external frontends
	kindFW  = "FWL" // LoadBalancer source ranges (nat and filter)
	kindSEP = "SEP" // one endpoint
)

// Fixed chain suffixes.
const (
	chainServices     = "SERVICES"
	chainNodePorts    = "NODEPORTS"
	chainPostrouting  = "POSTROUTING"
	chainMarkMasq     = "MARK-MASQ"
	chainNonPodMasq   = "NONPOD-MASQ"
	chainFirewall     = "FIREWALL"
	chainExternalDrop = "EXTERNAL-DROP"
	chainCanary       = "CANARY"
	chainProbe        = "PROBE"
)

const maxChainName = 28

const b32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// hashName is the hash part of a chain name: base32 of SHA-256, as many
// characters as fit.
type hashName struct {
	b [16]byte
	n int
}

func (h *hashName) String() string { return string(h.b[:h.n]) }

// hashOf returns the hash of id, n characters long (n ≤ 16).
func hashOf(id []byte, n int) hashName {
	sum := sha256.Sum256(id)
	var h hashName
	h.n = n
	var acc uint64
	bitsLeft := 0
	j := 0
	for i := range n {
		if bitsLeft < 5 {
			acc = acc<<8 | uint64(sum[j])
			j++
			bitsLeft += 8
		}
		h.b[i] = b32[(acc>>(bitsLeft-5))&31]
		bitsLeft -= 5
	}
	return h
}

// hashLen is the number of hash characters that fill a per-port chain
// name up to maxChainName.
func hashLen(prefix string) int { return min(16, maxChainName-len(prefix)-5) }

// appendPortID appends the identity of a service port that its chains'
// hashes derive from: "ns/name:port/TCP".
func appendPortID(b []byte, n servicemap.PortName) []byte {
	b = append(b, n.Namespace...)
	b = append(b, '/')
	b = append(b, n.Name...)
	if n.Port != "" {
		b = append(b, ':')
		b = append(b, n.Port...)
	}
	b = append(b, '/')
	return append(b, n.Protocol...)
}

// appendEndpointID appends an endpoint's identity to its port's.
func appendEndpointID(portID []byte, ap netip.AddrPort) []byte {
	b := append(portID, '>')
	return ap.AppendTo(b)
}

// comment returns the text of the comment for a service port: its name
// with any character outside [A-Za-z0-9._:/-] replaced by '_', at most
// 200 bytes, and quoted as iptables-save quotes it (it does whenever a
// character is not a letter, digit, '_' or '-'). No input can end the
// quoted string or the line.
func comment(n servicemap.PortName) string {
	raw := make([]byte, 0, 64)
	raw = appendPortID(raw, n)
	return quoteComment(raw)
}

func quoteComment(raw []byte) string {
	const max = 200
	if len(raw) > max {
		raw = raw[:max]
	}
	plain := len(raw) > 0
	for i, c := range raw {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		case c == '.' || c == ':' || c == '/':
			plain = false
		default:
			raw[i] = '_'
		}
	}
	if plain {
		return string(raw)
	}
	return strconv.Quote(string(raw)) // only safe characters: plain double quotes
}
