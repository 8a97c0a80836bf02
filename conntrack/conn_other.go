//go:build !linux

package conntrack

import "errors"

// NewConn fails: conntrack exists only on Linux. Use WithConn(NewFake())
// to run the Syncer elsewhere.
func NewConn(netnsFd int) (Conn, error) {
	return nil, errors.New("conntrack: netlink is only available on Linux")
}
