// Package v1alpha1 holds the Go types of Filament's custom resources,
// group filament.dev, version v1alpha1: VirtualNetwork, Port, FilamentNode,
// ServiceRecord and PolicyRecord. Their schemas, validation and printer columns are the
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

// ServiceRecord is a Service compiled for the agents by kube-manager: its
// virtual addresses and ports, and its backends (from its EndpointSlices)
// resolved to the Ports that hold them. Same namespace and name as its
// Service, which owns it. Recorded now; the fast path does not enforce it
// yet (docs/kubernetes.md).
type ServiceRecord struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec ServiceRecordSpec `json:"spec"`
}

// ServiceRecordSpec is what a Service's traffic becomes.
type ServiceRecordSpec struct {
	// ServiceUID is the compiled Service's uid (a Service recreated under
	// the name is another one).
	ServiceUID string `json:"serviceUID"`
	// Type is the Service's: ClusterIP, NodePort, LoadBalancer or ExternalName.
	Type string `json:"type"`
	// ClusterIPs: at most one IPv4 and one IPv6 virtual address (none for a
	// headless or ExternalName Service).
	ClusterIPs []string `json:"clusterIPs,omitempty"`
	// Ports are the Service's ports.
	Ports []ServicePort `json:"ports,omitempty"`
	// Backends are its endpoints' addresses, sorted by address.
	Backends []ServiceBackend `json:"backends,omitempty"`
}

// ServicePort is one port of a Service.
type ServicePort struct {
	Name string `json:"name,omitempty"`
	// Protocol: TCP, UDP or SCTP.
	Protocol string `json:"protocol"`
	Port     int32  `json:"port"`
	// TargetPort is the backends' port: a number or a port name.
	TargetPort string `json:"targetPort,omitempty"`
}

// ServiceBackend is one endpoint address. Network, Node and Pod are set
// when a Port holds the address (a pod of a Filament network); an address
// of no Port (an endpoint outside the overlay) has none.
type ServiceBackend struct {
	IP      string `json:"ip"`
	Ready   bool   `json:"ready"`
	Network string `json:"network,omitempty"`
	Node    string `json:"node,omitempty"`
	Pod     string `json:"pod,omitempty"`
	// Ports are the endpoint's ports (from its EndpointSlice).
	Ports []BackendPort `json:"ports,omitempty"`
}

// BackendPort is a named port of a backend.
type BackendPort struct {
	Name     string `json:"name,omitempty"`
	Protocol string `json:"protocol"`
	Port     int32  `json:"port"`
}

// ServiceRecordList is a list of ServiceRecords.
type ServiceRecordList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServiceRecord `json:"items"`
}

// PolicyRecord is a NetworkPolicy compiled for the agents by kube-manager:
// its selectors resolved to the addresses of the Ports they select. Same
// namespace and name as its NetworkPolicy, which owns it. Recorded now;
// the fast path does not enforce it yet (docs/kubernetes.md).
type PolicyRecord struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec PolicyRecordSpec `json:"spec"`
}

// PolicyRecordSpec is a NetworkPolicy in addresses.
type PolicyRecordSpec struct {
	// PolicyUID is the compiled NetworkPolicy's uid.
	PolicyUID string `json:"policyUID"`
	// Types: Ingress, Egress or both (defaulted as the API does).
	Types []string `json:"types"`
	// Targets are the Ports of the pods the policy selects, by pod name.
	Targets []PolicyTarget `json:"targets,omitempty"`
	// Ingress and Egress rules: traffic matching any rule is allowed; a
	// type with no rule allows nothing.
	Ingress []PolicyRule `json:"ingress,omitempty"`
	Egress  []PolicyRule `json:"egress,omitempty"`
}

// PolicyTarget is one selected pod's Port.
type PolicyTarget struct {
	Pod     string   `json:"pod"`
	Node    string   `json:"node"`
	Network string   `json:"network"`
	IPs     []string `json:"ips"`
}

// PolicyRule allows traffic from (ingress) or to (egress) any of Peers on
// any of Ports.
type PolicyRule struct {
	// Peers are address blocks, sorted: selected pods' addresses as /32
	// (/128); a rule with no peer in the NetworkPolicy (any peer) is
	// 0.0.0.0/0 and ::/0; none means no peer matches (selectors that
	// select no pod).
	Peers []PolicyPeer `json:"peers,omitempty"`
	// Ports: none means every port.
	Ports []PolicyPort `json:"ports,omitempty"`
}

// PolicyPeer is an address block less its exceptions.
type PolicyPeer struct {
	CIDR   string   `json:"cidr"`
	Except []string `json:"except,omitempty"`
}

// PolicyPort is a protocol and a port, a range of ports (Port to EndPort)
// or, Port empty, every port.
type PolicyPort struct {
	// Protocol: TCP, UDP or SCTP.
	Protocol string `json:"protocol"`
	// Port is a number or a named port of the pods (the enforcing agent
	// resolves names).
	Port    string `json:"port,omitempty"`
	EndPort int32  `json:"endPort,omitempty"`
}

// PolicyRecordList is a list of PolicyRecords.
type PolicyRecordList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PolicyRecord `json:"items"`
}
