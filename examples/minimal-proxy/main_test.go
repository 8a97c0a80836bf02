package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// minimal runs the command line and returns its exit code and output.
func minimal(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

var renderArgs = []string{"--manifests", "testdata/manifests", "--node-name", "node1", "--cluster-cidr", "10.244.0.0/16"}

func TestRenderGolden(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			code, out, errs := minimal(t, append([]string{"render", "--backend", b}, renderArgs...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			golden := filepath.Join("testdata", "render-"+b+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if out != string(want) {
				t.Errorf("render --backend %s differs from %s (run with -update to accept):\n%s", b, golden, out)
			}
			// Deterministic: a second run gives the same bytes.
			if _, again, _ := minimal(t, append([]string{"render", "--backend", b}, renderArgs...)...); again != out {
				t.Error("render is not deterministic")
			}
		})
	}
}

func TestExplain(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string // substrings of stdout
	}{
		{"cluster IP from a remote pod", []string{"--src", "10.244.2.99", "--dst", "10.96.0.10", "--port", "80"},
			[]string{"TCP 10.244.2.99 -> 10.96.0.10:80 from remote pod", "forward demo/web:http/TCP via ClusterIP", "10.244.1.10:8080 p=0.500000", "10.244.2.10:8080 p=0.500000"}},
		{"NodePort of a Local service from outside", []string{"--src", "192.0.2.100", "--dst", "198.51.100.1", "--port", "30081"},
			[]string{"from external", "forward demo/lb:http/TCP via NodePort (external, Local set)", "10.244.1.11:8080 p=1.000000"}},
		{"LB IP of a Local service from a local pod", []string{"--src", "10.244.1.10", "--dst", "203.0.113.20", "--port", "80"},
			[]string{"from local pod", "Cluster set", "10.244.2.11:8080"}},
		{"UDP", []string{"--src", "10.244.1.10", "--dst", "10.96.0.53", "--port", "53", "--proto", "udp"},
			[]string{"forward kube-system/dns:dns/UDP", "10.244.2.53:53"}},
		{"no match", []string{"--src", "192.0.2.100", "--dst", "10.96.0.99", "--port", "80", "--from", "external"},
			[]string{"no match"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := minimal(t, append(append([]string{"explain"}, renderArgs...), tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "usage:"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"bad backend", []string{"render", "--backend", "bpf", "--manifests", "testdata/manifests", "--cluster-cidr", "10.0.0.0/8"}, `--backend "bpf"`},
		{"bad cidr", []string{"render", "--manifests", "testdata/manifests", "--cluster-cidr", "10.0.0.0/99"}, "--cluster-cidr"},
		{"no manifests", []string{"render", "--cluster-cidr", "10.0.0.0/8"}, "--manifests is required"},
		{"bad port", []string{"explain", "--manifests", "testdata/manifests", "--src", "1.2.3.4", "--dst", "10.96.0.10", "--port", "70000"}, "--port 70000"},
		{"mixed families", []string{"explain", "--manifests", "testdata/manifests", "--src", "1.2.3.4", "--dst", "fd00::1", "--port", "80"}, "same IP family"},
		{"bad origin", []string{"explain", "--manifests", "testdata/manifests", "--src", "1.2.3.4", "--dst", "10.96.0.10", "--port", "80", "--from", "mars"}, "--from"},
		{"run needs a source", []string{"run"}, "exactly one of --manifests and --kubeconfig"},
		{"extra argument", []string{"cleanup", "now"}, `unexpected argument "now"`},
		{"unknown flag", []string{"render", "--frob"}, "frob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := minimal(t, tt.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.Contains(errs, tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, errs)
			}
		})
	}
	if code, _, _ := minimal(t, "render", "-h"); code != 0 {
		t.Errorf("render -h: exit %d, want 0", code)
	}
}

// A bad manifest fails render with the file, the object and the field.
func TestRenderBadManifest(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "bad.yaml", `apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  clusterIP: 10.96.0.10
  ports:
  - {name: http, port: 80}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: demo}
spec:
  clusterIP: 10.96.0.x
  ports:
  - {name: http, port: 80}
`)
	code, _, errs := minimal(t, "render", "--manifests", dir, "--cluster-cidr", "10.0.0.0/8")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, w := range []string{"bad.yaml: document 2 (line 9)", `Service "demo/api"`, "spec.clusterIP", `"10.96.0.x"`} {
		if !strings.Contains(errs, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errs)
		}
	}
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// run reports a kubeconfig it cannot read.
func TestRunBadKubeconfig(t *testing.T) {
	code, _, errs := minimal(t, "run", "--kubeconfig", filepath.Join(t.TempDir(), "missing"), "--cluster-cidr", "10.0.0.0/8",
		"--healthz-bind-address", "", "--metrics-bind-address", "")
	if code != 1 || !strings.Contains(errs, "minimal-proxy run:") {
		t.Errorf("exit %d, stderr:\n%s", code, errs)
	}
}
