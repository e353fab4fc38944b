package e2e

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/filament-net/filament/internal/testnet"
)

// scrape reads the agent's /metrics in the node's namespace: series (the
// name and labels as the exposition writes them) to value.
func scrape(t *testing.T, tn *testnet.Net, n *node) map[string]float64 {
	t.Helper()
	out := tn.MustIn(n.ns, "curl", "-sf", "--max-time", "10", "http://127.0.0.1:9464/metrics")
	m := map[string]float64{}
	for _, l := range strings.Split(out, "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", l, err)
		}
		m[l[:i]] = v
	}
	return m
}

// series writes name{k="v",...} as the exposition does (labels sorted).
func series(name string, kv ...string) string {
	var ls []string
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, fmt.Sprintf("%s=%q", kv[i], kv[i+1]))
	}
	slices.Sort(ls)
	if len(ls) == 0 {
		return name
	}
	return name + "{" + strings.Join(ls, ",") + "}"
}

// TestDataplaneMetrics: the agent's /metrics carries the dataplane's
// counters: pod ports labelled with their pods move with traffic, a
// spoofed source from a pod is counted under spoof_ip exactly, workers'
// polls and the VRF's routes are there; with the dataplane stopped the
// scrape still succeeds with filament_dataplane_up 0.
func TestDataplaneMetrics(t *testing.T) {
	tn := testnet.New(t)
	nodeNS, other := tn.NS("n1"), tn.NS("x")
	tn.Veth(tn.Name("f1"), nodeNS, tn.Name("f1x"), other)
	n := startNode(t, tn, 1, nodeNS, tn.Name("f1"), "vxlan", nil)
	p1 := n.add(t, tn, "p1")
	p2 := n.add(t, tn, "p2")
	ping(t, tn, p1, p2.ip) // ARP settled, the pods' gateway known

	port := func(name string, p pod) string {
		return series(name, "port", hostIf(p), "kind", "pod", "network", "red", "pod_namespace", "default", "pod_name", p.cid)
	}
	spoof := series("filament_dataplane_drops_total", "reason", "spoof_ip")
	before := scrape(t, tn, n)
	for _, s := range []string{"filament_dataplane_up", port("filament_dataplane_port_rx_packets_total", p1),
		series("filament_dataplane_port_rx_packets_total", "port", "fabric", "kind", "fabric", "network", "", "pod_namespace", "", "pod_name", ""),
		spoof, series("filament_dataplane_lcore_polls_total", "worker", "0", "state", "busy"),
		series("filament_dataplane_routes", "vrf", "1"), "filament_dataplane_mbufs_in_use"} {
		if _, ok := before[s]; !ok {
			t.Errorf("no %s", s)
		}
	}
	if before["filament_dataplane_up"] != 1 || before[series("filament_dataplane_routes", "vrf", "1")] != 3 {
		t.Errorf("up %v, routes in VRF 1 %v (want 1, 3: gateway, two pods)", before["filament_dataplane_up"],
			before[series("filament_dataplane_routes", "vrf", "1")])
	}

	// 20 pings p1 -> p2: p1's port receives them, p2's sends them.
	if out, err := tn.Output(p1.ns, "ping", "-c", "20", "-i", "0.05", "-W", "2", p2.ip.String()); err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	// 7 pings from an address p1 does not own: 7 spoof_ip drops, no more.
	spoofed := netip.MustParseAddr("10.20.1.99")
	tn.MustIn(p1.ns, "ip", "addr", "add", spoofed.String()+"/32", "dev", "eth0")
	_, _ = tn.Output(p1.ns, "ping", "-c", "7", "-i", "0.05", "-W", "1", "-I", spoofed.String(), "10.20.0.1")
	var after map[string]float64
	waitFor(t, "the spoofed pings counted", 10*time.Second, func() bool {
		after = scrape(t, tn, n)
		return after[spoof]-before[spoof] >= 7
	})
	if d := after[spoof] - before[spoof]; d != 7 {
		t.Errorf("spoof_ip drops went up by %v, want 7", d)
	}
	rx, tx := port("filament_dataplane_port_rx_packets_total", p1), port("filament_dataplane_port_tx_packets_total", p2)
	if after[rx]-before[rx] < 27 || after[tx]-before[tx] < 20 {
		t.Errorf("p1's port received %v more packets (want >= 27), p2's sent %v more (want >= 20)",
			after[rx]-before[rx], after[tx]-before[tx])
	}
	if b := port("filament_dataplane_port_rx_bytes_total", p1); after[b]-before[b] < 27*98 {
		t.Errorf("p1's port received %v more bytes, want >= %d", after[b]-before[b], 27*98)
	}
	if t.Failed() {
		t.Logf("metrics after: %v", after)
	}

	// The dataplane gone: the scrape still answers, with up 0.
	if err := n.dataplane.stop(); err != nil {
		t.Fatalf("dataplane exit: %v", err)
	}
	down := scrape(t, tn, n)
	if v, ok := down["filament_dataplane_up"]; !ok || v != 0 {
		t.Errorf("filament_dataplane_up %v (present %v) with the dataplane stopped, want 0", v, ok)
	}
	if _, ok := down[spoof]; ok {
		t.Errorf("drop counters reported with the dataplane stopped")
	}
	if _, ok := down["filament_agent_dataplane_ready"]; !ok {
		t.Errorf("the agent's own metrics are missing when the dataplane is down")
	}
}
