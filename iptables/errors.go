package iptables

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	goipt "github.com/coreos/go-iptables/iptables"

	"github.com/proxykit/proxykit"
)

var errEOF = io.EOF

// Sentinel errors, for errors.Is.
var (
	// ErrToolMissing: an iptables binary of the variant is not installed.
	ErrToolMissing = errors.New("iptables tool missing")
	// ErrCanaryMissing: the canary rule is gone, so something flushed or
	// deleted our chains; the Syncer answers with a full sync.
	ErrCanaryMissing = errors.New("canary rule missing: the chains were flushed")
	// ErrLocked: another program held the xtables lock too long.
	ErrLocked = errors.New("xtables lock held by another program")
)

// RestoreError is a failed iptables-restore: the table, the failing line
// of the input (when the tool names one) and the tool's message.
type RestoreError struct {
	Family proxykit.Family
	Table  string
	Line   int    // 1-based line of the input, 0 when unknown
	Text   string // that line
	Stderr string
	Err    error // the exec error, or a sentinel
}

func (e *RestoreError) Error() string {
	s := fmt.Sprintf("iptables: restore %s %s", e.Family, e.Table)
	if e.Line > 0 {
		s += fmt.Sprintf(": line %d %q", e.Line, e.Text)
	}
	if msg := strings.TrimSpace(e.Stderr); msg != "" {
		s += ": " + msg
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *RestoreError) Unwrap() error { return e.Err }

var lineFailed = regexp.MustCompile(`line (\d+) failed`)

// restoreError translates a failed iptables-restore: the one place that
// reads its stderr.
func restoreError(fam proxykit.Family, table string, parts [][]byte, stderr string, err error) error {
	e := &RestoreError{Family: fam, Table: table, Stderr: stderr, Err: err}
	if strings.Contains(stderr, "xtables lock") || strings.Contains(stderr, "holding the xtables") {
		e.Err = fmt.Errorf("%w: %w", ErrLocked, err)
	}
	if m := lineFailed.FindStringSubmatch(stderr); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Text = lineOf(joinParts(parts), e.Line)
		if isCanaryCheck(e.Text) {
			e.Err = fmt.Errorf("%w: %w", ErrCanaryMissing, err)
		}
	}
	return e
}

// isCanaryCheck reports whether a restore line is the partial sync's
// canary check.
func isCanaryCheck(line string) bool {
	return strings.HasPrefix(line, "-D ") && strings.Contains(line, "-"+chainCanary+" -j RETURN")
}

// lineOf returns line n (1-based) of text.
func lineOf(text []byte, n int) string {
	for i := 1; i < n; i++ {
		j := bytes.IndexByte(text, '\n')
		if j < 0 {
			return ""
		}
		text = text[j+1:]
	}
	if j := bytes.IndexByte(text, '\n'); j >= 0 {
		text = text[:j]
	}
	return string(text)
}

// toolError wraps the failure of another tool run.
func toolError(what, stderr string, err error) error {
	if errors.Is(err, errNotFound()) {
		err = fmt.Errorf("%w: %w", ErrToolMissing, err)
	}
	if msg := strings.TrimSpace(stderr); msg != "" {
		return fmt.Errorf("iptables: %s: %s: %w", what, msg, err)
	}
	return fmt.Errorf("iptables: %s: %w", what, err)
}

// goiptError wraps an error of go-iptables, whose message holds the
// command and its stderr.
func goiptError(what string, err error) error {
	if err == nil {
		return nil
	}
	var e *goipt.Error
	if errors.As(err, &e) && strings.Contains(err.Error(), "xtables lock") {
		return fmt.Errorf("iptables: %s: %w: %w", what, ErrLocked, err)
	}
	return fmt.Errorf("iptables: %s: %w", what, err)
}
