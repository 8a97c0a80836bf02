package vmtest

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestResolveModules(t *testing.T) {
	dep, err := os.Open("testdata/modules.dep")
	if err != nil {
		t.Fatal(err)
	}
	defer dep.Close()
	builtin, err := os.Open("testdata/modules.builtin")
	if err != nil {
		t.Fatal(err)
	}
	defer builtin.Close()
	idx, err := parseModules(dep, builtin)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		modules []string
		want    []string
		wantErr string
	}{
		{
			name:    "dependencies first, each once",
			modules: []string{"ip_vs_rr", "ip_vs", "dummy"},
			want: []string{
				"kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko", "kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko",
				"kernel/lib/libcrc32c.ko", "kernel/net/netfilter/nf_conntrack.ko",
				"kernel/net/netfilter/ipvs/ip_vs.ko", "kernel/net/netfilter/ipvs/ip_vs_rr.ko",
				"kernel/drivers/net/dummy.ko",
			},
		},
		{name: "built in: nothing to load", modules: []string{"udp-tunnel"}, want: nil},
		{name: "unknown", modules: []string{"ip_vs_nope"}, wantErr: `"ip_vs_nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := idx.resolve(tt.modules)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("resolve = %q\nwant %q", got, tt.want)
			}
		})
	}
}

// readCPIO parses a newc archive: name → content, and the modes.
func readCPIO(t *testing.T, b []byte) (map[string]string, map[string]uint32) {
	t.Helper()
	files, modes := map[string]string{}, map[string]uint32{}
	align := func(n int) int { return (n + 3) &^ 3 }
	for off := 0; ; {
		h := b[off : off+110]
		if string(h[:6]) != "070701" {
			t.Fatalf("bad magic at %d: %q", off, h[:6])
		}
		field := func(i int) int {
			v, err := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return int(v)
		}
		mode, size, nameLen := field(1), field(6), field(11)
		name := string(b[off+110 : off+110+nameLen-1])
		off = align(off + 110 + nameLen)
		if name == "TRAILER!!!" {
			return files, modes
		}
		files[name] = string(b[off : off+size])
		modes[name] = uint32(mode)
		off = align(off + size)
	}
}

func TestWriteCPIO(t *testing.T) {
	var buf bytes.Buffer
	files := []File{
		{Path: "init", Mode: 0o755, Data: []byte("#!/bin/sh\n")},
		{Path: "bin/sh", Link: "busybox"},
		{Path: "lib/modules/kernel/a.ko", Source: "src-a"},
		{Path: "run", Dir: true},
	}
	read := func(p string) ([]byte, error) { return []byte("content of " + p), nil }
	if err := writeCPIO(&buf, files, read); err != nil {
		t.Fatal(err)
	}
	got, modes := readCPIO(t, buf.Bytes())
	want := map[string]string{
		"init": "#!/bin/sh\n", "bin": "", "bin/sh": "busybox", "lib": "", "lib/modules": "",
		"lib/modules/kernel": "", "lib/modules/kernel/a.ko": "content of src-a", "run": "",
	}
	for name, content := range want {
		if got[name] != content {
			t.Errorf("%s = %q, want %q", name, got[name], content)
		}
	}
	if len(got) != len(want) {
		t.Errorf("archive holds %d entries, want %d: %v", len(got), len(want), got)
	}
	for name, mode := range map[string]uint32{"init": typeFile | 0o755, "bin/sh": typeLink | 0o777, "run": typeDir | 0o755, "lib": typeDir | 0o755} {
		if modes[name] != mode {
			t.Errorf("mode of %s = %o, want %o", name, modes[name], mode)
		}
	}
	var again bytes.Buffer
	slices.Reverse(files)
	if err := writeCPIO(&again, files, read); err != nil || !bytes.Equal(again.Bytes(), buf.Bytes()) {
		t.Errorf("the archive depends on the order of the files (err %v)", err)
	}
}

func TestScanConsole(t *testing.T) {
	tests := []struct {
		name      string
		console   string
		wantFound bool
		wantCode  int
	}{
		{"pass", "[    1.0] boot\r\n=== RUN   TestX\r\nPASS\r\nPROXYKIT-VMTEST-EXIT=0\r\n[ 9.1] reboot: Power down\r\n", true, 0},
		{"fail", "FAIL\nPROXYKIT-VMTEST-EXIT=1\n", true, 1},
		{"no sentinel: crash", "Kernel panic - not syncing\n", false, 0},
		{"garbled sentinel", "PROXYKIT-VMTEST-EXIT=x\n", false, 0},
		{"escapes", "\x1b[?7lPROXYKIT-VMTEST-EXIT=3\x1b[0m\n", true, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lines []string
			res := scanConsole(strings.NewReader(tt.console), time.Now(), func(l string) { lines = append(lines, l) })
			if res.Found != tt.wantFound || res.Code != tt.wantCode {
				t.Errorf("scanConsole = found %v code %d, want %v %d", res.Found, res.Code, tt.wantFound, tt.wantCode)
			}
			if len(lines) == 0 {
				t.Error("no line logged")
			}
			for _, l := range lines {
				if strings.ContainsAny(l, "\r\x1b") {
					t.Errorf("line not cleaned: %q", l)
				}
			}
		})
	}
}

func TestScriptQuotesArgs(t *testing.T) {
	s := script([]string{"-test.run=^TestA$", "it's"}, map[string]string{"B": "2", "A": "x y"})
	for _, want := range []string{
		`/pkg/test.bin '-test.run=^TestA$' 'it'\''s'`,
		"export A='x y'\nexport B='2'",
		`echo "PROXYKIT-VMTEST-EXIT=$?"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("init script lacks %q:\n%s", want, s)
		}
	}
}

func TestRequired(t *testing.T) {
	for v, want := range map[string]bool{"": false, "0": false, "false": false, "1": true, "true": true, "yes-typo": true} {
		t.Setenv(RequireEnv, v)
		if got := required(); got != want {
			t.Errorf("%s=%q: required() = %v, want %v", RequireEnv, v, got, want)
		}
	}
}
