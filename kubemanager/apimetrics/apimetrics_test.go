package apimetrics

import "testing"

func TestResource(t *testing.T) {
	for path, want := range map[string]string{
		"/apis/filament.dev/v1alpha1/namespaces/scale/ports/s-1-eth0/status": "ports/status",
		"/apis/filament.dev/v1alpha1/namespaces/scale/ports":                 "ports",
		"/api/v1/namespaces/filament-system/configmaps/ipam-default-v4-0":    "configmaps",
		"/api/v1/namespaces/scale":                                           "namespaces",
		"/api/v1/namespaces":                                                 "namespaces",
		"/api/v1/pods":                                                       "pods",
		"/apis/coordination.k8s.io/v1/namespaces/filament-system/leases/km":  "leases",
		"/healthz": "other",
	} {
		if got := Resource(path); got != want {
			t.Errorf("Resource(%q) = %q, want %q", path, got, want)
		}
	}
}
