//go:build linux

package netnstest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// responder is a pod's TCP and UDP servers. Each answers a request (a line
// on TCP, a datagram on UDP) with "<pod name> <client addr:port>\n".
type responder struct {
	name string
	wg   sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	sockets []io.Closer           // listeners and UDP sockets
	conns   map[net.Conn]struct{} // accepted TCP connections
}

// serve starts every pod's responder.
func (tp *Topology) serve() error {
	for _, p := range tp.Pods {
		r := &responder{name: p.Name, conns: map[net.Conn]struct{}{}}
		tp.closers = append(tp.closers, r.close)
		if err := r.listen(p); err != nil {
			return err
		}
	}
	return nil
}

// listen opens the sockets inside the pod's namespace (they stay there) and
// serves them from ordinary goroutines.
func (r *responder) listen(p *Pod) error {
	return p.NS.Do(func() error {
		for _, addr := range []netip.Addr{p.V4, p.V6} {
			tcp := netip.AddrPortFrom(addr, TCPPort)
			ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(tcp))
			if err != nil {
				return fmt.Errorf("netnstest: listen on tcp %s in %q: %w", tcp, p.NS.Name, err)
			}
			r.add(ln, func() { r.acceptLoop(ln) })
			udp := netip.AddrPortFrom(addr, UDPPort)
			pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(udp))
			if err != nil {
				return fmt.Errorf("netnstest: listen on udp %s in %q: %w", udp, p.NS.Name, err)
			}
			r.add(pc, func() { r.udpLoop(pc) })
		}
		return nil
	})
}

// add records a socket and starts its serving loop.
func (r *responder) add(s io.Closer, loop func()) {
	r.mu.Lock()
	r.sockets = append(r.sockets, s)
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		loop()
	}()
}

// close stops every loop, closes every connection and waits for the
// goroutines to end.
func (r *responder) close() error {
	r.mu.Lock()
	r.closed = true
	var errs []error
	for _, s := range r.sockets {
		errs = append(errs, s.Close())
	}
	for c := range r.conns {
		_ = c.Close() // the peer may have reset it already
	}
	r.mu.Unlock()
	r.wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("netnstest: stop responders of %q: %w", r.name, err)
	}
	return nil
}

// acceptLoop serves every accepted connection in its own goroutine.
func (r *responder) acceptLoop(ln *net.TCPListener) {
	for {
		c, err := ln.AcceptTCP()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			time.Sleep(10 * time.Millisecond) // e.g. EMFILE: retry later
			continue
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			_ = c.Close()
			return
		}
		r.conns[c] = struct{}{}
		r.wg.Add(1)
		r.mu.Unlock()
		go r.serveConn(c)
	}
}

// serveConn answers each line read from c until c ends.
func (r *responder) serveConn(c *net.TCPConn) {
	defer func() {
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
		_ = c.Close()
		r.wg.Done()
	}()
	reply := r.reply(c.RemoteAddr().(*net.TCPAddr).AddrPort())
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		if _, err := c.Write(reply); err != nil {
			return
		}
	}
}

// udpLoop answers each datagram.
func (r *responder) udpLoop(pc *net.UDPConn) {
	buf := make([]byte, 2048)
	for {
		_, from, err := pc.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		_, _ = pc.WriteToUDPAddrPort(r.reply(from), from) // a lost reply looks like a drop, as it should
	}
}

// reply is the answer to a client at from.
func (r *responder) reply(from netip.AddrPort) []byte {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	return []byte(r.name + " " + from.String() + "\n")
}
