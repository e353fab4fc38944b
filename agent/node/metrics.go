package node

import (
	"math/big"
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
		"Addresses given from this node's block, by network.", []string{"network"}, nil)
	descCapacity = prometheus.NewDesc("filament_agent_ipam_capacity",
		"Addresses this node's block can give, by network.", []string{"network"}, nil)
)

// Describe implements prometheus.Collector.
func (n *Node) Describe(ch chan<- *prometheus.Desc) {
	n.metrics.resyncs.Describe(ch)
	ch <- descReady
	ch <- descAttachments
	ch <- descAllocated
	ch <- descCapacity
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
	alloc := map[string]int{}
	for _, a := range n.ipam.All() {
		alloc[a.Network]++
	}
	n.countMu.Lock()
	att := map[string]int{}
	for k, v := range n.attachCount {
		att[k] = v
	}
	n.countMu.Unlock()
	for _, nw := range n.cfg.Networks {
		ch <- prometheus.MustNewConstMetric(descAttachments, prometheus.GaugeValue, float64(att[nw.Name]), nw.Name)
		ch <- prometheus.MustNewConstMetric(descAllocated, prometheus.GaugeValue, float64(alloc[nw.Name]), nw.Name)
		ch <- prometheus.MustNewConstMetric(descCapacity, prometheus.GaugeValue, capacity(nw.Subnet, nw.PodBlock, nw.Gateway), nw.Name)
	}
}

// capacity counts the block's addresses IPAM may give (see ipam.Pool).
func capacity(subnet, block netip.Prefix, gw netip.Addr) float64 {
	total := new(big.Int).Lsh(big.NewInt(1), uint(32-block.Bits()))
	c := total.Int64()
	skip := map[netip.Addr]bool{subnet.Addr(): true, gw: true}
	if block.Bits() <= 30 {
		skip[block.Addr()] = true
		skip[lastAddr(block)] = true
	}
	skip[lastAddr(subnet)] = true
	for a := range skip {
		if block.Contains(a) {
			c--
		}
	}
	return float64(max(c, 0))
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= uint32(uint64(1)<<(32-p.Bits()) - 1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
