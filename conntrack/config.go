package conntrack

import (
	"errors"
	"fmt"
	"net/netip"
)

// DefaultBatchSize is the number of deletions sent to the kernel in one
// batch (one netlink write, one acknowledgement).
const DefaultBatchSize = 1000

// MaxBatchSize bounds WithBatchSize: the kernel's answers to a failing
// batch must fit in the socket's receive buffer.
const MaxBatchSize = 5000

// Config is the node-wide configuration of the conntrack cleanup.
type Config struct {
	// SCTP reconciles SCTP service ports too. The default is UDP only.
	SCTP bool
	// NodePortAddresses narrows the node addresses (Snapshot.Node().
	// Addresses) on which flows to a NodePort are reconciled; empty means
	// every one of them. Use the value given to the rules backend.
	NodePortAddresses []netip.Prefix
}

// Validate reports every problem of the configuration, each naming the
// field and the value.
func (c Config) Validate() error {
	var errs []error
	for i, p := range c.NodePortAddresses {
		switch {
		case !p.IsValid():
			errs = append(errs, fmt.Errorf("conntrack: Config.NodePortAddresses[%d]: invalid value %v: not a valid prefix", i, p))
		case p != p.Masked():
			errs = append(errs, fmt.Errorf("conntrack: Config.NodePortAddresses[%d]: invalid value %v: has host bits set (did you mean %v?)", i, p, p.Masked()))
		}
	}
	return errors.Join(errs...)
}

// servesNodePorts reports whether NodePort flows to the node address a
// are reconciled.
func (c Config) servesNodePorts(a netip.Addr) bool {
	if len(c.NodePortAddresses) == 0 {
		return true
	}
	for _, p := range c.NodePortAddresses {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
