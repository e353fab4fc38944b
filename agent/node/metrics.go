package node

import (
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the node's Prometheus metrics (docs/agent.md, "Metrics").
// Counters are updated as things happen; gauges are read from the node's
// state at each scrape.
type Metrics struct {
	resyncs *prometheus.CounterVec
}

func newMetrics() *Metrics {
	return &Metrics{
		resyncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "filament_agent_resyncs_total",
			Help: "Resynchronisations with the dataplane (list, replace, sweep), by result.",
		}, []string{"result"}),
	}
}

var (
	descReady = prometheus.NewDesc("filament_agent_dataplane_ready",
		"1 when the agent has programmed the dataplane and serves ADD.", nil, nil)
	descAttachments = prometheus.NewDesc("filament_agent_attachments",
		"Pod interfaces attached, by network.", []string{"network"}, nil)
	descAllocated = prometheus.NewDesc("filament_agent_ipam_allocated",
		"Addresses given from this node's block, by network and family (ipv4, ipv6).", []string{"network", "family"}, nil)
	descCapacity = prometheus.NewDesc("filament_agent_ipam_capacity",
		"Addresses this node's block can give, by network and family (ipv6 only for dual-stack networks).",
		[]string{"network", "family"}, nil)
	descPortWaits = prometheus.NewDesc("filament_agent_adds_waiting_for_port",
		"Kubernetes mode: ADDs now waiting for their pod's Port to reach the agent's cache.", nil, nil)
)

// Describe implements prometheus.Collector.
func (n *Node) Describe(ch chan<- *prometheus.Desc) {
	n.metrics.resyncs.Describe(ch)
	ch <- descReady
	ch <- descAttachments
	ch <- descAllocated
	ch <- descCapacity
	ch <- descPortWaits
}

// Collect implements prometheus.Collector. It does not wait for a CNI
// command in progress: it reads counts kept under their own locks.
func (n *Node) Collect(ch chan<- prometheus.Metric) {
	n.metrics.resyncs.Collect(ch)
	ready := 0.0
	if n.Ready() {
		ready = 1
	}
	ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, ready)
	if n.ports != nil {
		ch <- prometheus.MustNewConstMetric(descPortWaits, prometheus.GaugeValue, float64(n.portWaits.Load()))
	}
	type fam struct{ network, family string }
	alloc := map[fam]int{}
	for _, a := range n.ipam.All() {
		alloc[fam{a.Network, family(a.Address)}]++
	}
	n.countMu.Lock()
	att := map[string]int{}
	for k, v := range n.attachCount {
		att[k] = v
	}
	n.countMu.Unlock()
	n.netMu.RLock()
	defer n.netMu.RUnlock()
	for i := range n.cfg.Networks {
		nw := &n.cfg.Networks[i]
		ch <- prometheus.MustNewConstMetric(descAttachments, prometheus.GaugeValue, float64(att[nw.Name]), nw.Name)
		if !nw.PodBlock.IsValid() {
			// Kubernetes mode: the addresses are kube-manager's, and a
			// pool without a block has no capacity (Capacity panics).
			continue
		}
		v4, v6 := poolOf(nw).Capacity()
		ch <- prometheus.MustNewConstMetric(descAllocated, prometheus.GaugeValue, float64(alloc[fam{nw.Name, "ipv4"}]), nw.Name, "ipv4")
		ch <- prometheus.MustNewConstMetric(descCapacity, prometheus.GaugeValue, v4, nw.Name, "ipv4")
		if nw.DualStack() {
			ch <- prometheus.MustNewConstMetric(descAllocated, prometheus.GaugeValue, float64(alloc[fam{nw.Name, "ipv6"}]), nw.Name, "ipv6")
			ch <- prometheus.MustNewConstMetric(descCapacity, prometheus.GaugeValue, v6, nw.Name, "ipv6")
		}
	}
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "ipv4"
	}
	return "ipv6"
}
