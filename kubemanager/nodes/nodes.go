// Package nodes deletes a FilamentNode once its Node is gone: an agent
// writes its node's FilamentNode but cannot remove it after its node has
// been deleted, and other nodes would keep tunnels toward it.
package nodes

import (
	"context"
	"fmt"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/filament-net/filament/kubemanager/crdclient"
)

// Controller reconciles FilamentNodes by name.
type Controller struct {
	Kube  kubernetes.Interface
	CRD   *crdclient.Client
	Nodes corelisters.NodeLister
	Log   *zap.Logger
}

// Keys lists the FilamentNodes, to check each once at start.
func (c *Controller) Keys(ctx context.Context) ([]string, error) {
	list, err := c.CRD.FilamentNodes.List(ctx, "", metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("nodes: %w", err)
	}
	keys := make([]string, 0, len(list.Items))
	for _, n := range list.Items {
		keys = append(keys, n.Name)
	}
	return keys, nil
}

// Sync deletes FilamentNode name if the Node is gone (confirmed with a read
// from the API server).
func (c *Controller) Sync(ctx context.Context, name string) error {
	if _, err := c.Nodes.Get(name); err == nil {
		return nil
	}
	_, err := c.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("nodes: read node %s: %w", name, err)
	}
	err = c.CRD.FilamentNodes.Delete(ctx, "", name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("nodes: %w", err)
	}
	c.Log.Info("filamentnode deleted: its node is gone", zap.String("node", name))
	return nil
}
