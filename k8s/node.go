package k8s

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/proxykit/proxykit"
)

// ConvertNode converts a Node: its name, its zone from the label
// LabelZone ("topology.kubernetes.io/zone"), and its addresses from
// status.addresses of type InternalIP and ExternalIP, in that order and
// without duplicates (Hostname and DNS entries are skipped). An address
// that does not parse is an error (an *Error holding *FieldError
// values).
//
// The addresses are what the Node reports, which is not always what the
// machine has (a cloud ExternalIP is often NATed). A caller that serves
// NodePorts on the local interfaces instead can replace Addresses before
// handing the Node to the proxy (see Source's WithNodeHook).
func ConvertNode(n *corev1.Node) (proxykit.Node, error) {
	if n == nil {
		return proxykit.Node{}, &Error{Kind: "Node", Err: &FieldError{Field: "Node", Value: nil, Reason: "must not be nil"}}
	}
	out := proxykit.Node{Name: n.Name, Zone: n.Labels[LabelZone]}
	var p problems
	for _, typ := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP} {
		for i, na := range n.Status.Addresses {
			if na.Type != typ {
				continue
			}
			a, ok := parseAddr(na.Address)
			switch {
			case !ok:
				p.add(fmt.Sprintf("status.addresses[%d].address", i), na.Address, "not an IP address ("+string(typ)+")")
			case !slices.Contains(out.Addresses, a):
				out.Addresses = append(out.Addresses, a)
			}
		}
	}
	if n.Name == "" {
		p.add("metadata.name", n.Name, "must not be empty")
	}
	if err := p.err(); err != nil {
		return proxykit.Node{}, &Error{Kind: "Node", Name: n.Name, Err: err}
	}
	return out, nil
}
