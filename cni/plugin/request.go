package plugin

import (
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/filament-net/filament/agent/cniapi"
)

// PrimaryIfName is the interface kubelet asks for on the pod's default
// network. A meta plugin's other invocations name other interfaces (Multus:
// net1, net2, ... or the network selection's "interface").
const PrimaryIfName = "eth0"

// PodArgs are the pod's identity from CNI_ARGS.
type PodArgs struct {
	Name, Namespace, UID string
}

// ParseCNIArgs reads K8S_POD_NAME, K8S_POD_NAMESPACE and K8S_POD_UID from
// CNI_ARGS ("K=V;K=V"); other keys are ignored, whatever IgnoreUnknown
// says. A pair without "=" is a CNI error 4 (invalid environment).
func ParseCNIArgs(s string) (PodArgs, error) {
	var p PodArgs
	if strings.TrimSpace(s) == "" {
		return p, nil
	}
	for _, pair := range strings.Split(s, ";") {
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			return p, types.NewError(types.ErrInvalidEnvironmentVariables, "invalid CNI_ARGS", "pair "+pair+" has no '='")
		}
		switch strings.TrimSpace(k) {
		case "K8S_POD_NAME":
			p.Name = v
		case "K8S_POD_NAMESPACE":
			p.Namespace = v
		case "K8S_POD_UID":
			p.UID = v
		}
	}
	return p, nil
}

// VirtualNetwork is the virtual network the invocation asks for ("": the
// pod's default network, the agent's choice):
//
//  1. args.cni.network when the configuration carries it (Multus copies a
//     network selection element's "cni-args" there);
//  2. with meta-plugin set, on an interface other than eth0 (a secondary
//     network the meta plugin delegates to us): the configuration's
//     "name", which for Multus is the NetworkAttachmentDefinition's CNI
//     config name, or the NetworkAttachmentDefinition's own name when the
//     config has none;
//  3. otherwise "".
func (c *Config) VirtualNetwork(ifName string) string {
	if c.ArgsNetwork != "" {
		return c.ArgsNetwork
	}
	if c.MetaPlugin != "" && ifName != PrimaryIfName {
		return c.Name
	}
	return ""
}

// NewRequest builds the agent request for one invocation. CHECK's
// prevResult and GC's attachments are the callers' to add.
func NewRequest(c *Config, args *skel.CmdArgs, pod PodArgs) *cniapi.Request {
	r := &cniapi.Request{
		Version:      cniapi.Version,
		ClusterName:  c.ClusterName,
		CNINetwork:   c.Name,
		Mode:         c.Mode,
		MTU:          c.MTU,
		PodName:      pod.Name,
		PodNamespace: pod.Namespace,
		PodUID:       pod.UID,
	}
	if args != nil {
		r.ContainerID = args.ContainerID
		r.Netns = args.Netns
		r.IfName = args.IfName
		r.Network = c.VirtualNetwork(args.IfName)
	}
	return r
}
