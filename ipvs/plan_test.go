package ipvs

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

func TestPlanGolden(t *testing.T) {
	for name, sc := range goldenScenarios() {
		t.Run(name, func(t *testing.T) {
			snap := snapshot(t, sc.svcs, sc.slices)
			st, err := Plan(snap, sc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".ipvs", st.String())
			again, _ := Plan(snap, sc.cfg)
			if again.String() != st.String() {
				t.Error("Plan is not deterministic")
			}
			rs, err := Rules(snap, sc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".nft", rs.String())
		})
	}
}

func TestPlanSchedulers(t *testing.T) {
	port := endpoints.Port{Name: "http", Protocol: servicemap.TCP, Port: 8080}
	for _, sched := range append(Schedulers, "", "fo", "RR", "rr2") {
		t.Run("scheduler="+sched, func(t *testing.T) {
			svc := &servicemap.Service{Namespace: "ns", Name: "web", ClusterIPs: addrs("10.96.0.10"),
				Ports: []servicemap.Port{{Name: "http", Protocol: servicemap.TCP, Port: 80}}, Scheduler: sched}
			snap, err := proxykit.NewSnapshot(testNode, []*servicemap.Service{svc},
				[]*endpoints.Slice{slice("web", port, ep("10.244.1.10", "node-a", 0))})
			if err != nil {
				if strings.ToLower(sched) != sched {
					return // servicemap refuses it already
				}
				t.Fatal(err)
			}
			st, err := Plan(snap, testConfig)
			valid := sched == "" || ValidateScheduler(sched) == nil
			if valid {
				if err != nil {
					t.Fatalf("Plan: %v", err)
				}
				want := sched
				if want == "" {
					want = DefaultScheduler
				}
				if got := st.Services[0].Scheduler; got != want {
					t.Errorf("scheduler = %q, want %q", got, want)
				}
				return
			}
			var se *SchedulerError
			if !errors.As(err, &se) || se.Scheduler != sched || se.Service.Name != "web" {
				t.Fatalf("Plan error = %v, want a *SchedulerError for ns/web naming %q", err, sched)
			}
			for _, want := range []string{"ns/web", "Scheduler", fmt.Sprintf("%q", sched)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none: valid
	}{
		{"defaults need cluster CIDRs or masquerade all", Config{MasqueradeAll: true}, nil},
		{"test config", testConfig, nil},
		{"bad scheduler", Config{MasqueradeAll: true, Scheduler: "fifo"}, []string{"Config.Scheduler", `"fifo"`}},
		{"bad flag", Config{MasqueradeAll: true, SchedulerFlags: []string{"sh-port", "sh-sticky"}}, []string{"SchedulerFlags[1]", "sh-sticky"}},
		{"bad interface", Config{MasqueradeAll: true, Interface: "a/b"}, []string{"Config.Interface"}},
		{"long interface", Config{MasqueradeAll: true, Interface: "proxykit-dummy-0"}, []string{"Config.Interface"}},
		{"negative grace", Config{MasqueradeAll: true, GracePeriod: -1}, []string{"GracePeriod"}},
		{"nodeport range", Config{MasqueradeAll: true, NodePortMin: 32000, NodePortMax: 31000}, []string{"NodePortMin"}},
		{"nftables part", Config{MasqueradeMark: 3}, []string{"MasqueradeMark", "ClusterCIDRs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate: nil, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestPlanNodePortAddresses(t *testing.T) {
	sc := goldenScenarios()["external"]
	cfg := sc.cfg
	cfg.NodePortAddresses = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}
	st, err := Plan(snapshot(t, sc.svcs, sc.slices), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var nodePorts []string
	for _, v := range st.Services {
		if v.Kind == KindNodePort {
			nodePorts = append(nodePorts, v.Key.String())
		}
	}
	if got, want := strings.Join(nodePorts, ","), "TCP 198.51.100.1:30080"; got != want {
		t.Errorf("NodePort virtual servers = %s, want %s", got, want)
	}
	for _, a := range st.Addresses {
		if testNode.HasAddress(a) {
			t.Errorf("node address %s would go on the dummy interface", a)
		}
	}
}
