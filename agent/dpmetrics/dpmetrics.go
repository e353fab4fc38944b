// Package dpmetrics exports filament-dataplane's counters as Prometheus
// metrics (filament_dataplane_*): a collector that reads them over the
// dataplane's API when it is scraped, not a polling goroutine, within a
// timeout. When the dataplane does not answer, filament_dataplane_up is 0
// and the scrape still succeeds with the agent's own metrics.
//
// It has its own connection to the dataplane, so a scrape never waits for
// the agent's CNI commands or resyncs (or they for it).
package dpmetrics

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/dpdk/apiclient"
)

// Pod is what a pod port's metrics are labelled with.
type Pod struct {
	Namespace, Name, Network string
}

// Collector is a prometheus.Collector of the dataplane's counters.
type Collector struct {
	socket  string
	timeout time.Duration
	pods    func() map[string]Pod // port name -> its pod
	log     *zap.Logger

	mu     sync.Mutex // one scrape at a time on the connection
	client *apiclient.Client
}

// New returns a collector that reads the dataplane at socket, giving each
// scrape at most timeout; pods names the pod behind each pod port.
func New(socket string, timeout time.Duration, pods func() map[string]Pod, log *zap.Logger) *Collector {
	return &Collector{socket: socket, timeout: timeout, pods: pods, log: log}
}

// Close closes the connection to the dataplane.
func (c *Collector) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil {
		c.client.Close()
		c.client = nil
	}
}

var portLabels = []string{"port", "kind", "network", "pod_namespace", "pod_name"}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("filament_dataplane_"+name, help, labels, nil)
}

var (
	descUp    = desc("up", "1 if the agent read the dataplane's counters at this scrape, 0 if the dataplane did not answer.")
	descInfo  = desc("info", "The dataplane's build and API version (always 1).", "version", "api_version")
	descDrops = desc("drops_total", "Packets the fast path dropped, by reason (docs/operations.md, \"Troubleshooting by drop reason\").",
		"reason")
	descPortRxPackets = desc("port_rx_packets_total", "Packets the fast path received on the port.", portLabels...)
	descPortRxBytes   = desc("port_rx_bytes_total", "Bytes the fast path received on the port.", portLabels...)
	descPortTxPackets = desc("port_tx_packets_total", "Packets the fast path sent on the port.", portLabels...)
	descPortTxBytes   = desc("port_tx_bytes_total", "Bytes the fast path sent on the port.", portLabels...)
	descPortTxDrops   = desc("port_tx_drops_total", "Packets the port's device did not take for sending (counted tx_full).", portLabels...)
	descPortMissed    = desc("port_rx_missed_total", "Packets the device dropped because its RX queue was full (a worker too slow).", portLabels...)
	descPortNoMbuf    = desc("port_rx_nombuf_total", "Packets the device dropped for want of a packet buffer (the pool is empty).", portLabels...)
	descPortRxErrors  = desc("port_rx_errors_total", "Receive errors the device counted.", portLabels...)
	descPortTxErrors  = desc("port_tx_errors_total", "Transmit errors the device counted.", portLabels...)
	descPortLinkUp    = desc("port_link_up", "1 if the port's link is up.", portLabels...)
	descPolls         = desc("lcore_polls_total", "Polls of the worker's RX queues: busy ones received packets, idle ones none.", "worker", "state")
	descSleeps        = desc("lcore_sleeps_total", "Times the idle worker slept (adaptive polling).", "worker")
	descBusyCycles    = desc("lcore_busy_cycles_total", "TSC cycles the worker spent in busy polls.", "worker")
	descLcoreRx       = desc("lcore_rx_packets_total", "Packets the worker received.", "worker")
	descLcoreTx       = desc("lcore_tx_packets_total", "Packets the worker sent.", "worker")
	descLcoreDrops    = desc("lcore_drops_total", "Packets the worker dropped (every reason).", "worker")
	descLcoreConsumed = desc("lcore_consumed_total", "Packets the worker terminated itself (not drops: an ARP reply it learnt from).", "worker")
	descLcoreRAs      = desc("lcore_router_adverts_total", "Router Advertisements the worker sent, answering pods' Router Solicitations.", "worker")
	descMbufs         = desc("mbufs_in_use", "Packet buffers in use.")
	descRoutes        = desc("routes", "IPv4 routes in the VRF's FIB.", "vrf")
)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descInfo, descDrops, descPortRxPackets, descPortRxBytes,
		descPortTxPackets, descPortTxBytes, descPortTxDrops, descPortMissed, descPortNoMbuf, descPortRxErrors,
		descPortTxErrors, descPortLinkUp, descPolls, descSleeps, descBusyCycles, descLcoreRx, descLcoreTx,
		descLcoreDrops, descLcoreConsumed, descLcoreRAs, descMbufs, descRoutes} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: it reads the counters, the
// ports and the VRFs, and sends nothing but up 0 if any of that fails.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	ms, err := c.read(ctx)
	if err != nil {
		c.log.Debug("dataplane metrics not read", zap.Error(err))
		if c.client != nil { // dial again next time: it may have restarted
			c.client.Close()
			c.client = nil
		}
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	for _, m := range ms {
		ch <- m
	}
}

// read gathers every metric first, so that a failure part way sends none.
func (c *Collector) read(ctx context.Context) ([]prometheus.Metric, error) {
	if c.client == nil {
		cl, err := apiclient.Dial(ctx, c.socket, apiclient.WithName("filament-agent-metrics"))
		if err != nil {
			return nil, err
		}
		c.client = cl
	}
	counters, err := c.client.GetCounters(ctx, &pb.GetCountersRequest{})
	if err != nil {
		return nil, fmt.Errorf("counters: %w", err)
	}
	ports, err := c.client.ListPorts(ctx, &pb.ListPortsRequest{})
	if err != nil {
		return nil, fmt.Errorf("ports: %w", err)
	}
	vrfs, err := c.client.ListVRFs(ctx, &pb.ListVRFsRequest{})
	if err != nil {
		return nil, fmt.Errorf("VRFs: %w", err)
	}
	var ms []prometheus.Metric
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ms = append(ms, prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...))
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ms = append(ms, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...))
	}
	srv := c.client.Server
	gauge(descInfo, 1, srv.GetServerVersion(),
		fmt.Sprintf("%d.%d", srv.GetApiVersion().GetMajor(), srv.GetApiVersion().GetMinor()))
	for _, d := range counters.Drops {
		counter(descDrops, d.Packets, d.Reason)
	}

	pods := c.pods()
	labels := map[string][]string{}
	link := map[string]bool{}
	for _, p := range ports.Ports {
		pod := pods[p.Port.GetName()]
		kind := strings.ToLower(strings.TrimPrefix(p.Port.GetKind().String(), "PORT_KIND_"))
		labels[p.Port.GetName()] = []string{p.Port.GetName(), kind, pod.Network, pod.Namespace, pod.Name}
		link[p.Port.GetName()] = p.LinkUp
	}
	for _, p := range counters.Ports {
		l, ok := labels[p.Name]
		if !ok { // added between the two calls
			l = []string{p.Name, "", "", "", ""}
		}
		counter(descPortRxPackets, p.RxPackets, l...)
		counter(descPortRxBytes, p.RxBytes, l...)
		counter(descPortTxPackets, p.TxPackets, l...)
		counter(descPortTxBytes, p.TxBytes, l...)
		counter(descPortTxDrops, p.Drops, l...)
		counter(descPortMissed, p.DevMissed, l...)
		counter(descPortNoMbuf, p.DevRxNombuf, l...)
		counter(descPortRxErrors, p.DevRxErrors, l...)
		counter(descPortTxErrors, p.DevTxErrors, l...)
		up := 0.0
		if link[p.Name] {
			up = 1
		}
		gauge(descPortLinkUp, up, l...)
	}
	for _, l := range counters.Lcores {
		w := strconv.FormatUint(uint64(l.Worker), 10)
		counter(descPolls, l.BusyPolls, w, "busy")
		counter(descPolls, l.Polls-min(l.BusyPolls, l.Polls), w, "idle")
		counter(descSleeps, l.Sleeps, w)
		counter(descBusyCycles, l.BusyCycles, w)
		counter(descLcoreRx, l.RxPackets, w)
		counter(descLcoreTx, l.TxPackets, w)
		counter(descLcoreDrops, l.Drops, w)
		counter(descLcoreConsumed, l.Consumed, w)
		counter(descLcoreRAs, l.RouterAdverts, w)
	}
	gauge(descMbufs, float64(counters.MbufsInUse))
	for _, v := range vrfs.Vrfs {
		gauge(descRoutes, float64(v.Routes), strconv.FormatUint(uint64(v.Vrf), 10))
	}
	return ms, nil
}
