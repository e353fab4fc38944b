// Package networks keeps the VirtualNetworks kube-manager owns: the
// cluster's default pod network (from its flags), and one network per
// namespace annotated filament.dev/isolated: "true", with a subnet carved
// from the isolated pool and its own VNI (or MPLS label). An isolated
// namespace's network is deleted, with its address blocks, once the
// namespace is gone (or no longer isolated) and no Port uses it.
package networks

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/filament-net/filament/kubemanager/apis/v1alpha1"
	"github.com/filament-net/filament/kubemanager/crdclient"
	"github.com/filament-net/filament/kubemanager/crdinformer"
	"github.com/filament-net/filament/kubemanager/netconfig"
)

// ManagedByLabel marks the VirtualNetworks kube-manager made (and may
// delete); a network made by hand is never touched.
const ManagedByLabel = "app.kubernetes.io/managed-by"

// ManagedBy is ManagedByLabel's value.
const ManagedBy = "filament-kube-manager"

// BlockDeleter removes a deleted network's address blocks.
type BlockDeleter interface {
	DeleteNetwork(ctx context.Context, network string) error
}

// Controller reconciles networks by name.
type Controller struct {
	Config     *netconfig.Config
	CRD        *crdclient.Client
	Namespaces corelisters.NamespaceLister
	Networks   cache.SharedIndexInformer
	Ports      cache.SharedIndexInformer
	Blocks     BlockDeleter
	// Claims holds the isolated pool's index claims (the IPAM namespace's
	// ConfigMaps).
	Claims typedcorev1.ConfigMapInterface
	Log    *zap.Logger
}

// NetworkOf names the network of namespace ns's new pods: its own if it is
// isolated, else the default. The network may not exist yet.
func NetworkOf(cfg *netconfig.Config, ns *metav1.ObjectMeta) string {
	if Isolated(ns) {
		return netconfig.IsolatedNetworkPrefix + ns.Name
	}
	return cfg.Name
}

// Isolated tells whether a namespace asks for a network of its own.
func Isolated(ns *metav1.ObjectMeta) bool {
	return ns != nil && ns.DeletionTimestamp == nil && ns.Annotations[netconfig.IsolatedAnnotation] == "true"
}

// KeyOfNamespace is the key of a namespace's isolated network.
func KeyOfNamespace(ns string) string { return netconfig.IsolatedNetworkPrefix + ns }

// Sync reconciles the network named key.
func (c *Controller) Sync(ctx context.Context, key string) error {
	if key == c.Config.Name {
		return c.ensure(ctx, key, c.Config.DefaultNetwork())
	}
	nsName, ok := strings.CutPrefix(key, netconfig.IsolatedNetworkPrefix)
	if !ok {
		return nil // not a name kube-manager gives
	}
	ns, err := c.Namespaces.Get(nsName)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("networks: namespace %s: %w", nsName, err)
	}
	if err == nil && Isolated(&ns.ObjectMeta) {
		return c.ensureIsolated(ctx, key, nsName)
	}
	return c.deleteIfUnused(ctx, key, nsName)
}

func (c *Controller) cached(name string) *v1alpha1.VirtualNetwork {
	obj, ok, _ := c.Networks.GetStore().GetByKey(name)
	if !ok {
		return nil
	}
	vn, _ := obj.(*v1alpha1.VirtualNetwork)
	return vn
}

func (c *Controller) ensure(ctx context.Context, name string, spec v1alpha1.VirtualNetworkSpec) error {
	if vn := c.cached(name); vn != nil {
		if !sameSubnets(vn.Spec.Subnets, spec.Subnets) || vn.Spec.VNI != spec.VNI || vn.Spec.Label != spec.Label {
			// Pods have addresses from it and packets carry its VNI: a
			// change of flags does not rewrite a live network.
			c.Log.Warn("the default network differs from the flags; kept as it is",
				zap.String("network", name), zap.Any("stored", vn.Spec), zap.Any("flags", spec))
		}
		return nil
	}
	_, err := c.CRD.VirtualNetworks.Create(ctx, &v1alpha1.VirtualNetwork{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{ManagedByLabel: ManagedBy}},
		Spec:       spec,
	})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("networks: %w", err)
	}
	c.Log.Info("network created", zap.String("network", name), zap.Any("spec", spec))
	return nil
}

func sameSubnets(a, b []v1alpha1.Subnet) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].CIDR != b[i].CIDR {
			return false
		}
	}
	return true
}

// ensureIsolated creates namespace ns's network with the first pool index
// (subnet and identifier) nobody holds. An index is held by a ConfigMap
// isolated-<index> in the IPAM namespace, created by its deterministic
// name: two writers (two leaders for a moment, or two workers) cannot both
// create it, so two namespaces never get one subnet. The claim is made
// before the network, so a restart between the two reuses it.
func (c *Controller) ensureIsolated(ctx context.Context, name, ns string) error {
	if vn := c.cached(name); vn != nil {
		return nil
	}
	idx, err := c.indexOf(ctx, ns)
	if err != nil {
		return err
	}
	spec, ok := c.Config.IsolatedNetwork(ns, idx)
	if !ok {
		return fmt.Errorf("networks: namespace %s: the isolated pool or identifiers are used up", ns)
	}
	return c.ensure(ctx, name, spec)
}

// indexOf returns the pool index ns holds, claiming the lowest free one
// whose subnet overlaps no existing network if it holds none.
func (c *Controller) indexOf(ctx context.Context, ns string) (int, error) {
	held, err := c.Claims.List(ctx, metav1.ListOptions{LabelSelector: IndexLabel})
	if err != nil {
		return 0, fmt.Errorf("networks: %w", err)
	}
	taken := map[int]bool{}
	for _, cm := range held.Items {
		i, err := strconv.Atoi(cm.Labels[IndexLabel])
		if err != nil {
			continue
		}
		if cm.Data["namespace"] == ns {
			return i, nil
		}
		taken[i] = true
	}
	list, err := c.CRD.VirtualNetworks.List(ctx, "", metav1.ListOptions{})
	if err != nil {
		return 0, fmt.Errorf("networks: %w", err)
	}
	var used []netip.Prefix
	ids := map[uint32]bool{}
	for _, vn := range list.Items {
		for _, s := range vn.Spec.Subnets {
			if p, err := netip.ParsePrefix(s.CIDR); err == nil {
				used = append(used, p)
			}
		}
		ids[networkID(vn.Spec)] = true
	}
	for i := 0; ; i++ {
		spec, ok := c.Config.IsolatedNetwork(ns, i)
		if !ok {
			return 0, fmt.Errorf("networks: namespace %s: the isolated pool or identifiers are used up", ns)
		}
		if taken[i] || ids[networkID(spec)] || overlaps(spec.Subnets, used) {
			continue
		}
		_, err := c.Claims.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: indexName(i), Labels: map[string]string{IndexLabel: strconv.Itoa(i)}},
			Data:       map[string]string{"namespace": ns},
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			continue // another writer took it a moment ago
		}
		if err != nil {
			return 0, fmt.Errorf("networks: claim pool index %d: %w", i, err)
		}
		return i, nil
	}
}

// IndexLabel marks (and numbers) the ConfigMaps that hold pool indexes.
const IndexLabel = "filament.dev/isolated-index"

func indexName(i int) string { return "isolated-" + strconv.Itoa(i) }

// networkID is a network's VNI or MPLS label (the other is 0).
func networkID(s v1alpha1.VirtualNetworkSpec) uint32 {
	if s.VNI != 0 {
		return s.VNI
	}
	return s.Label
}

func overlaps(subs []v1alpha1.Subnet, used []netip.Prefix) bool {
	for _, s := range subs {
		p := netip.MustParsePrefix(s.CIDR)
		for _, u := range used {
			if p.Overlaps(u) {
				return true
			}
		}
	}
	return false
}

// deleteIfUnused deletes an isolated network kube-manager made once no
// Port uses it: checked in the cache, then in the API server (a Port made a
// moment ago may not be cached yet).
func (c *Controller) deleteIfUnused(ctx context.Context, name, ns string) error {
	vn := c.cached(name)
	if vn != nil {
		if vn.Labels[ManagedByLabel] != ManagedBy || vn.Spec.Namespace != ns {
			return nil
		}
		if n := len(crdinformer.PortsBy(c.Ports, crdinformer.ByNetwork, name)); n > 0 {
			c.Log.Debug("network kept: ports use it", zap.String("network", name), zap.Int("ports", n))
			return nil
		}
		ports, err := c.CRD.Ports.List(ctx, "", metav1.ListOptions{FieldSelector: "spec.network=" + name, Limit: 1})
		if err != nil {
			return fmt.Errorf("networks: %w", err)
		}
		if len(ports.Items) > 0 {
			return nil
		}
		err = c.CRD.VirtualNetworks.Delete(ctx, "", name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &vn.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("networks: %w", err)
		}
		if err := c.Blocks.DeleteNetwork(ctx, name); err != nil {
			return err
		}
		c.Log.Info("network deleted: its namespace is gone or not isolated and no port uses it", zap.String("network", name))
	}
	// The pool index last: a restart before this point finds it and
	// finishes the job.
	held, err := c.Claims.List(ctx, metav1.ListOptions{LabelSelector: IndexLabel})
	if err != nil {
		return fmt.Errorf("networks: %w", err)
	}
	for _, cm := range held.Items {
		if cm.Data["namespace"] != ns {
			continue
		}
		err := c.Claims.Delete(ctx, cm.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cm.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("networks: %w", err)
		}
	}
	return nil
}
