package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Scenario 8 runs the root module's IPVS kernel benchmarks
// (ipvs/bench_kernel_test.go, BenchmarkScenario…) in the qemu VM of
// internal/vmtest, which this module cannot import: it runs
//
//	PROXYKIT_VM_RUN='^$' PROXYKIT_VM_BENCH='^BenchmarkScenario' PROXYKIT_VM_BENCHTIME=1s \
//	PROXYKIT_VM_BENCH_MAX=<cap> go test -count=1 -run '^TestVM$' -v ./ipvs/
//
// in the root module's directory, and parses the benchmark lines of the
// VM's console that TestVM logs.

const (
	rootModule = "github.com/proxykit/proxykit"
	// vmBenchPattern selects the benchmarks of scenarios 1–3 in the VM.
	vmBenchPattern = "^BenchmarkScenario"
	// vmOutputFile is the raw output of the VM run, next to REPORT.md.
	vmOutputFile = "s8-ipvs-vm.txt"
	// vmQuickMax caps the services of a quick run.
	vmQuickMax = 1000
	// vmMinBenchTime is the least -test.benchtime of the VM's benchmarks.
	vmMinBenchTime = 500 * time.Millisecond
	// vmTimeout bounds the VM run (default sizes take 1.5 to 4 minutes).
	vmTimeout = 20 * time.Minute
)

// vmTools are the host tools of internal/vmtest, and go.
var vmTools = []string{"go", "qemu-system-x86_64", "busybox", "apt-get", "apt-cache", "dpkg", "depmod"}

// runIPVSVM is scenario 8: scenarios 1–3 for IPVS and nftables in a VM
// whose kernel has IPVS, reported as ratios of the two.
func runIPVSVM(ctx context.Context, env *Env) (Result, error) {
	if env.Sizes != nil {
		return Result{Skipped: []string{"IPVS in a VM: sizes are set (a test run), so the VM is not booted"}}, nil
	}
	if why := missingVMTool(); why != "" {
		if Required() {
			return Result{}, fmt.Errorf("%s (%s is set)", why, RequireEnv)
		}
		return Result{Skipped: []string{why}}, nil
	}
	root, err := rootModuleDir(ctx)
	if err != nil {
		return Result{}, err
	}
	limit := env.MaxServices
	if env.Quick && (limit <= 0 || limit > vmQuickMax) {
		limit = vmQuickMax
	}
	// Under emulation few ops fit in a short benchtime.
	benchtime := max(env.benchTime(), vmMinBenchTime)
	out, runErr := runVM(ctx, env, root, benchtime, limit)
	if env.Out != "" {
		if err := os.MkdirAll(env.Out, 0o755); err == nil {
			_ = os.WriteFile(filepath.Join(env.Out, vmOutputFile), out, 0o644)
		}
	}
	run := parseVMOutput(bytes.NewReader(out))
	res, err := vmResult(run, benchtime, limit, env.Out != "")
	if runErr != nil {
		if len(run.Failures) > 0 {
			runErr = fmt.Errorf("%w; in the VM: %s", runErr, strings.Join(run.Failures, "; "))
		}
		return res, fmt.Errorf("IPVS VM run: %w; last lines:\n%s", runErr, lastLines(out, 15))
	}
	return res, err
}

// missingVMTool returns why the VM cannot boot when a tool is missing,
// else "".
func missingVMTool() string {
	var missing []string
	for _, tool := range vmTools {
		if _, err := exec.LookPath(tool); err != nil {
			if tool == "depmod" {
				if _, err := exec.LookPath("/usr/sbin/depmod"); err == nil {
					continue
				}
			}
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return fmt.Sprintf("IPVS in a VM: %s not found (Debian packages qemu-system-x86, busybox-static, apt, dpkg, kmod, and the go tool)", strings.Join(missing, ", "))
}

// rootModuleDir finds the root module's directory: where `go list -m`
// puts it from this source file's directory or the working directory
// (the bench module replaces it with ../), else the first parent of
// either whose go.mod declares it.
func rootModuleDir(ctx context.Context) (string, error) {
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", rootModule)
		cmd.Dir = dir
		if out, err := cmd.Output(); err == nil {
			if root := strings.TrimSpace(string(out)); isRootModule(root) {
				return root, nil
			}
		}
		for d := dir; ; d = filepath.Dir(d) {
			if isRootModule(d) {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", fmt.Errorf("IPVS in a VM: cannot find the %s module's directory (with ipvs/vm_test.go) from %v", rootModule, starts)
}

// isRootModule reports whether dir holds the root module and its VM test.
func isRootModule(dir string) bool {
	if dir == "" {
		return false
	}
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "module" {
			if strings.Trim(f[1], `"`) != rootModule {
				return false
			}
			_, err := os.Stat(filepath.Join(dir, "ipvs", "vm_test.go"))
			return err == nil
		}
	}
	return false
}

// vmCommand is the go test command line of the VM run, for the report.
func vmCommand(benchtime time.Duration, limit int) string {
	s := fmt.Sprintf("PROXYKIT_VM_RUN='^$' PROXYKIT_VM_BENCH='%s' PROXYKIT_VM_BENCHTIME=%s", vmBenchPattern, benchtime)
	if limit > 0 {
		s += fmt.Sprintf(" PROXYKIT_VM_BENCH_MAX=%d", limit)
	}
	return s + " go test -count=1 -run '^TestVM$' -v ./ipvs/"
}

// runVM runs TestVM with the benchmarks in root and returns its combined
// output; progress lines go to env.
func runVM(ctx context.Context, env *Env, root string, benchtime time.Duration, limit int) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, vmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-run", "^TestVM$", "-v", "-timeout", "30m", "./ipvs/")
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"PROXYKIT_VM_RUN=^$",
		"PROXYKIT_VM_BENCH="+vmBenchPattern,
		"PROXYKIT_VM_BENCHTIME="+benchtime.String(),
		"PROXYKIT_VM_BENCH_MAX="+strconv.Itoa(max(limit, 0)))
	// go test, the test binary and qemu share a process group: a
	// cancellation ends them all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	env.Logf("  booting the VM in %s: %s", root, vmCommand(benchtime, limit))
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	waited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		pw.Close()
		waited <- err
	}()
	var out bytes.Buffer
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line)
		out.WriteByte('\n')
		if r, ok := parseBenchLine(line); ok {
			env.Logf("  vm: %s  %s", r.Name, fmtDur(time.Duration(r.Metrics["ns/op"])))
		} else if _, msg, ok := strings.Cut(line, "vmtest: "); ok {
			env.Logf("  vmtest: %s", msg)
		}
	}
	_, _ = io.Copy(io.Discard, pr) // a line too long: drain to the end
	err := <-waited
	if ctx.Err() != nil {
		return out.Bytes(), fmt.Errorf("go test: %w", ctx.Err())
	}
	if err != nil {
		return out.Bytes(), fmt.Errorf("go test: %w", err)
	}
	return out.Bytes(), nil
}

// lastLines returns the last n lines of b.
func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
