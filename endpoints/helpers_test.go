package endpoints

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/proxykit/proxykit/servicemap"
)

// diff returns "" when want and got are equal, else their line diff as
// (-want +got).
func diff(want, got []string) string {
	if strings.Join(want, "\n") == strings.Join(got, "\n") && len(want) == len(got) {
		return ""
	}
	// Longest common subsequence, then walk it.
	n, m := len(want), len(got)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if want[i] == got[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var b strings.Builder
	b.WriteString("(-want +got):\n")
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && want[i] == got[j]:
			b.WriteString("  " + want[i] + "\n")
			i, j = i+1, j+1
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			b.WriteString("+ " + got[j] + "\n")
			j++
		default:
			b.WriteString("- " + want[i] + "\n")
			i++
		}
	}
	return b.String()
}

// fmtEndpoint renders an endpoint compactly: "10.0.0.1:80 RST node=a
// zone=z hz=[..] hn=[..] w=2", leaving out empty parts.
func fmtEndpoint(e Endpoint) string {
	s := e.AddrPort().String() + " "
	for _, f := range []struct {
		on bool
		c  string
	}{{e.Ready, "R"}, {e.Serving, "S"}, {e.Terminating, "T"}} {
		if f.on {
			s += f.c
		} else {
			s += "-"
		}
	}
	if e.NodeName != "" {
		s += " node=" + e.NodeName
	}
	if e.Zone != "" {
		s += " zone=" + e.Zone
	}
	if e.ZoneHints != nil {
		s += fmt.Sprintf(" hz=%v", e.ZoneHints)
	}
	if e.NodeHints != nil {
		s += fmt.Sprintf(" hn=%v", e.NodeHints)
	}
	if e.Weight != 0 {
		s += fmt.Sprintf(" w=%d", e.Weight)
	}
	return s
}

// fmtLists renders port lists as sorted lines "port endpoint".
func fmtLists(m map[servicemap.PortName][]Endpoint) []string {
	var out []string
	for name, eps := range m {
		for _, e := range eps {
			out = append(out, name.String()+" "+fmtEndpoint(e))
		}
	}
	// Ports sort by name; within a port the order must stay as merged.
	sort.SliceStable(out, func(i, j int) bool { return portOf(out[i]) < portOf(out[j]) })
	return out
}

func portOf(line string) string { return line[:strings.IndexByte(line, ' ')] }

// fmtMap renders a Map in its own order.
func fmtMap(m Map) []string {
	var out []string
	for name, eps := range m.All() {
		for _, e := range eps {
			out = append(out, name.String()+" "+fmtEndpoint(e))
		}
	}
	return out
}

func fmtPorts(ps []servicemap.PortName) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

// ep returns a ready, serving endpoint at addr.
func ep(addr string) Endpoint {
	return Endpoint{Addr: netip.MustParseAddr(addr), Ready: true, Serving: true}
}

// with returns e changed by f.
func with(e Endpoint, f func(*Endpoint)) Endpoint {
	f(&e)
	return e
}

func terminating(e *Endpoint) { e.Ready, e.Terminating = false, true }
func unready(e *Endpoint)     { e.Ready, e.Serving = false, false }

func slice(ns, svc, name string, ports []Port, eps ...Endpoint) *Slice {
	return &Slice{Namespace: ns, Service: svc, Name: name, Ports: ports, Endpoints: eps}
}

func ports(ps ...Port) []Port { return ps }

func tcp(name string, port uint16) Port {
	return Port{Name: name, Protocol: servicemap.TCP, Port: port}
}
func udp(name string, port uint16) Port {
	return Port{Name: name, Protocol: servicemap.UDP, Port: port}
}
func sctp(name string, port uint16) Port {
	return Port{Name: name, Protocol: servicemap.SCTP, Port: port}
}

func portName(ns, name, port, proto string) servicemap.PortName {
	return servicemap.PortName{Namespace: ns, Name: name, Port: port, Protocol: servicemap.Protocol(proto)}
}

func serviceName(ns, name string) servicemap.ServiceName {
	return servicemap.ServiceName{Namespace: ns, Name: name}
}
