package node

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/filament-net/filament/agent/cniapi"
	"github.com/filament-net/filament/agent/config"
	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/dpdk/apiclient"
)

const dualCfg = `node: node1
fabric: {underlay_ip: 192.168.100.1, underlay_ipv6: "fd00:100::1"}
networks:
  - {name: red, vrf: 1, vni: 100, subnet: 10.20.0.0/16, pod_block: 10.20.1.0/24, subnet6: "fd00:20::/64", pod_block6: "fd00:20::1:0/112"}
  - {name: blue, vrf: 2, label: 200, encap: mplsoudp, subnet: 10.30.0.0/16, pod_block: 10.30.1.0/24}
peers:
  - {name: node2, underlay_ip: 192.168.100.2, underlay_ipv6: "fd00:100::2", pod_blocks: {red: 10.20.2.0/24, blue: 10.30.2.0/24}, pod_blocks6: {red: "fd00:20::2:0/112"}}
  - {name: node3, underlay_ip: 192.168.100.3, pod_blocks: {red: 10.20.3.0/24}}
`

func dualNode(t *testing.T) *Node {
	t.Helper()
	c, err := config.Parse([]byte(dualCfg))
	if err != nil {
		t.Fatal(err)
	}
	return &Node{cfg: c, log: zap.NewNop(), nhBase: 512, nhEnd: 1024, fabric: "fabric",
		st: state{NextHops: map[string]uint32{}}}
}

func prefixes(rs []*pb.Route) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Prefix)
	}
	slices.Sort(out)
	return out
}

// What a dual-stack network programs besides an IPv4 one: gateway6's
// /128 to the receive next-hop, the peers' IPv6 blocks through the same
// tunnel as their IPv4 ones, the tunnel IPv6 when both nodes have an IPv6
// underlay address.
func TestDesiredDualStack(t *testing.T) {
	n := dualNode(t)
	s, err := n.desiredState()
	if err != nil {
		t.Fatal(err)
	}
	var red, blue []*pb.Route
	for _, r := range s.Routes {
		switch r.Vrf {
		case 1:
			red = append(red, r)
		case 2:
			blue = append(blue, r)
		}
	}
	want := []string{"10.20.0.1/32", "10.20.2.0/24", "10.20.3.0/24", "fd00:20::1/128", "fd00:20::2:0/112"}
	if got := prefixes(red); !slices.Equal(got, want) {
		t.Errorf("red routes %v, want %v", got, want)
	}
	if got := prefixes(blue); !slices.Equal(got, []string{"10.30.0.1/32", "10.30.2.0/24"}) {
		t.Errorf("blue routes %v", got)
	}
	nhs := map[uint32]*pb.NextHop{}
	for _, h := range s.NextHops {
		nhs[h.Id] = h
	}
	byPrefix := map[string]*pb.Route{}
	for _, r := range red {
		byPrefix[r.Prefix] = r
	}
	if a, b := byPrefix["10.20.2.0/24"].NextHop, byPrefix["fd00:20::2:0/112"].NextHop; a != b || nhs[a].TunnelDst != "fd00:100::2" {
		t.Errorf("node2's blocks: next-hops %d and %d, tunnel to %s; want one, to fd00:100::2", a, b, nhs[a].TunnelDst)
	}
	if nh := nhs[byPrefix["10.20.3.0/24"].NextHop]; nh.TunnelDst != "192.168.100.3" {
		t.Errorf("node3 (no IPv6 underlay): tunnel to %s", nh.TunnelDst)
	}
	if nh := nhs[byPrefix["fd00:20::1/128"].NextHop]; nh.Type != pb.NextHopType_NEXT_HOP_TYPE_RECEIVE {
		t.Errorf("gateway6 route to %v", nh)
	}
}

// A dual-stack pod: its port may send from both addresses, both host
// routes go to its next-hop, the CNI result lists both with gateways and
// a default route per family (eth0 only), and CHECK wants both in
// prevResult.
func TestPodDualStack(t *testing.T) {
	n := dualNode(t)
	nw, _ := n.cfg.Network("red")
	a := &Attachment{ContainerID: "c1", IfName: "eth0", Network: "red", VRF: 1, HostIf: "filx", Mode: cniapi.ModeTap,
		MAC: "02:00:0a:14:01:01", Address: netip.MustParsePrefix("10.20.1.1/16"),
		Address6: netip.MustParsePrefix("fd00:20::1:1/64"), NextHop: 600, Netns: "/var/run/netns/p"}
	port, nh, rts := n.podObjects(a, nw)
	if !slices.Equal(port.Ipv4, []string{"10.20.1.1"}) || !slices.Equal(port.Ipv6, []string{"fd00:20::1:1"}) {
		t.Errorf("port addresses %v %v", port.Ipv4, port.Ipv6)
	}
	if got := prefixes(rts); !slices.Equal(got, []string{"10.20.1.1/32", "fd00:20::1:1/128"}) || rts[1].NextHop != nh.Id {
		t.Errorf("pod routes %v", rts)
	}
	del := n.podRoutes(1, a)
	if len(del) != 2 {
		t.Errorf("DEL deletes %d routes, want 2: %v", len(del), del)
	}
	r := n.result(a, nw, 1430)
	var ips, routes []string
	for _, ip := range r.IPs {
		ips = append(ips, ip.Address.String()+" gw "+ip.Gateway.String())
	}
	for _, rt := range r.Routes {
		routes = append(routes, rt.Dst.String()+" via "+rt.GW.String())
	}
	if strings.Join(ips, ", ") != "10.20.1.1/16 gw 10.20.0.1, fd00:20::1:1/64 gw fd00:20::1" ||
		strings.Join(routes, ", ") != "0.0.0.0/0 via 10.20.0.1, ::/0 via fd00:20::1" {
		t.Errorf("result: ips %v routes %v", ips, routes)
	}
	a.IfName = "net1"
	if r := n.result(a, nw, 1430); len(r.Routes) != 0 || len(r.IPs) != 2 {
		t.Errorf("net1: %+v", r)
	}
	if err := checkPrev(r, a); err != nil {
		t.Errorf("CHECK of ADD's result: %v", err)
	}
	// subnet6 gone from the configuration: the pod's IPv6 address is no
	// longer programmed nor reported.
	v4only := *nw
	v4only.Subnet6, v4only.Gateway6, v4only.PodBlock6 = netip.Prefix{}, netip.Addr{}, netip.Prefix{}
	if port, _, rts := n.podObjects(a, &v4only); len(port.Ipv6) != 0 || len(rts) != 1 || len(n.result(a, &v4only, 1430).IPs) != 1 {
		t.Errorf("without subnet6: port ipv6 %v, routes %v", port.Ipv6, rts)
	}
	r.IPs = r.IPs[:1]
	if err := checkPrev(r, a); err == nil || !strings.Contains(err.Error(), "lacks fd00:20::1:1/64") {
		t.Errorf("CHECK of a result without the IPv6 address: %v", err)
	}
}

// The sweep compares IPv6 prefixes by value, not by how the dataplane
// spells them.
func TestStaleIPv6Spelling(t *testing.T) {
	n := &Node{nhBase: 512, nhEnd: 1024}
	cur := &apiclient.State{Routes: []*pb.Route{
		{Vrf: 1, Prefix: "fd00:20:0:0::1:0/112", NextHop: 600},
		{Vrf: 1, Prefix: "fd00:21::/112", NextHop: 600},
	}}
	want := &apiclient.State{Routes: []*pb.Route{{Vrf: 1, Prefix: "fd00:20::1:0/112", NextHop: 600}}}
	ops := n.stale(cur, want).Ops
	if len(ops) != 1 || ops[0].GetRoute().GetPrefix() != "fd00:21::/112" {
		t.Errorf("stale: %v, want only fd00:21::/112", ops)
	}
}
