package main

import (
	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/k8s"
	"github.com/proxykit/proxykit/servicemap"
)

// counting is a k8s.Handler that counts the changes it passes on, for
// the pending changes metric. A change is stamped before it is handed
// over, so that a sync that starts later surely covers it.
type counting struct {
	k8s.Handler
	m *metrics
}

func (c counting) OnServiceUpdate(prev, cur *servicemap.Service) error {
	done := c.m.changed()
	err := c.Handler.OnServiceUpdate(prev, cur)
	done(err == nil)
	return err
}

func (c counting) OnServiceDelete(svc *servicemap.Service) {
	done := c.m.changed()
	c.Handler.OnServiceDelete(svc)
	done(true)
}

func (c counting) OnSliceUpdate(s *endpoints.Slice) error {
	done := c.m.changed()
	err := c.Handler.OnSliceUpdate(s)
	done(err == nil)
	return err
}

func (c counting) OnSliceDelete(s *endpoints.Slice) {
	done := c.m.changed()
	c.Handler.OnSliceDelete(s)
	done(true)
}

func (c counting) SetNode(n proxykit.Node) {
	done := c.m.changed()
	c.Handler.SetNode(n)
	done(true)
}
