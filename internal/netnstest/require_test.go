//go:build linux

package netnstest

import (
	"errors"
	"strings"
	"testing"
)

// TestDecide runs without root: it checks Require's decision only.
func TestDecide(t *testing.T) {
	noVeth := errors.New("add veth: operation not supported")
	tests := []struct {
		name    string
		root    bool
		support error
		env     string
		want    action
		reason  string // a substring of the reason
	}{
		{"root with support runs", true, nil, "", run, ""},
		{"root with support runs when required", true, nil, "1", run, ""},
		{"not root skips", false, nil, "", skip, "needs root"},
		{"not root skips when explicitly not required", false, nil, "0", skip, "set " + RequireEnv + "=1"},
		{"not root skips when false", false, nil, "false", skip, "needs root"},
		{"not root fails when required", false, nil, "1", fail, "needs root"},
		{"not root fails when true", false, nil, "true", fail, RequireEnv + " is set"},
		{"a typo fails rather than skips", false, nil, "yes", fail, "needs root"},
		{"missing veth skips", true, noVeth, "", skip, "operation not supported"},
		{"missing veth fails when required", true, noVeth, "1", fail, "namespaces and veth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := decide(tt.root, tt.support, tt.env)
			if got != tt.want {
				t.Errorf("decide(%v, %v, %q) = %v, want %v (reason %q)", tt.root, tt.support, tt.env, got, tt.want, why)
			}
			if (got == run) != (why == "") || !strings.Contains(why, tt.reason) {
				t.Errorf("decide(%v, %v, %q) reason = %q, want one containing %q (empty only to run)", tt.root, tt.support, tt.env, why, tt.reason)
			}
		})
	}
}
