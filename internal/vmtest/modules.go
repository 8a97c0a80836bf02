package vmtest

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strings"
)

// DefaultModules are the kernel modules a VM loads when Options.Modules is
// empty: IPVS with every scheduler, conntrack and NAT, the nf_tables
// expressions the nftables backend uses (also for IPVS's companion
// rules), veth and dummy. Their dependencies are added from modules.dep;
// crc32c_generic is libcrc32c's soft dependency (its init fails without
// a crc32c implementation), which modules.dep does not list.
var DefaultModules = []string{
	"crc32c_generic",
	"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_lc", "ip_vs_wlc", "ip_vs_lblc", "ip_vs_lblcr",
	"ip_vs_sh", "ip_vs_dh", "ip_vs_sed", "ip_vs_nq", "ip_vs_mh",
	"nf_conntrack", "nf_nat", "nf_tables", "nft_chain_nat", "nft_nat", "nft_ct", "nft_numgen",
	"nft_masq", "nft_reject", "nft_reject_ipv4", "nft_reject_ipv6", "nft_reject_inet",
	"nft_fib", "nft_fib_ipv4", "nft_fib_ipv6", "nft_fib_inet", "nft_hash",
	"nf_conntrack_netlink", "veth", "dummy",
}

// moduleIndex is what modules.dep and modules.builtin say.
type moduleIndex struct {
	deps    map[string][]string // module name → its file and dependency files
	files   map[string]string   // module name → file, relative to the modules dir
	builtin map[string]bool
}

// modName is a module's name from its file: "kernel/net/ipv4/nft_fib_ipv4.ko"
// → "nft_fib_ipv4". Dashes and underscores are the same to the kernel.
func modName(file string) string {
	base := path.Base(file)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

// parseModules reads modules.dep and, optionally, modules.builtin.
func parseModules(dep, builtin io.Reader) (*moduleIndex, error) {
	idx := &moduleIndex{deps: map[string][]string{}, files: map[string]string{}, builtin: map[string]bool{}}
	sc := bufio.NewScanner(dep)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		file, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name := modName(file)
		idx.files[name] = file
		idx.deps[name] = strings.Fields(rest)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("vmtest: read modules.dep: %w", err)
	}
	if builtin != nil {
		sc = bufio.NewScanner(builtin)
		for sc.Scan() {
			idx.builtin[modName(sc.Text())] = true
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("vmtest: read modules.builtin: %w", err)
		}
	}
	return idx, nil
}

// resolve returns the files of names and of everything they depend on,
// each after its dependencies: the order to insmod them in. Built-in
// modules are skipped; an unknown module is an error.
func (idx *moduleIndex) resolve(names []string) ([]string, error) {
	var order []string
	seen := map[string]bool{}
	var visit func(name string, chain []string) error
	visit = func(name string, chain []string) error {
		name = strings.ReplaceAll(name, "-", "_")
		if seen[name] {
			return nil
		}
		file, ok := idx.files[name]
		if !ok {
			if idx.builtin[name] {
				seen[name] = true
				return nil
			}
			return fmt.Errorf("vmtest: kernel module %q (needed by %v) is neither in modules.dep nor built in", name, chain)
		}
		seen[name] = true
		for _, d := range idx.deps[name] {
			if err := visit(modName(d), append(chain, name)); err != nil {
				return err
			}
		}
		order = append(order, file)
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}
