// Package crds holds Filament's CustomResourceDefinitions (the YAML files
// beside it, embedded) and installs them: server-side apply, then wait until
// the API server serves each (Established).
package crds

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// The CRDs only: kustomization.yaml (deploy/base's way to them) is not one.
//
//go:embed filament.dev_*.yaml
var manifests embed.FS

// FieldManager is the server-side apply manager of Install.
const FieldManager = "filament-crds"

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// Manifests returns the CRDs, parsed, by file name.
func Manifests() (map[string]*unstructured.Unstructured, error) {
	names, err := fs.Glob(manifests, "filament.dev_*.yaml")
	if err != nil {
		return nil, fmt.Errorf("crds: %w", err)
	}
	out := map[string]*unstructured.Unstructured{}
	for _, n := range names {
		b, err := manifests.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("crds: %w", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("crds: %s: %w", n, err)
		}
		out[n] = &unstructured.Unstructured{Object: m}
	}
	return out, nil
}

// Install applies every CRD (server-side, taking over conflicting fields)
// and waits, polling until ctx ends, until each is Established.
func Install(ctx context.Context, cfg *rest.Config) error {
	all, err := Manifests()
	if err != nil {
		return err
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("crds: client: %w", err)
	}
	crds := dc.Resource(crdResource)
	for file, u := range all {
		body, err := u.MarshalJSON()
		if err != nil {
			return fmt.Errorf("crds: %s: %w", file, err)
		}
		force := true
		if _, err := crds.Patch(ctx, u.GetName(), types.ApplyPatchType, body,
			metav1.PatchOptions{FieldManager: FieldManager, Force: &force}); err != nil {
			return fmt.Errorf("crds: apply %s: %w", file, err)
		}
	}
	for _, u := range all {
		if err := waitEstablished(ctx, crds, u.GetName()); err != nil {
			return err
		}
	}
	return nil
}

// waitEstablished polls the CRD's conditions every 50 ms.
func waitEstablished(ctx context.Context, crds dynamic.ResourceInterface, name string) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		u, err := crds.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("crds: get %s: %w", name, err)
		}
		if ok, why := Established(u); ok {
			return nil
		} else if why != "" {
			return fmt.Errorf("crds: %s: %s", name, why)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("crds: waiting for %s to be established: %w", name, ctx.Err())
		case <-tick.C:
		}
	}
}

// Established tells whether a CRD object is served; why is set when the
// API server refused its names (NamesAccepted False), which no wait cures.
func Established(crd *unstructured.Unstructured) (ok bool, why string) {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		switch {
		case m["type"] == "Established" && m["status"] == "True":
			ok = true
		case m["type"] == "NamesAccepted" && m["status"] == "False":
			why = fmt.Sprintf("names not accepted: %v", m["message"])
		}
	}
	return ok, why
}
