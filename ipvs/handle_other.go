//go:build !linux

package ipvs

import "fmt"

// NewHandle returns an error: IPVS is Linux-only.
func NewHandle(netnsFd int) (Handle, error) {
	return nil, fmt.Errorf("ipvs: %w: IPVS needs Linux", ErrUnsupported)
}
