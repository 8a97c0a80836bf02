package ipvs

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/proxykit/proxykit/servicemap"
)

// maxErrors bounds the errors one sync reports; the rest are counted.
const maxErrors = 8

// errList collects the errors of a sync, which goes on past them: the
// next sync repairs what failed (SEMANTICS §11).
type errList struct {
	errs  []error
	extra int
}

func (l *errList) add(err error) {
	if err == nil {
		return
	}
	if len(l.errs) < maxErrors {
		l.errs = append(l.errs, err)
	} else {
		l.extra++
	}
}

func (l *errList) err() error {
	if l.extra > 0 {
		l.errs = append(l.errs, &moreErrors{n: l.extra})
	}
	return errors.Join(l.errs...)
}

type moreErrors struct{ n int }

func (e *moreErrors) Error() string { return "ipvs: and " + strconv.Itoa(e.n) + " more errors" }

// ignore drops err when it is one of the benign kinds: an object that
// already exists when adding, or is absent when deleting.
func ignore(err error, benign error) error {
	if errors.Is(err, benign) {
		return nil
	}
	return err
}

// reconcileService makes the kernel's virtual server k match want (nil:
// delete it). have is the kernel's, nil when absent.
func (s *Syncer) reconcileService(ctx context.Context, k Key, want, have *VirtualServer, errs *errList) {
	switch {
	case want == nil && have == nil:
		return
	case want == nil:
		errs.add(ignore(s.h.DeleteService(ctx, k), ErrNotFound))
		s.forgetService(k)
		return
	case have == nil:
		if err := ignore(s.h.AddService(ctx, want), ErrExists); err != nil {
			errs.add(err)
			return
		}
		for _, r := range want.Reals {
			errs.add(ignore(s.h.AddReal(ctx, k, r), ErrExists))
		}
		return
	case !want.sameConfig(have):
		if err := s.h.UpdateService(ctx, want); err != nil {
			errs.add(err)
			return
		}
	}
	have2, err := s.h.Reals(ctx, k)
	if err != nil {
		errs.add(err)
		return
	}
	s.reconcileReals(ctx, want, have2, errs)
}

// reconcileReals makes the real servers of want's virtual server match
// want.Reals. A real server that is no longer wanted is deleted at once
// when it has no connections or its protocol is not TCP; else it is
// quiesced (weight 0) and deleted once its connections are gone or the
// grace period has passed (SEMANTICS §10).
func (s *Syncer) reconcileReals(ctx context.Context, want *VirtualServer, have []RealStats, errs *errList) {
	k := want.Key
	now := s.now()
	for _, h := range have {
		i, found := slices.BinarySearchFunc(want.Reals, h.RealServer, compareReals)
		if found {
			s.unquiesce(k, h.AddrPort())
			if w := want.Reals[i]; w.Weight != h.Weight {
				errs.add(s.h.UpdateReal(ctx, k, w))
			}
			continue
		}
		since, ok := s.quiesced[k][h.AddrPort()]
		if !ok {
			// Quiesced by us, or by an earlier run: its clock starts now.
			since = now
		}
		switch {
		case s.expired(k, h, since, now):
			if err := ignore(s.h.DeleteReal(ctx, k, h.RealServer), ErrNotFound); err != nil {
				errs.add(err)
				continue
			}
			s.unquiesce(k, h.AddrPort())
		case h.Weight != 0:
			q := h.RealServer
			q.Weight = 0
			if err := s.h.UpdateReal(ctx, k, q); err != nil {
				errs.add(err)
				continue
			}
			s.quiesce(k, h.AddrPort(), since)
		default:
			s.quiesce(k, h.AddrPort(), since)
		}
	}
	for _, w := range want.Reals {
		if !slices.ContainsFunc(have, func(h RealStats) bool { return h.AddrPort() == w.AddrPort() }) {
			errs.add(ignore(s.h.AddReal(ctx, k, w), ErrExists))
		}
	}
}

// expired reports whether an unwanted real server h of k, quiesced
// since, is to be deleted now: it is not TCP, has no connections left,
// or its grace period is over.
func (s *Syncer) expired(k Key, h RealStats, since, now time.Time) bool {
	return k.Proto != servicemap.TCP || h.ActiveConns+h.InactiveConns == 0 || now.Sub(since) >= s.cfg.GracePeriod
}

// checkQuiesced deletes the quiesced real servers of k whose connections
// are gone or whose grace period is over, reading back k's real servers
// only. A partial sync runs it for the virtual servers with quiesced
// real servers that it does not otherwise reconcile: their wanted real
// servers are as the last sync left them, so only the quiesced ones can
// need a change.
func (s *Syncer) checkQuiesced(ctx context.Context, k Key, errs *errList) {
	have, err := s.h.Reals(ctx, k)
	if errors.Is(err, ErrNotFound) {
		delete(s.quiesced, k)
		return
	}
	if err != nil {
		errs.add(err)
		return
	}
	qs := s.quiesced[k]
	now := s.now()
	found, before := 0, len(qs)
	for _, h := range have {
		since, ok := qs[h.AddrPort()]
		if !ok {
			continue
		}
		found++
		if !s.expired(k, h, since, now) {
			continue
		}
		if err := ignore(s.h.DeleteReal(ctx, k, h.RealServer), ErrNotFound); err != nil {
			errs.add(err)
			continue
		}
		delete(qs, h.AddrPort())
	}
	if found < before {
		// Some are gone from the kernel already.
		for ap := range qs {
			if !slices.ContainsFunc(have, func(h RealStats) bool { return h.AddrPort() == ap }) {
				delete(qs, ap)
			}
		}
	}
	if len(qs) == 0 {
		delete(s.quiesced, k)
	}
}

// quiesce records that the real server r of k is quiesced since t.
func (s *Syncer) quiesce(k Key, r netip.AddrPort, t time.Time) {
	qs := s.quiesced[k]
	if qs == nil {
		qs = map[netip.AddrPort]time.Time{}
		s.quiesced[k] = qs
	}
	qs[r] = t
}

// unquiesce forgets the quiesced real server r of k.
func (s *Syncer) unquiesce(k Key, r netip.AddrPort) {
	if qs, ok := s.quiesced[k]; ok {
		delete(qs, r)
		if len(qs) == 0 {
			delete(s.quiesced, k)
		}
	}
}

// forgetService drops the quiesced real servers of k.
func (s *Syncer) forgetService(k Key) { delete(s.quiesced, k) }

// reconcileAddresses adds the wanted addresses that the interface lacks
// and deletes those it holds that are not wanted, unless the sync failed
// so far: an address is what makes its virtual servers ours, so it goes
// only once they are gone.
func (s *Syncer) reconcileAddresses(ctx context.Context, want, have []netip.Addr, errs *errList) {
	failed := len(errs.errs) > 0
	for _, a := range want {
		if _, ok := slices.BinarySearchFunc(have, a, netip.Addr.Compare); !ok {
			errs.add(ignore(s.h.AddAddress(ctx, s.cfg.Interface, a), ErrExists))
		}
	}
	for _, a := range have {
		if failed {
			break
		}
		if _, ok := slices.BinarySearchFunc(want, a, netip.Addr.Compare); !ok {
			errs.add(ignore(s.h.DeleteAddress(ctx, s.cfg.Interface, a), ErrNotFound))
		}
	}
}

// changeAddresses adds and deletes addresses of the interface, the
// deletions only when the sync has not failed so far (see
// reconcileAddresses).
func (s *Syncer) changeAddresses(ctx context.Context, add, del []netip.Addr, errs *errList) {
	failed := len(errs.errs) > 0
	for _, a := range add {
		errs.add(ignore(s.h.AddAddress(ctx, s.cfg.Interface, a), ErrExists))
	}
	if failed {
		return
	}
	for _, a := range del {
		errs.add(ignore(s.h.DeleteAddress(ctx, s.cfg.Interface, a), ErrNotFound))
	}
}
