//go:build linux

package ipvs_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/internal/netnstest"
	"github.com/proxykit/proxykit/ipvs"
	"github.com/proxykit/proxykit/nftables"
)

// The kernel benchmarks compare the IPVS backend with the nftables
// backend on the same kernel: in the VM, times are only meaningful as
// ratios. Run them with
//
//	PROXYKIT_VM_RUN='^$' PROXYKIT_VM_BENCH=Kernel go test -run TestVM -v ./ipvs/
//
// Each backend programs node1 of a fresh topology.

// kernelBackends builds each backend's Syncer in a namespace.
var kernelBackends = map[string]func(b *testing.B, fd int) proxykit.Syncer{
	"ipvs": func(b *testing.B, fd int) proxykit.Syncer {
		s, err := ipvs.NewSyncer(ipvs.Config{MasqueradeAll: true}, ipvs.WithNetNSFd(fd))
		if err != nil {
			b.Fatal(err)
		}
		return s
	},
	"nftables": func(b *testing.B, fd int) proxykit.Syncer {
		c, err := nftables.NewConn(fd)
		if err != nil {
			b.Fatal(err)
		}
		s, err := nftables.NewSyncer(nftables.Config{MasqueradeAll: true}, nftables.WithConn(c))
		if err != nil {
			b.Fatal(err)
		}
		return s
	},
}

// BenchmarkKernelSync is a cold full sync of n services × 10 endpoints
// into a fresh namespace.
func BenchmarkKernelSync(b *testing.B) {
	requireKernel(b)
	for _, backend := range []string{"ipvs", "nftables"} {
		for _, n := range []int{1000, 10000} {
			b.Run(fmt.Sprintf("%s/services=%d", backend, n), func(b *testing.B) {
				svcs, slices := ipvs.BenchCluster(n, 10)
				snap, err := proxykit.NewSnapshot(proxykit.Node{Name: "node-0"}, svcs, slices)
				if err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					b.StopTimer()
					tp, err := netnstest.Build()
					if err != nil {
						b.Fatal(err)
					}
					s := kernelBackends[backend](b, tp.Node1.Fd())
					b.StartTimer()
					if err := s.Sync(context.Background(), snap); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					_ = tp.Close()
					b.StartTimer()
				}
			})
		}
	}
}

// BenchmarkKernelOneChange is the partial sync of one endpoint change
// with 10k services × 10 endpoints installed.
func BenchmarkKernelOneChange(b *testing.B) {
	requireKernel(b)
	const n = 10000
	for _, backend := range []string{"ipvs", "nftables"} {
		b.Run(backend, func(b *testing.B) {
			tp := netnstest.New(b)
			p := proxykit.New(proxykit.Node{Name: "node-0"}, kernelBackends[backend](b, tp.Node1.Fd()))
			svcs, slices := ipvs.BenchCluster(n, 10)
			for i := range svcs {
				_ = p.OnServiceUpdate(nil, svcs[i])
				_ = p.OnSliceUpdate(slices[i])
			}
			ctx := context.Background()
			if err := p.SyncNow(ctx); err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				changed := *slices[i%n]
				changed.Endpoints = append([]endpoints.Endpoint(nil), changed.Endpoints...)
				changed.Endpoints[0].Addr = netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)})
				_ = p.OnSliceUpdate(&changed)
				if err := p.SyncNow(ctx); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
