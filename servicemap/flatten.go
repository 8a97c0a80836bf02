package servicemap

import (
	"maps"
	"slices"
)

// Flatten returns one ServicePort per Port of a valid service, in the
// order of Ports, with the defaults filled in: an empty Protocol becomes
// TCP, an empty Type ClusterIP, empty traffic policies Cluster. It returns
// nil for a headless service (no ClusterIPs) and an ExternalName service,
// which get no rules. The ServicePorts share the Service's slices.
//
// Flatten does not validate; the result for an invalid service is
// unspecified beyond not panicking.
func (s *Service) Flatten() []*ServicePort {
	if !s.programmed() || len(s.Ports) == 0 {
		return nil
	}
	return s.flattenInto(make([]*ServicePort, 0, len(s.Ports)))
}

// programmed reports whether the service gets rules at all.
func (s *Service) programmed() bool {
	return s != nil && len(s.ClusterIPs) > 0 && s.Type != ExternalName
}

// flattenInto appends the service's ServicePorts to dst. They are
// allocated together: one allocation per service.
func (s *Service) flattenInto(dst []*ServicePort) []*ServicePort {
	if !s.programmed() || len(s.Ports) == 0 {
		return dst
	}
	sps := make([]ServicePort, len(s.Ports))
	typ := normType(s.Type)
	etp, itp := normPolicy(s.ExternalTrafficPolicy), normPolicy(s.InternalTrafficPolicy)
	for i, p := range s.Ports {
		proto := p.Protocol.OrTCP()
		sps[i] = ServicePort{
			Name:                     PortName{Namespace: s.Namespace, Name: s.Name, Port: p.Name, Protocol: proto},
			Type:                     typ,
			Protocol:                 proto,
			Port:                     p.Port,
			NodePort:                 p.NodePort,
			ClusterIPs:               s.ClusterIPs,
			ExternalIPs:              s.ExternalIPs,
			LoadBalancerIPs:          s.LoadBalancerIPs,
			LoadBalancerSourceRanges: s.LoadBalancerSourceRanges,
			Affinity:                 s.Affinity,
			ExternalTrafficPolicy:    etp,
			InternalTrafficPolicy:    itp,
			HealthCheckNodePort:      s.HealthCheckNodePort,
			Scheduler:                s.Scheduler,
		}
		dst = append(dst, &sps[i])
	}
	return dst
}

func normType(t Type) Type {
	if t == "" {
		return ClusterIP
	}
	return t
}

func normPolicy(p TrafficPolicy) TrafficPolicy {
	if p == "" {
		return Cluster
	}
	return p
}

// Equal reports whether p and o are the same in every field; slices are
// compared element by element, a nil slice equals an empty one. Two nil
// ServicePorts are equal.
func (p *ServicePort) Equal(o *ServicePort) bool {
	if p == nil || o == nil {
		return p == o
	}
	return p.Name == o.Name &&
		p.Type == o.Type &&
		p.Protocol == o.Protocol &&
		p.Port == o.Port &&
		p.NodePort == o.NodePort &&
		slices.Equal(p.ClusterIPs, o.ClusterIPs) &&
		slices.Equal(p.ExternalIPs, o.ExternalIPs) &&
		slices.Equal(p.LoadBalancerIPs, o.LoadBalancerIPs) &&
		slices.Equal(p.LoadBalancerSourceRanges, o.LoadBalancerSourceRanges) &&
		p.Affinity == o.Affinity &&
		p.ExternalTrafficPolicy == o.ExternalTrafficPolicy &&
		p.InternalTrafficPolicy == o.InternalTrafficPolicy &&
		p.HealthCheckNodePort == o.HealthCheckNodePort &&
		p.Scheduler == o.Scheduler
}

// sameProgram reports whether a and b flatten to equal sets of
// ServicePorts (keyed by PortName, the last port winning as in a Map), as
// Flatten and Equal would say, but without flattening: no allocation in
// the common cases. Either may be nil.
func sameProgram(a, b *Service) bool {
	if a == b {
		return true
	}
	var pa, pb []Port
	if a.programmed() {
		pa = a.Ports
	}
	if b.programmed() {
		pb = b.Ports
	}
	if len(pa) == 0 || len(pb) == 0 {
		return len(pa) == len(pb)
	}
	return sameServiceFields(a, b) && samePortSet(pa, pb)
}

// sameServiceFields compares what every ServicePort of a service copies
// from the Service.
func sameServiceFields(a, b *Service) bool {
	return a.Namespace == b.Namespace &&
		a.Name == b.Name &&
		normType(a.Type) == normType(b.Type) &&
		slices.Equal(a.ClusterIPs, b.ClusterIPs) &&
		slices.Equal(a.ExternalIPs, b.ExternalIPs) &&
		slices.Equal(a.LoadBalancerIPs, b.LoadBalancerIPs) &&
		slices.Equal(a.LoadBalancerSourceRanges, b.LoadBalancerSourceRanges) &&
		a.Affinity == b.Affinity &&
		normPolicy(a.ExternalTrafficPolicy) == normPolicy(b.ExternalTrafficPolicy) &&
		normPolicy(a.InternalTrafficPolicy) == normPolicy(b.InternalTrafficPolicy) &&
		a.HealthCheckNodePort == b.HealthCheckNodePort &&
		a.Scheduler == b.Scheduler
}

// samePortSet reports whether two port lists flatten to the same set. The
// usual case, the same list, costs one pass; a reordered list costs two
// maps.
func samePortSet(a, b []Port) bool {
	if slices.EqualFunc(a, b, func(p, q Port) bool {
		p.Protocol, q.Protocol = p.Protocol.OrTCP(), q.Protocol.OrTCP()
		return p == q
	}) {
		return true
	}
	return maps.Equal(portSet(a), portSet(b))
}

type portKey struct {
	name  string
	proto Protocol
}

// portSet maps each port's PortName part to its numbers; a later port
// replaces an earlier one with the same key, as in Map.
func portSet(ports []Port) map[portKey]Port {
	set := make(map[portKey]Port, len(ports))
	for _, p := range ports {
		p.Protocol = p.Protocol.OrTCP()
		set[portKey{p.Name, p.Protocol}] = p
	}
	return set
}
