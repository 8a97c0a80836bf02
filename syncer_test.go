package proxykit

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
)

func TestSequenceRunsInOrderAndStopsAtFirstError(t *testing.T) {
	var calls []string
	rec := func(name string, err error) Syncer {
		return SyncerFunc(func(context.Context, *Snapshot) error {
			calls = append(calls, name)
			return err
		})
	}
	boom := errors.New("boom")
	err := Sequence(rec("rules", nil), rec("conntrack", boom), rec("never", nil)).Sync(context.Background(), &Snapshot{})
	if !slices.Equal(calls, []string{"rules", "conntrack"}) {
		t.Errorf("calls = %v", calls)
	}
	var se *SequenceError
	if !errors.Is(err, boom) || !errors.As(err, &se) || se.Index != 1 {
		t.Errorf("err = %v, want boom from syncer 1", err)
	}
	if err.Error() != "syncer 1: boom" {
		t.Errorf("message %q", err.Error())
	}

	calls = nil
	if err := Sequence(rec("a", nil), rec("b", nil)).Sync(context.Background(), &Snapshot{}); err != nil || len(calls) != 2 {
		t.Errorf("all ok: err=%v calls=%v", err, calls)
	}

	calls = nil
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sequence(rec("a", nil)).Sync(ctx, &Snapshot{}); !errors.Is(err, context.Canceled) || len(calls) != 0 {
		t.Errorf("canceled: err=%v calls=%v", err, calls)
	}
}

func TestFamily(t *testing.T) {
	if IPv4.String() != "IPv4" || IPv6.String() != "IPv6" || Family(9).String() != "Family(9)" {
		t.Error("Family.String")
	}
	if FamilyOf(v4a) != IPv4 || FamilyOf(v6a) != IPv6 || !IPv6.Contains(v6a) || IPv4.Contains(v6a) {
		t.Error("FamilyOf/Contains")
	}
	n := Node{Addresses: slices.Clone([]netip.Addr{v4a})}
	if !n.HasAddress(v4a) || n.HasAddress(v6a) {
		t.Error("HasAddress")
	}
}
