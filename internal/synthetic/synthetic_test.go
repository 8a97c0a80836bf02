package synthetic

import (
	"testing"

	"github.com/proxykit/proxykit"
)

func TestSnapshot(t *testing.T) {
	snap, err := Snapshot(300, 4)
	if err != nil {
		t.Fatal(err)
	}
	fs := snap.Family(proxykit.IPv4)
	if fs.Len() != 300 {
		t.Fatalf("%d ports, want 300", fs.Len())
	}
	local := 0
	for ps := range fs.Ports() {
		if len(ps.Endpoints.All) != 4 {
			t.Fatalf("%s: %d endpoints, want 4", ps.Name, len(ps.Endpoints.All))
		}
		local += len(ps.Endpoints.Local)
	}
	if local != 0 {
		t.Errorf("Local sets in use without a Local policy: %d endpoints", local)
	}
}
