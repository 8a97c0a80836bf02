package servicemap

import (
	"errors"
	"net/netip"
	"strconv"

	"github.com/proxykit/proxykit/affinity"
)

// Reasons shared by several rules.
const (
	reasonDNS1123 = "must be a DNS-1123 label: at most 63 lower-case letters, digits or '-', starting and ending with a letter or digit"
	reasonDNS1035 = "must be a DNS-1035 label: at most 63 lower-case letters, digits or '-', starting with a letter and ending with a letter or digit"
	reasonPolicy  = `must be "Cluster" or "Local" (empty means Cluster)`
)

// Validate reports every problem of the service at once, as a
// *ValidationError holding one *FieldError per problem, or nil when the
// service is valid. The rules follow Kubernetes' where the two overlap:
//
//   - Namespace is a DNS-1123 label, Name a DNS-1035 label.
//   - Type is empty (ClusterIP) or one of the Type constants.
//   - ClusterIPs: at most two, at most one per IP family, none on an
//     ExternalName service. ClusterIPs, ExternalIPs and LoadBalancerIPs
//     must be valid, zone-less, not IPv4-mapped IPv6, and not unspecified,
//     loopback, multicast or link-local.
//   - Ports: at least one unless the service is headless or ExternalName;
//     Port 1-65535; Protocol empty (TCP), TCP, UDP or SCTP; Name a DNS-1123
//     label, required when there is more than one port; no two ports with
//     the same name and protocol, or the same port and protocol; a NodePort
//     only on NodePort and LoadBalancer services and never twice for one
//     protocol.
//   - ExternalIPs on any type but ExternalName; LoadBalancerIPs and
//     LoadBalancerSourceRanges only on LoadBalancer services; source ranges
//     valid, not IPv4-mapped, without host bits set.
//   - Affinity as affinity.Config.Validate says, under "Affinity.Timeout".
//   - Traffic policies empty (Cluster), Cluster or Local.
//     HealthCheckNodePort only on LoadBalancer services with
//     ExternalTrafficPolicy Local.
//   - Scheduler only lower-case letters and digits.
//
// When Type is unknown, the rules that depend on the type are skipped, so
// one mistake is not reported many times.
func (s *Service) Validate() error {
	if s == nil {
		return &ValidationError{Errors: []*FieldError{{Field: "Service", Value: nil, Reason: "must not be nil"}}}
	}
	v := validator{s: s}
	v.names()
	v.serviceType()
	v.clusterIPs()
	v.ports()
	v.externalIPs()
	v.loadBalancer()
	v.affinity()
	v.policies()
	v.scheduler()
	if len(v.errs) == 0 {
		return nil
	}
	return &ValidationError{Service: ServiceName{s.Namespace, s.Name}, Errors: v.errs}
}

// validator collects the problems of one Service. It allocates only when
// it finds one, so validating a valid service is cheap.
type validator struct {
	s    *Service
	typ  Type // normalized; "" when unknown
	errs []*FieldError
}

func (v *validator) add(field string, value any, reason string) {
	v.errs = append(v.errs, &FieldError{Field: field, Value: value, Reason: reason})
}

// index returns e.g. "Ports[1].Port" for ("Ports", 1, ".Port").
func index(field string, i int, sub string) string {
	return field + "[" + strconv.Itoa(i) + "]" + sub
}

func (v *validator) names() {
	switch ns := v.s.Namespace; {
	case ns == "":
		v.add("Namespace", ns, "must not be empty")
	case !isDNS1123Label(ns):
		v.add("Namespace", ns, reasonDNS1123)
	}
	switch n := v.s.Name; {
	case n == "":
		v.add("Name", n, "must not be empty")
	case !isDNS1035Label(n):
		v.add("Name", n, reasonDNS1035)
	}
}

func (v *validator) serviceType() {
	switch t := v.s.Type; t {
	case "":
		v.typ = ClusterIP
	case ClusterIP, NodePort, LoadBalancer, ExternalName:
		v.typ = t
	default:
		v.add("Type", t, `must be "ClusterIP", "NodePort", "LoadBalancer" or "ExternalName" (empty means ClusterIP)`)
	}
}

// forbids reports whether the service's type is known and none of allowed.
func (v *validator) forbids(allowed ...Type) bool {
	if v.typ == "" {
		return false
	}
	for _, t := range allowed {
		if v.typ == t {
			return false
		}
	}
	return true
}

func (v *validator) clusterIPs() {
	ips := v.s.ClusterIPs
	if len(ips) > 0 && v.typ == ExternalName {
		v.add("ClusterIPs", ips, "must be empty for an ExternalName service")
	}
	if len(ips) > 2 {
		v.add("ClusterIPs", ips, "must hold at most 2 addresses, one per IP family")
	}
	if len(ips) == 0 && (v.typ == NodePort || v.typ == LoadBalancer) {
		v.add("ClusterIPs", ips, "must not be empty for a "+string(v.typ)+" service: only ClusterIP services may be headless")
	}
	first4, first6 := -1, -1
	for i, a := range ips {
		if r := addrProblem(a); r != "" {
			v.add(index("ClusterIPs", i, ""), a, r)
			continue
		}
		first := &first6
		family := "IPv6"
		if a.Is4() {
			first, family = &first4, "IPv4"
		}
		if *first >= 0 {
			v.add(index("ClusterIPs", i, ""), a, "second "+family+" address (the first is "+
				index("ClusterIPs", *first, "")+"); at most one per IP family")
			continue
		}
		*first = i
	}
}

// addrProblem says why a isn't usable as a service frontend address, or
// returns "".
func addrProblem(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "must be a valid IP address"
	case a.Zone() != "":
		return "must not have an IPv6 zone"
	case a.Is4In6():
		return "IPv4-mapped IPv6 address mixes up the IP families; use " + a.Unmap().String()
	case a.IsUnspecified():
		return "must not be the unspecified address"
	case a.IsLoopback():
		return "must not be a loopback address"
	case a.IsMulticast():
		return "must not be a multicast address"
	case a.IsLinkLocalUnicast():
		return "must not be a link-local address"
	}
	return ""
}

func (v *validator) addrs(field string, addrs []netip.Addr) {
	for i, a := range addrs {
		if r := addrProblem(a); r != "" {
			v.add(index(field, i, ""), a, r)
		}
	}
}

func (v *validator) ports() {
	s := v.s
	ports := s.Ports
	if len(ports) == 0 && len(s.ClusterIPs) > 0 && v.typ != ExternalName {
		v.add("Ports", ports, "must have at least one port unless the service is headless (no ClusterIPs) or ExternalName")
	}
	for i, p := range ports {
		v.port(i, p)
	}
	// Duplicates. Unnamed ports among several are reported as missing a
	// name already; zero ports and node ports are not duplicates.
	findDups(len(ports), func(i int) (Port, bool) {
		p := ports[i]
		return Port{Name: p.Name, Protocol: p.Protocol.OrTCP()}, p.Name != ""
	}, func(i, j int) {
		v.add(index("Ports", i, ".Name"), ports[i].Name,
			"duplicate of "+index("Ports", j, "")+" (same name and protocol "+string(ports[i].Protocol.OrTCP())+")")
	})
	findDups(len(ports), func(i int) (Port, bool) {
		p := ports[i]
		return Port{Port: p.Port, Protocol: p.Protocol.OrTCP()}, p.Port != 0
	}, func(i, j int) {
		v.add(index("Ports", i, ".Port"), ports[i].Port,
			"duplicate of "+index("Ports", j, "")+" (same port and protocol "+string(ports[i].Protocol.OrTCP())+")")
	})
	findDups(len(ports), func(i int) (Port, bool) {
		p := ports[i]
		return Port{NodePort: p.NodePort, Protocol: p.Protocol.OrTCP()}, p.NodePort != 0
	}, func(i, j int) {
		v.add(index("Ports", i, ".NodePort"), ports[i].NodePort,
			"duplicate of "+index("Ports", j, ".NodePort")+" (same node port and protocol "+string(ports[i].Protocol.OrTCP())+")")
	})
}

func (v *validator) port(i int, p Port) {
	switch {
	case p.Name == "" && len(v.s.Ports) > 1:
		v.add(index("Ports", i, ".Name"), p.Name, "must be set when the service has more than one port")
	case p.Name != "" && !isDNS1123Label(p.Name):
		v.add(index("Ports", i, ".Name"), p.Name, reasonDNS1123)
	}
	switch p.Protocol {
	case "", TCP, UDP, SCTP:
	default:
		v.add(index("Ports", i, ".Protocol"), p.Protocol, `must be "TCP", "UDP" or "SCTP" (empty means TCP)`)
	}
	if p.Port == 0 {
		v.add(index("Ports", i, ".Port"), p.Port, "must be 1-65535")
	}
	if p.NodePort != 0 && v.forbids(NodePort, LoadBalancer) {
		v.add(index("Ports", i, ".NodePort"), p.NodePort, "only NodePort and LoadBalancer services may have one (type is "+string(v.typ)+")")
	}
}

// findDups calls dup(i, j) for every element i whose key equals the key of
// an earlier element, j being the first such. Elements whose key function
// returns false take no part. Small lists are compared pairwise, larger
// ones through a map.
func findDups[K comparable](n int, key func(int) (K, bool), dup func(i, j int)) {
	if n <= 16 {
		for i := 1; i < n; i++ {
			ki, ok := key(i)
			if !ok {
				continue
			}
			for j := range i {
				if kj, ok := key(j); ok && kj == ki {
					dup(i, j)
					break
				}
			}
		}
		return
	}
	seen := make(map[K]int, n)
	for i := range n {
		k, ok := key(i)
		if !ok {
			continue
		}
		if j, found := seen[k]; found {
			dup(i, j)
			continue
		}
		seen[k] = i
	}
}

func (v *validator) externalIPs() {
	ips := v.s.ExternalIPs
	if len(ips) > 0 && v.typ == ExternalName {
		v.add("ExternalIPs", ips, "must be empty for an ExternalName service")
	}
	v.addrs("ExternalIPs", ips)
}

func (v *validator) loadBalancer() {
	s := v.s
	if len(s.LoadBalancerIPs) > 0 && v.forbids(LoadBalancer) {
		v.add("LoadBalancerIPs", s.LoadBalancerIPs, "only LoadBalancer services may have them (type is "+string(v.typ)+")")
	}
	v.addrs("LoadBalancerIPs", s.LoadBalancerIPs)
	if len(s.LoadBalancerSourceRanges) > 0 && v.forbids(LoadBalancer) {
		v.add("LoadBalancerSourceRanges", s.LoadBalancerSourceRanges, "only LoadBalancer services may have them (type is "+string(v.typ)+")")
	}
	for i, p := range s.LoadBalancerSourceRanges {
		if r := prefixProblem(p); r != "" {
			v.add(index("LoadBalancerSourceRanges", i, ""), p, r)
		}
	}
}

// prefixProblem says why p isn't usable as a source range, or returns "".
func prefixProblem(p netip.Prefix) string {
	a := p.Addr()
	switch {
	case !a.IsValid():
		return "must be a valid prefix"
	case !p.IsValid():
		return "prefix length must be 0-" + strconv.Itoa(a.BitLen())
	case a.Is4In6():
		if p.Bits() < 96 {
			return "IPv4-mapped IPv6 prefix mixes up the IP families; use an IPv4 prefix"
		}
		return "IPv4-mapped IPv6 prefix mixes up the IP families; use " +
			netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked().String()
	case p.Masked() != p:
		return "host bits are set; the masked form is " + p.Masked().String()
	}
	return ""
}

func (v *validator) affinity() {
	err := v.s.Affinity.Validate()
	if err == nil {
		return
	}
	reason := err.Error()
	var ae *affinity.Error
	if errors.As(err, &ae) {
		reason = ae.Reason
	}
	v.add("Affinity.Timeout", v.s.Affinity.Timeout, reason)
}

func (v *validator) policies() {
	s := v.s
	etp := s.ExternalTrafficPolicy
	switch etp {
	case "", Cluster, Local:
	default:
		v.add("ExternalTrafficPolicy", etp, reasonPolicy)
	}
	switch s.InternalTrafficPolicy {
	case "", Cluster, Local:
	default:
		v.add("InternalTrafficPolicy", s.InternalTrafficPolicy, reasonPolicy)
	}
	if s.HealthCheckNodePort == 0 {
		return
	}
	if etp == "" || etp == Cluster {
		v.add("HealthCheckNodePort", s.HealthCheckNodePort, "requires ExternalTrafficPolicy Local")
	}
	if v.forbids(LoadBalancer) {
		v.add("HealthCheckNodePort", s.HealthCheckNodePort, "only LoadBalancer services may have one (type is "+string(v.typ)+")")
	}
}

func (v *validator) scheduler() {
	for _, c := range []byte(v.s.Scheduler) {
		if !isLowerAlnum(c) {
			v.add("Scheduler", v.s.Scheduler, "must contain only lower-case letters and digits")
			return
		}
	}
}

func isLowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

// isDNS1123Label reports whether s is a DNS-1123 label as Kubernetes
// defines it: 1-63 lower-case letters, digits or '-', starting and ending
// with a letter or digit.
func isDNS1123Label(s string) bool {
	if len(s) == 0 || len(s) > 63 || !isLowerAlnum(s[0]) || !isLowerAlnum(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if !isLowerAlnum(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

// isDNS1035Label is isDNS1123Label with a letter first.
func isDNS1035Label(s string) bool {
	return isDNS1123Label(s) && 'a' <= s[0] && s[0] <= 'z'
}
