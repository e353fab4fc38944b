// Package crdinformer makes client-go shared informers over Filament's
// custom resources (through kubemanager/crdclient), with the indexes the
// controllers look Ports up by.
package crdinformer

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/filament-net/filament/kubemanager/apis/v1alpha1"
	"github.com/filament-net/filament/kubemanager/crdclient"
)

// Port indexes.
const (
	// ByPod: a Port's pod as namespace/name.
	ByPod = "pod"
	// ByNetwork: a Port's network.
	ByNetwork = "network"
	// ByPodUID: a Port's pod uid.
	ByPodUID = "poduid"
	// ByIP: each of a Port's addresses.
	ByIP = "ip"
)

// VirtualNetworks is an informer on every VirtualNetwork.
func VirtualNetworks(c *crdclient.Client, resync time.Duration) cache.SharedIndexInformer {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.VirtualNetworks.List(ctx, "", o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return c.VirtualNetworks.Watch(ctx, "", o)
		},
	}
	return cache.NewSharedIndexInformer(lw, &v1alpha1.VirtualNetwork{}, resync, cache.Indexers{})
}

// Ports is an informer on every Port, indexed ByPod, ByNetwork and ByPodUID.
func Ports(c *crdclient.Client, resync time.Duration) cache.SharedIndexInformer {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.Ports.List(ctx, "", o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return c.Ports.Watch(ctx, "", o)
		},
	}
	return cache.NewSharedIndexInformer(lw, &v1alpha1.Port{}, resync, cache.Indexers{
		cache.NamespaceIndex: cache.MetaNamespaceIndexFunc,
		ByPod:                portIndex(func(p *v1alpha1.Port) string { return p.Spec.Pod.Namespace + "/" + p.Spec.Pod.Name }),
		ByNetwork:            portIndex(func(p *v1alpha1.Port) string { return p.Spec.Network }),
		ByPodUID:             portIndex(func(p *v1alpha1.Port) string { return p.Spec.Pod.UID }),
		ByIP: func(obj any) ([]string, error) {
			p, ok := obj.(*v1alpha1.Port)
			if !ok {
				return nil, fmt.Errorf("crdinformer: %T is not a Port", obj)
			}
			return p.Spec.IPs, nil
		},
	})
}

// ServiceRecords is an informer on every ServiceRecord.
func ServiceRecords(c *crdclient.Client, resync time.Duration) cache.SharedIndexInformer {
	return informer(c.ServiceRecords, &v1alpha1.ServiceRecord{}, resync)
}

// PolicyRecords is an informer on every PolicyRecord.
func PolicyRecords(c *crdclient.Client, resync time.Duration) cache.SharedIndexInformer {
	return informer(c.PolicyRecords, &v1alpha1.PolicyRecord{}, resync)
}

// informer lists and watches one kind in every namespace, indexed by namespace.
func informer[T crdclient.Object, L runtime.Object](r *crdclient.Resource[T, L], example T, resync time.Duration) cache.SharedIndexInformer {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return r.List(ctx, "", o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return r.Watch(ctx, "", o)
		},
	}
	return cache.NewSharedIndexInformer(lw, example, resync, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
}

func portIndex(f func(*v1alpha1.Port) string) cache.IndexFunc {
	return func(obj any) ([]string, error) {
		p, ok := obj.(*v1alpha1.Port)
		if !ok {
			return nil, fmt.Errorf("crdinformer: %T is not a Port", obj)
		}
		return []string{f(p)}, nil
	}
}

// PortsBy returns the cached Ports of one index value.
func PortsBy(inf cache.SharedIndexInformer, index, value string) []*v1alpha1.Port {
	objs, _ := inf.GetIndexer().ByIndex(index, value)
	out := make([]*v1alpha1.Port, 0, len(objs))
	for _, o := range objs {
		if p, ok := o.(*v1alpha1.Port); ok {
			out = append(out, p)
		}
	}
	return out
}
