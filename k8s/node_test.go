package k8s

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/proxykit/proxykit"
)

func TestConvertNode(t *testing.T) {
	tests := []struct {
		name    string
		in      *corev1.Node
		want    proxykit.Node
		wantErr string
	}{
		{
			name: "zone, internal addresses before external, hostnames and duplicates dropped",
			in: &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{LabelZone: "zone-1"}},
				Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
					{Type: corev1.NodeHostName, Address: "node-a"},
					{Type: corev1.NodeExternalIP, Address: "203.0.113.7"},
					{Type: corev1.NodeInternalIP, Address: "192.0.2.10"},
					{Type: corev1.NodeInternalIP, Address: "fd00::10"},
					{Type: corev1.NodeExternalIP, Address: "192.0.2.10"},
					{Type: corev1.NodeInternalDNS, Address: "node-a.internal"},
				}},
			},
			want: proxykit.Node{Name: "node-a", Zone: "zone-1", Addresses: addrs("192.0.2.10", "fd00::10", "203.0.113.7")},
		},
		{
			name: "no zone label, no addresses",
			in:   &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b"}},
			want: proxykit.Node{Name: "node-b"},
		},
		{name: "nil", wantErr: `k8s: Node "": Node: invalid value <nil>: must not be nil`},
		{
			name: "address that does not parse",
			in: &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: "node-a"},
				Status:     corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "node-a"}}},
			},
			wantErr: `k8s: Node "node-a": status.addresses[0].address: invalid value "node-a": not an IP address (InternalIP)`,
		},
		{
			name:    "no name",
			in:      &corev1.Node{},
			wantErr: `metadata.name: invalid value "": must not be empty`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ConvertNode(tt.in)
			if !checkErr(t, err, tt.wantErr) {
				return
			}
			if d := cmp.Diff(tt.want, got, cmpOpts); d != "" {
				t.Errorf("ConvertNode() (-want +got):\n%s", d)
			}
		})
	}
}
