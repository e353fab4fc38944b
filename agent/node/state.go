package node

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"

	"github.com/filament-net/filament/agent/statefile"
)

// StateFile is the agent's own state in the state directory (addresses
// are in ipam.json).
const StateFile = "agent.json"

// Attachment is one pod interface the agent made, persisted so that a
// restarted agent keeps programming it and can delete it.
type Attachment struct {
	ContainerID string       `json:"containerID"`
	IfName      string       `json:"ifName"`
	CNINetwork  string       `json:"cniNetwork,omitempty"`
	Network     string       `json:"network"`
	VRF         uint32       `json:"vrf"`
	Netns       string       `json:"netns"`
	HostIf      string       `json:"hostIf"`
	MAC         string       `json:"mac"`
	Address     netip.Prefix `json:"address"`
	// Address6 is the IPv6 address of an attachment of a dual-stack
	// network (with subnet6's prefix length); absent otherwise.
	Address6 netip.Prefix `json:"address6,omitzero"`
	NextHop  uint32       `json:"nextHop"`
	MTU      int          `json:"mtu,omitempty"`
	// Mode is the attach mode (cniapi.Mode*; "" in records of older
	// agents: veth). SocketDir is a vhost-user or memif attachment's
	// socket directory.
	Mode      string `json:"mode,omitempty"`
	SocketDir string `json:"socketDir,omitempty"`
	PodName   string `json:"podName,omitempty"`
	PodNS     string `json:"podNamespace,omitempty"`

	// deleting: a DEL removed its dataplane objects and is deleting the
	// pod's interface; the resync must not program it again (not
	// persisted: a DEL cut short is repeated by kubelet).
	deleting bool
}

type state struct {
	// NextHops maps what a next-hop is for ("recv/<net>", "tun/<net>/<peer>",
	// "pod/<containerID>/<ifName>") to its id, so a restart reuses ids.
	NextHops map[string]uint32 `json:"nextHops"`
	// VRFs the agent ever programmed: their VNI/label maps and VRF
	// address are the agent's to sweep after a network leaves the config.
	VRFs []uint32 `json:"vrfs"`
	// NetVRFs (Kubernetes mode) are the VRF ids the agent gave the
	// VirtualNetworks, kept so that a restart programs the same ones.
	NetVRFs     map[string]uint32 `json:"netVRFs,omitempty"`
	Attachments []*Attachment     `json:"attachments"`

	// HostPort is the host port the agent made (config.Host): the agent's
	// to delete once the host section is gone.
	HostPort string `json:"hostPort,omitempty"`
}

func (n *Node) statePath() string { return filepath.Join(n.cfg.StateDir, StateFile) }

func (n *Node) loadState() error {
	statefile.Clean(n.statePath())
	n.st = state{NextHops: map[string]uint32{}}
	if _, err := statefile.Load(n.statePath(), &n.st); err != nil {
		return err
	}
	if n.st.NextHops == nil {
		n.st.NextHops = map[string]uint32{}
	}
	n.countAttachments()
	return nil
}

func (n *Node) saveState() error {
	n.countAttachments()
	return statefile.Save(n.statePath(), &n.st)
}

func (n *Node) countAttachments() {
	c := map[string]int{}
	for _, a := range n.st.Attachments {
		c[a.Network]++
	}
	n.countMu.Lock()
	n.attachCount = c
	n.countMu.Unlock()
	n.indexPortPods()
}

// nextHopID returns the id for key, allocating the lowest free one of the
// agent's range if it has none (the caller saves the state).
func (n *Node) nextHopID(key string) (uint32, error) {
	if id, ok := n.st.NextHops[key]; ok {
		return id, nil
	}
	used := map[uint32]bool{}
	for _, id := range n.st.NextHops {
		used[id] = true
	}
	for id := n.nhBase; id < n.nhEnd; id++ {
		if !used[id] {
			n.st.NextHops[key] = id
			return id, nil
		}
	}
	return 0, fmt.Errorf("no free next-hop id in the agent's range %d..%d", n.nhBase, n.nhEnd-1)
}

func (n *Node) ownsNextHop(id uint32) bool { return id >= n.nhBase && id < n.nhEnd }

func (n *Node) addVRF(v uint32) {
	if !slices.Contains(n.st.VRFs, v) {
		n.st.VRFs = append(n.st.VRFs, v)
		slices.Sort(n.st.VRFs)
	}
}

func (n *Node) attachment(cid, ifName string) (int, *Attachment) {
	for i, a := range n.st.Attachments {
		if a.ContainerID == cid && a.IfName == ifName {
			return i, a
		}
	}
	return -1, nil
}

func parseMAC(s string) (net.HardwareAddr, error) { return net.ParseMAC(s) }
