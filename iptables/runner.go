package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	goipt "github.com/coreos/go-iptables/iptables"

	"github.com/proxykit/proxykit"
)

// Runner is the backend's access to the kernel: the iptables tools of one
// variant, for both families. ExecRunner is the real one, Fake the
// in-memory one.
type Runner interface {
	// Restore runs `iptables-restore --noflush -w` (ip6tables-restore for
	// IPv6) on the concatenated parts: one table, applied atomically.
	Restore(ctx context.Context, fam proxykit.Family, table string, parts [][]byte) error
	// Save returns `iptables-save -t table`.
	Save(ctx context.Context, fam proxykit.Family, table string) ([]byte, error)
	// RuleExists reports whether chain holds the rule spec.
	RuleExists(ctx context.Context, fam proxykit.Family, table, chain string, spec []string) (bool, error)
	// InsertRule inserts the rule spec at position pos (from 1).
	InsertRule(ctx context.Context, fam proxykit.Family, table, chain string, pos int, spec []string) error
	// DeleteRule deletes the rule spec; an absent rule is not an error.
	DeleteRule(ctx context.Context, fam proxykit.Family, table, chain string, spec []string) error
	// Version returns the tools' version, e.g. "1.8.9", and variant.
	Version(ctx context.Context, fam proxykit.Family) (string, Variant, error)
}

// ExecRunner runs the iptables binaries of one variant, optionally in
// another network namespace. It is safe for concurrent use.
type ExecRunner struct {
	variant Variant
	netns   int
	tools   [2]toolSet
	ipt     [2]*goipt.IPTables
}

// toolSet names the binaries of one family.
type toolSet struct{ restore, save, iptables string }

// NewRunner returns the Runner of variant v (Auto: the one the system's
// `iptables --version` reports) in the network namespace netnsFd (0: the
// caller's). It fails when a tool is missing.
func NewRunner(v Variant, netnsFd int) (*ExecRunner, error) {
	if v == Auto {
		d, err := detectVariant()
		if err != nil {
			return nil, err
		}
		v = d
	}
	r := &ExecRunner{variant: v, netns: netnsFd}
	for i, fam := range proxykit.Families {
		ts, err := findTools(v, fam)
		if err != nil {
			return nil, err
		}
		r.tools[i] = ts
		proto := goipt.ProtocolIPv4
		if fam == proxykit.IPv6 {
			proto = goipt.ProtocolIPv6
		}
		ipt, err := goipt.New(goipt.IPFamily(proto), goipt.Path(ts.iptables), goipt.Timeout(5))
		if err != nil {
			return nil, fmt.Errorf("iptables: %s: %w", ts.iptables, err)
		}
		r.ipt[i] = ipt
	}
	return r, nil
}

// Variant returns the variant the runner uses.
func (r *ExecRunner) Variant() Variant { return r.variant }

// detectVariant reads the mode from `iptables --version` ("(nf_tables)"
// or "(legacy)"; older versions print neither and are legacy).
// go-iptables parses the same output but does not export the mode.
func detectVariant() (Variant, error) {
	out, err := exec.Command("iptables", "--version").Output()
	if err != nil {
		return "", fmt.Errorf("iptables: detect the variant with `iptables --version`: %w: %w", ErrToolMissing, err)
	}
	if bytes.Contains(out, []byte("nf_tables")) {
		return NFT, nil
	}
	return Legacy, nil
}

// findTools locates the binaries: iptables-legacy-restore and friends,
// else the plain names when they are of the variant.
func findTools(v Variant, fam proxykit.Family) (toolSet, error) {
	base := "iptables"
	if fam == proxykit.IPv6 {
		base = "ip6tables"
	}
	ts := toolSet{restore: base + "-" + string(v) + "-restore", save: base + "-" + string(v) + "-save", iptables: base + "-" + string(v)}
	if _, err := exec.LookPath(ts.restore); err == nil {
		return ts, nil
	}
	if d, err := detectVariant(); err == nil && d == v {
		if _, err := exec.LookPath(base + "-restore"); err == nil {
			return toolSet{restore: base + "-restore", save: base + "-save", iptables: base}, nil
		}
	}
	return ts, fmt.Errorf("iptables: %s not found (install the iptables package): %w", ts.restore, ErrToolMissing)
}

func famIndex(f proxykit.Family) int {
	if f == proxykit.IPv6 {
		return 1
	}
	return 0
}

// Restore implements Runner.
func (r *ExecRunner) Restore(ctx context.Context, fam proxykit.Family, table string, parts [][]byte) error {
	tool := r.tools[famIndex(fam)].restore
	var stderr bytes.Buffer
	err := inNetNS(r.netns, func() error {
		cmd := exec.CommandContext(ctx, tool, "--noflush", "-w")
		cmd.Stdin = &partsReader{parts: parts}
		cmd.Stderr = &stderr
		return cmd.Run()
	})
	if err != nil {
		return restoreError(fam, table, parts, stderr.String(), err)
	}
	return nil
}

// Save implements Runner.
func (r *ExecRunner) Save(ctx context.Context, fam proxykit.Family, table string) ([]byte, error) {
	tool := r.tools[famIndex(fam)].save
	var stdout, stderr bytes.Buffer
	err := inNetNS(r.netns, func() error {
		cmd := exec.CommandContext(ctx, tool, "-t", table)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		return cmd.Run()
	})
	if err != nil {
		return nil, toolError(tool+" -t "+table, stderr.String(), err)
	}
	return stdout.Bytes(), nil
}

// RuleExists implements Runner.
func (r *ExecRunner) RuleExists(_ context.Context, fam proxykit.Family, table, chain string, spec []string) (bool, error) {
	var ok bool
	err := inNetNS(r.netns, func() error {
		var err error
		ok, err = r.ipt[famIndex(fam)].Exists(table, chain, spec...)
		return err
	})
	if err != nil {
		return false, goiptError("check rule in "+table+" "+chain, err)
	}
	return ok, nil
}

// InsertRule implements Runner.
func (r *ExecRunner) InsertRule(_ context.Context, fam proxykit.Family, table, chain string, pos int, spec []string) error {
	err := inNetNS(r.netns, func() error { return r.ipt[famIndex(fam)].Insert(table, chain, pos, spec...) })
	return goiptError("insert rule into "+table+" "+chain, err)
}

// DeleteRule implements Runner.
func (r *ExecRunner) DeleteRule(_ context.Context, fam proxykit.Family, table, chain string, spec []string) error {
	err := inNetNS(r.netns, func() error { return r.ipt[famIndex(fam)].DeleteIfExists(table, chain, spec...) })
	var e *goipt.Error
	if errors.As(err, &e) && e.IsNotExist() {
		return nil // no such chain: the rule is absent too
	}
	return goiptError("delete rule from "+table+" "+chain, err)
}

// Version implements Runner.
func (r *ExecRunner) Version(_ context.Context, fam proxykit.Family) (string, Variant, error) {
	a, b, c := r.ipt[famIndex(fam)].GetIptablesVersion()
	return fmt.Sprintf("%d.%d.%d", a, b, c), r.variant, nil
}

// partsReader reads the parts one after another, without copying them
// into one buffer (a payload can be 100 MB).
type partsReader struct {
	parts [][]byte
}

func (p *partsReader) Read(b []byte) (int, error) {
	for len(p.parts) > 0 && len(p.parts[0]) == 0 {
		p.parts = p.parts[1:]
	}
	if len(p.parts) == 0 {
		return 0, errEOF
	}
	n := copy(b, p.parts[0])
	p.parts[0] = p.parts[0][n:]
	return n, nil
}

// joinParts concatenates restore parts (for the Fake and error messages).
func joinParts(parts [][]byte) []byte {
	var b strings.Builder
	for _, p := range parts {
		b.Write(p)
	}
	return []byte(b.String())
}

func errNotFound() error { return exec.ErrNotFound }
