package bench

import (
	"net/netip"

	"github.com/proxykit/proxykit/iptables"
	"github.com/proxykit/proxykit/ipvs"
	"github.com/proxykit/proxykit/nftables"
)

// The backends' configurations: the same cluster CIDRs for all, as in the
// packages' own tests.
var (
	clusterCIDRs = []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00:244::/48")}
	localCIDRs   = []netip.Prefix{netip.MustParsePrefix("10.244.1.0/24"), netip.MustParsePrefix("fd00:244:1::/64")}

	nftConfig = nftables.Config{ClusterCIDRs: clusterCIDRs, LocalPodCIDRs: localCIDRs}
	iptConfig = iptables.Config{ClusterCIDRs: clusterCIDRs, LocalPodCIDRs: localCIDRs, Variant: iptables.Legacy}
	// iptNFTConfig is iptConfig for iptables-nft (Render does not depend
	// on the variant; the Syncer's Runner does).
	iptNFTConfig = iptables.Config{ClusterCIDRs: clusterCIDRs, LocalPodCIDRs: localCIDRs, Variant: iptables.NFT}
	ipvsConfig   = ipvs.Config{ClusterCIDRs: clusterCIDRs, LocalPodCIDRs: localCIDRs}
)
