package vmtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"
)

// EnvInVM is set to 1 in the environment of the test binary inside the
// VM.
const EnvInVM = "PROXYKIT_IN_VM"

// RequireEnv turns Require's skips into failures, as in
// internal/netnstest. CI sets it.
const RequireEnv = "PROXYKIT_REQUIRE_PRIVILEGED"

// InVM reports whether the process is a test binary running inside a VM
// that Run booted.
func InVM() bool { return os.Getenv(EnvInVM) == "1" }

// Options says what to run in the VM.
type Options struct {
	// Package is the directory of the package whose tests run, relative
	// to the calling test's working directory: "." for its own.
	Package string
	// Args are the test binary's arguments, e.g. "-test.run=^TestVM",
	// "-test.v".
	Args []string
	// Modules are loaded at boot; empty means DefaultModules.
	Modules []string
	// Env is added to the test binary's environment, after EnvInVM=1 and
	// RequireEnv (passed through from the host).
	Env map[string]string
	// Timeout bounds the whole boot and run; zero means 5 minutes.
	Timeout time.Duration
	// MemoryMB is the VM's memory; zero means 1024. CPUs is its number of
	// virtual CPUs; zero means 2.
	MemoryMB, CPUs int
}

// tools are the host commands Run needs.
var tools = []string{"qemu-system-x86_64", "busybox", "apt-get", "apt-cache", "dpkg", "depmod"}

// Require skips t when a tool that Run needs is missing, or fails it when
// RequireEnv is set. It returns the path of each tool.
func Require(t testing.TB) map[string]string {
	t.Helper()
	paths := map[string]string{}
	var missing []string
	for _, tool := range tools {
		p, err := exec.LookPath(tool)
		if err != nil && tool == "depmod" {
			p, err = exec.LookPath("/usr/sbin/depmod") // not on a user's PATH
		}
		if err != nil {
			missing = append(missing, tool)
			continue
		}
		paths[tool] = p
	}
	if len(missing) > 0 {
		why := fmt.Sprintf("vmtest: missing tools %v (Debian packages qemu-system-x86, busybox-static, apt, dpkg, kmod)", missing)
		if required() {
			t.Fatal(why + " (" + RequireEnv + " is set)")
		}
		t.Skip(why + " (set " + RequireEnv + "=1 to fail instead of skipping)")
	}
	return paths
}

// required reports whether RequireEnv asks for failures: any value but
// empty or one strconv.ParseBool reads as false.
func required() bool {
	v := os.Getenv(RequireEnv)
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	return err != nil || b
}

// Run boots a VM that runs the test binary of opts.Package with
// opts.Args, streams its console to t's log, and fails t unless the
// binary exits 0. Inside a VM it skips t: the binary is already there.
func Run(t testing.TB, opts Options) {
	t.Helper()
	if InVM() {
		t.Skip("vmtest: already inside the VM")
	}
	paths := Require(t)
	opts = opts.withDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()
	start := time.Now()
	img, k, err := prepare(ctx, t, paths, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("vmtest: kernel %s, image ready in %v", k.Release, time.Since(start).Round(time.Millisecond))
	logf := func(line string) { t.Log("vm: " + line) }
	res, err := boot(ctx, paths["qemu-system-x86_64"], k, img, opts, logf)
	if errors.Is(err, errBootHung) {
		t.Logf("%v; booting again", err)
		res, err = boot(ctx, paths["qemu-system-x86_64"], k, img, opts, logf)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("vmtest: VM exited after %v (boot to test binary %v)", res.Total.Round(time.Millisecond), res.Boot.Round(time.Millisecond))
	if !res.Found {
		t.Fatalf("vmtest: the VM ended without the %q line: the test binary did not finish", Sentinel)
	}
	if res.Code != 0 {
		t.Fatalf("vmtest: the test binary exited with code %d in the VM", res.Code)
	}
}

func (o Options) withDefaults() Options {
	if o.Package == "" {
		o.Package = "."
	}
	if len(o.Modules) == 0 {
		o.Modules = DefaultModules
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.MemoryMB == 0 {
		o.MemoryMB = 1024
	}
	if o.CPUs == 0 {
		o.CPUs = 2
	}
	return o
}

// prepare fetches the kernel, builds the test binary and writes the
// initramfs; it returns the image's path.
func prepare(ctx context.Context, t testing.TB, paths map[string]string, opts Options) (string, *Kernel, error) {
	root, err := moduleRoot(".")
	if err != nil {
		return "", nil, err
	}
	k, err := FetchKernel(ctx, filepath.Join(root, CacheDir))
	if err != nil {
		return "", nil, err
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "test.bin")
	if err := buildTest(ctx, opts.Package, bin); err != nil {
		return "", nil, err
	}
	env := map[string]string{EnvInVM: "1", "HOME": "/root", "TMPDIR": "/tmp"}
	if v := os.Getenv(RequireEnv); v != "" {
		env[RequireEnv] = v
	}
	for k, v := range opts.Env {
		env[k] = v
	}
	img := filepath.Join(dir, "initrd.gz")
	if err := writeInitramfs(img, k, paths["busybox"], bin, opts.Modules, opts.Args, env); err != nil {
		return "", nil, err
	}
	return img, k, nil
}

// buildTest builds pkg's test binary, statically linked.
func buildTest(ctx context.Context, pkg, out string) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.CommandContext(ctx, gobin, "test", "-c", "-o", out, pkg)
	cmd.Env = append(slices.Clone(os.Environ()), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("vmtest: go test -c %s: %w: %s", pkg, err, b)
	}
	return nil
}
