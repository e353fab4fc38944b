// Package cniapi is the contract between filament-cni (the CNI plugin kubelet
// runs) and filament-agent (the node's daemon that attaches pods): JSON over
// HTTP/1.1, on a unix socket (0600, the default) or on vrouter-ip:vrouter-port
// on loopback (Tungsten Fabric's way, kept for users migrating from it).
//
// The plugin is stateless: it turns a CNI invocation into a Request, sends it
// to the agent, and turns the Response into a CNI result of the version the
// runtime asked for. Everything that takes time or state (creating the pod's
// interface, allocating its address, programming the vRouter) is the agent's.
//
// Rules both sides keep:
//
//   - Every command is a POST of a Request to one of the Path* constants,
//     answered with a Response (HTTP 200, also for a refusal: the refusal is
//     Response.Error). A body that is not a Response is a transport failure.
//   - An attachment is keyed by (ContainerID, IfName), never by pod name or
//     UID: a late DEL of an old sandbox names the old container ID and so
//     cannot remove the attachment of the pod's newer sandbox.
//   - Every command is idempotent: the plugin retries on connection failure,
//     on a timeout and on CodeTryAgainLater, so the agent may see the same
//     ADD twice and answers the second with the attachment already made.
//     DEL of an unknown attachment succeeds (or answers
//     CodeUnknownContainer, which the plugin takes as success), with or
//     without Netns (the pod's netns may be gone by then).
//   - GC is scoped by CNINetwork: the agent removes only attachments it made
//     for that CNI network that are not in Valid; the attachments of other
//     networks (a pod's secondary interfaces under Multus) are not touched.
//   - An agent that cannot answer yet (it is starting, or the pod's port is
//     not known yet) answers CodeTryAgainLater, before TimeoutMillis has
//     passed when the request carries it, rather than let the plugin time out.
package cniapi

import (
	"fmt"
	"net/netip"
)

// Version of this contract. The agent refuses a request of another major.
const Version = "1"

// DefaultSocket is where the agent serves the CNI API by default.
const DefaultSocket = "/run/filament/cni.sock"

// Paths of the commands, each a POST of a Request answered by a Response.
const (
	PathAdd    = "/v1/cni/add"
	PathDel    = "/v1/cni/del"
	PathCheck  = "/v1/cni/check"
	PathStatus = "/v1/cni/status"
	PathGC     = "/v1/cni/gc"
)

// Attach modes: how the pod's interface is made.
const (
	ModeVeth      = "veth"       // kernel veth; the dataplane polls the host end (AF_XDP, AF_PACKET fallback)
	ModeTap       = "tap"        // a net_tap interface moved into the pod
	ModeVhostUser = "vhost-user" // DPDK pods and VMs: the pod is the server, the dataplane the client
	ModeMemif     = "memif"      // DPDK pods: the dataplane is the server
)

// Request is one CNI command for one attachment, identified by
// (ContainerID, IfName).
type Request struct {
	Version     string `json:"version"`
	ContainerID string `json:"containerID"`
	Netns       string `json:"netns,omitempty"`  // ADD, CHECK; may be empty or gone on DEL
	IfName      string `json:"ifName,omitempty"` // <= 15 bytes
	// Pod identity, from CNI_ARGS (K8S_POD_NAME, K8S_POD_NAMESPACE,
	// K8S_POD_UID) or runtime config.
	PodName      string `json:"podName,omitempty"`
	PodNamespace string `json:"podNamespace,omitempty"`
	PodUID       string `json:"podUID,omitempty"`
	// From the network configuration.
	ClusterName string `json:"clusterName,omitempty"`
	// CNINetwork is the "name" of the CNI network configuration the
	// runtime invoked the plugin with; it scopes GC (see the package doc).
	CNINetwork string `json:"cniNetwork,omitempty"`
	Network    string `json:"network,omitempty"` // virtual network name; empty: the pod's default network
	Mode       string `json:"mode,omitempty"`    // empty: veth
	MTU        int    `json:"mtu,omitempty"`     // 0: the network's (fabric MTU minus overlay overhead)
	// CHECK: the result ADD returned.
	Prev *Result `json:"prevResult,omitempty"`
	// GC: every attachment of CNINetwork the runtime still knows; the
	// agent removes the others it made for CNINetwork.
	Valid []Attachment `json:"validAttachments,omitempty"`
	// TimeoutMillis is how long the plugin waits for this answer (0:
	// unknown). An agent still waiting for something answers
	// CodeTryAgainLater before then; the plugin asks again.
	TimeoutMillis int64 `json:"timeoutMillis,omitempty"`
}

// Attachment names one pod interface.
type Attachment struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifName"`
}

// Response answers a Request: a Result (ADD, CHECK) or an Error.
type Response struct {
	Result *Result `json:"result,omitempty"`
	Error  *Error  `json:"error,omitempty"`
}

// Result is the attachment as made, in CNI 1.1.0 terms; the plugin converts
// it to the version the runtime asked for.
type Result struct {
	Interfaces []Interface `json:"interfaces"`
	IPs        []IP        `json:"ips"`
	Routes     []Route     `json:"routes,omitempty"`
}

// Interface is one interface of the attachment. Sandbox is the pod's netns
// for the pod side; SocketPath the vhost-user or memif socket.
type Interface struct {
	Name       string `json:"name"`
	MAC        string `json:"mac,omitempty"`
	MTU        int    `json:"mtu,omitempty"`
	Sandbox    string `json:"sandbox,omitempty"`
	SocketPath string `json:"socketPath,omitempty"`
}

// IP is an address of an interface: Interface is an index into
// Result.Interfaces (-1: not tied to one, possible only in a CHECK's
// prevResult that another plugin of the chain changed). Address is the
// interface's address with the prefix length of its subnet (10.0.0.5/24).
type IP struct {
	Interface int          `json:"interface"`
	Address   netip.Prefix `json:"address"`
	Gateway   netip.Addr   `json:"gateway,omitzero"`
}

// Route is a route in the pod.
type Route struct {
	Dst netip.Prefix `json:"dst"`
	GW  netip.Addr   `json:"gw,omitzero"`
}

// Error codes: CNI's well-known codes where one fits (spec section "Error"),
// Filament's own from 100 up.
const (
	CodeIncompatibleVersion = 1
	CodeUnsupportedField    = 2
	CodeUnknownContainer    = 3
	CodeInvalidEnvironment  = 4
	CodeIOFailure           = 5
	CodeDecodingFailure     = 6
	CodeInvalidConfig       = 7
	CodeTryAgainLater       = 11 // the agent is not ready or the pod's port is not known yet
	CodeNotReady            = 50 // STATUS: the plugin cannot serve ADD now
	CodeInvalidRequest      = 100
	CodeNoAddress           = 101 // the network's address block is exhausted
	CodeDataplane           = 102 // the dataplane refused or is unreachable
)

// Error is a refused request.
type Error struct {
	Code    uint   `json:"code"`
	Msg     string `json:"msg"`
	Details string `json:"details,omitempty"`
}

func (e *Error) Error() string {
	if e.Details == "" {
		return fmt.Sprintf("%s (code %d)", e.Msg, e.Code)
	}
	return fmt.Sprintf("%s: %s (code %d)", e.Msg, e.Details, e.Code)
}

// Validate checks the fields every command needs; the agent checks the rest
// (the netns exists, the network is known) against the node.
func (r *Request) Validate(path string) *Error {
	bad := func(f string, a ...any) *Error {
		return &Error{Code: CodeInvalidRequest, Msg: "invalid request", Details: fmt.Sprintf(f, a...)}
	}
	if r.Version != Version {
		return &Error{Code: CodeIncompatibleVersion, Msg: "incompatible CNI API version",
			Details: fmt.Sprintf("request has %q, agent speaks %q", r.Version, Version)}
	}
	switch path {
	case PathStatus:
		return nil
	case PathGC:
		if r.CNINetwork == "" {
			return bad("cniNetwork is required for GC (it scopes what the agent may remove)")
		}
		for i, a := range r.Valid {
			if a.ContainerID == "" || a.IfName == "" {
				return bad("validAttachments[%d]: containerID and ifName are required", i)
			}
		}
		return nil
	}
	if r.ContainerID == "" {
		return bad("containerID is required")
	}
	if r.IfName == "" {
		return bad("ifName is required")
	}
	if len(r.IfName) > 15 {
		return bad("ifName %q is %d bytes, at most 15", r.IfName, len(r.IfName))
	}
	switch r.Mode {
	case "", ModeVeth, ModeTap, ModeVhostUser, ModeMemif:
	default:
		return bad("mode %q: want %s, %s, %s or %s", r.Mode, ModeVeth, ModeTap, ModeVhostUser, ModeMemif)
	}
	if r.MTU < 0 || (r.MTU != 0 && r.MTU < 576) || r.MTU > 9600 {
		return bad("mtu %d: want 576..9600 (0: the network's)", r.MTU)
	}
	if (path == PathAdd || path == PathCheck) && r.Netns == "" {
		return bad("netns is required")
	}
	if path == PathCheck && r.Prev == nil {
		return bad("prevResult is required for CHECK")
	}
	return nil
}
