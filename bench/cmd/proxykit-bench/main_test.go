package main

import (
	"slices"
	"testing"
)

func TestParseIDs(t *testing.T) {
	ids, err := parseIDs(" 1, 3,,7")
	if err != nil || !slices.Equal(ids, []int{1, 3, 7}) {
		t.Errorf("parseIDs = %v, %v", ids, err)
	}
	if ids, err := parseIDs(""); err != nil || ids != nil {
		t.Errorf("parseIDs(\"\") = %v, %v", ids, err)
	}
	for _, bad := range []string{"0", "9", "x", "1,two"} {
		if _, err := parseIDs(bad); err == nil {
			t.Errorf("parseIDs(%q): no error", bad)
		}
	}
}
