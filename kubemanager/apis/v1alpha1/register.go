package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of Filament's custom resources.
const GroupName = "filament.dev"

// SchemeGroupVersion is filament.dev/v1alpha1.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

// Resource names (the plural of each kind, as in the CRDs' URLs).
const (
	ResourceVirtualNetworks = "virtualnetworks"
	ResourcePorts           = "ports"
	ResourceFilamentNodes   = "filamentnodes"
	ResourceServiceRecords  = "servicerecords"
	ResourcePolicyRecords   = "policyrecords"
)

// AddToScheme registers the kinds and the meta types a client needs
// (ListOptions, Status, WatchEvent) in a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(SchemeGroupVersion,
		&VirtualNetwork{}, &VirtualNetworkList{},
		&Port{}, &PortList{},
		&FilamentNode{}, &FilamentNodeList{},
		&ServiceRecord{}, &ServiceRecordList{},
		&PolicyRecord{}, &PolicyRecordList{},
	)
	metav1.AddToGroupVersion(s, SchemeGroupVersion)
	return nil
}
