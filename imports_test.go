package proxykit_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// pure are the packages that must stay free of kernel libraries
// (DESIGN.md: "Pure packages … never import a kernel library").
var pure = []string{
	"github.com/proxykit/proxykit",
	"github.com/proxykit/proxykit/servicemap",
	"github.com/proxykit/proxykit/endpoints",
	"github.com/proxykit/proxykit/topology",
	"github.com/proxykit/proxykit/affinity",
}

// forbidden are import path prefixes of kernel libraries and Kubernetes.
var forbidden = []string{
	"github.com/google/nftables",
	"github.com/moby/ipvs",
	"github.com/coreos/go-iptables",
	"github.com/vishvananda/",
	"github.com/ti-mo/",
	"github.com/mdlayher/",
	"golang.org/x/sys/unix",
	"k8s.io/",
	"sigs.k8s.io/",
}

// badDeps returns the deps that match a forbidden prefix.
func badDeps(deps []string) []string {
	var bad []string
	for _, d := range deps {
		for _, f := range forbidden {
			if strings.HasPrefix(d, f) {
				bad = append(bad, d)
			}
		}
	}
	return bad
}

// kubernetesRequires returns the lines of a go.mod that bring in k8s.io/*
// or client-go.
func kubernetesRequires(gomod []byte) []string {
	var bad []string
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "//") || strings.HasPrefix(line, "module ") {
			continue
		}
		if strings.Contains(line, "k8s.io/") || strings.Contains(line, "client-go") {
			bad = append(bad, line)
		}
	}
	return bad
}

func TestPurePackagesImportNoKernelLibrary(t *testing.T) {
	for _, pkg := range pure {
		out, err := exec.Command("go", "list", "-deps", "-test", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		if bad := badDeps(strings.Fields(string(out))); len(bad) > 0 {
			t.Errorf("pure package %s depends on %v", pkg, bad)
		}
	}
}

func TestRootModuleRequiresNoKubernetes(t *testing.T) {
	gomod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if bad := kubernetesRequires(gomod); len(bad) > 0 {
		t.Errorf("go.mod of the root module requires Kubernetes: %q (move that code to the k8s/ module)", bad)
	}
}

// The checks themselves must be able to fail.
func TestImportChecksCatchViolations(t *testing.T) {
	deps := []string{"fmt", "github.com/google/nftables/expr", "github.com/proxykit/proxykit/servicemap", "k8s.io/api/core/v1"}
	if got := badDeps(deps); len(got) != 2 {
		t.Errorf("badDeps(%v) = %v, want the nftables and k8s.io entries", deps, got)
	}
	gomod := []byte("module github.com/proxykit/proxykit\n\ngo 1.25\n\nrequire (\n\tk8s.io/client-go v0.31.0\n\tgithub.com/google/nftables v0.3.0\n)\n")
	if got := kubernetesRequires(gomod); len(got) != 1 {
		t.Errorf("kubernetesRequires = %q, want the client-go line", got)
	}
	if got := kubernetesRequires([]byte("module x\n// k8s.io/ in a comment\n")); len(got) != 0 {
		t.Errorf("comments must not count: %q", got)
	}
}
