// Package ports gives each scheduled pod (spec.nodeName set, not
// hostNetwork) a Port: an address per family of its namespace's network
// from kubemanager/ipam, a MAC derived from its address, the network's VNI
// or label, and the condition Allocated. A Port is deleted, and its
// addresses released, only once its pod is gone: the Pod object is not
// found, or its name now belongs to another pod (another uid). Confirmed
// with a read from the API server, not only the cache. There is no garbage
// collector in the picture: kube-manager deletes Ports itself.
package ports

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/filament-net/filament/kubemanager/apis/v1alpha1"
	"github.com/filament-net/filament/kubemanager/crdclient"
	"github.com/filament-net/filament/kubemanager/crdinformer"
	"github.com/filament-net/filament/kubemanager/ipam"
	"github.com/filament-net/filament/kubemanager/netconfig"
	"github.com/filament-net/filament/kubemanager/networks"
)

// Interface is the pod interface kube-manager makes (one per pod for now).
const Interface = "eth0"

// Allocator is what the controller needs of kubemanager/ipam.
type Allocator interface {
	Claim(ctx context.Context, network string, prefix netip.Prefix, owner ipam.Owner, want netip.Addr) (netip.Addr, error)
	Release(ctx context.Context, network string, prefix netip.Prefix, uid string) error
	ReleaseAddr(ctx context.Context, network string, prefix netip.Prefix, addr netip.Addr, uid string) error
	Claims(ctx context.Context, network string, prefix netip.Prefix) ([]ipam.Claim, error)
}

// Controller reconciles pods by namespace/name.
type Controller struct {
	Config     *netconfig.Config
	Kube       kubernetes.Interface
	CRD        *crdclient.Client
	Pods       corelisters.PodLister
	Namespaces corelisters.NamespaceLister
	Networks   cache.SharedIndexInformer
	Ports      cache.SharedIndexInformer
	IPAM       Allocator
	Log        *zap.Logger
	// NetworkMissing asks the networks controller for a network a pod
	// waits for.
	NetworkMissing func(network string)
	// Requeue queues a pod again: one that waits for a free address, when
	// an address of its network is released.
	Requeue func(key string)

	mu      sync.Mutex
	waiting map[string]map[string]bool // network -> pod keys
}

// Wanted tells whether a pod gets a Port.
func Wanted(p *corev1.Pod) bool { return p.Spec.NodeName != "" && !p.Spec.HostNetwork }

// PortName is the Port's name for a pod: <pod>-eth0, or a shortened pod
// name and a hash when that exceeds 253 characters.
func PortName(pod string) string {
	n := pod + "-" + Interface
	if len(n) <= 253 {
		return n
	}
	h := sha256.Sum256([]byte(pod))
	return pod[:253-len(Interface)-18] + "-" + hex.EncodeToString(h[:8]) + "-" + Interface
}

// MAC derives a pod's MAC from its address: 02:fe and the address's last
// four bytes (locally administered, unicast), unique in the network as the
// address is.
func MAC(a netip.Addr) string {
	b := a.AsSlice()
	b = b[len(b)-4:]
	return fmt.Sprintf("02:fe:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}

// Sync reconciles the pod namespace/name.
func (c *Controller) Sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := c.Pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		pod = nil
	} else if err != nil {
		return fmt.Errorf("ports: pod %s: %w", key, err)
	}
	var keep *v1alpha1.Port
	for _, p := range crdinformer.PortsBy(c.Ports, crdinformer.ByPod, key) {
		if pod != nil && string(pod.UID) == p.Spec.Pod.UID && Wanted(pod) && keep == nil {
			keep = p
			continue
		}
		if err := c.removeStale(ctx, p); err != nil {
			return err
		}
	}
	if pod == nil || !Wanted(pod) {
		return nil
	}
	return c.ensure(ctx, pod, keep)
}

// removeStale deletes a Port whose pod is gone and releases its addresses;
// if the API server still has its pod (the cache lags), it returns an
// error so that the key is tried again.
func (c *Controller) removeStale(ctx context.Context, p *v1alpha1.Port) error {
	gone, err := c.podGone(ctx, p.Spec.Pod)
	if err != nil {
		return err
	}
	if !gone {
		return fmt.Errorf("ports: port %s/%s: its pod %s/%s still exists in the API server", p.Namespace, p.Name, p.Spec.Pod.Name, p.Spec.Pod.UID)
	}
	err = c.CRD.Ports.Delete(ctx, p.Namespace, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("ports: %w", err)
	}
	if err := c.release(ctx, p.Spec.Network, p.Spec.Pod.UID); err != nil {
		return err
	}
	c.Log.Info("port deleted, addresses released", zap.String("port", p.Namespace+"/"+p.Name),
		zap.String("pod_uid", p.Spec.Pod.UID), zap.Strings("ips", p.Spec.IPs))
	return nil
}

// podGone reads the pod from the API server: gone if not found or if its
// name now belongs to another uid.
func (c *Controller) podGone(ctx context.Context, ref v1alpha1.PodRef) (bool, error) {
	live, err := c.Kube.CoreV1().Pods(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("ports: read pod %s/%s: %w", ref.Namespace, ref.Name, err)
	}
	return string(live.UID) != ref.UID, nil
}

func (c *Controller) wait(network, key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waiting == nil {
		c.waiting = map[string]map[string]bool{}
	}
	if c.waiting[network] == nil {
		c.waiting[network] = map[string]bool{}
	}
	c.waiting[network][key] = true
}

// wake queues again the pods that wait for an address of network.
func (c *Controller) wake(network string) {
	c.mu.Lock()
	keys := c.waiting[network]
	delete(c.waiting, network)
	c.mu.Unlock()
	if c.Requeue == nil {
		return
	}
	for k := range keys {
		c.Requeue(k)
	}
}

// release drops uid's claims in every subnet of network.
func (c *Controller) release(ctx context.Context, network, uid string) error {
	defer c.wake(network)
	vn := c.network(network)
	if vn == nil {
		return nil // the network and its blocks are gone
	}
	for _, s := range vn.Spec.Subnets {
		p, err := netip.ParsePrefix(s.CIDR)
		if err != nil {
			continue
		}
		if err := c.IPAM.Release(ctx, network, p, uid); err != nil {
			return fmt.Errorf("ports: %w", err)
		}
	}
	return nil
}

func (c *Controller) network(name string) *v1alpha1.VirtualNetwork {
	obj, ok, _ := c.Networks.GetStore().GetByKey(name)
	if !ok {
		return nil
	}
	vn, _ := obj.(*v1alpha1.VirtualNetwork)
	return vn
}

// ensure makes or checks pod's Port. keep is its existing Port, if any.
func (c *Controller) ensure(ctx context.Context, pod *corev1.Pod, keep *v1alpha1.Port) error {
	netName := c.Config.Name
	if keep != nil {
		// A pod keeps its network for its life, even if its namespace's
		// isolation changes.
		netName = keep.Spec.Network
	} else if ns, err := c.Namespaces.Get(pod.Namespace); err == nil {
		netName = networks.NetworkOf(c.Config, &ns.ObjectMeta)
	}
	vn := c.network(netName)
	if vn == nil {
		if c.NetworkMissing != nil {
			c.NetworkMissing(netName)
		}
		return fmt.Errorf("ports: pod %s/%s: network %s does not exist yet", pod.Namespace, pod.Name, netName)
	}
	owner := ipam.Owner{Namespace: pod.Namespace, Name: pod.Name, UID: string(pod.UID)}
	var ips []string
	for _, s := range vn.Spec.Subnets {
		prefix, err := netip.ParsePrefix(s.CIDR)
		if err != nil {
			return fmt.Errorf("ports: network %s: %w", netName, err)
		}
		var want netip.Addr
		if keep != nil {
			want = addrIn(keep.Spec.IPs, prefix)
		}
		a, err := c.IPAM.Claim(ctx, netName, prefix, owner, want)
		if errors.Is(err, ipam.ErrFull) {
			c.wait(netName, pod.Namespace+"/"+pod.Name)
		}
		if err != nil {
			return fmt.Errorf("ports: pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		ips = append(ips, a.String())
	}
	if keep != nil && !slices.Equal(keep.Spec.IPs, ips) {
		// Its claims say otherwise (a block edited or lost by hand): the
		// claims win, the Port is made again with their addresses.
		c.Log.Warn("port's addresses differ from its claims: replacing it", zap.String("port", keep.Namespace+"/"+keep.Name),
			zap.Strings("port_ips", keep.Spec.IPs), zap.Strings("claims", ips))
		err := c.CRD.Ports.Delete(ctx, keep.Namespace, keep.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &keep.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("ports: %w", err)
		}
		keep = nil
	}
	if keep == nil {
		var err error
		if keep, err = c.create(ctx, pod, vn, ips); err != nil {
			return err
		}
	}
	return c.markAllocated(ctx, keep)
}

func addrIn(ips []string, p netip.Prefix) netip.Addr {
	for _, s := range ips {
		if a, err := netip.ParseAddr(s); err == nil && p.Contains(a) {
			return a
		}
	}
	return netip.Addr{}
}

func (c *Controller) create(ctx context.Context, pod *corev1.Pod, vn *v1alpha1.VirtualNetwork, ips []string) (*v1alpha1.Port, error) {
	first, _ := netip.ParseAddr(ips[0])
	isController := true
	port := &v1alpha1.Port{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: pod.Namespace, Name: PortName(pod.Name),
			Labels: map[string]string{networks.ManagedByLabel: networks.ManagedBy},
			// For a cluster with a garbage collector, and for kubectl to
			// show whose it is; kube-manager deletes it itself either way.
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID, Controller: &isController}},
		},
		Spec: v1alpha1.PortSpec{
			Pod:       v1alpha1.PodRef{Namespace: pod.Namespace, Name: pod.Name, UID: string(pod.UID)},
			Node:      pod.Spec.NodeName,
			Network:   vn.Name,
			Interface: Interface,
			IPs:       ips,
			MAC:       MAC(first),
			Mode:      v1alpha1.ModeVeth,
			VNI:       vn.Spec.VNI,
			Label:     vn.Spec.Label,
		},
	}
	out, err := c.CRD.Ports.Create(ctx, port)
	if apierrors.IsAlreadyExists(err) {
		// Another writer (a previous term, or a leader for a moment) made
		// it: the same pod and addresses are fine, anything else is stale
		// and the next try deletes it.
		out, err = c.CRD.Ports.Get(ctx, port.Namespace, port.Name)
		if err != nil {
			return nil, fmt.Errorf("ports: %w", err)
		}
		if out.Spec.Pod.UID != port.Spec.Pod.UID || !slices.Equal(out.Spec.IPs, ips) {
			return nil, fmt.Errorf("ports: port %s/%s exists for pod uid %s with %v", out.Namespace, out.Name, out.Spec.Pod.UID, out.Spec.IPs)
		}
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ports: %w", err)
	}
	c.Log.Debug("port created", zap.String("port", out.Namespace+"/"+out.Name), zap.Strings("ips", ips), zap.String("node", out.Spec.Node))
	return out, nil
}

func (c *Controller) markAllocated(ctx context.Context, p *v1alpha1.Port) error {
	if meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionAllocated) {
		return nil
	}
	p = p.DeepCopy()
	meta.SetStatusCondition(&p.Status.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionAllocated, Status: metav1.ConditionTrue, Reason: "Allocated",
		Message: "addresses claimed from network " + p.Spec.Network, ObservedGeneration: p.Generation,
	})
	_, err := c.CRD.Ports.UpdateStatus(ctx, p)
	if apierrors.IsConflict(err) {
		// Stale copy: read it again and retry at once.
		fresh, gerr := c.CRD.Ports.Get(ctx, p.Namespace, p.Name)
		if gerr != nil {
			return fmt.Errorf("ports: %w", gerr)
		}
		return c.markAllocated(ctx, fresh)
	}
	if err != nil {
		return fmt.Errorf("ports: %w", err)
	}
	return nil
}

// Sweep releases claims that no Port carries and whose pod is gone:
// left by a kube-manager stopped between a claim and its Port, or a pod's
// second claim when two writers raced for it. It runs after the caches
// have synced and then periodically.
func (c *Controller) Sweep(ctx context.Context) error {
	released := 0
	for _, obj := range c.Networks.GetStore().List() {
		vn := obj.(*v1alpha1.VirtualNetwork)
		for _, s := range vn.Spec.Subnets {
			prefix, err := netip.ParsePrefix(s.CIDR)
			if err != nil {
				continue
			}
			claims, err := c.IPAM.Claims(ctx, vn.Name, prefix)
			if err != nil {
				return fmt.Errorf("ports: sweep: %w", err)
			}
			for _, cl := range claims {
				if c.carried(cl) {
					continue
				}
				// Not carried, and its owner has a Port: the loser of a race
				// for one pod. No Port: left by a stop between claim and
				// Port, unless the pod lives and its Port is on its way.
				if len(crdinformer.PortsBy(c.Ports, crdinformer.ByPodUID, cl.Owner.UID)) == 0 {
					if pod, err := c.Pods.Pods(cl.Owner.Namespace).Get(cl.Owner.Name); err == nil && string(pod.UID) == cl.Owner.UID {
						continue
					}
					gone, err := c.podGone(ctx, v1alpha1.PodRef{Namespace: cl.Owner.Namespace, Name: cl.Owner.Name, UID: cl.Owner.UID})
					if err != nil {
						return err
					}
					if !gone {
						continue
					}
				}
				if err := c.IPAM.ReleaseAddr(ctx, vn.Name, prefix, cl.Addr, cl.Owner.UID); err != nil {
					return fmt.Errorf("ports: sweep: %w", err)
				}
				released++
				c.wake(vn.Name)
				c.Log.Info("sweep: released a claim no port carries", zap.String("network", vn.Name),
					zap.Stringer("ip", cl.Addr), zap.String("owner", cl.Owner.String()))
			}
		}
	}
	if released > 0 {
		c.Log.Info("sweep done", zap.Int("released", released))
	}
	return nil
}

// carried tells whether the claim's owner has a Port with that address.
func (c *Controller) carried(cl ipam.Claim) bool {
	for _, p := range crdinformer.PortsBy(c.Ports, crdinformer.ByPodUID, cl.Owner.UID) {
		if p.Spec.Network == cl.Network && slices.Contains(p.Spec.IPs, cl.Addr.String()) {
			return true
		}
	}
	return false
}
