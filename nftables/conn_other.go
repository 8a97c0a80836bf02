//go:build !linux

package nftables

import "errors"

// NewConn fails: nftables exists only on Linux. Use WithConn(NewFake())
// to run the backend elsewhere.
func NewConn(netnsFd int) (Conn, error) {
	return nil, errors.New("nftables: netlink is only available on Linux")
}
