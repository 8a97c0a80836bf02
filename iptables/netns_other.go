//go:build !linux

package iptables

import "errors"

func inNetNS(fd int, fn func() error) error {
	if fd != 0 {
		return errors.New("iptables: network namespaces need Linux")
	}
	return fn()
}
