package affinity_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/proxykit/proxykit/affinity"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     affinity.Config
		wantErr string // a part of the reason; empty means valid
	}{
		{name: "zero config", cfg: affinity.Config{}},
		{name: "ClientIP default timeout", cfg: affinity.Config{ClientIP: true}},
		{name: "minimum 1s", cfg: affinity.Config{ClientIP: true, Timeout: time.Second}},
		{name: "maximum 86400s", cfg: affinity.Config{ClientIP: true, Timeout: 86400 * time.Second}},
		{name: "whole minutes", cfg: affinity.Config{ClientIP: true, Timeout: 3 * time.Minute}},
		{name: "0.5s too short", cfg: affinity.Config{ClientIP: true, Timeout: 500 * time.Millisecond}, wantErr: "must be between 1s and 86400s"},
		{name: "86401s too long", cfg: affinity.Config{ClientIP: true, Timeout: 86401 * time.Second}, wantErr: "must be between"},
		{name: "negative", cfg: affinity.Config{ClientIP: true, Timeout: -time.Second}, wantErr: "must be between"},
		{name: "1.5s not whole", cfg: affinity.Config{ClientIP: true, Timeout: 1500 * time.Millisecond}, wantErr: "whole number of seconds"},
		{name: "1s+1ns not whole", cfg: affinity.Config{ClientIP: true, Timeout: time.Second + 1}, wantErr: "whole number of seconds"},
		{name: "timeout without ClientIP", cfg: affinity.Config{Timeout: 10 * time.Second}, wantErr: "ClientIP affinity is off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ae *affinity.Error
			if !errors.As(err, &ae) {
				t.Fatalf("Validate() = %v (%T), want an *affinity.Error", err, err)
			}
			if ae.Value != tt.cfg.Timeout {
				t.Errorf("Error.Value = %v, want %v", ae.Value, tt.cfg.Timeout)
			}
			if !strings.Contains(ae.Reason, tt.wantErr) {
				t.Errorf("Error.Reason = %q, want it to contain %q", ae.Reason, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "affinity timeout "+tt.cfg.Timeout.String()+": ") {
				t.Errorf("Error() = %q, want it to name the timeout", err)
			}
		})
	}
}

func TestConfigEffectiveTimeout(t *testing.T) {
	tests := []struct {
		name string
		cfg  affinity.Config
		want time.Duration
	}{
		{name: "off", cfg: affinity.Config{}, want: 0},
		{name: "off with a timeout", cfg: affinity.Config{Timeout: time.Minute}, want: 0},
		{name: "on, default", cfg: affinity.Config{ClientIP: true}, want: affinity.DefaultTimeout},
		{name: "on, set", cfg: affinity.Config{ClientIP: true, Timeout: time.Minute}, want: time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.EffectiveTimeout(); got != tt.want {
				t.Errorf("EffectiveTimeout() = %v, want %v", got, tt.want)
			}
		})
	}
	if affinity.DefaultTimeout != 10800*time.Second {
		t.Errorf("DefaultTimeout = %v, want 10800s (SEMANTICS §4)", affinity.DefaultTimeout)
	}
}
