// Package v1alpha1 holds the Go types of Filament's custom resources,
// group filament.dev, version v1alpha1: VirtualNetwork, Port and
// FilamentNode. Their schemas, validation and printer columns are the
// manifests in deploy/crds (docs/kubernetes.md); the deep copies are written
// by hand (deepcopy.go) and tested.
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Encapsulations: what a node puts around a pod's packet toward another node.
const (
	EncapVXLAN    = "vxlan"    // UDP 4789, the network's VNI
	EncapMPLSoUDP = "mplsoudp" // UDP 6635, the network's MPLS label
	EncapMPLSoGRE = "mplsogre" // GRE 0x8847, the network's MPLS label
)

// Isolation of a VirtualNetwork.
const (
	// IsolationShared: any namespace's pods may be on it (the cluster's
	// default pod network).
	IsolationShared = "Shared"
	// IsolationNamespace: the network of one namespace's pods only (Tungsten
	// Fabric's isolated namespaces); Spec.Namespace names it.
	IsolationNamespace = "Namespace"
)

// Attach modes of a Port: how the pod's interface is made (agent/cniapi).
const (
	ModeVeth      = "veth"
	ModeTap       = "tap"
	ModeVhostUser = "vhost-user"
	ModeMemif     = "memif"
)

// Port condition types.
const (
	// ConditionAllocated: the Port has its addresses (kube-manager's IPAM).
	ConditionAllocated = "Allocated"
	// ConditionProgrammed: the node's agent has programmed the Port into its
	// dataplane.
	ConditionProgrammed = "Programmed"
)

// VirtualNetwork is an overlay network: a VRF on every node that has one of
// its pods, joined across nodes by its VNI or MPLS label. Cluster-scoped:
// its VNI and label are unique in the cluster.
type VirtualNetwork struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec VirtualNetworkSpec `json:"spec"`
}

// VirtualNetworkSpec is what the network is.
type VirtualNetworkSpec struct {
	// Subnets: at most one IPv4 and one IPv6 prefix, no host bits.
	Subnets []Subnet `json:"subnets"`
	// VNI is the VXLAN network identifier, 1..16777215 (required with vxlan).
	VNI uint32 `json:"vni,omitempty"`
	// Label is the MPLS label, 16..1048575 (required with the MPLS encapsulations).
	Label uint32 `json:"label,omitempty"`
	// Encapsulation: vxlan (default), mplsoudp or mplsogre.
	Encapsulation string `json:"encapsulation,omitempty"`
	// Isolation: Shared (default) or Namespace.
	Isolation string `json:"isolation,omitempty"`
	// Namespace is the namespace a Namespace-isolated network serves.
	Namespace string `json:"namespace,omitempty"`
}

// Subnet is one address family's prefix and the pods' gateway in it.
type Subnet struct {
	CIDR string `json:"cidr"`
	// Gateway is the address the vRouter answers for; inside CIDR.
	Gateway string `json:"gateway,omitempty"`
}

// VirtualNetworkList is a list of VirtualNetworks.
type VirtualNetworkList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VirtualNetwork `json:"items"`
}

// Port is one pod interface: made by kube-manager when the pod is
// scheduled, in the pod's namespace; programmed by its node's agent.
type Port struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   PortSpec   `json:"spec"`
	Status PortStatus `json:"status,omitempty"`
}

// PortSpec is what the agent programs.
type PortSpec struct {
	Pod PodRef `json:"pod"`
	// Node is the pod's node (spec.nodeName); agents select their Ports by it.
	Node string `json:"node"`
	// Network is the VirtualNetwork's name.
	Network string `json:"network"`
	// Interface is the name in the pod, eth0 by default.
	Interface string `json:"interface,omitempty"`
	// IPs: at most one IPv4 and one IPv6 address, from the network's subnets.
	IPs []string `json:"ips,omitempty"`
	// MAC is the pod interface's unicast MAC, lower case (02:xx:...).
	MAC string `json:"mac,omitempty"`
	// Mode: veth (default), tap, vhost-user or memif.
	Mode string `json:"mode,omitempty"`
	// VNI and Label are the network's, copied so that an agent needs no
	// VirtualNetwork lookup to program a remote pod's route.
	VNI   uint32 `json:"vni,omitempty"`
	Label uint32 `json:"label,omitempty"`
}

// PodRef names the pod a Port belongs to; UID tells a pod from a later one
// of the same name.
type PodRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
}

// PortStatus is written by kube-manager (Allocated) and the node's agent
// (Programmed).
type PortStatus struct {
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// PortList is a list of Ports.
type PortList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Port `json:"items"`
}

// FilamentNode is a node's networking data, named after its Node and
// written by its agent.
type FilamentNode struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec FilamentNodeSpec `json:"spec"`
}

// FilamentNodeSpec is how other nodes reach this one.
type FilamentNodeSpec struct {
	// UnderlayIPv4 and UnderlayIPv6 are the dataplane's fabric addresses
	// (at least one).
	UnderlayIPv4 string `json:"underlayIPv4,omitempty"`
	UnderlayIPv6 string `json:"underlayIPv6,omitempty"`
	// Encapsulations it can receive.
	Encapsulations []string `json:"encapsulations"`
}

// FilamentNodeList is a list of FilamentNodes.
type FilamentNodeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []FilamentNode `json:"items"`
}
