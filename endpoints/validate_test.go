package endpoints

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	valid := func() *Slice { return slice("ns", "svc", "svc-1", ports(tcp("http", 80)), ep("10.0.0.1")) }
	withSlice := func(f func(*Slice)) *Slice {
		s := valid()
		f(s)
		return s
	}
	addr := func(a string) *Slice {
		return withSlice(func(s *Slice) { s.Endpoints = append(s.Endpoints, Endpoint{Addr: netip.MustParseAddr(a)}) })
	}
	tests := []struct {
		name  string
		slice *Slice
		want  []string
	}{
		{name: "valid", slice: valid()},
		{
			name:  "empty names",
			slice: &Slice{},
			want: []string{
				`endpoints: Namespace: invalid value "": must not be empty`,
				`endpoints: Service: invalid value "": must not be empty`,
				`endpoints: Name: invalid value "": must not be empty`,
			},
		},
		{name: "zero protocol means TCP", slice: withSlice(func(s *Slice) { s.Ports[0].Protocol = "" })},
		{name: "UDP and SCTP", slice: withSlice(func(s *Slice) { s.Ports = ports(udp("dns", 53), sctp("x", 9)) })},
		{
			name:  "unknown protocol",
			slice: withSlice(func(s *Slice) { s.Ports[0].Protocol = "ICMP" }),
			want:  []string{`endpoints: Ports[0].Protocol: invalid value "ICMP": unknown protocol, want TCP, UDP or SCTP`},
		},
		{
			name: "port 0 with an endpoint without its own port",
			slice: withSlice(func(s *Slice) {
				s.Ports[0].Port = 0
				s.Endpoints = append([]Endpoint{with(ep("10.0.0.9"), func(e *Endpoint) { e.Port = 8080 })}, s.Endpoints...)
			}),
			want: []string{`endpoints: Ports[0].Port: invalid value 0: must not be 0 while Endpoints[1] has no port of its own`},
		},
		{
			name: "port 0 when every endpoint has its own port",
			slice: withSlice(func(s *Slice) {
				s.Ports[0].Port = 0
				s.Endpoints[0].Port = 8080
			}),
		},
		{name: "port 0 without endpoints", slice: withSlice(func(s *Slice) { s.Ports[0].Port, s.Endpoints = 0, nil })},
		{
			name:  "duplicate name and protocol, zero protocol is TCP",
			slice: withSlice(func(s *Slice) { s.Ports = ports(tcp("http", 80), Port{Name: "http", Port: 81}) }),
			want:  []string{`endpoints: Ports[1].Name: invalid value "http": duplicate of Ports[0] (same name and protocol TCP)`},
		},
		{
			name:  "same name, different protocols",
			slice: withSlice(func(s *Slice) { s.Ports = ports(tcp("dns", 53), udp("dns", 53)) }),
		},
		{
			name:  "duplicate unnamed ports",
			slice: withSlice(func(s *Slice) { s.Ports = ports(udp("", 53), udp("", 54), udp("", 55)) }),
			want: []string{
				`endpoints: Ports[1].Name: invalid value "": duplicate of Ports[0] (same name and protocol UDP)`,
				`endpoints: Ports[2].Name: invalid value "": duplicate of Ports[0] (same name and protocol UDP)`,
			},
		},
		{
			name:  "zero address",
			slice: withSlice(func(s *Slice) { s.Endpoints[0].Addr = netip.Addr{} }),
			want:  []string{`endpoints: Endpoints[0].Addr: invalid value <zero Addr>: address is not set`},
		},
		{
			name:  "zoned address",
			slice: addr("fe80::1%eth0"),
			want:  []string{`endpoints: Endpoints[1].Addr: invalid value fe80::1%eth0: address has a zone`},
		},
		{
			name:  "IPv4-mapped IPv6 address",
			slice: addr("::ffff:1.2.3.4"),
			want:  []string{`endpoints: Endpoints[1].Addr: invalid value ::ffff:1.2.3.4: IPv4-mapped IPv6 address`},
		},
		{
			name:  "unspecified IPv4",
			slice: addr("0.0.0.0"),
			want:  []string{`endpoints: Endpoints[1].Addr: invalid value 0.0.0.0: unspecified address`},
		},
		{
			name:  "unspecified IPv6",
			slice: addr("::"),
			want:  []string{`endpoints: Endpoints[1].Addr: invalid value ::: unspecified address`},
		},
		{
			name:  "multicast IPv4",
			slice: addr("224.0.0.1"),
			want:  []string{`endpoints: Endpoints[1].Addr: invalid value 224.0.0.1: multicast address`},
		},
		{
			name:  "multicast IPv6",
			slice: addr("ff02::1"),
			want:  []string{`endpoints: Endpoints[1].Addr: invalid value ff02::1: multicast address`},
		},
		{
			name:  "link-local multicast IPv4",
			slice: addr("224.0.0.251"),
			want:  []string{`endpoints: Endpoints[1].Addr: invalid value 224.0.0.251: multicast address`},
		},
		{
			name:  "loopback IPv4",
			slice: addr("127.0.0.1"),
			want:  []string{`endpoints: Endpoints[1].Addr: invalid value 127.0.0.1: loopback address`},
		},
		{
			name:  "loopback IPv4, all of 127/8",
			slice: addr("127.1.2.3"),
			want:  []string{`endpoints: Endpoints[1].Addr: invalid value 127.1.2.3: loopback address`},
		},
		{
			name:  "loopback IPv6",
			slice: addr("::1"),
			want:  []string{`endpoints: Endpoints[1].Addr: invalid value ::1: loopback address`},
		},
		{
			name:  "link-local IPv4",
			slice: addr("169.254.169.254"),
			want:  []string{`endpoints: Endpoints[1].Addr: invalid value 169.254.169.254: link-local address`},
		},
		{
			name:  "link-local IPv6",
			slice: addr("fe80::1"),
			want:  []string{`endpoints: Endpoints[1].Addr: invalid value fe80::1: link-local address`},
		},
		{
			name:  "link-local IPv6, all of fe80::/10",
			slice: addr("febf::1"),
			want:  []string{`endpoints: Endpoints[1].Addr: invalid value febf::1: link-local address`},
		},
		{name: "next to link-local and loopback", slice: addr("169.253.255.255")},
		{name: "next to loopback", slice: addr("128.0.0.1")},
		{name: "next to IPv6 link-local", slice: addr("fec0::1")},
		{name: "IPv6", slice: addr("2001:db8::1")},
		{name: "own port with one slice port", slice: withSlice(func(s *Slice) { s.Endpoints[0].Port = 8080 })},
		{
			// The endpoint would belong to no port and be dropped.
			name:  "own port without slice ports",
			slice: withSlice(func(s *Slice) { s.Ports, s.Endpoints[0].Port = nil, 8080 }),
			want:  []string{`endpoints: Endpoints[0].Port: invalid value 8080: a port of its own needs a slice with one port, this one has no ports`},
		},
		{name: "no slice ports, no own port", slice: withSlice(func(s *Slice) { s.Ports = nil })},
		{
			name: "own port with two slice ports is ambiguous",
			slice: withSlice(func(s *Slice) {
				s.Ports = ports(tcp("http", 80), tcp("https", 443))
				s.Endpoints[0].Port = 8080
			}),
			want: []string{`endpoints: Endpoints[0].Port: invalid value 8080: ambiguous: a port of its own needs a slice with one port, this one has 2`},
		},
		{
			name: "duplicate address and port is allowed",
			slice: withSlice(func(s *Slice) {
				s.Endpoints = append(s.Endpoints, with(ep("10.0.0.1"), terminating))
			}),
		},
		{
			name: "every problem is reported",
			slice: &Slice{
				Namespace: "ns",
				Ports:     ports(Port{Name: "a", Protocol: "tcp"}, tcp("b", 1)),
				Endpoints: []Endpoint{{Addr: netip.MustParseAddr("::ffff:1.2.3.4"), Port: 7}, {Addr: netip.MustParseAddr("::")}},
			},
			want: []string{
				`endpoints: Service: invalid value "": must not be empty`,
				`endpoints: Name: invalid value "": must not be empty`,
				`endpoints: Ports[0].Protocol: invalid value "tcp": unknown protocol, want TCP, UDP or SCTP`,
				`endpoints: Ports[0].Port: invalid value 0: must not be 0 while Endpoints[1] has no port of its own`,
				`endpoints: Endpoints[0].Addr: invalid value ::ffff:1.2.3.4: IPv4-mapped IPv6 address`,
				`endpoints: Endpoints[0].Port: invalid value 7: ambiguous: a port of its own needs a slice with one port, this one has 2`,
				`endpoints: Endpoints[1].Addr: invalid value ::: unspecified address`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.slice.Validate()
			var got []string
			var all *ValidationError
			if errors.As(err, &all) {
				for _, fe := range all.Errors {
					got = append(got, fe.Error())
				}
				if !strings.HasPrefix(err.Error(), "endpoints: slice ") {
					t.Errorf("message does not name the slice: %s", err)
				}
			} else if err != nil {
				got = []string{err.Error()}
			}
			if d := diff(tt.want, got); d != "" {
				t.Errorf("Validate() %s", d)
			}
			if err == nil {
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %T, want *ValidationError", err)
			}
			if ve.Slice != tt.slice.ID() || len(ve.Errors) != len(tt.want) {
				t.Errorf("ValidationError{Slice: %v, %d errors}, want {%v, %d errors}", ve.Slice, len(ve.Errors), tt.slice.ID(), len(tt.want))
			}
		})
	}
}

func TestValidateNil(t *testing.T) {
	err := (*Slice)(nil).Validate()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("(*Slice)(nil).Validate() = %v, want a *ValidationError", err)
	}
	want := FieldError{Field: "Slice", Value: nil, Reason: "must not be nil"}
	if len(ve.Errors) != 1 || *ve.Errors[0] != want {
		t.Errorf("Errors = %v, want [%+v]", ve.Errors, want)
	}
	if got, want := err.Error(), `endpoints: slice "//": Slice: invalid value <nil>: must not be nil`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestValidationErrorUnwrap(t *testing.T) {
	s := slice("ns", "svc", "s", ports(tcp("http", 80)), Endpoint{Addr: netip.MustParseAddr("224.0.0.1")})
	err := s.Validate()
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("errors.As(%v, *FieldError) = false", err)
	}
	want := FieldError{Field: "Endpoints[0].Addr", Value: netip.MustParseAddr("224.0.0.1"), Reason: "multicast address"}
	if *fe != want {
		t.Errorf("FieldError = %+v, want %+v", *fe, want)
	}
	if got := len(err.(*ValidationError).Unwrap()); got != 1 {
		t.Errorf("len(Unwrap()) = %d, want 1", got)
	}
	if got, want := (&FieldError{Field: "F", Value: nil, Reason: "r"}).Error(), "endpoints: F: invalid value <nil>: r"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
