// Command minimal-proxy is a small kube-proxy built on proxykit: it reads
// Services, EndpointSlices and Nodes from Kubernetes YAML manifests (a
// file or a directory, watched for changes) or from a cluster, and
// programs them with the nftables, iptables or IPVS backend, followed by
// the conntrack cleanup. It serves /healthz, /livez, /metrics and the
// health-check node ports of LoadBalancer services with external policy
// Local.
//
// Usage:
//
//	minimal-proxy run     --backend nftables --manifests DIR --node-name NAME --cluster-cidr CIDR[,CIDR]
//	minimal-proxy render  --backend iptables --manifests FILE --node-name NAME --cluster-cidr CIDR
//	minimal-proxy explain --manifests DIR --node-name NAME --src IP --dst IP --port N [--proto TCP]
//	minimal-proxy cleanup --backend ipvs
//
// render and explain do not touch the kernel. run needs root (CAP_NET_ADMIN).
//
// run polls the manifests every --poll-interval (200 ms) and syncs at most
// every --min-sync-interval (250 ms), so an edit is served well within a
// second. A file that does not parse or convert is logged with the file,
// the document, the object and the field, and the objects it held before
// stay in force. On SIGINT or SIGTERM run exits and leaves the rules in
// place, as kube-proxy does: the next run adopts them, and established
// connections survive; cleanup removes them.
//
// Metrics (Prometheus text format, on --metrics-bind-address /metrics):
// proxykit_sync_duration_seconds{mode="full"|"partial"},
// proxykit_last_successful_sync_timestamp_seconds, proxykit_pending_changes,
// proxykit_sync_failures_total, proxykit_conntrack_deleted_total and
// proxykit_manifest_errors_total. They are fed by proxykit.WithObserver
// and conntrack.WithObserver.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(cli(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: minimal-proxy <command> [flags]

commands:
  run      program the kernel from manifests or a cluster, and keep it up to date
  render   print the rules a backend would install for the manifests
  explain  print what happens to a packet (SEMANTICS.md) for the manifests
  cleanup  remove everything a backend installed

"minimal-proxy <command> -h" lists the command's flags.
`

// cli runs one command and returns the exit code.
func cli(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmds := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"run": runCmd, "render": renderCmd, "explain": explainCmd, "cleanup": cleanupCmd,
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		if args[0] != "-h" && args[0] != "--help" && args[0] != "help" {
			fmt.Fprintf(stderr, "minimal-proxy: unknown command %q\n", args[0])
		}
		fmt.Fprint(stderr, usage)
		return 2
	}
	err := cmd(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "minimal-proxy %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "minimal-proxy %s: %s\n", args[0], strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return 1
	}
}

// usageError is a bad command line.
type usageError struct{ error }

// common holds the flags shared by the commands.
type common struct {
	backend, manifests, nodeName string
	clusterCIDR, nodePortAddrs   string
	masqueradeAll                bool
}

func (c *common) register(fs *flag.FlagSet, backend, manifests bool) {
	if backend {
		fs.StringVar(&c.backend, "backend", "nftables", "kernel backend: nftables, iptables or ipvs")
	}
	if manifests {
		fs.StringVar(&c.manifests, "manifests", "", "a file or directory of Kubernetes YAML manifests (Services, EndpointSlices, Nodes)")
		fs.StringVar(&c.nodeName, "node-name", defaultNodeName(), "the name of this node (for endpoint locality and its Node object)")
		fs.StringVar(&c.clusterCIDR, "cluster-cidr", "", "comma-separated pod CIDRs of the cluster; internal traffic from outside them is masqueraded")
		fs.StringVar(&c.nodePortAddrs, "nodeport-addresses", "", "comma-separated CIDRs: serve NodePorts only on node addresses inside them (default: all but loopback)")
		fs.BoolVar(&c.masqueradeAll, "masquerade-all", false, "masquerade all traffic to ClusterIPs")
	}
}

func defaultNodeName() string {
	h, _ := os.Hostname()
	return strings.ToLower(h)
}

// config returns the backend configuration of the flags.
func (c *common) config() (backendConfig, error) {
	cfg := backendConfig{backend: c.backend, masqueradeAll: c.masqueradeAll}
	var err error
	if cfg.clusterCIDRs, err = parsePrefixes("cluster-cidr", c.clusterCIDR); err != nil {
		return cfg, usageError{err}
	}
	if cfg.nodePortAddresses, err = parsePrefixes("nodeport-addresses", c.nodePortAddrs); err != nil {
		return cfg, usageError{err}
	}
	return cfg, nil
}

// parse parses args with fs and rejects positional arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("minimal-proxy "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
