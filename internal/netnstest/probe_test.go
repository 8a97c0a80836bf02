//go:build linux

package netnstest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
)

// These tests need no root.

func TestClassify(t *testing.T) {
	opErr := func(op string, errno syscall.Errno) error {
		return &net.OpError{Op: op, Net: "tcp", Err: os.NewSyscallError(op, errno)}
	}
	tests := []struct {
		name string
		err  error
		want Outcome
	}{
		{"nil", nil, Reply},
		{"TCP RST on connect", opErr("connect", syscall.ECONNREFUSED), Refused},
		{"UDP port unreachable", opErr("read", syscall.ECONNREFUSED), Refused},
		{"reset", opErr("read", syscall.ECONNRESET), Refused},
		{"host unreachable", opErr("connect", syscall.EHOSTUNREACH), Unreachable},
		{"net unreachable", opErr("connect", syscall.ENETUNREACH), Unreachable},
		{"ICMPv6 admin prohibited", opErr("read", syscall.EACCES), Unreachable},
		{"protocol unreachable", opErr("connect", syscall.ENOPROTOOPT), Unreachable},
		{"dropped in own output hook", opErr("write", syscall.EPERM), Timeout},
		{"read deadline", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, Timeout},
		{"dial deadline", fmt.Errorf("wrapped: %w", context.DeadlineExceeded), Timeout},
		{"EOF", io.EOF, Failed},
		{"other errno", opErr("socket", syscall.EMFILE), Failed},
		{"cancelled", context.Canceled, Failed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.err); got != tt.want {
				t.Errorf("classify(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestFailureWithCancelledContextIsFailed(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	timeout := &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}
	if got := failure(ctx, timeout); got.Outcome != Failed || !errors.Is(got.Err, os.ErrDeadlineExceeded) {
		t.Errorf("failure(cancelled, timeout) = %v, want Failed wrapping the timeout", got)
	}
	if got := failure(context.Background(), timeout); got.Outcome != Timeout {
		t.Errorf("failure(background, timeout) = %v, want Timeout", got)
	}
}

func TestParseReply(t *testing.T) {
	tests := []struct {
		line    string
		server  string
		src     netip.AddrPort
		wantErr bool
	}{
		{"pod-a 192.0.2.100:41000", "pod-a", netip.MustParseAddrPort("192.0.2.100:41000"), false},
		{"pod-c [2001:db8:c::100]:8", "pod-c", netip.MustParseAddrPort("[2001:db8:c::100]:8"), false},
		{"pod-a", "", netip.AddrPort{}, true},
		{" 192.0.2.100:1", "", netip.AddrPort{}, true},
		{"pod-a 192.0.2.100", "", netip.AddrPort{}, true},
		{"", "", netip.AddrPort{}, true},
	}
	for _, tt := range tests {
		server, src, err := parseReply(tt.line)
		if server != tt.server || src != tt.src || (err != nil) != tt.wantErr {
			t.Errorf("parseReply(%q) = %q, %v, %v; want %q, %v, error %v", tt.line, server, src, err, tt.server, tt.src, tt.wantErr)
		}
	}
}

func TestStrings(t *testing.T) {
	for o, want := range map[Outcome]string{
		Reply: "Reply", Refused: "Refused", Unreachable: "Unreachable", Timeout: "Timeout", Failed: "Failed", 42: "Outcome(42)",
	} {
		if got := o.String(); got != want {
			t.Errorf("Outcome(%d).String() = %q, want %q", int(o), got, want)
		}
	}
	if Failed != Outcome(0) {
		t.Error("the zero Outcome must be Failed, so a zero Result is never a Reply")
	}
	r := Result{Outcome: Reply, Server: "pod-a", Source: netip.MustParseAddrPort("192.0.2.100:1")}
	if got, want := r.String(), "Reply from pod-a (source 192.0.2.100:1)"; got != want {
		t.Errorf("Result.String() = %q, want %q", got, want)
	}
	r = Result{Outcome: Timeout, Err: os.ErrDeadlineExceeded}
	if got, want := r.String(), "Timeout: i/o timeout"; got != want {
		t.Errorf("Result.String() = %q, want %q", got, want)
	}
}
