package endpoints

import (
	"fmt"
	"net/netip"

	"github.com/proxykit/proxykit/servicemap"
)

// Validate reports every problem of the slice, as a *ValidationError whose
// Errors name each field path and value, or nil.
//
// Rules:
//   - The slice is not nil (the error then has the single FieldError
//     {Field: "Slice", Value: nil, Reason: "must not be nil"}).
//   - Namespace, Service and Name must not be empty.
//   - Ports: the protocol is TCP, UDP or SCTP (zero means TCP); the port
//     number may be zero only when every endpoint has a Port of its own;
//     no two ports share a name and protocol.
//   - Endpoints: the address is set, has no zone, and is not an
//     IPv4-mapped IPv6, unspecified, loopback (127.0.0.0/8, ::1),
//     link-local unicast (169.254.0.0/16, fe80::/10) or multicast address
//     (which covers link-local multicast), as Kubernetes requires of
//     endpoint IPs; an endpoint may have a Port of its own only in a slice
//     with exactly one port (with more it would be ambiguous, with none
//     the endpoint would belong to no port).
//
// The same address and port may appear more than once, within a slice or
// across slices: that is not an error, merging keeps one copy (see Merge).
func (s *Slice) Validate() error {
	if s == nil {
		return &ValidationError{Errors: []*FieldError{{Field: "Slice", Value: nil, Reason: "must not be nil"}}}
	}
	var v validator
	for _, f := range []struct{ field, value string }{
		{"Namespace", s.Namespace}, {"Service", s.Service}, {"Name", s.Name},
	} {
		if f.value == "" {
			v.add(f.field, f.value, "must not be empty")
		}
	}
	v.ports(s)
	v.endpoints(s)
	if len(v.errs) == 0 {
		return nil
	}
	return &ValidationError{Slice: s.ID(), Errors: v.errs}
}

type validator struct {
	errs []*FieldError
}

func (v *validator) add(field string, value any, reason string) {
	v.errs = append(v.errs, &FieldError{Field: field, Value: value, Reason: reason})
}

func (v *validator) ports(s *Slice) {
	portless := -1 // the first endpoint without a port of its own
	for i := range s.Endpoints {
		if s.Endpoints[i].Port == 0 {
			portless = i
			break
		}
	}
	for i, p := range s.Ports {
		switch p.Protocol {
		case "", servicemap.TCP, servicemap.UDP, servicemap.SCTP:
		default:
			v.add(fmt.Sprintf("Ports[%d].Protocol", i), p.Protocol, "unknown protocol, want TCP, UDP or SCTP")
		}
		if p.Port == 0 && portless >= 0 {
			v.add(fmt.Sprintf("Ports[%d].Port", i), p.Port,
				fmt.Sprintf("must not be 0 while Endpoints[%d] has no port of its own", portless))
		}
		for j := range i {
			q := s.Ports[j]
			if q.Name == p.Name && q.Protocol.OrTCP() == p.Protocol.OrTCP() {
				v.add(fmt.Sprintf("Ports[%d].Name", i), p.Name,
					fmt.Sprintf("duplicate of Ports[%d] (same name and protocol %s)", j, p.Protocol.OrTCP()))
				break
			}
		}
	}
}

func (v *validator) endpoints(s *Slice) {
	for i := range s.Endpoints {
		e := &s.Endpoints[i]
		if reason := addrProblem(e.Addr); reason != "" {
			v.add(fmt.Sprintf("Endpoints[%d].Addr", i), e.Addr, reason)
		}
		switch {
		case e.Port == 0 || len(s.Ports) == 1:
		case len(s.Ports) == 0:
			v.add(fmt.Sprintf("Endpoints[%d].Port", i), e.Port,
				"a port of its own needs a slice with one port, this one has no ports")
		default:
			v.add(fmt.Sprintf("Endpoints[%d].Port", i), e.Port,
				fmt.Sprintf("ambiguous: a port of its own needs a slice with one port, this one has %d", len(s.Ports)))
		}
	}
}

// addrProblem says what is wrong with an endpoint address, or "".
func addrProblem(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "address is not set"
	case a.Zone() != "":
		return "address has a zone"
	case a.Is4In6():
		return "IPv4-mapped IPv6 address"
	case a.IsUnspecified():
		return "unspecified address"
	case a.IsMulticast():
		return "multicast address"
	case a.IsLoopback():
		return "loopback address"
	case a.IsLinkLocalUnicast():
		return "link-local address"
	}
	return ""
}
