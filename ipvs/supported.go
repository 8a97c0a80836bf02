package ipvs

import (
	"context"
	"errors"
	"fmt"

	"github.com/proxykit/proxykit/nftables"
)

// Supported reports what the kernel lacks for this backend, as one error
// wrapping ErrUnsupported per missing feature, or nil: IPVS (listing the
// virtual servers), the IPVS sysctls (read by setting them as Sync
// does), and nf_tables for the companion rules (listing the table).
func (s *Syncer) Supported(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	missing := func(what string, err error) {
		errs = append(errs, fmt.Errorf("ipvs: %s: %w: %w", what, ErrUnsupported, err))
	}
	if _, err := s.h.Services(ctx); err != nil {
		missing("IPVS (kernel module ip_vs)", err)
	} else {
		for _, kv := range Sysctls {
			if err := s.h.SetSysctl(ctx, kv[0], kv[1]); err != nil {
				missing("sysctl "+kv[0], err)
			}
		}
	}
	if _, err := s.nft.List(ctx, nftables.IPv4, s.cfg.Table); err != nil {
		missing("nf_tables", err)
	}
	return errors.Join(errs...)
}
