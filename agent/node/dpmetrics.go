package node

import "github.com/filament-net/filament/agent/dpmetrics"

// indexPortPods records which pod each of the agent's pod ports serves,
// for the dataplane's metrics (called with the attachments' counts).
func (n *Node) indexPortPods() {
	m := make(map[string]dpmetrics.Pod, len(n.st.Attachments))
	for _, a := range n.st.Attachments {
		m[a.HostIf] = dpmetrics.Pod{Namespace: a.PodNS, Name: a.PodName, Network: a.Network}
	}
	n.countMu.Lock()
	n.portPods = m
	n.countMu.Unlock()
}

// PortPods maps the pod ports' names to their pods (dpmetrics labels
// their counters with it). It does not wait for a CNI command.
func (n *Node) PortPods() map[string]dpmetrics.Pod {
	n.countMu.Lock()
	defer n.countMu.Unlock()
	return n.portPods // replaced whole, never changed in place
}
