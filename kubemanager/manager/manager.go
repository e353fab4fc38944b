// Package manager wires kube-manager's controllers to shared informers for
// one term as leader: Namespaces, Pods, Nodes, Services, EndpointSlices,
// NetworkPolicies, and the VirtualNetworks, Ports, ServiceRecords and
// PolicyRecords it owns. Each term
// starts from the API server's state (caches listed afresh, address blocks
// read again), so a restarted or newly elected kube-manager continues
// exactly where the previous one stopped.
package manager

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/filament-net/filament/kubemanager/apis/v1alpha1"
	"github.com/filament-net/filament/kubemanager/crdclient"
	"github.com/filament-net/filament/kubemanager/crdinformer"
	"github.com/filament-net/filament/kubemanager/ipam"
	"github.com/filament-net/filament/kubemanager/netconfig"
	"github.com/filament-net/filament/kubemanager/networks"
	"github.com/filament-net/filament/kubemanager/nodes"
	"github.com/filament-net/filament/kubemanager/ports"
	"github.com/filament-net/filament/kubemanager/reconcile"
	"github.com/filament-net/filament/kubemanager/records"
)

// Config tunes the manager.
type Config struct {
	Net *netconfig.Config
	// IPAMNamespace holds the address blocks (kube-manager's own namespace).
	IPAMNamespace string
	// Workers of the pods-to-ports controller (the others run 2).
	Workers int
	// Resync replays every cached object to the controllers this often.
	Resync time.Duration
	// SweepPeriod: how often claims without a Port are looked for.
	SweepPeriod time.Duration
}

// Manager runs the controllers while this replica leads.
type Manager struct {
	cfg     Config
	kube    kubernetes.Interface
	crd     *crdclient.Client
	log     *zap.Logger
	metrics *reconcile.Metrics
	alloc   *ipam.Allocator
	records *records.Counter
}

// New makes a Manager; Run starts its work.
func New(cfg Config, kube kubernetes.Interface, crd *crdclient.Client, log *zap.Logger) (*Manager, error) {
	if cfg.Net == nil || cfg.IPAMNamespace == "" || cfg.Workers < 1 || cfg.Resync <= 0 || cfg.SweepPeriod <= 0 {
		return nil, fmt.Errorf("manager: want a network config, an IPAM namespace, workers >= 1 and positive periods: %+v", cfg)
	}
	return &Manager{
		cfg: cfg, kube: kube, crd: crd, log: log,
		metrics: reconcile.NewMetrics(),
		alloc:   ipam.New(kube, cfg.IPAMNamespace, log),
		records: records.NewCounter(),
	}, nil
}

// Collectors are the manager's metrics: reconcile latency, queue depth,
// retries, IPAM usage per network, records held.
func (m *Manager) Collectors() []prometheus.Collector {
	return append(m.metrics.Collectors(), m.alloc, m.records)
}

// stripManagedFields keeps the caches small: no controller reads them.
func stripManagedFields(obj any) (any, error) {
	if o, ok := obj.(metav1.Object); ok {
		o.SetManagedFields(nil)
	}
	return obj, nil
}

// Run runs the controllers until ctx ends (the term as leader).
func (m *Manager) Run(ctx context.Context) error {
	m.alloc.Forget()
	f := informers.NewSharedInformerFactoryWithOptions(m.kube, m.cfg.Resync, informers.WithTransform(stripManagedFields))
	nsInf, podInf, nodeInf := f.Core().V1().Namespaces(), f.Core().V1().Pods(), f.Core().V1().Nodes()
	svcInf, esInf, npInf := f.Core().V1().Services(), f.Discovery().V1().EndpointSlices(), f.Networking().V1().NetworkPolicies()
	vnInf := crdinformer.VirtualNetworks(m.crd, m.cfg.Resync)
	portInf := crdinformer.Ports(m.crd, m.cfg.Resync)
	svcRecInf, polRecInf := crdinformer.ServiceRecords(m.crd, m.cfg.Resync), crdinformer.PolicyRecords(m.crd, m.cfg.Resync)
	crdInfs := []cache.SharedIndexInformer{vnInf, portInf, svcRecInf, polRecInf}
	for _, inf := range crdInfs {
		if err := inf.SetTransform(stripManagedFields); err != nil {
			return fmt.Errorf("manager: %w", err)
		}
	}
	if err := esInf.Informer().AddIndexers(cache.Indexers{records.SliceByAddress: records.SliceAddresses}); err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	m.records.Watch(svcRecInf.GetStore(), polRecInf.GetStore())
	defer m.records.Watch(nil, nil)

	netCtl := &networks.Controller{Config: m.cfg.Net, CRD: m.crd, Namespaces: nsInf.Lister(),
		Networks: vnInf, Ports: portInf, Blocks: m.alloc, Claims: m.kube.CoreV1().ConfigMaps(m.cfg.IPAMNamespace),
		Log: m.log.Named("networks")}
	netLoop := reconcile.New("networks", netCtl.Sync, m.metrics, m.log)
	portCtl := &ports.Controller{Config: m.cfg.Net, Kube: m.kube, CRD: m.crd, Pods: podInf.Lister(),
		Namespaces: nsInf.Lister(), Networks: vnInf, Ports: portInf, IPAM: m.alloc,
		Log: m.log.Named("ports"), NetworkMissing: netLoop.Add}
	portLoop := reconcile.New("ports", portCtl.Sync, m.metrics, m.log)
	portCtl.Requeue = portLoop.Add
	nodeCtl := &nodes.Controller{Kube: m.kube, CRD: m.crd, Nodes: nodeInf.Lister(), Log: m.log.Named("nodes")}
	nodeLoop := reconcile.New("nodes", nodeCtl.Sync, m.metrics, m.log)
	recCtl := &records.Controller{CRD: m.crd, Services: svcInf.Lister(), EndpointSlices: esInf.Lister(),
		Slices: esInf.Informer(), Policies: npInf.Lister(), Pods: podInf.Lister(), Namespaces: nsInf.Lister(),
		Ports: portInf, ServiceRecords: svcRecInf, PolicyRecords: polRecInf, Log: m.log.Named("records")}
	recLoop := reconcile.New("records", recCtl.Sync, m.metrics, m.log)
	addAll := func(keys []string) {
		for _, k := range keys {
			recLoop.Add(k)
		}
	}

	// Pods waiting for a network are queued again when it appears.
	podsOfNetwork := func(vn *v1alpha1.VirtualNetwork) {
		var list []*corev1.Pod
		switch {
		case vn.Name == m.cfg.Net.Name:
			list, _ = podInf.Lister().List(labels.Everything())
		case vn.Spec.Namespace != "":
			list, _ = podInf.Lister().Pods(vn.Spec.Namespace).List(labels.Everything())
		}
		for _, p := range list {
			portLoop.Add(p.Namespace + "/" + p.Name)
		}
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{nsInf.Informer(), handler(func(o any, _ bool) {
			key(o, func(k string) { netLoop.Add(networks.KeyOfNamespace(k)) })
			addAll(recCtl.PoliciesOfNamespace("")) // namespace selectors
		})},
		{podInf.Informer(), handler(func(o any, _ bool) { key(o, portLoop.Add) })},
		// A pod's labels decide which policies select it (its Port's
		// events bring its addresses).
		{podInf.Informer(), cache.ResourceEventHandlerFuncs{UpdateFunc: func(old, cur any) {
			o, ok1 := old.(*corev1.Pod)
			c, ok2 := cur.(*corev1.Pod)
			if ok1 && ok2 && !labels.Equals(o.Labels, c.Labels) {
				addAll(recCtl.PoliciesOfNamespace(c.Namespace))
			}
		}}},
		{nodeInf.Informer(), handler(func(o any, deleted bool) {
			if deleted {
				key(o, nodeLoop.Add)
			}
		})},
		{vnInf, handler(func(o any, deleted bool) {
			key(o, netLoop.Add)
			if vn, ok := o.(*v1alpha1.VirtualNetwork); ok && !deleted {
				podsOfNetwork(vn)
			}
		})},
		{portInf, handler(func(o any, deleted bool) {
			if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			if p, ok := o.(*v1alpha1.Port); ok {
				portLoop.Add(p.Spec.Pod.Namespace + "/" + p.Spec.Pod.Name)
				if deleted {
					netLoop.Add(p.Spec.Network)
				}
				addAll(recCtl.ServicesOfPort(p))
				addAll(recCtl.PoliciesOfNamespace(p.Spec.Pod.Namespace))
			}
		})},
		{svcInf.Informer(), handler(func(o any, _ bool) { key(o, func(k string) { recLoop.Add(records.ServicePrefix + k) }) })},
		{esInf.Informer(), handler(func(o any, _ bool) {
			if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			if es, ok := o.(*discoveryv1.EndpointSlice); ok {
				if k, ok := records.ServiceKeyOfSlice(es); ok {
					recLoop.Add(k)
				}
			}
		})},
		{npInf.Informer(), handler(func(o any, _ bool) { key(o, func(k string) { recLoop.Add(records.PolicyPrefix + k) }) })},
		// A record changed or deleted by hand is written again; one whose
		// source went while no kube-manager ran is deleted.
		{svcRecInf, handler(func(o any, _ bool) { key(o, func(k string) { recLoop.Add(records.ServicePrefix + k) }) })},
		{polRecInf, handler(func(o any, _ bool) { key(o, func(k string) { recLoop.Add(records.PolicyPrefix + k) }) })},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return fmt.Errorf("manager: %w", err)
		}
	}

	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		f.Shutdown()
	}()
	f.Start(runCtx.Done())
	var synced []cache.InformerSynced
	for _, inf := range crdInfs {
		wg.Add(1)
		go func() { defer wg.Done(); inf.RunWithContext(runCtx) }()
		synced = append(synced, inf.HasSynced)
	}
	start := time.Now()
	for _, inf := range []cache.SharedIndexInformer{nsInf.Informer(), podInf.Informer(), nodeInf.Informer(),
		svcInf.Informer(), esInf.Informer(), npInf.Informer()} {
		synced = append(synced, inf.HasSynced)
	}
	if !cache.WaitForCacheSync(runCtx.Done(), synced...) {
		return errors.New("manager: caches did not sync before the term ended")
	}
	m.log.Info("caches synced", zap.Duration("took", time.Since(start)),
		zap.Int("pods", len(podInf.Informer().GetStore().ListKeys())), zap.Int("ports", len(portInf.GetStore().ListKeys())))

	netLoop.Add(m.cfg.Net.Name)
	if keys, err := nodeCtl.Keys(runCtx); err != nil {
		m.log.Warn("cannot list filamentnodes", zap.Error(err))
	} else {
		for _, k := range keys {
			nodeLoop.Add(k)
		}
	}
	for _, run := range []struct {
		l       *reconcile.Loop
		workers int
	}{{netLoop, 2}, {portLoop, m.cfg.Workers}, {nodeLoop, 1}, {recLoop, 2}} {
		wg.Add(1)
		go func() { defer wg.Done(); run.l.Run(runCtx, run.workers) }()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.sweepLoop(runCtx, portCtl)
	}()
	<-ctx.Done()
	return nil
}

// sweepLoop releases claims without a Port every SweepPeriod (the first a
// period into the term, once the start's backlog has its Ports).
func (m *Manager) sweepLoop(ctx context.Context, c *ports.Controller) {
	t := time.NewTicker(m.cfg.SweepPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := c.Sweep(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("sweep failed", zap.Error(err))
		}
	}
}

// handler calls f on every add, update and delete (deleted true).
func handler(f func(obj any, deleted bool)) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { f(o, false) },
		UpdateFunc: func(_, o any) { f(o, false) },
		DeleteFunc: func(o any) { f(o, true) },
	}
}

// key calls add with obj's namespace/name (name if cluster-scoped).
func key(obj any, add func(string)) {
	k, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err == nil {
		add(k)
	}
}
