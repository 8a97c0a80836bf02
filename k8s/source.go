package k8s

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/servicemap"
)

// Handler receives what a Source converts. *proxykit.Proxy implements
// it; so can a wrapper that filters or records. The Source calls
// OnServiceUpdate and OnServiceDelete from one goroutine, OnSliceUpdate
// and OnSliceDelete from another, SetNode from a third. OnServiceDelete
// gets the last Service the Handler accepted; OnSliceDelete gets a Slice
// with only its identity (Namespace, Service, Name), which is all
// endpoints.Tracker needs: the Source does not keep endpoints.
type Handler interface {
	OnServiceUpdate(prev, cur *servicemap.Service) error
	OnServiceDelete(svc *servicemap.Service)
	OnSliceUpdate(s *endpoints.Slice) error
	OnSliceDelete(s *endpoints.Slice)
	SetNode(n proxykit.Node)
}

var _ Handler = (*proxykit.Proxy)(nil)

// Option configures a Source.
type Option func(*options)

type options struct {
	nodeName  string
	proxyName string
	resync    time.Duration
	logger    *slog.Logger
	onError   func(error)
	nodeHook  func(proxykit.Node) proxykit.Node
}

// WithNodeName makes the Source watch the Node of that name (and only
// it, with a field selector) and call SetNode with its conversion on
// every change. Without it the Source watches no Node and the proxy keeps
// the Node it was made with.
func WithNodeName(name string) Option { return func(o *options) { o.nodeName = name } }

// WithProxyName sets the name this proxy answers to in the label
// LabelServiceProxyName (see Accept). The default, "", is kube-proxy's
// behaviour: every object with the label is skipped.
func WithProxyName(name string) Option { return func(o *options) { o.proxyName = name } }

// WithResyncPeriod sets the informers' resync period. The default, 0,
// means no resync: the proxy's own periodic full sync re-applies the
// state, and a resync would only convert the same objects again.
func WithResyncPeriod(d time.Duration) Option { return func(o *options) { o.resync = d } }

// WithLogger sets the logger. Conversion and validation errors are
// logged at Warn, skipped objects at Debug. By default nothing is logged.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithErrorHandler sets a function called with every error: a failed
// conversion or an update the Handler rejected, as an *Error naming the
// object. It is called from the informers' goroutines and must not
// block for long.
func WithErrorHandler(fn func(error)) Option { return func(o *options) { o.onError = fn } }

// WithNodeHook sets a function that adjusts each converted Node before
// SetNode, e.g. to replace the addresses of the Node object with those
// of the local interfaces.
func WithNodeHook(fn func(proxykit.Node) proxykit.Node) Option {
	return func(o *options) { o.nodeHook = fn }
}

// Source feeds a Handler from the Kubernetes API through shared
// informers: Services and EndpointSlices (with kube-proxy's label
// selector, see Selector and Accept) and optionally the proxy's own Node.
//
// It remembers the last Service it handed over for each service and the
// identity of each slice, so that OnServiceUpdate gets the previous state
// the Handler accepted, deletes work from tombstones
// (cache.DeletedFinalStateUnknown) whatever their content, and an object that stops being accepted (its
// LabelServiceProxyName changed) is deleted. An object that fails to
// convert, or that the Handler rejects, is reported and leaves the
// previous version in force, as the proxy does with an invalid update.
type Source struct {
	client kubernetes.Interface
	h      Handler
	o      options
	log    *slog.Logger

	started atomic.Bool
	synced  chan struct{} // closed once every handler has its initial list

	mu       sync.Mutex
	services map[string]*servicemap.Service // by namespace/name: what h has
	slices   map[string]endpoints.SliceName // what h has, identity only
}

// NewSource returns a Source that reads from client and calls h. Run
// starts it.
func NewSource(client kubernetes.Interface, h Handler, opts ...Option) *Source {
	s := &Source{
		client:   client,
		h:        h,
		synced:   make(chan struct{}),
		services: make(map[string]*servicemap.Service),
		slices:   make(map[string]endpoints.SliceName),
	}
	for _, opt := range opts {
		opt(&s.o)
	}
	s.log = s.o.logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// ErrAlreadyStarted is returned by a second call of Source.Run.
var ErrAlreadyStarted = errors.New("k8s: Source.Run called more than once")

// Run starts the informers, waits until every object of the initial
// lists was handed to the Handler (HasSynced), and then keeps the Handler
// up to date until ctx is done. It returns ctx's error, or
// ErrAlreadyStarted, or an error from registering the event handlers.
//
// Start the proxy's sync loop after WaitForSync returns: a first sync
// before the initial lists are in would program services without their
// endpoints and reject their traffic for a moment.
func (s *Source) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return ErrAlreadyStarted
	}
	sel := Selector(s.o.proxyName).String()
	factory := informers.NewSharedInformerFactoryWithOptions(s.client, s.o.resync,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = sel }))
	var checks []cache.InformerSynced
	svcReg, err := factory.Core().V1().Services().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    s.serviceChanged,
		UpdateFunc: func(_, cur any) { s.serviceChanged(cur) },
		DeleteFunc: s.serviceDeleted,
	})
	if err != nil {
		return fmt.Errorf("k8s: add Service event handler: %w", err)
	}
	sliceReg, err := factory.Discovery().V1().EndpointSlices().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    s.sliceChanged,
		UpdateFunc: func(_, cur any) { s.sliceChanged(cur) },
		DeleteFunc: s.sliceDeleted,
	})
	if err != nil {
		return fmt.Errorf("k8s: add EndpointSlice event handler: %w", err)
	}
	checks = append(checks, svcReg.HasSynced, sliceReg.HasSynced)
	factories := []informers.SharedInformerFactory{factory}
	if s.o.nodeName != "" {
		nodeSel := fields.OneTermEqualSelector(metav1.ObjectNameField, s.o.nodeName).String()
		nf := informers.NewSharedInformerFactoryWithOptions(s.client, s.o.resync,
			informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = nodeSel }))
		nodeReg, err := nf.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    s.nodeChanged,
			UpdateFunc: func(_, cur any) { s.nodeChanged(cur) },
			DeleteFunc: s.nodeDeleted,
		})
		if err != nil {
			return fmt.Errorf("k8s: add Node event handler: %w", err)
		}
		checks = append(checks, nodeReg.HasSynced)
		factories = append(factories, nf)
	}
	for _, f := range factories {
		f.StartWithContext(ctx)
	}
	defer func() {
		for _, f := range factories {
			f.Shutdown()
		}
	}()
	if cache.WaitForCacheSync(ctx.Done(), checks...) {
		close(s.synced)
		s.log.Info("k8s: initial lists delivered", "services", s.count(true), "slices", s.count(false))
	}
	<-ctx.Done()
	return ctx.Err()
}

// HasSynced reports whether every object of the initial lists has been
// handed to the Handler.
func (s *Source) HasSynced() bool {
	select {
	case <-s.synced:
		return true
	default:
		return false
	}
}

// WaitForSync blocks until HasSynced or until ctx is done, and returns
// nil or ctx's error.
func (s *Source) WaitForSync(ctx context.Context) error {
	select {
	case <-s.synced:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Source) count(services bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if services {
		return len(s.services)
	}
	return len(s.slices)
}

// report logs err and passes it to the error handler.
func (s *Source) report(err error) {
	s.log.Warn("k8s: object not applied", "err", err)
	if s.o.onError != nil {
		s.o.onError(err)
	}
}

func (s *Source) serviceChanged(obj any) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		s.report(fmt.Errorf("k8s: Service informer delivered a %T", obj))
		return
	}
	key := svc.Namespace + "/" + svc.Name
	if !Accept(svc.Labels, s.o.proxyName) {
		s.log.Debug("k8s: Service skipped by its labels", "service", key)
		s.serviceGone(key)
		return
	}
	cur, err := ConvertService(svc)
	if err != nil {
		s.report(err)
		return
	}
	s.mu.Lock()
	prev := s.services[key]
	s.mu.Unlock()
	if err := s.h.OnServiceUpdate(prev, cur); err != nil {
		s.report(&Error{Kind: "Service", Namespace: svc.Namespace, Name: svc.Name, Err: err})
		return
	}
	s.mu.Lock()
	s.services[key] = cur
	s.mu.Unlock()
}

func (s *Source) serviceDeleted(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		s.report(fmt.Errorf("k8s: deleted Service: %w", err))
		return
	}
	s.serviceGone(key)
}

// serviceGone deletes the service with that key if the Handler has it.
func (s *Source) serviceGone(key string) {
	s.mu.Lock()
	prev, ok := s.services[key]
	delete(s.services, key)
	s.mu.Unlock()
	if ok {
		s.h.OnServiceDelete(prev)
	}
}

func (s *Source) sliceChanged(obj any) {
	es, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		s.report(fmt.Errorf("k8s: EndpointSlice informer delivered a %T", obj))
		return
	}
	key := es.Namespace + "/" + es.Name
	if !Accept(es.Labels, s.o.proxyName) {
		s.log.Debug("k8s: EndpointSlice skipped by its labels", "slice", key)
		s.sliceGone(key)
		return
	}
	cur, err := ConvertSlice(es)
	if errors.Is(err, ErrIgnored) {
		s.log.Debug("k8s: EndpointSlice ignored", "slice", key, "err", err)
		s.sliceGone(key)
		return
	}
	if err != nil {
		s.report(err)
		return
	}
	if err := s.h.OnSliceUpdate(cur); err != nil {
		s.report(&Error{Kind: "EndpointSlice", Namespace: es.Namespace, Name: es.Name, Err: err})
		return
	}
	s.mu.Lock()
	s.slices[key] = cur.ID()
	s.mu.Unlock()
}

func (s *Source) sliceDeleted(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		s.report(fmt.Errorf("k8s: deleted EndpointSlice: %w", err))
		return
	}
	s.sliceGone(key)
}

func (s *Source) sliceGone(key string) {
	s.mu.Lock()
	prev, ok := s.slices[key]
	delete(s.slices, key)
	s.mu.Unlock()
	if ok {
		s.h.OnSliceDelete(&endpoints.Slice{Namespace: prev.Namespace, Service: prev.Service, Name: prev.Name})
	}
}

func (s *Source) nodeChanged(obj any) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		s.report(fmt.Errorf("k8s: Node informer delivered a %T", obj))
		return
	}
	if n.Name != s.o.nodeName {
		return // a client that ignores the field selector
	}
	node, err := ConvertNode(n)
	if err != nil {
		s.report(err)
		return
	}
	if s.o.nodeHook != nil {
		node = s.o.nodeHook(node)
	}
	s.h.SetNode(node)
}

func (s *Source) nodeDeleted(obj any) {
	key, _ := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if key == s.o.nodeName {
		s.log.Warn("k8s: the proxy's Node was deleted; keeping its last known state", "node", key)
	}
}
