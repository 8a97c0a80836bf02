// Package vmtest runs a package's test binary inside a qemu virtual
// machine booted from Debian's kernel, for tests that need kernel features
// the host lacks (IPVS) or a second kernel version.
//
// [Run] does, from a test on the host:
//
//  1. fetch the kernel: the linux-image-*-amd64 package that Debian's
//     linux-image-amd64 depends on, with `apt-get download`, unpacked with
//     `dpkg -x` and indexed with `depmod -b`, cached by version under
//     CacheDir at the module root (git-ignored);
//  2. build the test binary of the package, statically (`CGO_ENABLED=0 go
//     test -c`);
//  3. write a gzipped initramfs (newc cpio, written in Go): busybox-static
//     as the shell, an init script, the requested modules with their
//     dependencies resolved from modules.dep, and the test binary;
//  4. boot `qemu-system-x86_64 -accel tcg` (no KVM needed) with the
//     console on the serial port; init mounts proc, sys, dev, /run and
//     /tmp, loads the modules in dependency order, brings lo up, runs the
//     test binary with the given arguments and EnvInVM=1, prints a
//     sentinel line with its exit code and powers off;
//  5. stream the serial output to the test log, and fail the test when
//     the sentinel is missing or the code is not zero.
//
// Inside the VM the same test binary runs: tests that must run there
// check [InVM], and the host-side test that calls Run skips itself there.
//
// Requirements (host): qemu-system-x86_64 (Debian package
// qemu-system-x86), busybox (busybox-static), apt-get, apt-cache, dpkg and
// depmod (kmod), and the go tool. Root is not needed. [Require] skips a
// test when a tool is missing, or fails it when
// PROXYKIT_REQUIRE_PRIVILEGED=1 (CI). The first run downloads about 70 MB;
// later runs reuse the cache, and fall back to the newest cached kernel
// when the package index cannot be read.
//
// Non-goals: KVM, networking to the outside of the VM, disks, kernels
// other than Debian's amd64 one.
//
// Concurrency: Run may be called from parallel tests and from several test
// processes; the kernel cache is guarded by a file lock. Each Run boots
// its own VM.
package vmtest
