package vmtest

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Paths inside the VM.
const (
	vmBinary  = "/pkg/test.bin"
	vmPkgDir  = "/pkg"
	vmModules = "/lib/modules"
)

// initMarker is the first line init prints: the kernel has booted.
const initMarker = "vmtest: init started"

// Sentinel starts the line that init prints after the test binary exits,
// followed by its exit code.
const Sentinel = "PROXYKIT-VMTEST-EXIT="

// initScript is the VM's /init. The modules are loaded in the order
// given, each after its dependencies; a module that fails to load is
// reported, and the tests that need it will fail.
const initScript = `#!/bin/busybox sh
/bin/busybox echo "` + initMarker + `"
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /root
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
export PATH=/bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
while read -r m; do
	insmod "/lib/modules/$m" || echo "vmtest: insmod $m failed"
done < /etc/modules.order
ip link set lo up
%s
cd %s
%s
echo "%s$?"
sync
poweroff -f
`

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// script returns the init script that runs the binary with args and env.
func script(args []string, env map[string]string) string {
	var exports []string
	for _, k := range sortedKeys(env) {
		exports = append(exports, "export "+k+"="+shellQuote(env[k]))
	}
	cmd := []string{vmBinary}
	for _, a := range args {
		cmd = append(cmd, shellQuote(a))
	}
	return fmt.Sprintf(initScript, strings.Join(exports, "\n"), vmPkgDir, strings.Join(cmd, " "), Sentinel)
}

// writeInitramfs writes the gzipped image to path: busybox, the modules
// with their dependencies, the test binary and the init script.
func writeInitramfs(path string, k *Kernel, busybox, binary string, modules, args []string, env map[string]string) error {
	order, err := resolveModules(k, modules)
	if err != nil {
		return err
	}
	files := []File{
		{Path: "init", Mode: 0o755, Data: []byte(script(args, env))},
		{Path: "bin/busybox", Mode: 0o755, Source: busybox},
		{Path: "etc/modules.order", Data: []byte(strings.Join(order, "\n") + "\n")},
		{Path: strings.TrimPrefix(vmBinary, "/"), Mode: 0o755, Source: binary},
	}
	for _, m := range order {
		files = append(files, File{Path: filepath.Join(strings.TrimPrefix(vmModules, "/"), m), Source: filepath.Join(k.ModulesDir(), m)})
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("vmtest: create initramfs: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	zw, _ := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	err = writeCPIO(zw, files, os.ReadFile)
	for _, c := range []func() error{zw.Close, bw.Flush, f.Close} {
		if cerr := c(); err == nil && cerr != nil {
			err = fmt.Errorf("vmtest: write initramfs: %w", cerr)
		}
	}
	return err
}

// resolveModules reads the kernel's module index and resolves names.
func resolveModules(k *Kernel, names []string) ([]string, error) {
	dep, err := os.Open(filepath.Join(k.ModulesDir(), "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("vmtest: open modules.dep: %w", err)
	}
	defer dep.Close()
	builtin, err := os.Open(filepath.Join(k.ModulesDir(), "modules.builtin"))
	if err != nil {
		return nil, fmt.Errorf("vmtest: open modules.builtin: %w", err)
	}
	defer builtin.Close()
	idx, err := parseModules(dep, builtin)
	if err != nil {
		return nil, err
	}
	return idx.resolve(names)
}
