// Package records compiles Services (with their EndpointSlices) and
// NetworkPolicies into the custom resources the agents watch:
// ServiceRecords (cluster IPs, ports, backends resolved to the Ports that
// hold their addresses) and PolicyRecords (selectors resolved to the
// selected Ports' addresses). Each record has its source's namespace and
// name and an owner reference to it; kube-manager deletes it itself once
// the source is gone (it does not rely on a garbage collector). The fast
// path does not enforce them yet (a separate issue): they are recorded so
// that the agents have them when it does.
package records

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/filament-net/filament/kubemanager/apis/v1alpha1"
	"github.com/filament-net/filament/kubemanager/crdclient"
	"github.com/filament-net/filament/kubemanager/crdinformer"
)

// Keys of the records' workqueue: a prefix and namespace/name.
const (
	ServicePrefix = "svc/"
	PolicyPrefix  = "np/"
)

// SliceByAddress indexes EndpointSlices by each of their endpoints'
// addresses, so that a Port's change finds the Services it backs.
const SliceByAddress = "address"

// The most a record holds (the CRDs' maxItems: the CEL cost budget and
// etcd's object size); a source that compiles to more is refused, logged
// and retried, never cut short.
const (
	maxBackends = 10000
	maxTargets  = 10000
	maxRules    = 32
	maxPeers    = 10000
)

// ManagedByLabel and ManagedBy mark the records kube-manager writes.
const (
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "filament-kube-manager"
)

// SliceAddresses is the SliceByAddress index function.
func SliceAddresses(obj any) ([]string, error) {
	es, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, fmt.Errorf("records: %T is not an EndpointSlice", obj)
	}
	var out []string
	for _, ep := range es.Endpoints {
		out = append(out, ep.Addresses...)
	}
	return out, nil
}

// ServiceKeyOfSlice is the queue key of an EndpointSlice's Service.
func ServiceKeyOfSlice(es *discoveryv1.EndpointSlice) (string, bool) {
	svc := es.Labels[discoveryv1.LabelServiceName]
	if svc == "" {
		return "", false
	}
	return ServicePrefix + es.Namespace + "/" + svc, true
}

// Controller writes the records from the caches.
type Controller struct {
	CRD            *crdclient.Client
	Services       corelisters.ServiceLister
	EndpointSlices discoverylisters.EndpointSliceLister
	// Slices is the EndpointSlices' informer, indexed SliceByAddress.
	Slices     cache.SharedIndexInformer
	Policies   networkinglisters.NetworkPolicyLister
	Pods       corelisters.PodLister
	Namespaces corelisters.NamespaceLister
	// Ports is indexed by crdinformer.ByPod and crdinformer.ByIP.
	Ports          cache.SharedIndexInformer
	ServiceRecords cache.SharedIndexInformer
	PolicyRecords  cache.SharedIndexInformer
	Log            *zap.Logger
}

// Sync writes, updates or deletes the record of key (svc/ns/name or
// np/ns/name).
func (c *Controller) Sync(ctx context.Context, key string) error {
	switch {
	case strings.HasPrefix(key, ServicePrefix):
		return c.syncService(ctx, strings.TrimPrefix(key, ServicePrefix))
	case strings.HasPrefix(key, PolicyPrefix):
		return c.syncPolicy(ctx, strings.TrimPrefix(key, PolicyPrefix))
	}
	return nil
}

// ServicesOfPort are the queue keys of the Services whose EndpointSlices
// have one of the Port's addresses.
func (c *Controller) ServicesOfPort(p *v1alpha1.Port) []string {
	var out []string
	for _, ip := range p.Spec.IPs {
		objs, _ := c.Slices.GetIndexer().ByIndex(SliceByAddress, ip)
		for _, o := range objs {
			if k, ok := ServiceKeyOfSlice(o.(*discoveryv1.EndpointSlice)); ok {
				out = append(out, k)
			}
		}
	}
	return out
}

// PoliciesOfNamespace are the queue keys of the NetworkPolicies whose
// record a change of a pod (or Port) of namespace ns may change: those of
// ns, and those with a namespaceSelector (any namespace's pods). ns ""
// gives the latter only (a Namespace's labels changed).
func (c *Controller) PoliciesOfNamespace(ns string) []string {
	all, _ := c.Policies.List(labels.Everything())
	var out []string
	for _, np := range all {
		if (ns != "" && np.Namespace == ns) || crossNamespace(np) {
			out = append(out, PolicyPrefix+np.Namespace+"/"+np.Name)
		}
	}
	return out
}

func crossNamespace(np *networkingv1.NetworkPolicy) bool {
	for _, r := range np.Spec.Ingress {
		for _, p := range r.From {
			if p.NamespaceSelector != nil {
				return true
			}
		}
	}
	for _, r := range np.Spec.Egress {
		for _, p := range r.To {
			if p.NamespaceSelector != nil {
				return true
			}
		}
	}
	return false
}

func (c *Controller) syncService(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	cached, _ := cachedAs[*v1alpha1.ServiceRecord](c.ServiceRecords, key)
	svc, err := c.Services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return deleteRecord(ctx, c.CRD.ServiceRecords, cached, c.Log)
	}
	if err != nil {
		return fmt.Errorf("records: service %s: %w", key, err)
	}
	sl, err := c.EndpointSlices.EndpointSlices(ns).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: name}))
	if err != nil {
		return fmt.Errorf("records: endpointslices of %s: %w", key, err)
	}
	spec := CompileService(svc, sl, c.backend)
	if len(spec.Backends) > maxBackends {
		return fmt.Errorf("records: service %s: %d backends, more than a ServiceRecord holds (%d)", key, len(spec.Backends), maxBackends)
	}
	want := &v1alpha1.ServiceRecord{ObjectMeta: recordMeta(svc, "v1", "Service"), Spec: spec}
	return write(ctx, c.CRD.ServiceRecords, cached, want, func(a, b *v1alpha1.ServiceRecord) bool {
		return equality.Semantic.DeepEqual(a.Spec, b.Spec)
	}, c.Log)
}

// Resolve finds a backend's Port: ok false drops the address.
type Resolve func(ns, addr string, ref *corev1.ObjectReference) (b v1alpha1.ServiceBackend, ok bool)

// CompileService flattens a Service and its EndpointSlices; resolve
// completes (or drops) each endpoint address. Backends are sorted by
// address, one per address (a ready one first).
func CompileService(svc *corev1.Service, sl []*discoveryv1.EndpointSlice, resolve Resolve) v1alpha1.ServiceRecordSpec {
	spec := v1alpha1.ServiceRecordSpec{ServiceUID: string(svc.UID), Type: string(svc.Spec.Type)}
	if spec.Type == "" {
		spec.Type = string(corev1.ServiceTypeClusterIP)
	}
	for _, ip := range svc.Spec.ClusterIPs {
		if ip != corev1.ClusterIPNone && ip != "" {
			spec.ClusterIPs = append(spec.ClusterIPs, ip)
		}
	}
	for _, p := range svc.Spec.Ports {
		sp := v1alpha1.ServicePort{Name: p.Name, Protocol: protocol(&p.Protocol), Port: p.Port}
		if tp := p.TargetPort.String(); tp != "0" && tp != "" {
			sp.TargetPort = tp
		}
		spec.Ports = append(spec.Ports, sp)
	}
	byIP := map[string]v1alpha1.ServiceBackend{}
	for _, es := range sl {
		var ports []v1alpha1.BackendPort
		for _, p := range es.Ports {
			if p.Port == nil {
				continue
			}
			bp := v1alpha1.BackendPort{Protocol: protocol(p.Protocol), Port: *p.Port}
			if p.Name != nil {
				bp.Name = *p.Name
			}
			ports = append(ports, bp)
		}
		for _, ep := range es.Endpoints {
			ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
			for _, a := range ep.Addresses {
				b, ok := resolve(svc.Namespace, a, ep.TargetRef)
				if !ok {
					continue
				}
				b.IP, b.Ready, b.Ports = a, ready, ports
				if old, seen := byIP[a]; seen && (old.Ready || !ready) {
					continue
				}
				byIP[a] = b
			}
		}
	}
	for _, b := range byIP {
		spec.Backends = append(spec.Backends, b)
	}
	slices.SortFunc(spec.Backends, func(a, b v1alpha1.ServiceBackend) int { return compareAddr(a.IP, b.IP) })
	return spec
}

// backend resolves an endpoint address to the Port that holds it. An
// endpoint of a pod (targetRef) whose Port does not hold the address (the
// pod is gone, or not allocated yet: its EndpointSlice is behind) is
// dropped; an address of no Port and no pod is kept without a network (an
// endpoint outside the overlay).
func (c *Controller) backend(ns, addr string, ref *corev1.ObjectReference) (v1alpha1.ServiceBackend, bool) {
	ports := crdinformer.PortsBy(c.Ports, crdinformer.ByIP, addr)
	slices.SortFunc(ports, func(a, b *v1alpha1.Port) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	of := func(p *v1alpha1.Port) v1alpha1.ServiceBackend {
		b := v1alpha1.ServiceBackend{Network: p.Spec.Network, Node: p.Spec.Node}
		if p.Spec.Pod.Namespace == ns {
			b.Pod = p.Spec.Pod.Name
		}
		return b
	}
	if ref != nil && ref.Kind == "Pod" {
		refNS := ref.Namespace
		if refNS == "" {
			refNS = ns
		}
		for _, p := range ports {
			if p.Spec.Pod.Namespace == refNS && p.Spec.Pod.Name == ref.Name && (ref.UID == "" || string(ref.UID) == p.Spec.Pod.UID) {
				return of(p), true
			}
		}
		return v1alpha1.ServiceBackend{}, false
	}
	if len(ports) > 0 {
		return of(ports[0]), true
	}
	return v1alpha1.ServiceBackend{}, true
}

func (c *Controller) syncPolicy(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	cached, _ := cachedAs[*v1alpha1.PolicyRecord](c.PolicyRecords, key)
	np, err := c.Policies.NetworkPolicies(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return deleteRecord(ctx, c.CRD.PolicyRecords, cached, c.Log)
	}
	if err != nil {
		return fmt.Errorf("records: networkpolicy %s: %w", key, err)
	}
	spec, err := c.compilePolicy(np)
	if err != nil {
		return fmt.Errorf("records: networkpolicy %s: %w", key, err)
	}
	want := &v1alpha1.PolicyRecord{ObjectMeta: recordMeta(np, "networking.k8s.io/v1", "NetworkPolicy"), Spec: spec}
	return write(ctx, c.CRD.PolicyRecords, cached, want, func(a, b *v1alpha1.PolicyRecord) bool {
		return equality.Semantic.DeepEqual(a.Spec, b.Spec)
	}, c.Log)
}

// compilePolicy resolves a NetworkPolicy's selectors to addresses: its
// targets are the Ports of the pods its podSelector selects; a peer's pods
// (podSelector and namespaceSelector, as the API defines them) become
// their Ports' addresses as /32 and /128.
func (c *Controller) compilePolicy(np *networkingv1.NetworkPolicy) (v1alpha1.PolicyRecordSpec, error) {
	spec := v1alpha1.PolicyRecordSpec{PolicyUID: string(np.UID)}
	types := np.Spec.PolicyTypes
	if len(types) == 0 { // the API's default
		types = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(np.Spec.Egress) > 0 {
			types = append(types, networkingv1.PolicyTypeEgress)
		}
	}
	for _, t := range types {
		spec.Types = append(spec.Types, string(t))
	}
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		return spec, err
	}
	pods, err := c.Pods.Pods(np.Namespace).List(sel)
	if err != nil {
		return spec, err
	}
	for _, pod := range pods {
		for _, p := range c.portsOf(pod) {
			spec.Targets = append(spec.Targets, v1alpha1.PolicyTarget{Pod: pod.Name, Node: p.Spec.Node,
				Network: p.Spec.Network, IPs: slices.Clone(p.Spec.IPs)})
		}
	}
	slices.SortFunc(spec.Targets, func(a, b v1alpha1.PolicyTarget) int {
		return strings.Compare(a.Pod+"/"+a.Network, b.Pod+"/"+b.Network)
	})
	if len(spec.Targets) > maxTargets {
		return spec, fmt.Errorf("%d targets, more than a PolicyRecord holds (%d)", len(spec.Targets), maxTargets)
	}
	if len(np.Spec.Ingress) > maxRules || len(np.Spec.Egress) > maxRules {
		return spec, fmt.Errorf("more than %d rules of a direction", maxRules)
	}
	for _, r := range np.Spec.Ingress {
		rule, err := c.compileRule(np.Namespace, r.From, r.Ports)
		if err != nil {
			return spec, err
		}
		spec.Ingress = append(spec.Ingress, rule)
	}
	for _, r := range np.Spec.Egress {
		rule, err := c.compileRule(np.Namespace, r.To, r.Ports)
		if err != nil {
			return spec, err
		}
		spec.Egress = append(spec.Egress, rule)
	}
	return spec, nil
}

// portsOf is the pod's allocated Ports (the pod's uid: not a former pod's
// of that name).
func (c *Controller) portsOf(pod *corev1.Pod) []*v1alpha1.Port {
	var out []*v1alpha1.Port
	for _, p := range crdinformer.PortsBy(c.Ports, crdinformer.ByPod, pod.Namespace+"/"+pod.Name) {
		if p.Spec.Pod.UID == string(pod.UID) && len(p.Spec.IPs) > 0 {
			out = append(out, p)
		}
	}
	return out
}

func (c *Controller) compileRule(ns string, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) (v1alpha1.PolicyRule, error) {
	var r v1alpha1.PolicyRule
	seen := map[string]bool{}
	add := func(p v1alpha1.PolicyPeer) {
		k := p.CIDR + " " + strings.Join(p.Except, ",")
		if !seen[k] {
			seen[k] = true
			r.Peers = append(r.Peers, p)
		}
	}
	if len(peers) == 0 { // any peer
		add(v1alpha1.PolicyPeer{CIDR: "0.0.0.0/0"})
		add(v1alpha1.PolicyPeer{CIDR: "::/0"})
	}
	for _, p := range peers {
		if p.IPBlock != nil {
			add(v1alpha1.PolicyPeer{CIDR: p.IPBlock.CIDR, Except: slices.Clone(p.IPBlock.Except)})
			continue
		}
		namespaces := []string{ns}
		if p.NamespaceSelector != nil {
			sel, err := metav1.LabelSelectorAsSelector(p.NamespaceSelector)
			if err != nil {
				return r, err
			}
			list, err := c.Namespaces.List(sel)
			if err != nil {
				return r, err
			}
			namespaces = namespaces[:0]
			for _, n := range list {
				namespaces = append(namespaces, n.Name)
			}
		}
		podSel := labels.Everything()
		if p.PodSelector != nil {
			s, err := metav1.LabelSelectorAsSelector(p.PodSelector)
			if err != nil {
				return r, err
			}
			podSel = s
		}
		for _, n := range namespaces {
			pods, err := c.Pods.Pods(n).List(podSel)
			if err != nil {
				return r, err
			}
			for _, pod := range pods {
				for _, port := range c.portsOf(pod) {
					for _, ip := range port.Spec.IPs {
						if a, err := netip.ParseAddr(ip); err == nil {
							add(v1alpha1.PolicyPeer{CIDR: netip.PrefixFrom(a, a.BitLen()).String()})
						}
					}
				}
			}
		}
	}
	slices.SortFunc(r.Peers, func(a, b v1alpha1.PolicyPeer) int {
		if c := comparePrefix(a.CIDR, b.CIDR); c != 0 {
			return c
		}
		return strings.Compare(strings.Join(a.Except, ","), strings.Join(b.Except, ","))
	})
	if len(r.Peers) > maxPeers {
		return r, fmt.Errorf("a rule of %d peers, more than a PolicyRecord holds (%d)", len(r.Peers), maxPeers)
	}
	for _, p := range ports {
		out := v1alpha1.PolicyPort{Protocol: protocol(p.Protocol)}
		if p.Port != nil {
			out.Port = p.Port.String()
		}
		if p.EndPort != nil {
			out.EndPort = *p.EndPort
		}
		r.Ports = append(r.Ports, out)
	}
	return r, nil
}

func protocol(p *corev1.Protocol) string {
	if p == nil || *p == "" {
		return string(corev1.ProtocolTCP)
	}
	return string(*p)
}

// compareAddr orders addresses numerically (IPv4 first); text that is
// not one sorts after, as text.
func compareAddr(a, b string) int {
	x, errX := netip.ParseAddr(a)
	y, errY := netip.ParseAddr(b)
	switch {
	case errX == nil && errY == nil:
		return x.Compare(y)
	case errX == nil:
		return -1
	case errY == nil:
		return 1
	}
	return strings.Compare(a, b)
}

func comparePrefix(a, b string) int {
	x, errX := netip.ParsePrefix(a)
	y, errY := netip.ParsePrefix(b)
	if errX != nil || errY != nil {
		return strings.Compare(a, b)
	}
	if c := x.Addr().Compare(y.Addr()); c != 0 {
		return c
	}
	return x.Bits() - y.Bits()
}

// recordMeta is a record's metadata: its source's namespace and name,
// owned by the source (a cluster's garbage collector deletes it with it).
func recordMeta(src metav1.Object, apiVersion, kind string) metav1.ObjectMeta {
	isController := true
	return metav1.ObjectMeta{
		Namespace: src.GetNamespace(), Name: src.GetName(),
		Labels: map[string]string{ManagedByLabel: ManagedBy},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: src.GetName(),
			UID: src.GetUID(), Controller: &isController}},
	}
}

func cachedAs[T any](inf cache.SharedIndexInformer, key string) (T, bool) {
	var zero T
	obj, ok, _ := inf.GetStore().GetByKey(key)
	if !ok {
		return zero, false
	}
	t, ok := obj.(T)
	return t, ok
}

// write creates want, or updates cached to it unless the spec and owner
// are the same already (most calls: a Port's status changed, say).
// Semantic equality (a nil list equals an empty one, as JSON drops both):
// the record's own update event must find nothing to write, or the two
// would chase each other.
func write[T crdclient.Object, L runtime.Object](ctx context.Context, r *crdclient.Resource[T, L], cached, want T,
	sameSpec func(a, b T) bool, log *zap.Logger) error {
	kind := reflect.TypeOf(want).Elem().Name()
	if reflect.ValueOf(cached).IsNil() {
		_, err := r.Create(ctx, want)
		if apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("records: %s %s/%s exists but is not cached yet: %w", kind, want.GetNamespace(), want.GetName(), err)
		}
		if err != nil {
			return fmt.Errorf("records: %w", err)
		}
		log.Info("record created", zap.String("kind", kind), zap.String("namespace", want.GetNamespace()), zap.String("name", want.GetName()))
		return nil
	}
	if sameSpec(cached, want) && equality.Semantic.DeepEqual(cached.GetOwnerReferences(), want.GetOwnerReferences()) &&
		cached.GetLabels()[ManagedByLabel] == ManagedBy {
		return nil
	}
	want.SetResourceVersion(cached.GetResourceVersion())
	if _, err := r.Update(ctx, want); err != nil {
		return fmt.Errorf("records: %w", err)
	}
	log.Debug("record updated", zap.String("kind", kind), zap.String("namespace", want.GetNamespace()), zap.String("name", want.GetName()))
	return nil
}

// deleteRecord deletes the cached record of a source that is gone.
func deleteRecord[T crdclient.Object, L runtime.Object](ctx context.Context, r *crdclient.Resource[T, L], cached T, log *zap.Logger) error {
	if reflect.ValueOf(cached).IsNil() {
		return nil
	}
	uid := cached.GetUID()
	err := r.Delete(ctx, cached.GetNamespace(), cached.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("records: %w", err)
	}
	log.Info("record deleted: its source is gone", zap.String("kind", reflect.TypeOf(cached).Elem().Name()),
		zap.String("namespace", cached.GetNamespace()), zap.String("name", cached.GetName()))
	return nil
}
