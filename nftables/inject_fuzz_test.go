package nftables

import (
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

// injectSnapshot is one LoadBalancer service (every kind of frontend and
// chain) with the given identity strings.
func injectSnapshot(ns, name, port string) (*proxykit.Snapshot, error) {
	svc := &servicemap.Service{Namespace: ns, Name: name, Type: servicemap.LoadBalancer,
		ClusterIPs:               []netip.Addr{netip.MustParseAddr("10.96.0.10")},
		Ports:                    []servicemap.Port{{Name: port, Protocol: servicemap.TCP, Port: 80, NodePort: 30080}, {Name: "other", Protocol: servicemap.UDP, Port: 53}},
		LoadBalancerIPs:          []netip.Addr{netip.MustParseAddr("203.0.113.7")},
		LoadBalancerSourceRanges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
		ExternalTrafficPolicy:    servicemap.Local, HealthCheckNodePort: 32000}
	sl := &endpoints.Slice{Namespace: ns, Service: name, Name: "s",
		Ports:     []endpoints.Port{{Name: port, Protocol: servicemap.TCP, Port: 8080}},
		Endpoints: []endpoints.Endpoint{{Addr: netip.MustParseAddr("10.244.1.10"), Ready: true, NodeName: "node-a"}}}
	return proxykit.NewSnapshot(testNode, []*servicemap.Service{svc}, []*endpoints.Slice{sl})
}

// shape is what a ruleset holds, without names: the number of chains,
// sets, rules and elements. Identity strings must never change it.
func shape(rs *Ruleset) [4]int {
	var s [4]int
	for _, t := range rs.Tables {
		s[0] += len(t.Chains)
		s[1] += len(t.Sets)
		for _, c := range t.Chains {
			s[2] += len(c.Rules)
		}
		for _, set := range t.Sets {
			s[3] += len(set.Elements)
		}
	}
	return s
}

var safeName = regexp.MustCompile(`^[a-z0-9][a-zA-Z0-9_./-]*$`)

// FuzzRenderNames feeds arbitrary namespace, name and port-name strings.
// The result is a validation error, or a ruleset of exactly the reference
// shape whose every name is a plain identifier, which nft accepts (checked
// for the seeds when root runs the tests).
func FuzzRenderNames(f *testing.F) {
	for _, seed := range [][3]string{
		{"ns", "web", "http"},
		{"ns", "web\"; flush ruleset; #", "http"},
		{"kube-system", "a}\n\tchain evil {", "p"},
		{"ns", "web", "http } ; add rule ip proxykit services accept"},
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
		// The names alone, below validation: always plain identifiers.
		pn := namesOf(servicemap.PortName{Namespace: ns, Name: name, Port: port, Protocol: servicemap.TCP})
		epChain, affSet := pn.endpoint(netip.MustParseAddrPort("10.0.0.1:80"))
		for _, n := range []string{pn.chain("svc"), epChain, affSet} {
			if !safeName.MatchString(n) || len(n) > 256 {
				t.Fatalf("unsafe name %q from %q %q %q", n, ns, name, port)
			}
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
			for _, c := range tb.Chains {
				if !safeName.MatchString(c.Name) {
					t.Fatalf("unsafe chain name %q", c.Name)
				}
			}
		}
		if !fuzzing {
			nftCheck(t, rs.String())
		}
	})
}

// nftCheck runs `nft -c -f` on text in a throwaway network namespace, as
// root with nft installed; elsewhere it does nothing (the privileged
// read-back tests cover the requirement).
func nftCheck(t *testing.T, text string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	if _, err := exec.LookPath("nft"); err != nil {
		return
	}
	cmd := exec.Command("unshare", "-n", "nft", "-c", "-f", "-")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -c rejects the ruleset: %v\n%s", err, out)
	}
}
