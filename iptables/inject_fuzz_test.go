package iptables

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// injectSnapshot is one LoadBalancer service (every kind of chain) with
// the given identity strings, and ClientIP affinity (recent-list names).
func injectSnapshot(ns, name, port string) (*proxykit.Snapshot, error) {
	svc := &servicemap.Service{Namespace: ns, Name: name, Type: servicemap.LoadBalancer,
		ClusterIPs:               []netip.Addr{netip.MustParseAddr("10.96.0.10")},
		Ports:                    []servicemap.Port{{Name: port, Protocol: servicemap.TCP, Port: 80, NodePort: 30080}, {Name: "other", Protocol: servicemap.UDP, Port: 53}},
		LoadBalancerIPs:          []netip.Addr{netip.MustParseAddr("203.0.113.7")},
		LoadBalancerSourceRanges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
		ExternalTrafficPolicy:    servicemap.Local, HealthCheckNodePort: 32000}
	svc.Affinity.ClientIP = true
	sl := &endpoints.Slice{Namespace: ns, Service: name, Name: "s",
		Ports: []endpoints.Port{{Name: port, Protocol: servicemap.TCP, Port: 8080}},
		Endpoints: []endpoints.Endpoint{{Addr: netip.MustParseAddr("10.244.1.10"), Ready: true, NodeName: "node-a"},
			{Addr: netip.MustParseAddr("10.244.2.10"), Ready: true, NodeName: "node-b"}}}
	return proxykit.NewSnapshot(testNode, []*servicemap.Service{svc}, []*endpoints.Slice{sl})
}

// shape counts, per table, the declarations and the rules: identity
// strings must never change it.
func shape(rs *Ruleset) [4][2]int {
	var s [4][2]int
	for i, t := range rs.Tables {
		text := t.String()
		s[i] = [2]int{strings.Count(text, "\n:"), strings.Count(text, "\n-A ")}
	}
	return s
}

var (
	safeChain   = regexp.MustCompile(`^[A-Z][A-Z0-9-]{0,27}$`)
	safeComment = regexp.MustCompile(`^(?:[A-Za-z0-9_-]+|"[A-Za-z0-9_.:/-]*")$`)
	commentArg  = regexp.MustCompile(`--comment (\S+)`)
)

// FuzzRenderNames feeds arbitrary namespace, name and port-name strings.
// The result is a validation error, or a ruleset of exactly the
// reference shape whose chain names and comments are plain tokens, which
// iptables-restore --test accepts (checked for the seeds when root runs
// the tests with the tools installed).
func FuzzRenderNames(f *testing.F) {
	for _, seed := range [][3]string{
		{"ns", "web", "http"},
		{"ns", "web\"\n-A INPUT -j DROP\n#", "http"},
		{"kube-system", "a\" -j ACCEPT \"", "p"},
		{"ns", "web", "http\nCOMMIT\n*filter\n-F"},
		{"ns", strings.Repeat("x", 300), "http"},
		{"ns", "we b", "ht\ttp"},
		{"Ns", "web", "HTTP"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	ref, err := injectSnapshot("ns", "web", "http")
	if err != nil {
		f.Fatal(err)
	}
	refRS, err := Render(ref, testConfig)
	if err != nil {
		f.Fatal(err)
	}
	fuzzing := flag.Lookup("test.fuzz").Value.String() != ""
	f.Fuzz(func(t *testing.T, ns, name, port string) {
		// Below validation, comments are always safe tokens.
		c := comment(servicemap.PortName{Namespace: ns, Name: name, Port: port, Protocol: servicemap.TCP})
		if !safeComment.MatchString(c) {
			t.Fatalf("unsafe comment %q from %q %q %q", c, ns, name, port)
		}
		snap, err := injectSnapshot(ns, name, port)
		if err != nil {
			return // rejected with a validation error: fine
		}
		rs, err := Render(snap, testConfig)
		if err != nil {
			t.Fatalf("an accepted snapshot failed to render: %v", err)
		}
		if got, want := shape(rs), shape(refRS); got != want {
			t.Fatalf("names %q %q %q changed the ruleset's shape: %v, want %v", ns, name, port, got, want)
		}
		for _, tb := range rs.Tables {
			for _, ch := range tb.Chains() {
				if !safeChain.MatchString(ch) {
					t.Fatalf("unsafe chain name %q", ch)
				}
			}
			for _, m := range commentArg.FindAllStringSubmatch(tb.String(), -1) {
				if !safeComment.MatchString(m[1]) {
					t.Fatalf("unsafe comment %q", m[1])
				}
			}
		}
		if !fuzzing {
			restoreTest(t, rs)
		}
	})
}

// restoreTest runs `iptables-restore --test` of both variants on every
// table, in a throwaway network namespace, as root with the tools
// installed; elsewhere it does nothing (the privileged read-back tests
// cover the requirement).
func restoreTest(t *testing.T, rs *Ruleset) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	for _, v := range variants {
		for _, tb := range rs.Tables {
			tool := "iptables-" + string(v) + "-restore"
			if tb.Family == proxykit.IPv6 {
				tool = "ip6" + tool[2:]
			}
			if _, err := exec.LookPath(tool); err != nil {
				return
			}
			cmd := exec.Command("unshare", "-n", tool, "--test", "--noflush")
			cmd.Stdin = strings.NewReader(tb.String())
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s --test rejects the %s %s table: %v\n%s\n%s", tool, tb.Family, tb.Name, err, out.String(), tb)
			}
		}
	}
}
