// Package kubesource is filament-agent's Kubernetes mode: it watches the
// API server's VirtualNetworks, FilamentNodes and Ports, turns them into
// the node's networks and peers (remote pods as /32 and /128 host routes
// through a tunnel to their node's underlay address), gives ADD the pods'
// Ports, and writes their Programmed condition (True once attached, False
// with a reason when ADD could not program one). It also holds the
// ServiceRecords and PolicyRecords (records.go), counted and logged: the
// fast path does not enforce them yet.
//
// The informers' caches outlive an unreachable API server: the dataplane
// keeps its last state, and the relist when the server is back brings the
// changes, applied by the node's usual mark-and-sweep resync.
package kubesource

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/filament-net/filament/agent/cniapi"
	"github.com/filament-net/filament/agent/config"
	"github.com/filament-net/filament/agent/node"
	"github.com/filament-net/filament/kubemanager/apis/v1alpha1"
	"github.com/filament-net/filament/kubemanager/crdclient"
	"github.com/filament-net/filament/kubemanager/crdinformer"
)

// Desired is what the source programs: the node's SetDesired.
type Desired interface {
	SetDesired(ctx context.Context, networks []config.Network, peers []config.Peer) error
}

// Source watches the API server for one node. It implements
// node.PortSource.
type Source struct {
	node   string
	log    *zap.Logger
	client *crdclient.Client
	reach  *reachability

	networks, nodes cache.SharedIndexInformer
	// local: this node's Ports (field selector spec.node); all: every
	// Port, for the remote pods' host routes.
	local, all cache.SharedIndexInformer
	// The compiled Services and NetworkPolicies: held, counted and logged;
	// not enforced yet (the fast path has no stage for them).
	services, policies cache.SharedIndexInformer
	recordsKick        chan struct{}
	recordsDesc        *prometheus.Desc
	localTargetsDesc   *prometheus.Desc

	kick     chan struct{} // an object changed: recompute the desired state
	statusMu sync.Mutex
	// pending: the Programmed condition to write, by Port namespace/name
	// (the last ADD's outcome wins).
	pending  map[string]metav1.Condition
	statusCh chan struct{}
}

// New makes a Source for the node; Run starts it.
func New(cfg *rest.Config, nodeName string, log *zap.Logger) (*Source, error) {
	reach := newReachability(log, time.Second)
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(reach.wrap)
	c, err := crdclient.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubesource: %w", err)
	}
	s := &Source{node: nodeName, log: log, client: c, reach: reach, kick: make(chan struct{}, 1),
		pending: map[string]metav1.Condition{}, statusCh: make(chan struct{}, 1), recordsKick: make(chan struct{}, 1),
		recordsDesc: prometheus.NewDesc("filament_agent_kube_records",
			"ServiceRecords and PolicyRecords the agent holds, by kind (service, policy); not enforced yet.", []string{"kind"}, nil),
		localTargetsDesc: prometheus.NewDesc("filament_agent_kube_policy_local_targets",
			"This node's pod interfaces that PolicyRecords select (not enforced yet).", nil, nil)}
	const resync = 10 * time.Minute
	s.networks = crdinformer.VirtualNetworks(c, resync)
	s.all = crdinformer.Ports(c, resync)
	s.local = localPorts(c, nodeName, resync)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.FilamentNodes.List(ctx, "", o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return c.FilamentNodes.Watch(ctx, "", o)
		},
	}
	s.nodes = cache.NewSharedIndexInformer(lw, &v1alpha1.FilamentNode{}, resync, cache.Indexers{})
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.changed() },
		UpdateFunc: func(any, any) { s.changed() },
		DeleteFunc: func(any) { s.changed() },
	}
	for _, inf := range []cache.SharedIndexInformer{s.networks, s.nodes, s.all} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return nil, fmt.Errorf("kubesource: %w", err)
		}
	}
	s.services, s.policies = crdinformer.ServiceRecords(c, resync), crdinformer.PolicyRecords(c, resync)
	kickRecords := func() {
		select {
		case s.recordsKick <- struct{}{}:
		default:
		}
	}
	rh := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { kickRecords() },
		UpdateFunc: func(any, any) { kickRecords() },
		DeleteFunc: func(any) { kickRecords() },
	}
	for _, inf := range []cache.SharedIndexInformer{s.services, s.policies} {
		if err := inf.SetTransform(stripManagedFields); err != nil {
			return nil, fmt.Errorf("kubesource: %w", err)
		}
		if _, err := inf.AddEventHandler(rh); err != nil {
			return nil, fmt.Errorf("kubesource: %w", err)
		}
	}
	return s, nil
}

// Collectors are the source's metrics: the API server's reachability.
func (s *Source) Collectors() []prometheus.Collector { return s.reach.collectors() }

// localPorts is an informer on the node's Ports only, indexed by pod.
func localPorts(c *crdclient.Client, nodeName string, resync time.Duration) cache.SharedIndexInformer {
	sel := fields.OneTermEqualSelector("spec.node", nodeName).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return c.Ports.List(ctx, "", o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return c.Ports.Watch(ctx, "", o)
		},
	}
	return cache.NewSharedIndexInformer(lw, &v1alpha1.Port{}, resync, cache.Indexers{
		crdinformer.ByPod: func(obj any) ([]string, error) {
			p, ok := obj.(*v1alpha1.Port)
			if !ok {
				return nil, fmt.Errorf("kubesource: %T is not a Port", obj)
			}
			return []string{p.Spec.Pod.Namespace + "/" + p.Spec.Pod.Name}, nil
		},
	})
}

func (s *Source) changed() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// stripManagedFields keeps the record caches small: nothing reads them.
func stripManagedFields(obj any) (any, error) {
	if o, ok := obj.(metav1.Object); ok {
		o.SetManagedFields(nil)
	}
	return obj, nil
}

// Sync starts the informers and waits until their caches are filled, then
// sets the desired state once (before the node's Start: the first
// programming already has the networks). The records' informers start
// too, but readiness does not wait for them: nothing is programmed from
// them yet.
func (s *Source) Sync(ctx context.Context, d Desired) error {
	for _, inf := range []cache.SharedIndexInformer{s.networks, s.nodes, s.local, s.all, s.services, s.policies} {
		go inf.RunWithContext(ctx)
	}
	if !cache.WaitForCacheSync(ctx.Done(), s.networks.HasSynced, s.nodes.HasSynced, s.local.HasSynced, s.all.HasSynced) {
		return fmt.Errorf("kubesource: caches not synced: %w", ctx.Err())
	}
	select {
	case <-s.kick: // the initial adds: programmed below
	default:
	}
	nets, peers := s.desired()
	return d.SetDesired(ctx, nets, peers)
}

// Run applies every change until ctx ends (changes arriving together are
// applied once) and writes the Ports' Programmed conditions.
func (s *Source) Run(ctx context.Context, d Desired) {
	go s.writeStatuses(ctx)
	go s.logRecords(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		// Coalesce a burst (a relist after an outage, many pods at once).
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
		select {
		case <-s.kick:
		default:
		}
		nets, peers := s.desired()
		if err := d.SetDesired(ctx, nets, peers); err != nil {
			s.log.Warn("cannot apply the API server's state: the dataplane check retries", zap.Error(err))
		}
	}
}

// desired is the networks (every VirtualNetwork) and peers (every other
// FilamentNode, with its pods' host routes) of the caches.
func (s *Source) desired() ([]config.Network, []config.Peer) {
	var nets []config.Network
	for _, o := range s.networks.GetStore().List() {
		vn := o.(*v1alpha1.VirtualNetwork)
		nw, err := Network(vn)
		if err != nil {
			s.log.Warn("VirtualNetwork skipped", zap.String("network", vn.Name), zap.Error(err))
			continue
		}
		nets = append(nets, nw)
	}
	slices.SortFunc(nets, func(a, b config.Network) int { return strings.Compare(a.Name, b.Name) })
	hosts := map[string]map[string][]netip.Prefix{} // node -> network -> host routes
	for _, o := range s.all.GetStore().List() {
		p := o.(*v1alpha1.Port)
		if p.Spec.Node == s.node || p.Spec.Node == "" {
			continue
		}
		if hosts[p.Spec.Node] == nil {
			hosts[p.Spec.Node] = map[string][]netip.Prefix{}
		}
		for _, ip := range p.Spec.IPs {
			a, err := netip.ParseAddr(ip)
			if err != nil {
				continue // the CRD's validation refuses it
			}
			hosts[p.Spec.Node][p.Spec.Network] = append(hosts[p.Spec.Node][p.Spec.Network], netip.PrefixFrom(a, a.BitLen()))
		}
	}
	var peers []config.Peer
	for _, o := range s.nodes.GetStore().List() {
		fn := o.(*v1alpha1.FilamentNode)
		if fn.Name == s.node {
			continue
		}
		p := config.Peer{Name: fn.Name, Hosts: hosts[fn.Name]}
		p.UnderlayIP, _ = netip.ParseAddr(fn.Spec.UnderlayIPv4)
		p.UnderlayIPv6, _ = netip.ParseAddr(fn.Spec.UnderlayIPv6)
		if !p.UnderlayIP.Is4() {
			s.log.Warn("FilamentNode without an IPv4 underlay address skipped", zap.String("peer", fn.Name))
			continue
		}
		for _, h := range p.Hosts {
			slices.SortFunc(h, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		}
		peers = append(peers, p)
	}
	slices.SortFunc(peers, func(a, b config.Peer) int { return strings.Compare(a.Name, b.Name) })
	return nets, peers
}

// Network is a VirtualNetwork as the agent's network: its first IPv4 and
// first IPv6 subnet (gateways default to their first address); the VRF is
// the node's to choose (0).
func Network(vn *v1alpha1.VirtualNetwork) (config.Network, error) {
	nw := config.Network{Name: vn.Name, VNI: vn.Spec.VNI, Label: vn.Spec.Label, Encap: vn.Spec.Encapsulation}
	if nw.Encap == "" {
		nw.Encap = config.EncapVXLAN
	}
	for _, sn := range vn.Spec.Subnets {
		p, err := netip.ParsePrefix(sn.CIDR)
		if err != nil {
			return nw, fmt.Errorf("subnet %q: %w", sn.CIDR, err)
		}
		gw := p.Masked().Addr().Next()
		if sn.Gateway != "" {
			if gw, err = netip.ParseAddr(sn.Gateway); err != nil {
				return nw, fmt.Errorf("gateway %q: %w", sn.Gateway, err)
			}
		}
		switch {
		case p.Addr().Is4() && !nw.Subnet.IsValid():
			nw.Subnet, nw.Gateway = p.Masked(), gw
		case p.Addr().Is6() && !nw.Subnet6.IsValid():
			nw.Subnet6, nw.Gateway6 = p.Masked(), gw
		}
	}
	if !nw.Subnet.IsValid() {
		return nw, fmt.Errorf("no IPv4 subnet")
	}
	return nw, nil
}

// Port finds the request's pod's Port on this node: same namespace and
// name, and same uid when the request carries one (a pod recreated with
// the name waits for its own Port), with an Allocated address.
func (s *Source) Port(req *cniapi.Request) (node.Assigned, bool) {
	p := s.find(req)
	if p == nil {
		return node.Assigned{}, false
	}
	as := node.Assigned{Network: p.Spec.Network, MAC: p.Spec.MAC}
	for _, ip := range p.Spec.IPs {
		a, err := netip.ParseAddr(ip)
		switch {
		case err != nil:
		case a.Is4() && !as.IPv4.IsValid():
			as.IPv4 = a
		case a.Is6() && !as.IPv6.IsValid():
			as.IPv6 = a
		}
	}
	return as, as.IPv4.IsValid()
}

func (s *Source) find(req *cniapi.Request) *v1alpha1.Port {
	objs, _ := s.local.GetIndexer().ByIndex(crdinformer.ByPod, req.PodNamespace+"/"+req.PodName)
	for _, o := range objs {
		p := o.(*v1alpha1.Port)
		if req.PodUID != "" && p.Spec.Pod.UID != req.PodUID {
			continue
		}
		if req.IfName != "" && p.Spec.Interface != "" && p.Spec.Interface != req.IfName {
			continue
		}
		return p
	}
	return nil
}

// Programmed queues the Programmed condition of the request's Port: True
// (reason Attached), or False with the failure's reason and message.
func (s *Source) Programmed(req *cniapi.Request, failure *node.PortFailure) {
	p := s.find(req)
	if p == nil {
		return
	}
	s.statusMu.Lock()
	s.pending[p.Namespace+"/"+p.Name] = ProgrammedCondition(s.node, failure)
	s.statusMu.Unlock()
	select {
	case s.statusCh <- struct{}{}:
	default:
	}
}

// writeStatuses writes the queued conditions, retrying failed ones (API
// server away, conflicts) every second.
func (s *Source) writeStatuses(ctx context.Context) {
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.statusCh:
		case <-retry.C:
		}
		s.statusMu.Lock()
		todo := make(map[string]metav1.Condition, len(s.pending))
		for k, c := range s.pending {
			todo[k] = c
		}
		s.statusMu.Unlock()
		for k, c := range todo {
			err := s.writeStatus(ctx, k, c)
			if err != nil {
				s.log.Debug("cannot write the Port's status: retrying", zap.String("port", k), zap.Error(err))
				continue
			}
			s.statusMu.Lock()
			if s.pending[k] == c { // not replaced by a later ADD meanwhile
				delete(s.pending, k)
			}
			s.statusMu.Unlock()
		}
	}
}

// maxMessage bounds a condition's message (a dataplane error can be long;
// the schema allows 32 KiB).
const maxMessage = 1024

// ProgrammedCondition is the Programmed condition of a Port whose ADD
// ended with failure (nil: attached and programmed) on node.
func ProgrammedCondition(node string, failure *node.PortFailure) metav1.Condition {
	if failure == nil {
		return metav1.Condition{Type: v1alpha1.ConditionProgrammed, Status: metav1.ConditionTrue, Reason: "Attached",
			Message: "attached and programmed by the agent of node " + node}
	}
	msg := "the agent of node " + node + " could not program it: " + failure.Message
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "..."
	}
	return metav1.Condition{Type: v1alpha1.ConditionProgrammed, Status: metav1.ConditionFalse, Reason: failure.Reason, Message: msg}
}

func (s *Source) writeStatus(ctx context.Context, key string, cond metav1.Condition) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	p, err := s.client.Ports.Get(wctx, ns, name)
	if apierrors.IsNotFound(err) {
		return nil // the pod is gone: nothing to report
	}
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	cond.ObservedGeneration = p.Generation
	if old := meta.FindStatusCondition(p.Status.Conditions, cond.Type); old != nil && old.Status == cond.Status &&
		old.Reason == cond.Reason && old.Message == cond.Message && old.ObservedGeneration == cond.ObservedGeneration {
		return nil // a repeated ADD: nothing new to say
	}
	meta.SetStatusCondition(&p.Status.Conditions, cond)
	if _, err := s.client.Ports.UpdateStatus(wctx, p); err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	if cond.Status == metav1.ConditionTrue {
		s.log.Info("Port programmed", zap.String("port", key))
	} else {
		s.log.Warn("Port not programmed", zap.String("port", key), zap.String("reason", cond.Reason), zap.String("message", cond.Message))
	}
	return nil
}
