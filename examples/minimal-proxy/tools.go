package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/servicemap"
)

// renderCmd prints the rules a backend would install for the manifests.
func renderCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlagSet("render", stderr)
	c.register(fs, true, true)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, snap, err := c.load()
	if err != nil {
		return err
	}
	text, err := cfg.render(snap)
	if err != nil {
		return err
	}
	_, err = io.WriteString(stdout, text)
	return err
}

// load reads the manifests into a full snapshot for the flags' node.
func (c *common) load() (backendConfig, *proxykit.Snapshot, error) {
	cfg, err := c.config()
	if err != nil {
		return cfg, nil, err
	}
	if c.manifests == "" {
		return cfg, nil, usageError{errors.New("--manifests is required")}
	}
	objs, err := loadManifests(c.manifests)
	if err != nil {
		return cfg, nil, err
	}
	snap, err := objs.snapshot(objs.node(c.nodeName))
	return cfg, snap, err
}

// explainCmd prints the Explain verdict of one packet.
func explainCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	var src, dst, proto, from string
	var port uint
	fs := newFlagSet("explain", stderr)
	c.register(fs, false, true)
	fs.StringVar(&src, "src", "", "source address of the packet (required)")
	fs.StringVar(&dst, "dst", "", "destination address of the packet (required)")
	fs.UintVar(&port, "port", 0, "destination port (required)")
	fs.StringVar(&proto, "proto", "TCP", "protocol: TCP, UDP or SCTP")
	fs.StringVar(&from, "from", "auto", "where the packet comes from: external, local-pod, remote-pod, node, or auto (from --src: a node address, an endpoint of this or another node, a cluster CIDR, else external)")
	if err := parse(fs, args); err != nil {
		return err
	}
	pkt, err := packetOf(src, dst, port, proto)
	if err != nil {
		return usageError{err}
	}
	cfg, snap, err := c.load()
	if err != nil {
		return err
	}
	if pkt.From, err = originOf(from, pkt.Src, snap, cfg); err != nil {
		return usageError{err}
	}
	o := proxykit.Oracle{Policy: cfg.policy()}
	_, err = fmt.Fprintf(stdout, "%v\n%v\n", pkt, o.Explain(snap, pkt))
	return err
}

func packetOf(src, dst string, port uint, proto string) (proxykit.Packet, error) {
	var pkt proxykit.Packet
	var err error
	if pkt.Src, err = netip.ParseAddr(src); err != nil {
		return pkt, fmt.Errorf("--src: %w", err)
	}
	if pkt.Dst, err = netip.ParseAddr(dst); err != nil {
		return pkt, fmt.Errorf("--dst: %w", err)
	}
	if port == 0 || port > 65535 {
		return pkt, fmt.Errorf("--port %d: must be 1-65535", port)
	}
	pkt.Port = uint16(port)
	switch p := servicemap.Protocol(strings.ToUpper(proto)); p {
	case servicemap.TCP, servicemap.UDP, servicemap.SCTP:
		pkt.Protocol = p
	default:
		return pkt, fmt.Errorf("--proto %q: must be TCP, UDP or SCTP", proto)
	}
	if pkt.Src.Is4() != pkt.Dst.Is4() {
		return pkt, errors.New("--src and --dst: must be of the same IP family")
	}
	return pkt, nil
}

// originOf returns the origin named by from, or guesses it from src.
func originOf(from string, src netip.Addr, snap *proxykit.Snapshot, cfg backendConfig) (proxykit.Origin, error) {
	switch from {
	case "external":
		return proxykit.FromExternal, nil
	case "local-pod":
		return proxykit.FromLocalPod, nil
	case "remote-pod":
		return proxykit.FromRemotePod, nil
	case "node":
		return proxykit.FromNode, nil
	case "auto":
	default:
		return 0, fmt.Errorf("--from %q: must be external, local-pod, remote-pod, node or auto", from)
	}
	node := snap.Node()
	if node.HasAddress(src) {
		return proxykit.FromNode, nil
	}
	for ps := range snap.Family(proxykit.FamilyOf(src)).Ports() {
		for _, ep := range ps.Endpoints.All {
			if ep.Addr == src {
				if ep.NodeName == node.Name {
					return proxykit.FromLocalPod, nil
				}
				return proxykit.FromRemotePod, nil
			}
		}
	}
	for _, p := range cfg.clusterCIDRs {
		if p.Contains(src) {
			return proxykit.FromRemotePod, nil
		}
	}
	return proxykit.FromExternal, nil
}

// cleanupCmd removes everything a backend installed.
func cleanupCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlagSet("cleanup", stderr)
	c.register(fs, true, false)
	if err := parse(fs, args); err != nil {
		return err
	}
	// The backends refuse a config without cluster CIDRs; cleanup does
	// not use them.
	cfg := backendConfig{backend: c.backend, masqueradeAll: true}
	s, err := cfg.newSyncer()
	if err != nil {
		return err
	}
	if err := s.Cleanup(ctx); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s: removed everything the backend owns\n", c.backend)
	return err
}
