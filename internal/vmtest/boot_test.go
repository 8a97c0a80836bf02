package vmtest

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestBoot boots this package's own test binary in a VM, where
// TestInsideVM checks what the VM gives the tests.
func TestBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	Run(t, Options{
		Package: ".",
		Args:    []string{"-test.run=^TestInsideVM$", "-test.v", "-test.timeout=60s"},
		Timeout: 3 * time.Minute,
	})
}

// TestInsideVM runs only in the VM: the modules are loaded, IPVS is
// there, and the file systems the harnesses need are mounted.
func TestInsideVM(t *testing.T) {
	if !InVM() {
		t.Skip("runs inside the VM that TestBoot boots")
	}
	mods, err := os.ReadFile("/proc/modules")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range DefaultModules {
		if !strings.Contains(string(mods), m+" ") {
			t.Errorf("module %s is not loaded", m)
		}
	}
	for _, p := range []string{"/proc/net/ip_vs", "/proc/sys/net/ipv4/vs/conntrack", "/run", "/tmp", "/dev/null"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if os.Geteuid() != 0 {
		t.Error("not root in the VM")
	}
}
