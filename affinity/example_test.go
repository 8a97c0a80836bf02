package affinity_test

import (
	"fmt"
	"time"

	"github.com/proxykit/proxykit/affinity"
)

func ExampleConfig_Validate() {
	for _, c := range []affinity.Config{
		{ClientIP: true},
		{ClientIP: true, Timeout: 1500 * time.Millisecond},
		{Timeout: time.Minute},
	} {
		fmt.Println(c.EffectiveTimeout(), c.Validate())
	}
	// Output:
	// 3h0m0s <nil>
	// 1.5s affinity timeout 1.5s: must be a whole number of seconds
	// 0s affinity timeout 1m0s: timeout is set but ClientIP affinity is off
}

func ExampleTable() {
	// Which endpoint each client IP was sent to, for at most 1000 clients.
	tab := affinity.NewTable[string, string](1000)
	cfg := affinity.Config{ClientIP: true, Timeout: 30 * time.Second}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

	tab.Set("192.0.2.7", "10.0.0.1:8080", cfg.EffectiveTimeout(), start)
	tab.Set("192.0.2.9", "10.0.0.2:8080", cfg.EffectiveTimeout(), start)

	// A new connection 20 s later sticks to the same endpoint and
	// refreshes the record.
	now := start.Add(20 * time.Second)
	ep, ok := tab.Get("192.0.2.7", now)
	fmt.Println(ep, ok)
	tab.Set("192.0.2.7", ep, cfg.EffectiveTimeout(), now)

	// At 30 s the other client's record has expired.
	now = start.Add(30 * time.Second)
	fmt.Println(tab.Expire(now), tab.Len())

	// Endpoint 10.0.0.1:8080 leaves the set: affinity to it ends.
	n := tab.DeleteFunc(func(_, ep string) bool { return ep == "10.0.0.1:8080" })
	fmt.Println(n, tab.Len())
	// Output:
	// 10.0.0.1:8080 true
	// 1 1
	// 1 0
}
