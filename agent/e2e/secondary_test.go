package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/filament-net/filament/internal/testnet"
)

// A pod's second interface (Multus' net1) gets its address and its
// network's subnet, but not the default route: that stays on eth0, so the
// pod's replies to eth0's peers leave by eth0 (net1 would see them dropped
// by anti-spoofing). Its CNI result has no routes.
func TestSecondaryInterface(t *testing.T) {
	tn := testnet.New(t)
	nodeNS, other := tn.NS("n1"), tn.NS("x")
	tn.Veth(tn.Name("f1"), nodeNS, tn.Name("f1x"), other)
	// A second network, blue (no peers: the list ends the networks
	// section, so it can be appended).
	n := startNode(t, tn, 1, nodeNS, tn.Name("f1"), "vxlan", nil, `  - name: blue
    vrf: 2
    vni: 200
    label: 200
    subnet: 10.30.0.0/16
    gateway: 10.30.0.1
    encap: mplsoudp
    pod_block: 10.30.1.0/24
`)
	p := n.add(t, tn, "p1")
	q := n.add(t, tn, "p2")
	blue := map[string]any{"args": map[string]any{"cni": map[string]any{"network": "blue"}}}
	out, err := n.cniConf(t, "ADD", p.cid, p.netns, "net1", blue)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = n.cniConf(t, "DEL", p.cid, p.netns, "net1", blue) })
	var res struct {
		IPs    []struct{ Address string }
		Routes []any
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.IPs) != 1 || len(res.Routes) != 0 {
		t.Fatalf("net1's result (%v): %s, want an address and no routes", err, out)
	}
	if def := tn.MustIn(p.ns, "ip", "route", "show", "default"); !strings.Contains(def, "dev eth0") || strings.Contains(def, "net1") {
		t.Fatalf("default route after net1's ADD: %q, want eth0's only", def)
	}
	if addr := tn.MustIn(p.ns, "ip", "-o", "-4", "addr", "show", "dev", "net1"); !strings.HasPrefix(res.IPs[0].Address, "10.30.1.") ||
		!strings.Contains(addr, res.IPs[0].Address) {
		t.Fatalf("net1: %s, want %s in blue", addr, res.IPs[0].Address)
	}
	// eth0 still works both ways after net1 came.
	ping(t, tn, p, q.ip)
	ping(t, tn, q, p.ip)
}
