package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"testing"

	"github.com/proxykit/proxykit/internal/netnstest"
)

// The demo programs a real service and every connection is answered by
// one of the three endpoints; the busiest is pod-c, weight 3 of 6.
func TestDemo(t *testing.T) {
	netnstest.Require(t)
	var out bytes.Buffer
	if err := run(context.Background(), &out, 120); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	s := out.String()
	re := regexp.MustCompile(`(?m)^  (pod-[abc]) +(\d+) `)
	total := map[string]int{}
	for _, m := range re.FindAllStringSubmatch(s, -1) {
		n, _ := strconv.Atoi(m[2])
		total[m[1]] += n
	}
	if total["pod-a"]+total["pod-b"]+total["pod-c"] != 240 {
		t.Fatalf("counts %v do not add up to 2 x 120 connections:\n%s", total, s)
	}
	// With weights 1:2:3 over 240 connections, pod-c (p = 1/2) beating
	// pod-a (p = 1/6) fails with negligible probability.
	if total["pod-c"] <= total["pod-a"] {
		t.Errorf("weights not honoured: %v\n%s", total, s)
	}
	t.Log("\n" + s)
}
