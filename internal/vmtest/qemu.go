package vmtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Result is how a VM run ended.
type Result struct {
	// Found reports whether the sentinel line was seen; Code is the test
	// binary's exit code it gave.
	Found bool
	Code  int
	// Boot is the time from starting qemu to the first line of the test
	// binary's run (after the modules are loaded); Total is qemu's run
	// time.
	Boot, Total time.Duration
}

// qemuArgs returns qemu's command line.
func qemuArgs(k *Kernel, img string, opts Options) []string {
	return []string{
		"-accel", "tcg", "-m", strconv.Itoa(opts.MemoryMB), "-smp", strconv.Itoa(opts.CPUs),
		"-nographic", "-no-reboot", "-nic", "none",
		"-kernel", k.Vmlinuz, "-initrd", img,
		// cryptomgr.notests: the crypto self-tests at boot were seen to
		// hang a TCG vCPU on a loaded host (soft lockup in
		// cryptomgr_test); the tests gain nothing from them.
		"-append", "console=ttyS0 quiet panic=-1 cryptomgr.notests",
	}
}

// errBootHung is boot's error when the kernel did not start init within
// BootTimeout.
var errBootHung = errors.New("the kernel did not start init in time")

// BootTimeout bounds the time from starting qemu to init's first line;
// a boot that takes longer is killed and, once, retried.
const BootTimeout = 90 * time.Second

// boot runs qemu until the VM powers off, passing every console line to
// logf, and reports the sentinel. An error means qemu could not run, was
// killed at the deadline, or hung before init (errBootHung).
func boot(ctx context.Context, qemu string, k *Kernel, img string, opts Options, logf func(string)) (Result, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	started := make(chan struct{})
	watchdog := time.AfterFunc(BootTimeout, func() {
		select {
		case <-started:
		default:
			cancel(errBootHung)
		}
	})
	defer watchdog.Stop()
	cmd := exec.CommandContext(ctx, qemu, qemuArgs(k, img, opts)...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return Result{}, fmt.Errorf("vmtest: qemu: %w", err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("vmtest: start %s: %w", qemu, err)
	}
	var once bool
	res := scanConsole(out, start, func(line string) {
		if !once && strings.Contains(line, initMarker) {
			once = true
			close(started)
		}
		logf(line)
	})
	err = cmd.Wait()
	res.Total = time.Since(start)
	if errors.Is(context.Cause(ctx), errBootHung) {
		return res, fmt.Errorf("vmtest: qemu killed after %v: %w", BootTimeout, errBootHung)
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("vmtest: qemu killed after %v: %w", opts.Timeout, ctx.Err())
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return res, fmt.Errorf("vmtest: qemu: %w", err)
	}
	if err != nil && !res.Found {
		return res, fmt.Errorf("vmtest: qemu: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return res, nil
}

// scanConsole reads the serial console to its end: each line goes to
// logf, and the last sentinel line gives the result.
func scanConsole(r io.Reader, start time.Time, logf func(string)) Result {
	var res Result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := cleanLine(sc.Text())
		if res.Boot == 0 && strings.Contains(line, "=== RUN") {
			res.Boot = time.Since(start)
		}
		if code, ok := parseSentinel(line); ok {
			res.Found, res.Code = true, code
		}
		if line != "" {
			logf(line)
		}
	}
	return res
}

// cleanLine drops the carriage returns and terminal escapes of a console
// line.
func cleanLine(s string) string {
	s = strings.ReplaceAll(s, "\r", "")
	for {
		i := strings.Index(s, "\x1b[")
		if i < 0 {
			return s
		}
		j := strings.IndexFunc(s[i+2:], func(r rune) bool { return r >= '@' && r <= '~' })
		if j < 0 {
			return s[:i]
		}
		s = s[:i] + s[i+2+j+1:]
	}
}

// parseSentinel reads "PROXYKIT-VMTEST-EXIT=<code>".
func parseSentinel(line string) (int, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), Sentinel)
	if !ok {
		return 0, false
	}
	code, err := strconv.Atoi(rest)
	if err != nil {
		return 0, false
	}
	return code, true
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
