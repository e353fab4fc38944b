// Package filamentnode publishes the agent's own FilamentNode in
// Kubernetes mode: named after its node, with the underlay addresses of
// its configuration and the encapsulations its dataplane receives, owned
// by the Node object (so that the garbage collector deletes it with the
// Node, as kubemanager/nodes does for one left without its Node). It is
// written at start and again whenever the stored one differs (edited or
// deleted by hand, its Node recreated), retried every second while the
// API server cannot be reached or the Node is not there yet.
package filamentnode

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/filament-net/filament/agent/config"
	"github.com/filament-net/filament/kubemanager/apis/v1alpha1"
	"github.com/filament-net/filament/kubemanager/crdclient"
)

// Encapsulations are what every dataplane decapsulates: VXLAN (UDP
// 4789), MPLSoUDP (UDP 6635) and MPLSoGRE, whatever its networks send.
var Encapsulations = []string{v1alpha1.EncapVXLAN, v1alpha1.EncapMPLSoUDP, v1alpha1.EncapMPLSoGRE}

// Spec is the FilamentNode spec of a configuration: its fabric's
// underlay addresses.
func Spec(c *config.Config) v1alpha1.FilamentNodeSpec {
	s := v1alpha1.FilamentNodeSpec{Encapsulations: slices.Clone(Encapsulations)}
	if c.Fabric.UnderlayIP.IsValid() {
		s.UnderlayIPv4 = c.Fabric.UnderlayIP.String()
	}
	if c.Fabric.UnderlayIPv6.IsValid() {
		s.UnderlayIPv6 = c.Fabric.UnderlayIPv6.String()
	}
	return s
}

// Publisher keeps one node's FilamentNode as its agent wants it.
type Publisher struct {
	node  string
	spec  v1alpha1.FilamentNodeSpec
	crd   *crdclient.Client
	kube  kubernetes.Interface
	log   *zap.Logger
	retry time.Duration
	kick  chan struct{}

	published prometheus.Gauge
	writes    prometheus.Counter
}

// New makes a Publisher of spec as FilamentNode node; Run publishes.
func New(cfg *rest.Config, node string, spec v1alpha1.FilamentNodeSpec, log *zap.Logger) (*Publisher, error) {
	crd, err := crdclient.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("filamentnode: %w", err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("filamentnode: %w", err)
	}
	return &Publisher{node: node, spec: spec, crd: crd, kube: kube, retry: time.Second,
		log:  log.With(zap.String("filamentnode", node)),
		kick: make(chan struct{}, 1),
		published: prometheus.NewGauge(prometheus.GaugeOpts{Name: "filament_agent_filamentnode_published",
			Help: "1 while the API server's FilamentNode of this node is the agent's (its underlay addresses, owned by its Node)"}),
		writes: prometheus.NewCounter(prometheus.CounterOpts{Name: "filament_agent_filamentnode_writes_total",
			Help: "FilamentNode creations and updates by the agent (a stored one that differed from the agent's)"}),
	}, nil
}

// Collectors are the publisher's metrics.
func (p *Publisher) Collectors() []prometheus.Collector {
	return []prometheus.Collector{p.published, p.writes}
}

// Run publishes until ctx ends: at once, then whenever the watch of its
// FilamentNode sees a change (its own writes included: they compare
// equal and write nothing), every second while a write fails.
func (p *Publisher) Run(ctx context.Context) {
	sel := fields.OneTermEqualSelector("metadata.name", p.node).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return p.crd.FilamentNodes.List(ctx, "", o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return p.crd.FilamentNodes.Watch(ctx, "", o)
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &v1alpha1.FilamentNode{}, 10*time.Minute, cache.Indexers{})
	kick := func(any) { p.changed() }
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: kick,
		UpdateFunc: func(any, any) { p.changed() }, DeleteFunc: kick}); err != nil {
		p.log.Error("cannot watch the FilamentNode: it is published at start only", zap.Error(err))
	} else {
		go inf.RunWithContext(ctx)
	}

	failing := false
	retry := time.NewTimer(0) // the first attempt at once
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		case <-retry.C:
		}
		err := p.Publish(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			p.published.Set(0)
			if !failing {
				p.log.Warn("cannot publish the node's FilamentNode: retrying", zap.Duration("every", p.retry), zap.Error(err))
			}
			failing = true
			retry.Reset(p.retry)
		default:
			p.published.Set(1)
			if failing {
				p.log.Info("FilamentNode published after failures")
			}
			failing = false
		}
	}
}

func (p *Publisher) changed() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Publish makes the stored FilamentNode the agent's, owned by the Node:
// created if missing, updated if its spec or owner differ, left alone if
// equal.
func (p *Publisher) Publish(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	node, err := p.kube.CoreV1().Nodes().Get(ctx, p.node, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("filamentnode: its owner, Node %s: %w", p.node, err)
	}
	owner := []metav1.OwnerReference{ownerRef(node)}
	cur, err := p.crd.FilamentNodes.Get(ctx, "", p.node)
	if apierrors.IsNotFound(err) {
		fn := &v1alpha1.FilamentNode{ObjectMeta: metav1.ObjectMeta{Name: p.node, OwnerReferences: owner}, Spec: p.spec}
		if _, err := p.crd.FilamentNodes.Create(ctx, fn); err != nil {
			return fmt.Errorf("filamentnode: create: %w", err)
		}
		p.writes.Inc()
		p.log.Info("FilamentNode created", zap.Any("spec", p.spec))
		return nil
	}
	if err != nil {
		return fmt.Errorf("filamentnode: get: %w", err)
	}
	if reflect.DeepEqual(cur.Spec, p.spec) && reflect.DeepEqual(cur.OwnerReferences, owner) {
		return nil
	}
	was := cur.Spec
	cur.Spec, cur.OwnerReferences = p.spec, owner
	if _, err := p.crd.FilamentNodes.Update(ctx, cur); err != nil {
		return fmt.Errorf("filamentnode: update: %w", err)
	}
	p.writes.Inc()
	p.log.Info("FilamentNode updated", zap.Any("was", was), zap.Any("spec", p.spec))
	return nil
}

// ownerRef is the Node as the FilamentNode's owner. No
// blockOwnerDeletion: that would need the right to update the Node's
// finalizers, and nothing is gained by holding the Node's deletion.
func ownerRef(n *corev1.Node) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID}
}
