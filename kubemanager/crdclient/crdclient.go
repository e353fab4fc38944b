// Package crdclient is a small typed client for Filament's custom resources
// (kubemanager/apis/v1alpha1): one generic Resource per kind over a REST
// client that speaks JSON, so no generated clientset is needed.
package crdclient

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	"github.com/filament-net/filament/kubemanager/apis/v1alpha1"
)

// Object is a pointer to one of the kinds (*v1alpha1.Port, ...).
type Object interface {
	runtime.Object
	metav1.Object
}

// Client holds a Resource per kind.
type Client struct {
	VirtualNetworks *Resource[*v1alpha1.VirtualNetwork, *v1alpha1.VirtualNetworkList]
	Ports           *Resource[*v1alpha1.Port, *v1alpha1.PortList]
	FilamentNodes   *Resource[*v1alpha1.FilamentNode, *v1alpha1.FilamentNodeList]
	ServiceRecords  *Resource[*v1alpha1.ServiceRecord, *v1alpha1.ServiceRecordList]
	PolicyRecords   *Resource[*v1alpha1.PolicyRecord, *v1alpha1.PolicyRecordList]
}

// New makes a Client from a configuration (its host and credentials).
func New(cfg *rest.Config) (*Client, error) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("crdclient: scheme: %w", err)
	}
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &v1alpha1.SchemeGroupVersion
	c.APIPath = "/apis"
	c.ContentType = runtime.ContentTypeJSON
	c.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("crdclient: %w", err)
	}
	pc := runtime.NewParameterCodec(scheme)
	return &Client{
		VirtualNetworks: &Resource[*v1alpha1.VirtualNetwork, *v1alpha1.VirtualNetworkList]{
			rc: rc, params: pc, resource: v1alpha1.ResourceVirtualNetworks,
			newObj:  func() *v1alpha1.VirtualNetwork { return new(v1alpha1.VirtualNetwork) },
			newList: func() *v1alpha1.VirtualNetworkList { return new(v1alpha1.VirtualNetworkList) },
		},
		Ports: &Resource[*v1alpha1.Port, *v1alpha1.PortList]{
			rc: rc, params: pc, resource: v1alpha1.ResourcePorts, namespaced: true,
			newObj:  func() *v1alpha1.Port { return new(v1alpha1.Port) },
			newList: func() *v1alpha1.PortList { return new(v1alpha1.PortList) },
		},
		FilamentNodes: &Resource[*v1alpha1.FilamentNode, *v1alpha1.FilamentNodeList]{
			rc: rc, params: pc, resource: v1alpha1.ResourceFilamentNodes,
			newObj:  func() *v1alpha1.FilamentNode { return new(v1alpha1.FilamentNode) },
			newList: func() *v1alpha1.FilamentNodeList { return new(v1alpha1.FilamentNodeList) },
		},
		ServiceRecords: &Resource[*v1alpha1.ServiceRecord, *v1alpha1.ServiceRecordList]{
			rc: rc, params: pc, resource: v1alpha1.ResourceServiceRecords, namespaced: true,
			newObj:  func() *v1alpha1.ServiceRecord { return new(v1alpha1.ServiceRecord) },
			newList: func() *v1alpha1.ServiceRecordList { return new(v1alpha1.ServiceRecordList) },
		},
		PolicyRecords: &Resource[*v1alpha1.PolicyRecord, *v1alpha1.PolicyRecordList]{
			rc: rc, params: pc, resource: v1alpha1.ResourcePolicyRecords, namespaced: true,
			newObj:  func() *v1alpha1.PolicyRecord { return new(v1alpha1.PolicyRecord) },
			newList: func() *v1alpha1.PolicyRecordList { return new(v1alpha1.PolicyRecordList) },
		},
	}, nil
}

// Resource is one kind's client. For a cluster-scoped kind the namespace
// arguments must be "".
type Resource[T Object, L runtime.Object] struct {
	rc         rest.Interface
	params     runtime.ParameterCodec
	resource   string
	namespaced bool
	newObj     func() T
	newList    func() L
}

func (r *Resource[T, L]) req(verb, ns string) (*rest.Request, error) {
	if !r.namespaced && ns != "" {
		return nil, fmt.Errorf("crdclient: %s are cluster-scoped: namespace %q given", r.resource, ns)
	}
	return r.rc.Verb(verb).NamespaceIfScoped(ns, r.namespaced).Resource(r.resource), nil
}

// Get reads one object.
func (r *Resource[T, L]) Get(ctx context.Context, ns, name string) (T, error) {
	out := r.newObj()
	req, err := r.req("GET", ns)
	if err != nil {
		return out, err
	}
	err = req.Name(name).Do(ctx).Into(out)
	return out, wrap(err, "get", r.resource, ns, name)
}

// List lists objects (ns "" for all namespaces), with label and field
// selectors in opts.
func (r *Resource[T, L]) List(ctx context.Context, ns string, opts metav1.ListOptions) (L, error) {
	out := r.newList()
	req, err := r.req("GET", ns)
	if err != nil {
		return out, err
	}
	err = req.VersionedParams(&opts, r.params).Do(ctx).Into(out)
	return out, wrap(err, "list", r.resource, ns, "")
}

// Watch watches objects (ns "" for all namespaces) from opts' resource
// version.
func (r *Resource[T, L]) Watch(ctx context.Context, ns string, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	req, err := r.req("GET", ns)
	if err != nil {
		return nil, err
	}
	w, err := req.VersionedParams(&opts, r.params).Watch(ctx)
	return w, wrap(err, "watch", r.resource, ns, "")
}

// Create creates obj in its namespace and returns what the server stored.
func (r *Resource[T, L]) Create(ctx context.Context, obj T) (T, error) {
	out := r.newObj()
	req, err := r.req("POST", obj.GetNamespace())
	if err != nil {
		return out, err
	}
	err = req.Body(obj).Do(ctx).Into(out)
	return out, wrap(err, "create", r.resource, obj.GetNamespace(), obj.GetName())
}

// Update replaces obj's spec and metadata (status is ignored where the kind
// has a status subresource); obj's resourceVersion must be current.
func (r *Resource[T, L]) Update(ctx context.Context, obj T) (T, error) {
	return r.put(ctx, obj, "")
}

// UpdateStatus replaces obj's status (the status subresource).
func (r *Resource[T, L]) UpdateStatus(ctx context.Context, obj T) (T, error) {
	return r.put(ctx, obj, "status")
}

func (r *Resource[T, L]) put(ctx context.Context, obj T, sub string) (T, error) {
	out := r.newObj()
	req, err := r.req("PUT", obj.GetNamespace())
	if err != nil {
		return out, err
	}
	verb := "update"
	req = req.Name(obj.GetName())
	if sub != "" {
		req, verb = req.SubResource(sub), "update "+sub+" of"
	}
	err = req.Body(obj).Do(ctx).Into(out)
	return out, wrap(err, verb, r.resource, obj.GetNamespace(), obj.GetName())
}

// Delete deletes one object.
func (r *Resource[T, L]) Delete(ctx context.Context, ns, name string, opts metav1.DeleteOptions) error {
	req, err := r.req("DELETE", ns)
	if err != nil {
		return err
	}
	return wrap(req.Name(name).Body(&opts).Do(ctx).Error(), "delete", r.resource, ns, name)
}

// wrap adds what was done to err; apierrors.IsNotFound and friends still
// see the API server's status through it.
func wrap(err error, verb, resource, ns, name string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("crdclient: %s %s %s/%s: %w", verb, resource, ns, name, err)
}
