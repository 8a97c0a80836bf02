package servicemap

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/proxykit/proxykit/affinity"
)

// fuzzReader turns fuzz bytes into Service fields. Past the end of the
// bytes it reads zeros, so every input builds a Service.
type fuzzReader struct {
	b       []byte
	garbage string
}

func (r *fuzzReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *fuzzReader) bytes(n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = r.byte()
	}
	return out
}

func (r *fuzzReader) u16() uint16 { return binary.BigEndian.Uint16(r.bytes(2)) }

// pick returns one of choices, or the garbage string.
func (r *fuzzReader) pick(choices ...string) string {
	i := int(r.byte()) % (len(choices) + 1)
	if i == len(choices) {
		return r.garbage
	}
	return choices[i]
}

func (r *fuzzReader) addr() netip.Addr {
	switch r.byte() % 6 {
	case 0:
		return netip.Addr{}
	case 1, 2:
		return netip.AddrFrom4([4]byte(r.bytes(4)))
	case 3:
		return netip.AddrFrom16([16]byte(r.bytes(16)))
	case 4:
		return netip.AddrFrom16([16]byte(r.bytes(16))).WithZone(r.garbage)
	default:
		return netip.AddrFrom16(netip.AddrFrom4([4]byte(r.bytes(4))).As16()) // IPv4-mapped
	}
}

func (r *fuzzReader) addrs() []netip.Addr {
	n := int(r.byte() % 4)
	if n == 0 {
		return nil
	}
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = r.addr()
	}
	return out
}

func (r *fuzzReader) prefixes() []netip.Prefix {
	out := make([]netip.Prefix, r.byte()%3)
	for i := range out {
		out[i] = netip.PrefixFrom(r.addr(), int(r.byte()%140))
	}
	return out
}

func (r *fuzzReader) port() Port {
	p := Port{
		Name:     r.pick("", "http", "dns", "a-1"),
		Protocol: Protocol(r.pick("", "TCP", "UDP", "SCTP", "tcp")),
		Port:     r.u16(),
	}
	if r.byte()%2 == 1 {
		p.NodePort = r.u16()
	}
	return p
}

func (r *fuzzReader) duration() time.Duration {
	switch r.byte() % 3 {
	case 0:
		return 0
	case 1:
		return time.Duration(r.u16()) * 2 * time.Second
	default:
		return time.Duration(binary.BigEndian.Uint64(r.bytes(8)))
	}
}

func (r *fuzzReader) service() *Service {
	s := &Service{
		Namespace:  r.pick("ns", "default", "kube-system"),
		Name:       r.pick("web", "dns", "x1"),
		Type:       Type(r.pick("", "ClusterIP", "NodePort", "LoadBalancer", "ExternalName")),
		ClusterIPs: r.addrs(),
	}
	for range r.byte() % 5 {
		s.Ports = append(s.Ports, r.port())
	}
	s.ExternalIPs = r.addrs()
	s.LoadBalancerIPs = r.addrs()
	s.LoadBalancerSourceRanges = r.prefixes()
	s.Affinity = affinity.Config{ClientIP: r.byte()%2 == 1, Timeout: r.duration()}
	s.ExternalTrafficPolicy = TrafficPolicy(r.pick("", "Cluster", "Local"))
	s.InternalTrafficPolicy = TrafficPolicy(r.pick("", "Cluster", "Local"))
	if r.byte()%2 == 1 {
		s.HealthCheckNodePort = r.u16()
	}
	s.Scheduler = r.pick("", "rr", "wlc")
	return s
}

func FuzzServiceValidate(f *testing.F) {
	f.Add([]byte{}, "")
	// ns/web, ClusterIP, 10.0.0.1, one port TCP 80: valid.
	f.Add([]byte{0, 0, 1, 1, 1, 10, 0, 0, 1, 1, 1, 1, 0, 80, 0}, "")
	// A LoadBalancer service with a node port, external policy Local and a
	// health-check node port.
	f.Add([]byte{0, 0, 3, 1, 1, 10, 0, 0, 2, 1, 1, 1, 0, 80, 1, 0x75, 0x30,
		1, 1, 192, 0, 2, 1, 1, 1, 198, 51, 100, 7, 1, 1, 203, 0, 113, 0, 24,
		1, 1, 0, 36, 2, 0, 1, 0x7d, 0}, "x")
	f.Add([]byte("garbage in, services out"), "Ünïcode\x00")
	f.Fuzz(func(t *testing.T, data []byte, garbage string) {
		r := fuzzReader{b: data, garbage: garbage}
		s := r.service()
		err := s.Validate()
		if err != nil {
			checkValidationError(t, err)
			return
		}
		checkFlatten(t, s)
	})
}

func checkValidationError(t *testing.T, err error) {
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Errors) == 0 {
		t.Fatalf("Validate() = %#v, want a *ValidationError with problems", err)
	}
	for _, fe := range ve.Errors {
		if fe.Field == "" || fe.Reason == "" {
			t.Errorf("FieldError without field or reason: %#v", fe)
		}
	}
	if err.Error() == "" {
		t.Error("empty error message")
	}
}

// checkFlatten checks what an accepted service flattens to, and that a
// Tracker takes it.
func checkFlatten(t *testing.T, s *Service) {
	got := s.Flatten()
	if len(s.ClusterIPs) == 0 || s.Type == ExternalName {
		if got != nil {
			t.Fatalf("Flatten() of a headless or ExternalName service = %v, want nil", got)
		}
		return
	}
	if len(got) != len(s.Ports) {
		t.Fatalf("Flatten() made %d ServicePorts from %d ports", len(got), len(s.Ports))
	}
	for i, p := range got {
		if p.Protocol == "" || p.Type == "" || p.ExternalTrafficPolicy == "" || p.InternalTrafficPolicy == "" {
			t.Errorf("ServicePort %d has an empty protocol, type or policy: %+v", i, p)
		}
		if p.Port != s.Ports[i].Port || p.Name.Port != s.Ports[i].Name || p.Name.Protocol != p.Protocol {
			t.Errorf("ServicePort %d = %+v, from port %+v", i, p, s.Ports[i])
		}
	}
	tr := NewTracker()
	if err := tr.Update(nil, s); err != nil {
		t.Fatalf("Tracker.Update() of a valid service = %v", err)
	}
	if m, ch := tr.Apply(Map{}); m.Len() != len(got) || len(ch.Updated) != len(got) {
		t.Errorf("Apply() made %d ports and reported %d, want %d", m.Len(), len(ch.Updated), len(got))
	}
}
