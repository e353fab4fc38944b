package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/internal/testnet"
)

// dualNodes starts two dual-stack nodes, each the other's peer, joined by
// a veth fabric.
func dualNodes(t *testing.T, tn *testnet.Net, encap string, underlay6 bool) (*node, *node) {
	t.Helper()
	ns1, ns2 := tn.NS("n1"), tn.NS("n2")
	tn.Veth(tn.Name("f1"), ns1, tn.Name("f2"), ns2)
	n1 := startNodeWith(t, tn, nodeOpts{idx: 1, ns: ns1, fabricIf: tn.Name("f1"), encap: encap, dual: true, underlay6: underlay6,
		peers: []peer{{"node2", "192.168.100.2", "10.20.2.0/24"}}})
	n2 := startNodeWith(t, tn, nodeOpts{idx: 2, ns: ns2, fabricIf: tn.Name("f2"), encap: encap, dual: true, underlay6: underlay6,
		peers: []peer{{"node1", "192.168.100.1", "10.20.1.0/24"}}})
	return n1, n2
}

// TestDualStackOneNode: two dual-stack pods on one node. ADD's result
// lists both addresses with their gateways and a default route per
// family; the pod's interface has its IPv6 address usable at once (not
// tentative) and the default IPv6 route; the dataplane has the port's
// IPv6 address and the /128; the pods ping each other and gateway6 over
// IPv6; CHECK verifies both addresses; DEL releases both (the next pod
// gets them) and leaves no route.
func TestDualStackOneNode(t *testing.T) {
	tn := testnet.New(t)
	nodeNS, other := tn.NS("n1"), tn.NS("x")
	tn.Veth(tn.Name("f1"), nodeNS, tn.Name("f1x"), other)
	n := startNodeWith(t, tn, nodeOpts{idx: 1, ns: nodeNS, fabricIf: tn.Name("f1"), encap: "vxlan", dual: true})
	c := dial(t, n)
	if s := dump(t, c); !hasRoute(s, 1, "fd00:20::1/128") {
		t.Fatalf("gateway6 route missing: %v", s.Routes)
	}

	p1, p2 := n.add(t, tn, "p1"), n.add(t, tn, "p2")
	if !netip.MustParsePrefix("fd00:20::1:0/112").Contains(p1.ip6) || p1.ip6 == p2.ip6 {
		t.Fatalf("IPv6 addresses %v %v", p1.ip6, p2.ip6)
	}
	var res struct {
		IPs    []struct{ Address, Gateway string }
		Routes []struct{ Dst, GW string }
	}
	if err := json.Unmarshal(p1.result, &res); err != nil {
		t.Fatal(err)
	}
	if res.IPs[1].Address != p1.ip6.String()+"/64" || res.IPs[1].Gateway != "fd00:20::1" ||
		len(res.Routes) != 2 || res.Routes[1].Dst != "::/0" || res.Routes[1].GW != "fd00:20::1" {
		t.Errorf("ADD result %s", p1.result)
	}
	addr6 := tn.MustIn(p1.ns, "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global")
	if !strings.Contains(addr6, p1.ip6.String()+"/64") || strings.Contains(addr6, "tentative") {
		t.Errorf("pod's IPv6 address: %s", addr6)
	}
	if r := tn.MustIn(p1.ns, "ip", "-6", "route", "show", "default"); !strings.Contains(r, "via fd00:20::1 dev eth0") {
		t.Errorf("pod's default IPv6 route: %q", r)
	}
	s := dump(t, c)
	if !hasRoute(s, 1, p1.ip6.String()+"/128") || !hasRoute(s, 1, p2.ip6.String()+"/128") {
		t.Errorf("pods' /128 routes missing: %v", s.Routes)
	}
	for _, p := range s.Ports {
		if p.Name == hostIf(p1) && (len(p.Ipv6) != 1 || p.Ipv6[0] != p1.ip6.String()) {
			t.Errorf("p1's port: ipv6 %v, want [%v]", p.Ipv6, p1.ip6)
		}
	}

	ping(t, tn, p1, p2.ip6)
	ping(t, tn, p2, p1.ip6)
	ping(t, tn, p1, netip.MustParseAddr("fd00:20::1"))
	ping(t, tn, p1, p2.ip) // IPv4 still

	// The pod's Router Solicitation was answered: the kernel took the
	// vRouter (its link-local address, from the default vRouter MAC
	// 00:00:5e:00:01:00) as a default router beside the CNI's route, and
	// both still work.
	for _, p := range []pod{p1, p2} {
		var routes6 string
		waitFor(t, p.cid+"'s default route from the vRouter's Router Advertisement", 15*time.Second, func() bool {
			routes6 = tn.MustIn(p.ns, "ip", "-6", "route", "show", "default")
			return strings.Contains(routes6, "via fe80::200:5eff:fe00:100 dev eth0 proto ra")
		})
		if !strings.Contains(routes6, "via fd00:20::1 dev eth0") {
			t.Errorf("%s: the CNI's default IPv6 route is gone after the Router Advertisement: %q", p.cid, routes6)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	counters, err := c.GetCounters(ctx, &pb.GetCountersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var adverts uint64
	for _, l := range counters.Lcores {
		adverts += l.RouterAdverts
	}
	if adverts < 2 {
		t.Errorf("router_adverts %d: want one per pod at least", adverts)
	}
	ping(t, tn, p1, p2.ip6)

	// Metrics per family.
	metrics := tn.MustIn(nodeNS, "curl", "-sf", "http://127.0.0.1:9464/metrics")
	for _, want := range []string{
		`filament_agent_ipam_allocated{family="ipv4",network="red"} 2`,
		`filament_agent_ipam_allocated{family="ipv6",network="red"} 2`,
		`filament_agent_ipam_capacity{family="ipv6",network="red"} 65535`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}

	// CHECK: fine; fails once the IPv6 address is gone; ADD repairs it.
	prev := map[string]any{"prevResult": p1.result}
	if _, err := n.cniConf(t, "CHECK", p1.cid, p1.netns, "eth0", prev); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	tn.MustIn(p1.ns, "ip", "-6", "addr", "del", p1.ip6.String()+"/64", "dev", "eth0")
	if _, err := n.cniConf(t, "CHECK", p1.cid, p1.netns, "eth0", prev); err == nil ||
		!strings.Contains(err.Error(), "does not have address "+p1.ip6.String()) {
		t.Errorf("CHECK of a pod without its IPv6 address: %v", err)
	}
	if _, err := n.cni(t, "ADD", p1.cid, p1.netns, "eth0"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.cniConf(t, "CHECK", p1.cid, p1.netns, "eth0", prev); err != nil {
		t.Errorf("CHECK after repair: %v", err)
	}
	ping(t, tn, p2, p1.ip6)

	// DEL p2: both routes go, both addresses are released (ipam.json),
	// and the next pod gets them.
	if _, err := n.cni(t, "DEL", p2.cid, p2.netns, "eth0"); err != nil {
		t.Fatal(err)
	}
	s = dump(t, c)
	if hasRoute(s, 1, p2.ip6.String()+"/128") || hasRoute(s, 1, p2.ip.String()+"/32") || len(podPorts(s)) != 1 {
		t.Errorf("after DEL: routes %v ports %v", s.Routes, podPorts(s))
	}
	b, err := os.ReadFile(filepath.Join(n.dir, "state", "ipam.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), p2.cid) || strings.Count(string(b), `"address"`) != 2 {
		t.Errorf("ipam.json after p2's DEL:\n%s", b)
	}
	p3 := n.add(t, tn, "p3")
	if p3.ip != p2.ip || p3.ip6 != p2.ip6 {
		t.Errorf("p3 got %v %v, want p2's released %v %v", p3.ip, p3.ip6, p2.ip, p2.ip6)
	}
	ping(t, tn, p3, p1.ip6)
}

// TestDualStackTwoNodes: for each encapsulation, pods a and b on node1
// and c on node2 ping each other over IPv6, and 4 MB go over TCP/IPv6
// between pods of one node and across the nodes both ways, with the same
// SHA-256 at both ends.
func TestDualStackTwoNodes(t *testing.T) {
	for _, encap := range []string{"vxlan", "mplsoudp", "mplsogre"} {
		t.Run(encap, func(t *testing.T) {
			tn := testnet.New(t)
			n1, n2 := dualNodes(t, tn, encap, false)
			a, b := n1.add(t, tn, "a"), n1.add(t, tn, "b")
			c := n2.add(t, tn, "c")
			pods := []pod{a, b, c}
			for _, from := range pods {
				for _, to := range pods {
					if from.ns != to.ns {
						ping(t, tn, from, to.ip6)
					}
				}
			}
			ping(t, tn, c, a.ip) // IPv4 through the same tunnel
			if encap == "vxlan" {
				tcpTransferTo(t, "IPv6 same node", a, b, b.ip6, 4<<20, 1)
				packetTooBig(t, tn, n1, a, c)
			}
			tcpTransferTo(t, "IPv6 node1 to node2", a, c, c.ip6, 4<<20, 2)
			tcpTransferTo(t, "IPv6 node2 to node1", c, b, b.ip6, 4<<20, 3)
		})
	}
}

// packetTooBig: a pod whose eth0 (and its veth peer on the node, which
// would drop the frame otherwise) is raised to 1500 sends a 1500-byte IPv6
// packet to a pod behind the tunnel (1450 over VXLAN): the vRouter answers
// ICMPv6 packet too big with the tunnel's MTU, from the network's gateway6
// (its VRF IPv6 address, programmed by the agent).
func packetTooBig(t *testing.T, tn *testnet.Net, n *node, from, to pod) {
	t.Helper()
	tn.MustIn(n.ns, "ip", "link", "set", hostIf(from), "mtu", "1500")
	tn.MustIn(from.ns, "ip", "link", "set", "eth0", "mtu", "1500")
	out, _ := tn.Output(from.ns, "ping", "-6", "-M", "do", "-s", "1452", "-c", "1", "-W", "2", to.ip6.String())
	if !strings.Contains(out, "From fd00:20::1") || !strings.Contains(out, "Packet too big: mtu=1450") {
		t.Errorf("1500-byte IPv6 ping over a 1450 tunnel: want packet too big from fd00:20::1, mtu=1450:\n%s", out)
	}
}

// TestDualStackIPv6Underlay: for each encapsulation, both nodes have an
// IPv6 underlay address, so the tunnel is IPv6 (for both families inside)
// and the pods' MTU 20 bytes smaller (1430 over VXLAN, 1448 over MPLSoUDP,
// 1452 over MPLSoGRE); each node resolved the other's IPv6 underlay
// address by neighbour discovery; ping over both families and 4 MB over
// TCP across the nodes, over IPv6 and over IPv4, SHA-256 equal (full-sized
// segments: the MTU is right), with no outer UDP checksum refused.
func TestDualStackIPv6Underlay(t *testing.T) {
	for _, c := range []struct {
		encap string
		mtu   int
	}{{"vxlan", 1430}, {"mplsoudp", 1448}, {"mplsogre", 1452}} {
		t.Run(c.encap, func(t *testing.T) {
			tn := testnet.New(t)
			n1, n2 := dualNodes(t, tn, c.encap, true)
			c1 := dial(t, n1)
			var tunnels []string
			for _, nh := range dump(t, c1).NextHops {
				if nh.Type == pb.NextHopType_NEXT_HOP_TYPE_TUNNEL {
					tunnels = append(tunnels, nh.TunnelDst)
				}
			}
			if len(tunnels) != 1 || tunnels[0] != "fd00:100::2" {
				t.Fatalf("node1's tunnels go to %v, want fd00:100::2", tunnels)
			}
			a, b := n1.add(t, tn, "a"), n2.add(t, tn, "b")
			if out := tn.MustIn(a.ns, "ip", "-o", "link", "show", "eth0"); !strings.Contains(out, fmt.Sprintf("mtu %d ", c.mtu)) {
				t.Errorf("pod eth0: %s, want mtu %d", out, c.mtu)
			}
			ping(t, tn, a, b.ip6)
			ping(t, tn, b, a.ip6)
			ping(t, tn, a, b.ip)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ns, err := c1.ListNeighbors(ctx, &pb.ListNeighborsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if len(ns.Neighbors) != 1 || ns.Neighbors[0].Ip != "fd00:100::2" || !ns.Neighbors[0].Resolved ||
				ns.Neighbors[0].Mac != "02:fe:c0:a8:64:02" {
				t.Errorf("node1's underlay neighbours %v, want fd00:100::2 resolved at 02:fe:c0:a8:64:02 (ND)", ns.Neighbors)
			}
			tcpTransferTo(t, "IPv6 in IPv6, node1 to node2", a, b, b.ip6, 4<<20, 4)
			tcpTransferTo(t, "IPv4 in IPv6, node2 to node1", b, a, a.ip, 4<<20, 5)
			for _, n := range []*node{n1, n2} {
				cs, err := dial(t, n).GetCounters(ctx, &pb.GetCountersRequest{})
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range cs.Drops {
					if (d.Reason == "udp_checksum" || d.Reason == "udp6_zero_checksum") && d.Packets != 0 {
						t.Errorf("%s dropped %d packets as %s", n.name, d.Packets, d.Reason)
					}
				}
			}
		})
	}
}

// globalAddr6 is the pod's global IPv6 address on eth0 (invalid if none);
// it fails the test if the address is tentative (DAD) or there are two.
func globalAddr6(t *testing.T, tn *testnet.Net, p pod) netip.Addr {
	t.Helper()
	out := strings.TrimSpace(tn.MustIn(p.ns, "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global"))
	if out == "" {
		return netip.Addr{}
	}
	f := strings.Fields(out)
	if len(strings.Split(out, "\n")) != 1 || len(f) < 4 || strings.Contains(out, "tentative") {
		t.Fatalf("%s's global IPv6 addresses: %q", p.ns, out)
	}
	return netip.MustParsePrefix(f[3]).Addr()
}

// TestDualStackLater: pods attached while network red was IPv4-only get
// their IPv6 address when the agent restarts with red dual stack, without
// a new ADD: IPAM, the address (not tentative) and the default route via
// gateway6 in the pod's netns, the port's ipv6 and the /128 in the
// dataplane; they ping gateway6 and each other over IPv6. With red
// IPv4-only again, the next restart takes all of it back (no global
// address, no default IPv6 route, no ipv6 on the port, no /128, nothing
// in ipam.json) and IPv4 still works.
func TestDualStackLater(t *testing.T) {
	tn := testnet.New(t)
	nodeNS, other := tn.NS("n1"), tn.NS("x")
	tn.Veth(tn.Name("f1"), nodeNS, tn.Name("f1x"), other)
	n := startNodeWith(t, tn, nodeOpts{idx: 1, ns: nodeNS, fabricIf: tn.Name("f1"), encap: "vxlan"})
	c := dial(t, n)
	p1, p2 := n.add(t, tn, "p1"), n.add(t, tn, "p2")
	if a := globalAddr6(t, tn, p1); a.IsValid() {
		t.Fatalf("p1 has IPv6 address %v in an IPv4-only network", a)
	}

	v4cfg, err := os.ReadFile(n.agentCfg)
	if err != nil {
		t.Fatal(err)
	}
	const block = "    pod_block: 10.20.1.0/24\n"
	dualCfg := strings.Replace(string(v4cfg), block, block+"    subnet6: \"fd00:20::/64\"\n    pod_block6: \"fd00:20::1:0/112\"\n", 1)
	if dualCfg == string(v4cfg) {
		t.Fatalf("no %q in the agent's configuration:\n%s", block, v4cfg)
	}
	restart := func(cfg string) {
		t.Helper()
		if err := os.WriteFile(n.agentCfg, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := n.agent.stop(); err != nil {
			t.Fatalf("agent stop: %v", err)
		}
		n.startAgent(t)
	}
	restart(dualCfg)

	block6 := netip.MustParsePrefix("fd00:20::1:0/112")
	p1.ip6, p2.ip6 = globalAddr6(t, tn, p1), globalAddr6(t, tn, p2)
	if !block6.Contains(p1.ip6) || !block6.Contains(p2.ip6) || p1.ip6 == p2.ip6 {
		t.Fatalf("IPv6 addresses after red became dual stack: %v %v, want two of %v", p1.ip6, p2.ip6, block6)
	}
	if r := tn.MustIn(p1.ns, "ip", "-6", "route", "show", "default"); !strings.Contains(r, "via fd00:20::1 dev eth0") {
		t.Errorf("p1's default IPv6 route: %q", r)
	}
	s := dump(t, c)
	for _, p := range []pod{p1, p2} {
		if !hasRoute(s, 1, p.ip6.String()+"/128") {
			t.Errorf("%s's /128 missing: %v", p.ns, s.Routes)
		}
	}
	for _, p := range s.Ports {
		if p.Name == hostIf(p1) && (len(p.Ipv6) != 1 || p.Ipv6[0] != p1.ip6.String()) {
			t.Errorf("p1's port: ipv6 %v, want [%v]", p.Ipv6, p1.ip6)
		}
	}
	ping(t, tn, p1, netip.MustParseAddr("fd00:20::1"))
	ping(t, tn, p1, p2.ip6)
	ping(t, tn, p2, p1.ip6)

	restart(string(v4cfg))
	for _, p := range []pod{p1, p2} {
		if a := globalAddr6(t, tn, p); a.IsValid() {
			t.Errorf("%s keeps IPv6 address %v after red became IPv4-only", p.ns, a)
		}
		if r := strings.TrimSpace(tn.MustIn(p.ns, "ip", "-6", "route", "show", "default")); r != "" {
			t.Errorf("%s keeps a default IPv6 route: %q", p.ns, r)
		}
	}
	s = dump(t, c)
	for _, r := range s.Routes {
		if block6.Contains(netip.MustParsePrefix(r.Prefix).Addr()) {
			t.Errorf("route %v left after red became IPv4-only", r)
		}
	}
	for _, p := range s.Ports {
		if len(p.Ipv6) != 0 {
			t.Errorf("port %s keeps ipv6 %v", p.Name, p.Ipv6)
		}
	}
	b, err := os.ReadFile(filepath.Join(n.dir, "state", "ipam.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "fd00:20") || strings.Count(string(b), `"address"`) != 2 {
		t.Errorf("ipam.json after red became IPv4-only:\n%s", b)
	}
	ping(t, tn, p1, p2.ip)
}
