package servicemap_test

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/proxykit/proxykit/servicemap"
)

func ExampleService_Validate() {
	svc := &servicemap.Service{
		Namespace:  "default",
		Name:       "web",
		ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10")},
		Ports: []servicemap.Port{
			{Name: "http", Port: 80},
			{Name: "http", Port: 0, NodePort: 30080},
		},
		LoadBalancerSourceRanges: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/8")},
	}
	err := svc.Validate()
	var ve *servicemap.ValidationError
	if errors.As(err, &ve) {
		for _, fe := range ve.Errors {
			fmt.Println(fe)
		}
	}
	// Output:
	// servicemap: Ports[1].Port: invalid value 0: must be 1-65535
	// servicemap: Ports[1].NodePort: invalid value 30080: only NodePort and LoadBalancer services may have one (type is ClusterIP)
	// servicemap: Ports[1].Name: invalid value "http": duplicate of Ports[0] (same name and protocol TCP)
	// servicemap: LoadBalancerSourceRanges: invalid value [10.0.0.1/8]: only LoadBalancer services may have them (type is ClusterIP)
	// servicemap: LoadBalancerSourceRanges[0]: invalid value 10.0.0.1/8: host bits are set; the masked form is 10.0.0.0/8
}

func ExampleService_Flatten() {
	svc := &servicemap.Service{
		Namespace:  "kube-system",
		Name:       "dns",
		ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10")},
		Ports: []servicemap.Port{
			{Name: "dns", Protocol: servicemap.UDP, Port: 53},
			{Name: "dns-tcp", Port: 53},
		},
	}
	for _, p := range svc.Flatten() {
		fmt.Println(p.Name, p.Type, p.Port, p.InternalTrafficPolicy)
	}
	// Output:
	// kube-system/dns:dns/UDP ClusterIP 53 Cluster
	// kube-system/dns:dns-tcp/TCP ClusterIP 53 Cluster
}

func ExampleTracker() {
	web := &servicemap.Service{
		Namespace:  "default",
		Name:       "web",
		ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.20")},
		Ports:      []servicemap.Port{{Name: "http", Port: 80}, {Name: "metrics", Port: 9100}},
	}
	t := servicemap.NewTracker()
	if err := t.Update(nil, web); err != nil {
		fmt.Println(err)
	}
	m, changes := t.Apply(servicemap.Map{})
	fmt.Println("added:", changes.Updated)

	// Change one port; the other is not reported.
	web2 := *web
	web2.Ports = []servicemap.Port{{Name: "http", Port: 8080}}
	if err := t.Update(web, &web2); err != nil {
		fmt.Println(err)
	}
	// An invalid update is rejected; what was applied stays.
	bad := web2
	bad.Type = "Balanced"
	fmt.Println(t.Update(&web2, &bad))

	m, changes = t.Apply(m)
	fmt.Println("updated:", changes.Updated, "deleted:", changes.Deleted, "ports:", m.Len())
	// Output:
	// added: [default/web:http/TCP default/web:metrics/TCP]
	// servicemap: service "default/web": Type: invalid value "Balanced": must be "ClusterIP", "NodePort", "LoadBalancer" or "ExternalName" (empty means ClusterIP)
	// updated: [default/web:http/TCP] deleted: [default/web:metrics/TCP] ports: 1
}
