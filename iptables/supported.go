package iptables

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/proxykit/proxykit"
)

// feature is one iptables extension the rules use, with a probe rule.
type feature struct {
	name, table, rule, module string
}

// features are probed in a scratch chain; the rule text is appended to
// "-A <prefix>-PROBE".
func features(fam proxykit.Family) []feature {
	host, rej, dst := "10.0.0.1/32", "icmp-port-unreachable", "10.0.0.1:1"
	if fam == proxykit.IPv6 {
		host, rej, dst = "fd00::1/128", "icmp6-port-unreachable", "[fd00::1]:1"
	}
	return []feature{
		{"comment", tableNAT, "-m comment --comment probe -j RETURN", "xt_comment"},
		{"tcp/udp/sctp port match", tableNAT, "-d " + host + " -p sctp -m sctp --dport 1 -j RETURN", "xt_sctp"},
		{"statistic", tableNAT, "-m statistic --mode random --probability 0.50000000000 -j RETURN", "xt_statistic"},
		{"recent", tableNAT, "-m recent --rcheck --seconds 10 --reap --name PROXYKIT-PROBE --rsource -j RETURN", "xt_recent"},
		{"addrtype", tableNAT, "-m addrtype --dst-type LOCAL -j RETURN", "xt_addrtype"},
		{"mark", tableNAT, "-m mark ! --mark 0x4000/0x4000 -j MARK --set-xmark 0x4000/0x0", "xt_mark"},
		{"DNAT", tableNAT, "-p tcp -j DNAT --to-destination " + dst, "xt_nat"},
		{"MASQUERADE --random-fully", tableNAT, "-j MASQUERADE --random-fully", "xt_MASQUERADE"},
		{"conntrack", tableFilter, "-m conntrack --ctstate NEW -j RETURN", "xt_conntrack"},
		{"REJECT", tableFilter, "-j REJECT --reject-with " + rej, "ipt_REJECT/ip6t_REJECT"},
	}
}

// Supported reports what the tools or the kernel lack, naming it: an
// old iptables (1.6.2 is needed, for --random-fully and restore -w), or
// an extension whose probe rule the kernel refuses. It creates and
// deletes a scratch chain <prefix>-PROBE in each table.
func (s *Syncer) Supported(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, fam := range proxykit.Families {
		v, variant, err := s.run.Version(ctx, fam)
		if err != nil {
			return err
		}
		if !atLeast(v, 1, 6, 2) {
			errs = append(errs, fmt.Errorf("iptables: %s tools (%s) are version %s; 1.6.2 or later is needed", fam, variant, v))
			continue
		}
		if err := s.probe(ctx, fam, features(fam)); err == nil {
			continue
		}
		for _, f := range features(fam) { // name what fails
			if err := s.probe(ctx, fam, []feature{f}); err != nil {
				errs = append(errs, fmt.Errorf("iptables: %s: %s is not supported (kernel module %s?): %w", fam, f.name, f.module, err))
			}
		}
	}
	return errors.Join(errs...)
}

// probe adds the features' rules to a scratch chain, one restore per
// table, and deletes it again.
func (s *Syncer) probe(ctx context.Context, fam proxykit.Family, fs []feature) error {
	chain := s.cfg.Prefix + "-" + chainProbe
	for _, table := range []string{tableNAT, tableFilter} {
		var b strings.Builder
		b.WriteString("*" + table + "\n:" + chain + " - [0:0]\n")
		n := 0
		for _, f := range fs {
			if f.table == table {
				b.WriteString("-A " + chain + " " + f.rule + "\n")
				n++
			}
		}
		if n == 0 {
			continue
		}
		b.WriteString("COMMIT\n")
		err := s.run.Restore(ctx, fam, table, [][]byte{[]byte(b.String())})
		cleanup := "*" + table + "\n:" + chain + " - [0:0]\n-X " + chain + "\nCOMMIT\n"
		cerr := s.run.Restore(ctx, fam, table, [][]byte{[]byte(cleanup)})
		if err != nil {
			return err
		}
		if cerr != nil {
			return cerr
		}
	}
	return nil
}

// atLeast reports whether version "a.b.c" is at least maj.min.patch.
func atLeast(v string, maj, min, patch int) bool {
	var n [3]int
	for i, p := range strings.SplitN(v, ".", 3) {
		n[i], _ = strconv.Atoi(p)
	}
	if n[0] != maj {
		return n[0] > maj
	}
	if n[1] != min {
		return n[1] > min
	}
	return n[2] >= patch
}
