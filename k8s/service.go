package k8s

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/proxykit/proxykit/affinity"
	"github.com/proxykit/proxykit/servicemap"
)

// Annotations and labels the conversions read.
const (
	// AnnotationScheduler sets a Service's IPVS scheduler
	// (servicemap.Service.Scheduler), e.g. "wrr" or "lc". Only the ipvs
	// backend reads it; an invalid value fails the conversion. It is
	// proxykit's own annotation: kube-proxy has one scheduler for all
	// services.
	AnnotationScheduler = "proxykit.io/ipvs-scheduler"

	// AnnotationLoadBalancerSourceRanges is read when
	// spec.loadBalancerSourceRanges is empty, as Kubernetes' service
	// helpers and cloud providers do.
	AnnotationLoadBalancerSourceRanges = corev1.AnnotationLoadBalancerSourceRangesKey

	// LabelServiceProxyName delegates a Service (and its EndpointSlices,
	// which inherit the label) to the service proxy of that name;
	// kube-proxy ignores every object that has it. See Accept.
	LabelServiceProxyName = "service.kubernetes.io/service-proxy-name"

	// LabelHeadless marks the EndpointSlices of a headless Service
	// (corev1.IsHeadlessService). See Accept.
	LabelHeadless = corev1.IsHeadlessService

	// LabelZone is the node label that gives the node's zone.
	LabelZone = corev1.LabelTopologyZone
)

// ConvertService converts a Service as kube-proxy reads it. The result is
// valid (servicemap.Service.Validate passed); otherwise the error is an
// *Error naming the Service, holding *FieldError values with the API
// field paths, or the model's *servicemap.ValidationError.
//
//   - ExternalName and headless services (spec.clusterIP "None" or empty)
//     become a Service with only Namespace, Name and Type: the model gives
//     them no rules, and a change of type is then an ordinary update.
//   - ClusterIPs from spec.clusterIPs, else spec.clusterIP.
//   - Ports: name, protocol (empty means TCP), port, and nodePort for
//     NodePort and LoadBalancer services. targetPort and appProtocol are
//     not needed: the EndpointSlices carry the resolved ports.
//   - ExternalIPs, and for LoadBalancer services the
//     status.loadBalancer.ingress IPs (duplicates removed). Ingress
//     entries with only a hostname are skipped, and so are those with
//     ipMode "Proxy" (or any mode but "VIP"), as kube-proxy does: the load
//     balancer then delivers to the node or pod itself, not to the IP.
//   - LoadBalancer services: spec.loadBalancerSourceRanges (each trimmed,
//     host bits masked, as kube-proxy reads them); when that is empty, the
//     annotation AnnotationLoadBalancerSourceRanges (comma separated).
//     kube-proxy itself reads only the field; see doc.go.
//   - sessionAffinity ClientIP with
//     sessionAffinityConfig.clientIP.timeoutSeconds (nil means 10800).
//   - externalTrafficPolicy and internalTrafficPolicy (empty or nil means
//     Cluster); healthCheckNodePort only where kube-proxy serves it: a
//     LoadBalancer service with external policy Local.
//   - Scheduler from the annotation AnnotationScheduler.
//
// spec.trafficDistribution is not converted: the EndpointSlice controller
// turns it into the zone and node hints of the endpoints, and those are
// what the proxy honours (see ConvertSlice). The label filter is not
// applied here; see Accept.
func ConvertService(svc *corev1.Service) (*servicemap.Service, error) {
	if svc == nil {
		return nil, &Error{Kind: "Service", Err: &FieldError{Field: "Service", Value: nil, Reason: "must not be nil"}}
	}
	c := serviceConverter{in: svc, out: &servicemap.Service{Namespace: svc.Namespace, Name: svc.Name}}
	c.convert()
	if err := c.p.err(); err != nil {
		return nil, c.wrap(err)
	}
	if err := c.out.Validate(); err != nil {
		return nil, c.wrap(err)
	}
	return c.out, nil
}

type serviceConverter struct {
	in  *corev1.Service
	out *servicemap.Service
	p   problems
}

func (c *serviceConverter) wrap(err error) error {
	return &Error{Kind: "Service", Namespace: c.in.Namespace, Name: c.in.Name, Err: err}
}

func (c *serviceConverter) convert() {
	spec := &c.in.Spec
	switch spec.Type {
	case "", corev1.ServiceTypeClusterIP:
		c.out.Type = servicemap.ClusterIP
	case corev1.ServiceTypeNodePort:
		c.out.Type = servicemap.NodePort
	case corev1.ServiceTypeLoadBalancer:
		c.out.Type = servicemap.LoadBalancer
	case corev1.ServiceTypeExternalName:
		c.out.Type = servicemap.ExternalName
		return
	default:
		c.p.add("spec.type", string(spec.Type), `must be "ClusterIP", "NodePort", "LoadBalancer" or "ExternalName"`)
		return
	}
	c.clusterIPs()
	if len(c.out.ClusterIPs) == 0 {
		return // headless: no rules, nothing else matters
	}
	c.ports()
	c.out.ExternalIPs = c.addrs("spec.externalIPs", spec.ExternalIPs)
	if c.out.Type == servicemap.LoadBalancer {
		c.loadBalancerIPs()
		c.sourceRanges()
	}
	c.affinity()
	c.policies()
	c.out.Scheduler = strings.TrimSpace(c.in.Annotations[AnnotationScheduler])
}

// isHeadless is kube-proxy's test (the negation of helper.IsServiceIPSet).
func isHeadless(spec *corev1.ServiceSpec) bool {
	return spec.ClusterIP == corev1.ClusterIPNone || (spec.ClusterIP == "" && len(spec.ClusterIPs) == 0) ||
		(len(spec.ClusterIPs) > 0 && spec.ClusterIPs[0] == corev1.ClusterIPNone)
}

func (c *serviceConverter) clusterIPs() {
	spec := &c.in.Spec
	if isHeadless(spec) {
		return
	}
	if len(spec.ClusterIPs) == 0 {
		if a, ok := parseAddr(spec.ClusterIP); ok {
			c.out.ClusterIPs = []netip.Addr{a}
		} else {
			c.p.add("spec.clusterIP", spec.ClusterIP, "not an IP address")
		}
		return
	}
	c.out.ClusterIPs = c.addrs("spec.clusterIPs", spec.ClusterIPs)
}

// addrs parses a list of addresses, dropping duplicates.
func (c *serviceConverter) addrs(field string, list []string) []netip.Addr {
	if len(list) == 0 {
		return nil
	}
	out := make([]netip.Addr, 0, len(list))
	for i, s := range list {
		a, ok := parseAddr(strings.TrimSpace(s))
		switch {
		case !ok:
			c.p.add(fmt.Sprintf("%s[%d]", field, i), s, "not an IP address")
		case !slices.Contains(out, a):
			out = append(out, a)
		}
	}
	return out
}

func (c *serviceConverter) ports() {
	withNodePorts := c.out.Type == servicemap.NodePort || c.out.Type == servicemap.LoadBalancer
	c.out.Ports = make([]servicemap.Port, 0, len(c.in.Spec.Ports))
	for i, sp := range c.in.Spec.Ports {
		field := fmt.Sprintf("spec.ports[%d]", i)
		p := servicemap.Port{Name: sp.Name, Protocol: servicemap.Protocol(sp.Protocol).OrTCP()}
		if n, ok := portNumber(sp.Port); ok && n != 0 {
			p.Port = n
		} else {
			c.p.add(field+".port", sp.Port, "must be 1-65535")
		}
		if withNodePorts {
			if n, ok := portNumber(sp.NodePort); ok {
				p.NodePort = n
			} else {
				c.p.add(field+".nodePort", sp.NodePort, "must be 0-65535 (0: none)")
			}
		}
		c.out.Ports = append(c.out.Ports, p)
	}
}

// portNumber converts a port number of the API; 0 is allowed (none).
func portNumber(n int32) (uint16, bool) {
	if n < 0 || n > 65535 {
		return 0, false
	}
	return uint16(n), true
}

func (c *serviceConverter) loadBalancerIPs() {
	for i, ing := range c.in.Status.LoadBalancer.Ingress {
		if ing.IP == "" || (ing.IPMode != nil && *ing.IPMode != corev1.LoadBalancerIPModeVIP) {
			continue
		}
		a, ok := parseAddr(ing.IP)
		switch {
		case !ok:
			c.p.add(fmt.Sprintf("status.loadBalancer.ingress[%d].ip", i), ing.IP, "not an IP address")
		case !slices.Contains(c.out.LoadBalancerIPs, a):
			c.out.LoadBalancerIPs = append(c.out.LoadBalancerIPs, a)
		}
	}
}

func (c *serviceConverter) sourceRanges() {
	field, list := "spec.loadBalancerSourceRanges", c.in.Spec.LoadBalancerSourceRanges
	fromAnnotation := false
	if len(list) == 0 {
		v := strings.TrimSpace(c.in.Annotations[AnnotationLoadBalancerSourceRanges])
		if v == "" {
			return
		}
		field, list, fromAnnotation = "metadata.annotations["+AnnotationLoadBalancerSourceRanges+"]", strings.Split(v, ","), true
	}
	for i, s := range list {
		s = strings.TrimSpace(s)
		if s == "" && fromAnnotation {
			continue // "a,b," : a trailing comma
		}
		f := field
		if !fromAnnotation {
			f = fmt.Sprintf("%s[%d]", field, i)
		}
		p, ok := parsePrefix(s)
		switch {
		case !ok:
			c.p.add(f, s, "not a CIDR")
		case !slices.Contains(c.out.LoadBalancerSourceRanges, p):
			c.out.LoadBalancerSourceRanges = append(c.out.LoadBalancerSourceRanges, p)
		}
	}
}

func (c *serviceConverter) affinity() {
	spec := &c.in.Spec
	switch spec.SessionAffinity {
	case "", corev1.ServiceAffinityNone:
		return
	case corev1.ServiceAffinityClientIP:
	default:
		c.p.add("spec.sessionAffinity", string(spec.SessionAffinity), `must be "None" or "ClientIP"`)
		return
	}
	secs := corev1.DefaultClientIPServiceAffinitySeconds
	if cfg := spec.SessionAffinityConfig; cfg != nil && cfg.ClientIP != nil && cfg.ClientIP.TimeoutSeconds != nil {
		secs = *cfg.ClientIP.TimeoutSeconds
	}
	if secs < int32(affinity.MinTimeout/time.Second) || secs > int32(affinity.MaxTimeout/time.Second) {
		c.p.add("spec.sessionAffinityConfig.clientIP.timeoutSeconds", secs, "must be 1-86400")
		return
	}
	c.out.Affinity = affinity.Config{ClientIP: true, Timeout: time.Duration(secs) * time.Second}
}

func (c *serviceConverter) policies() {
	spec := &c.in.Spec
	switch spec.ExternalTrafficPolicy {
	case "", corev1.ServiceExternalTrafficPolicyCluster:
		c.out.ExternalTrafficPolicy = servicemap.Cluster
	case corev1.ServiceExternalTrafficPolicyLocal:
		c.out.ExternalTrafficPolicy = servicemap.Local
	default:
		c.p.add("spec.externalTrafficPolicy", string(spec.ExternalTrafficPolicy), `must be "Cluster" or "Local"`)
	}
	c.out.InternalTrafficPolicy = servicemap.Cluster
	if itp := spec.InternalTrafficPolicy; itp != nil {
		switch *itp {
		case corev1.ServiceInternalTrafficPolicyCluster:
		case corev1.ServiceInternalTrafficPolicyLocal:
			c.out.InternalTrafficPolicy = servicemap.Local
		default:
			c.p.add("spec.internalTrafficPolicy", string(*itp), `must be "Cluster" or "Local"`)
		}
	}
	// kube-proxy's apiservice.NeedsHealthCheck.
	if c.out.Type == servicemap.LoadBalancer && c.out.ExternalTrafficPolicy == servicemap.Local {
		if n, ok := portNumber(spec.HealthCheckNodePort); ok {
			c.out.HealthCheckNodePort = n
		} else {
			c.p.add("spec.healthCheckNodePort", spec.HealthCheckNodePort, "must be 0-65535")
		}
	}
}
