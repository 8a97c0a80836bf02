package vmtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
)

// CacheDir is where downloaded kernels are kept, relative to the module
// root (the directory holding go.mod). The repository's .gitignore
// ignores /.cache/.
const CacheDir = ".cache/vmtest"

// MetaPackage is the Debian package whose dependency names the current
// kernel image package.
const MetaPackage = "linux-image-amd64"

// Kernel is an unpacked Debian kernel image package.
type Kernel struct {
	// Release is the kernel release, e.g. "6.1.0-57-amd64"; the modules
	// are under Root/lib/modules/Release.
	Release string
	Root    string // where the package was unpacked
	Vmlinuz string // Root/boot/vmlinuz-Release
}

// ModulesDir returns the directory of the kernel's modules.
func (k *Kernel) ModulesDir() string { return filepath.Join(k.Root, "lib", "modules", k.Release) }

var imagePackage = regexp.MustCompile(`^linux-image-(\d[^ ]*-amd64)$`)

// currentImage asks apt which linux-image-<release> package
// linux-image-amd64 depends on now.
func currentImage(ctx context.Context) (pkg, release string, err error) {
	out, err := exec.CommandContext(ctx, "apt-cache", "depends", MetaPackage).CombinedOutput()
	if err != nil {
		return "", "", fmt.Errorf("vmtest: apt-cache depends %s: %w: %s", MetaPackage, err, strings.TrimSpace(string(out)))
	}
	for _, line := range strings.Split(string(out), "\n") {
		dep, ok := strings.CutPrefix(strings.TrimSpace(line), "Depends: ")
		if !ok {
			continue
		}
		if m := imagePackage.FindStringSubmatch(strings.TrimSpace(dep)); m != nil {
			return m[0], m[1], nil
		}
	}
	return "", "", fmt.Errorf("vmtest: apt-cache depends %s names no linux-image-<release>-amd64: %q", MetaPackage, out)
}

// FetchKernel returns the current Debian kernel, downloading and
// unpacking it into cacheDir unless it is there already. When apt cannot
// say which kernel is current (no package index, offline), it returns the
// newest kernel already in the cache, if any.
func FetchKernel(ctx context.Context, cacheDir string) (*Kernel, error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("vmtest: create cache %s: %w", cacheDir, err)
	}
	unlock, err := lockDir(cacheDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	pkg, release, err := currentImage(ctx)
	if err != nil {
		if k := newestCached(cacheDir); k != nil {
			return k, nil
		}
		return nil, err
	}
	k := kernelAt(cacheDir, release)
	if _, err := os.Stat(filepath.Join(k.Root, ".complete")); err == nil {
		return k, nil
	}
	if err := unpack(ctx, cacheDir, pkg, k); err != nil {
		return nil, err
	}
	return k, nil
}

func kernelAt(cacheDir, release string) *Kernel {
	root := filepath.Join(cacheDir, release)
	return &Kernel{Release: release, Root: root, Vmlinuz: filepath.Join(root, "boot", "vmlinuz-"+release)}
}

// unpack downloads pkg, unpacks it into k.Root and runs depmod there.
func unpack(ctx context.Context, cacheDir, pkg string, k *Kernel) error {
	dl := filepath.Join(cacheDir, "download")
	if err := os.RemoveAll(dl); err != nil {
		return fmt.Errorf("vmtest: clean %s: %w", dl, err)
	}
	if err := os.MkdirAll(dl, 0o755); err != nil {
		return fmt.Errorf("vmtest: create %s: %w", dl, err)
	}
	defer os.RemoveAll(dl)
	if err := run(ctx, dl, "apt-get", "download", "-q", pkg); err != nil {
		return err
	}
	debs, _ := filepath.Glob(filepath.Join(dl, pkg+"_*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("vmtest: apt-get download %s: expected one .deb in %s, found %d", pkg, dl, len(debs))
	}
	if err := os.RemoveAll(k.Root); err != nil {
		return fmt.Errorf("vmtest: clean %s: %w", k.Root, err)
	}
	if err := run(ctx, "", "dpkg", "-x", debs[0], k.Root); err != nil {
		return err
	}
	if err := run(ctx, "", "depmod", "-b", k.Root, k.Release); err != nil {
		return err
	}
	if _, err := os.Stat(k.Vmlinuz); err != nil {
		return fmt.Errorf("vmtest: %s has no kernel image: %w", pkg, err)
	}
	if err := os.WriteFile(filepath.Join(k.Root, ".complete"), []byte(pkg+"\n"), 0o644); err != nil {
		return fmt.Errorf("vmtest: mark %s complete: %w", k.Root, err)
	}
	return nil
}

// newestCached returns the kernel of the highest release that was
// unpacked completely, or nil.
func newestCached(cacheDir string) *Kernel {
	marks, _ := filepath.Glob(filepath.Join(cacheDir, "*", ".complete"))
	if len(marks) == 0 {
		return nil
	}
	sort.Strings(marks) // good enough: Debian bumps the ABI number in place
	return kernelAt(cacheDir, filepath.Base(filepath.Dir(marks[len(marks)-1])))
}

// run runs a command and names it and its output in the error.
func run(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("vmtest: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// lockDir takes an exclusive lock on dir/.lock, shared by every test
// process, and returns its release.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("vmtest: open lock: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("vmtest: lock %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

// moduleRoot returns the directory holding go.mod, from dir upwards.
func moduleRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("vmtest: no go.mod above %s", dir)
		}
		d = parent
	}
}
