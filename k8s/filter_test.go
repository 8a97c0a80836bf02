package k8s

import (
	"testing"

	"k8s.io/apimachinery/pkg/labels"
)

func TestAccept(t *testing.T) {
	tests := []struct {
		name      string
		lbls      map[string]string
		proxyName string
		want      bool
	}{
		{name: "no labels", want: true},
		{name: "unrelated labels", lbls: map[string]string{"app": "web"}, want: true},
		{name: "delegated to another proxy", lbls: map[string]string{LabelServiceProxyName: "other"}, want: false},
		{name: "delegated, even with an empty name", lbls: map[string]string{LabelServiceProxyName: ""}, want: false},
		{name: "delegated to us", lbls: map[string]string{LabelServiceProxyName: "mine"}, proxyName: "mine", want: true},
		{name: "unlabelled, with a proxy name", proxyName: "mine", want: true},
		{name: "delegated to another, with a proxy name", lbls: map[string]string{LabelServiceProxyName: "other"}, proxyName: "mine", want: false},
		{name: "headless slice", lbls: map[string]string{LabelHeadless: ""}, want: false},
		{name: "headless slice delegated to us", lbls: map[string]string{LabelHeadless: "", LabelServiceProxyName: "mine"}, proxyName: "mine", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Accept(tt.lbls, tt.proxyName); got != tt.want {
				t.Errorf("Accept(%v, %q) = %v, want %v", tt.lbls, tt.proxyName, got, tt.want)
			}
			// Whatever Accept accepts, the selector lets through.
			if Accept(tt.lbls, tt.proxyName) && !Selector(tt.proxyName).Matches(labels.Set(tt.lbls)) {
				t.Errorf("Selector(%q) filters out %v, which Accept accepts", tt.proxyName, tt.lbls)
			}
		})
	}
}

func TestSelector(t *testing.T) {
	for proxyName, want := range map[string]string{
		"":     "!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name",
		"mine": "!service.kubernetes.io/headless",
	} {
		if got := Selector(proxyName).String(); got != want {
			t.Errorf("Selector(%q) = %q, want %q", proxyName, got, want)
		}
	}
}
