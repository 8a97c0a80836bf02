package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/servicemap"
)

// healthFunc says whether the proxy is healthy (SEMANTICS §11):
// (*proxykit.Proxy).Healthy.
type healthFunc func() error

// healthHandler serves /healthz and /livez: 200 while every queued change
// was applied within the health timeout, 503 otherwise, with a JSON body
// saying when the last sync succeeded.
func healthHandler(healthy healthFunc, lastSync func() time.Time) http.Handler {
	mux := http.NewServeMux()
	h := func(w http.ResponseWriter, _ *http.Request) {
		err := healthy()
		body := struct {
			Healthy     bool   `json:"healthy"`
			LastUpdated string `json:"lastUpdated,omitempty"`
			CurrentTime string `json:"currentTime"`
			Error       string `json:"error,omitempty"`
		}{Healthy: err == nil, CurrentTime: time.Now().UTC().Format(time.RFC3339Nano)}
		if t := lastSync(); !t.IsZero() {
			body.LastUpdated = t.UTC().Format(time.RFC3339Nano)
		}
		code := http.StatusOK
		if err != nil {
			code, body.Error = http.StatusServiceUnavailable, err.Error()
		}
		writeJSON(w, code, body)
	}
	mux.HandleFunc("/healthz", h)
	mux.HandleFunc("/livez", h)
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// hcService is a service that gets a health-check node port (SEMANTICS
// §12): a LoadBalancer with external policy Local and a
// HealthCheckNodePort.
type hcService struct {
	name  servicemap.ServiceName
	port  uint16
	local int // ready local endpoints
}

// hcServices returns the health-checked services of snap, with their
// local endpoints: the distinct ready endpoints on this node, over every
// port and family.
func hcServices(snap *proxykit.Snapshot) map[servicemap.ServiceName]hcService {
	out := map[servicemap.ServiceName]hcService{}
	seen := map[servicemap.ServiceName]map[netip.Addr]bool{}
	for _, fam := range proxykit.Families {
		for ps := range snap.Family(fam).Ports() {
			sp := ps.Port
			if sp.Type != servicemap.LoadBalancer || sp.ExternalTrafficPolicy != servicemap.Local || sp.HealthCheckNodePort == 0 {
				continue
			}
			name := servicemap.ServiceName{Namespace: ps.Name.Namespace, Name: ps.Name.Name}
			hc, ok := out[name]
			if !ok {
				hc = hcService{name: name, port: sp.HealthCheckNodePort}
				seen[name] = map[netip.Addr]bool{}
			}
			for _, ep := range ps.Endpoints.Local {
				if ep.Ready && !seen[name][ep.Addr] {
					seen[name][ep.Addr] = true
					hc.local++
				}
			}
			out[name] = hc
		}
	}
	return out
}

// hcServers runs the HTTP servers of the health-check node ports.
type hcServers struct {
	healthy healthFunc
	log     *slog.Logger
	// listen opens a listener; net.Listen by default, replaced in tests.
	listen func(port uint16) (net.Listener, error)

	mu      sync.Mutex
	servers map[uint16]*hcServer
}

// hcServer is one health-check node port.
type hcServer struct {
	name  servicemap.ServiceName
	local atomic.Int64
	srv   *http.Server
	addr  net.Addr
}

func newHCServers(healthy healthFunc, log *slog.Logger) *hcServers {
	return &hcServers{
		healthy: healthy, log: log, servers: map[uint16]*hcServer{},
		listen: func(port uint16) (net.Listener, error) {
			return net.Listen("tcp", ":"+strconv.Itoa(int(port)))
		},
	}
}

// serve answers as SEMANTICS §12 says: 200 with the count of local
// endpoints when there is at least one and the proxy is healthy, else
// 503.
func (s *hcServer) serve(healthy healthFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n := s.local.Load()
		ok := healthy() == nil
		var body struct {
			Service struct {
				Namespace string `json:"namespace"`
				Name      string `json:"name"`
			} `json:"service"`
			LocalEndpoints      int64 `json:"localEndpoints"`
			ServiceProxyHealthy bool  `json:"serviceProxyHealthy"`
		}
		body.Service.Namespace, body.Service.Name = s.name.Namespace, s.name.Name
		body.LocalEndpoints, body.ServiceProxyHealthy = n, ok
		code := http.StatusServiceUnavailable
		if n > 0 && ok {
			code = http.StatusOK
		}
		// Like kube-proxy: lets a load balancer weigh nodes.
		w.Header().Set("X-Load-Balancing-Endpoint-Weight", strconv.FormatInt(n, 10))
		writeJSON(w, code, body)
	})
}

// update starts and stops servers so that exactly the services of want
// have one, and sets their local endpoint counts.
func (h *hcServers) update(want map[servicemap.ServiceName]hcService) {
	h.mu.Lock()
	defer h.mu.Unlock()
	byPort := map[uint16]hcService{}
	for _, name := range sortedNames(want) {
		hc := want[name]
		if other, dup := byPort[hc.port]; dup {
			h.log.Error("health-check node port used twice; served for the first service only",
				"port", hc.port, "service", name.String(), "first", other.name.String())
			continue
		}
		byPort[hc.port] = hc
	}
	for port, s := range h.servers {
		if hc, ok := byPort[port]; !ok || hc.name != s.name {
			h.stop(port, s)
		}
	}
	for port, hc := range byPort {
		s, ok := h.servers[port]
		if !ok {
			var err error
			if s, err = h.start(hc); err != nil {
				h.log.Error("health-check node port", "service", hc.name.String(), "port", port, "error", err)
				continue
			}
			h.servers[port] = s
		}
		s.local.Store(int64(hc.local))
	}
}

func (h *hcServers) start(hc hcService) (*hcServer, error) {
	ln, err := h.listen(hc.port)
	if err != nil {
		return nil, err
	}
	s := &hcServer{name: hc.name, addr: ln.Addr()}
	s.srv = &http.Server{Handler: s.serve(h.healthy), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.log.Error("health-check node port", "service", hc.name.String(), "port", hc.port, "error", err)
		}
	}()
	h.log.Info("health-check node port started", "service", hc.name.String(), "port", hc.port)
	return s, nil
}

func (h *hcServers) stop(port uint16, s *hcServer) {
	_ = s.srv.Close()
	delete(h.servers, port)
	h.log.Info("health-check node port stopped", "service", s.name.String(), "port", port)
}

// close stops every server.
func (h *hcServers) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for port, s := range h.servers {
		h.stop(port, s)
	}
}

// addrOf returns the address a port's server listens on, for tests.
func (h *hcServers) addrOf(port uint16) (net.Addr, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.servers[port]
	if !ok {
		return nil, fmt.Errorf("no health-check server on port %d", port)
	}
	return s.addr, nil
}

// run updates the servers from the proxy's last synced snapshot each
// time kick fires, until ctx is done.
func (h *hcServers) run(ctx context.Context, kick <-chan struct{}, snapshot func() *proxykit.Snapshot) {
	defer h.close()
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
			if snap := snapshot(); snap != nil {
				h.update(hcServices(snap))
			}
		}
	}
}

func sortedNames(m map[servicemap.ServiceName]hcService) []servicemap.ServiceName {
	names := make([]servicemap.ServiceName, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.SortFunc(names, servicemap.ServiceName.Compare)
	return names
}
