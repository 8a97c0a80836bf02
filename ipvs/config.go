package ipvs

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/proxykit/proxykit/nftables"
)

// Defaults of Config.
const (
	DefaultInterface   = "proxykit0"
	DefaultScheduler   = "rr"
	DefaultGracePeriod = 15 * time.Minute
	DefaultTable       = "proxykit-ipvs"
	// DefaultNodePortMin and DefaultNodePortMax bound the ports of the
	// virtual servers on node addresses that the backend owns
	// (Kubernetes' NodePort range).
	DefaultNodePortMin = 30000
	DefaultNodePortMax = 32767
)

// Schedulers are the IPVS schedulers a service may name (SEMANTICS §3).
var Schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "sh", "dh", "sed", "nq", "mh"}

// SchedulerFlags are the scheduler flags Config.SchedulerFlags accepts,
// with the ipvsadm names; each applies to the virtual servers of its
// scheduler only.
var SchedulerFlags = map[string]uint32{
	"sh-fallback": flagSched1, "sh-port": flagSched2,
	"mh-fallback": flagSched1, "mh-port": flagSched2,
}

// IPVS service flags (include/uapi/linux/ip_vs.h).
const (
	flagPersistent = 0x0001
	flagHashed     = 0x0002 // set by the kernel
	flagSched1     = 0x0008
	flagSched2     = 0x0010
	flagSched3     = 0x0020
)

// Config is the node-wide configuration of the IPVS backend.
type Config struct {
	// Interface is the dummy interface that holds the service addresses.
	// Default "proxykit0". The backend owns it: addresses on it that no
	// service needs are removed.
	Interface string
	// Scheduler is used by services whose Scheduler is empty. Default
	// "rr".
	Scheduler string
	// SchedulerFlags are set on every virtual server whose scheduler
	// they belong to: "sh-fallback", "sh-port", "mh-fallback", "mh-port".
	SchedulerFlags []string
	// GracePeriod bounds how long a removed TCP real server stays
	// quiesced (weight 0) while it has connections (SEMANTICS §10).
	// Default 15 minutes.
	GracePeriod time.Duration
	// NodePortMin and NodePortMax bound the NodePorts: a virtual server
	// on a node address is the backend's own only within this range.
	// Default 30000-32767.
	NodePortMin, NodePortMax uint16

	// Table names the nftables table of the companion rules (masquerade,
	// source ranges, reject and drop, the external policy Local short
	// circuit), in the ip and ip6 families. Default "proxykit-ipvs".
	Table string
	// MasqueradeMark, ClusterCIDRs, LocalPodCIDRs, MasqueradeAll and
	// NodePortAddresses mean what they mean in nftables.Config.
	MasqueradeMark    uint32
	ClusterCIDRs      []netip.Prefix
	LocalPodCIDRs     []netip.Prefix
	MasqueradeAll     bool
	NodePortAddresses []netip.Prefix
}

func (c Config) withDefaults() Config {
	if c.Interface == "" {
		c.Interface = DefaultInterface
	}
	if c.Scheduler == "" {
		c.Scheduler = DefaultScheduler
	}
	if c.GracePeriod == 0 {
		c.GracePeriod = DefaultGracePeriod
	}
	if c.NodePortMin == 0 && c.NodePortMax == 0 {
		c.NodePortMin, c.NodePortMax = DefaultNodePortMin, DefaultNodePortMax
	}
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if c.MasqueradeMark == 0 {
		c.MasqueradeMark = nftables.DefaultMasqueradeMark
	}
	if len(c.LocalPodCIDRs) == 0 {
		c.LocalPodCIDRs = c.ClusterCIDRs
	}
	return c
}

// nft returns the companion rules' part of the configuration, for its
// validation.
func (c Config) nft() nftables.Config {
	return nftables.Config{
		Table: c.Table, MasqueradeMark: c.MasqueradeMark, ClusterCIDRs: c.ClusterCIDRs,
		LocalPodCIDRs: c.LocalPodCIDRs, MasqueradeAll: c.MasqueradeAll, NodePortAddresses: c.NodePortAddresses,
	}
}

// Validate reports every problem of the configuration, each naming the
// field and the value. Zero values that have defaults are valid.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, value any, reason string) {
		errs = append(errs, &ConfigError{Field: field, Value: value, Reason: reason})
	}
	if c.Interface != "" && !validIfName(c.Interface) {
		bad("Interface", c.Interface, "must be 1-15 characters, none of them '/', ':' or white space")
	}
	if c.Scheduler != "" {
		if err := ValidateScheduler(c.Scheduler); err != nil {
			bad("Scheduler", c.Scheduler, err.(*SchedulerError).reason())
		}
	}
	for i, f := range c.SchedulerFlags {
		if _, ok := SchedulerFlags[f]; !ok {
			bad(fmt.Sprintf("SchedulerFlags[%d]", i), f, `must be "sh-fallback", "sh-port", "mh-fallback" or "mh-port"`)
		}
	}
	if c.GracePeriod < 0 {
		bad("GracePeriod", c.GracePeriod, "must not be negative")
	}
	if c.NodePortMin > c.NodePortMax {
		bad("NodePortMin", c.NodePortMin, fmt.Sprintf("must not exceed NodePortMax (%d)", c.NodePortMax))
	}
	if err := c.nft().Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func validIfName(s string) bool {
	return len(s) > 0 && len(s) < 16 && s != "." && s != ".." && !strings.ContainsAny(s, "/: \t\n")
}

// ValidateScheduler returns a *SchedulerError unless name is one of
// Schedulers.
func ValidateScheduler(name string) error {
	if slices.Contains(Schedulers, name) {
		return nil
	}
	return &SchedulerError{Scheduler: name}
}

// schedulerFlags returns the IPVS flags of cfg's SchedulerFlags that
// belong to sched.
func (c Config) schedulerFlags(sched string) uint32 {
	var f uint32
	for _, name := range c.SchedulerFlags {
		if strings.HasPrefix(name, sched+"-") {
			f |= SchedulerFlags[name]
		}
	}
	return f
}
