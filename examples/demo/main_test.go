package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestDemoExplainsEachPacket(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"2 IPv4 service ports",
		"10.244.1.5:8080", // the LB is eTP Local: only node-a's endpoint
		"reject",          // DNS has no endpoints
	} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
}
