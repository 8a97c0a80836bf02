package k8s

import (
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// Accept reports whether the service proxy named proxyName handles a
// Service or EndpointSlice with these labels, as kube-proxy decides with
// its label selector:
//
//   - not when the object has the label LabelHeadless (the EndpointSlice
//     controller puts it on the slices of headless services);
//   - not when it has the label LabelServiceProxyName, unless its value
//     is proxyName. With proxyName "" (kube-proxy's behaviour) every object
//     with the label is skipped; with a name, the proxy handles the
//     unlabelled objects and those delegated to it.
//
// The EndpointSlice controller copies a Service's labels to its slices, so
// a Service and its slices are accepted or skipped together.
func Accept(objLabels map[string]string, proxyName string) bool {
	if _, ok := objLabels[LabelHeadless]; ok {
		return false
	}
	name, ok := objLabels[LabelServiceProxyName]
	return !ok || (proxyName != "" && name == proxyName)
}

// Selector returns the label selector that makes the API server send only
// the objects Accept may accept: kube-proxy's
// "!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name"
// when proxyName is "", and only the first requirement otherwise (a label
// selector cannot say "absent or equal to"; Accept does the rest).
func Selector(proxyName string) labels.Selector {
	noHeadless, err := labels.NewRequirement(LabelHeadless, selection.DoesNotExist, nil)
	if err != nil {
		panic(err) // constant input
	}
	sel := labels.NewSelector().Add(*noHeadless)
	if proxyName == "" {
		noProxyName, err := labels.NewRequirement(LabelServiceProxyName, selection.DoesNotExist, nil)
		if err != nil {
			panic(err)
		}
		sel = sel.Add(*noProxyName)
	}
	return sel
}
