package golden

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLineDiff(t *testing.T) {
	for _, tt := range []struct{ want, got, diff string }{
		{"a\nb\nc", "a\nb\nc", ""},
		{"a\nb\nc", "a\nc\nd", "- b\n+ d\n"},
		{"a", "", "- a\n+ \n"},
	} {
		if d := LineDiff(tt.want, tt.got); d != tt.diff {
			t.Errorf("LineDiff(%q, %q) = %q, want %q", tt.want, tt.got, d, tt.diff)
		}
	}
}

func TestCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.golden")
	if err := os.WriteFile(path, []byte("one\ntwo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	Check(t, path, "one\ntwo\n") // equal: no error

	var ft fakeT
	Check(&ft, path, "one\nthree\n")
	if !ft.failed {
		t.Error("Check accepted a different output")
	}
}

// fakeT records a failure instead of failing the test.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper()               {}
func (f *fakeT) Errorf(string, ...any) { f.failed = true }
func (f *fakeT) Fatalf(string, ...any) { f.failed = true }
func (f *fakeT) Fatal(...any)          { f.failed = true }
