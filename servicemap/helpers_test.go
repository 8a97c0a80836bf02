package servicemap

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/proxykit/proxykit/affinity"
)

func ips(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// clusterIPService returns a valid ClusterIP service with one port.
func clusterIPService(ns, name string) *Service {
	return &Service{
		Namespace:  ns,
		Name:       name,
		ClusterIPs: ips("10.0.0.1"),
		Ports:      []Port{{Name: "http", Port: 80}},
	}
}

// loadBalancerService returns a valid dual-stack LoadBalancer service
// with every field set.
func loadBalancerService() *Service {
	return &Service{
		Namespace:  "ns",
		Name:       "lb",
		Type:       LoadBalancer,
		ClusterIPs: ips("10.0.0.2", "fd00::2"),
		Ports: []Port{
			{Name: "http", Protocol: TCP, Port: 80, NodePort: 30080},
			{Name: "dns", Protocol: UDP, Port: 53, NodePort: 30053},
			{Name: "dns-tcp", Protocol: TCP, Port: 53, NodePort: 30054},
			{Name: "assoc", Protocol: SCTP, Port: 9999},
		},
		ExternalIPs:              ips("192.0.2.1", "2001:db8::1"),
		LoadBalancerIPs:          ips("198.51.100.1"),
		LoadBalancerSourceRanges: prefixes("203.0.113.0/24", "2001:db8:1::/48", "0.0.0.0/0"),
		Affinity:                 affinity.Config{ClientIP: true, Timeout: 600 * time.Second},
		ExternalTrafficPolicy:    Local,
		InternalTrafficPolicy:    Cluster,
		HealthCheckNodePort:      32000,
		Scheduler:                "wrr",
	}
}

// problems returns the problems Validate reported, one line each, without
// the "servicemap: " prefix.
func problems(err error) []string {
	if err == nil {
		return nil
	}
	ve, ok := err.(*ValidationError)
	if !ok {
		return []string{"not a *ValidationError: " + err.Error()}
	}
	out := make([]string, len(ve.Errors))
	for i, fe := range ve.Errors {
		out[i] = strings.TrimPrefix(fe.Error(), "servicemap: ")
	}
	return out
}

// diff returns a line diff of want and got, (-want +got), or "" when they
// are equal. It uses the longest common subsequence; inputs are small.
func diff[T any](want, got []T) string {
	w, g := lines(want), lines(got)
	lcs := make([][]int, len(w)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(g)+1)
	}
	for i := len(w) - 1; i >= 0; i-- {
		for j := len(g) - 1; j >= 0; j-- {
			if w[i] == g[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var b strings.Builder
	changed := false
	i, j := 0, 0
	for i < len(w) || j < len(g) {
		switch {
		case i < len(w) && j < len(g) && w[i] == g[j]:
			fmt.Fprintf(&b, "  %s\n", w[i])
			i, j = i+1, j+1
		case j == len(g) || (i < len(w) && lcs[i+1][j] >= lcs[i][j+1]):
			fmt.Fprintf(&b, "- %s\n", w[i])
			i, changed = i+1, true
		default:
			fmt.Fprintf(&b, "+ %s\n", g[j])
			j, changed = j+1, true
		}
	}
	if !changed {
		return ""
	}
	return b.String()
}

func lines[T any](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = fmt.Sprintf("%+v", x)
	}
	return out
}
