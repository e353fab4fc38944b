package node

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/filament-net/filament/agent/config"
	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
)

const hostCfg = `node: node1
fabric: {underlay_ip: 192.168.100.1}
networks:
  - {name: red, vrf: 1, vni: 100, subnet: 10.10.0.0/16, gateway: 10.10.0.1, pod_block: 10.10.1.0/24}
  - {name: blue, vrf: 2, label: 200, encap: mplsoudp, subnet: 10.20.0.0/16, gateway: 10.20.0.1, pod_block: 10.20.1.0/24}
peers:
  - {name: node2, underlay_ip: 192.168.100.2, pod_blocks: {red: 10.10.2.0/24}}
`

func hostNode(t *testing.T, cfg string) *Node {
	t.Helper()
	c, err := config.Parse([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	return &Node{cfg: c, log: zap.NewNop(), nhBase: 512, nhEnd: 1024, st: state{NextHops: map[string]uint32{}},
		fabric: "fabric", hostFab: hostFabric{mac: "02:fe:00:00:00:01", kernel: "fab1"}}
}

func routeSet(rs []*pb.Route) []string {
	var out []string
	for _, r := range rs {
		out = append(out, itoa(r.Vrf)+" "+r.Prefix+" "+itoa(r.NextHop))
	}
	slices.Sort(out)
	return out
}

// The host port's objects: the TAP, a copy of the routes to pods in the
// host VRF (not the gateways'), a discard route per subnet, and the nodes'
// underlay addresses in each network.
func TestAddHost(t *testing.T) {
	n := hostNode(t, hostCfg+"host: {interface: vhost0, prefix_len: 24}\n")
	s, err := n.desiredState()
	if err != nil {
		t.Fatal(err)
	}
	// A pod on red, as an attachment makes it.
	s.Ports = append(s.Ports, &pb.Port{Name: "filaaaaaaaaaaa", Kind: pb.PortKind_PORT_KIND_POD, Vrf: 1})
	s.NextHops = append(s.NextHops, &pb.NextHop{Id: 700, Type: pb.NextHopType_NEXT_HOP_TYPE_INTERFACE,
		Port: "filaaaaaaaaaaa", DstMac: "02:00:0a:0a:01:02"})
	s.Routes = append(s.Routes, &pb.Route{Vrf: 1, Prefix: "10.10.1.2/32", NextHop: 700})
	before := routeSet(s.Routes)
	if err := n.addHost(s); err != nil {
		t.Fatal(err)
	}
	host, discard, tun := n.st.NextHops["host/vhost0"], n.st.NextHops["host/discard"], n.st.NextHops["tun/red/node2"]
	if host == 0 || discard == 0 || tun == 0 || n.st.HostPort != "vhost0" {
		t.Fatalf("next-hop ids %v, host port %q", n.st.NextHops, n.st.HostPort)
	}
	var added []string
	for _, r := range routeSet(s.Routes) {
		if !slices.Contains(before, r) {
			added = append(added, r)
		}
	}
	want := []string{
		"0 10.10.0.0/16 " + itoa(discard), "0 10.20.0.0/16 " + itoa(discard), // the rest of each network
		"0 10.10.1.2/32 700", "0 10.10.2.0/24 " + itoa(tun), // the pod, the peer's block
		"1 192.168.100.1/32 " + itoa(host), "2 192.168.100.1/32 " + itoa(host), // this node
		"1 192.168.100.2/32 " + itoa(tun), // the peer, through its red tunnel (it has no blue block)
	}
	slices.Sort(want)
	if !slices.Equal(added, want) {
		t.Errorf("routes added:\n%s\nwant:\n%s", strings.Join(added, "\n"), strings.Join(want, "\n"))
	}
	port := s.Ports[len(s.Ports)-1]
	wantPort := &pb.Port{Name: "vhost0", Devargs: "net_tap_vhost0,iface=vhost0", Kind: pb.PortKind_PORT_KIND_HOST,
		Vrf: 0, Mac: "02:fe:00:00:00:01", Ipv4: []string{"192.168.100.1"}, Mtu: 1500}
	if !proto.Equal(port, wantPort) {
		t.Errorf("host port %v, want %v", port, wantPort)
	}
	for _, nh := range s.NextHops {
		if nh.Id == host && (nh.Port != "vhost0" || nh.DstMac != "02:fe:00:00:00:01" || nh.Type != pb.NextHopType_NEXT_HOP_TYPE_INTERFACE) {
			t.Errorf("next-hop to the node: %v", nh)
		}
	}

	// Fixed fields: another fabric MAC recreates the port; an equal one does not.
	same := proto.Clone(port).(*pb.Port)
	if n.hostPortFixed(same, port) {
		t.Error("an unchanged host port would be recreated")
	}
	same.Mac = "02:fe:00:00:00:02"
	if !n.hostPortFixed(same, port) {
		t.Error("a host port with another MAC would be kept")
	}
	if n.hostPortFixed(&pb.Port{Name: "vhost9", Kind: pb.PortKind_PORT_KIND_HOST}, nil) {
		t.Error("a host port the agent did not make would be deleted")
	}
}

// Without a host section nothing is added, and a host port the agent made
// before is swept.
func TestHostDisabled(t *testing.T) {
	n := hostNode(t, hostCfg)
	s, err := n.desiredState()
	if err != nil {
		t.Fatal(err)
	}
	ports, routes := len(s.Ports), len(s.Routes)
	if err := n.addHost(s); err != nil || len(s.Ports) != ports || len(s.Routes) != routes {
		t.Fatalf("addHost without a host section changed the state (%v)", err)
	}
	// The dataplane: what is wanted, the agent's old host port, and one of
	// its own config.
	n.st.HostPort = "vhost0"
	cur, _ := n.desiredState()
	cur.Ports = append(cur.Ports, &pb.Port{Name: "vhost0", Kind: pb.PortKind_PORT_KIND_HOST},
		&pb.Port{Name: "vhost9", Kind: pb.PortKind_PORT_KIND_HOST})
	var swept []string
	for _, op := range n.stale(cur, s).Ops {
		if p := op.GetPort(); p != nil {
			swept = append(swept, p.Name)
		}
	}
	if !slices.Equal(swept, []string{"vhost0"}) {
		t.Errorf("ports swept %v, want the agent's host port vhost0 only", swept)
	}
}

// An IPv6 host port (host.prefix_len6): the TAP's port carries the IPv6
// underlay address; in the dual-stack network the node's and the peer's
// IPv6 underlay addresses are routed as their IPv4 ones; the host VRF
// discards the rest of subnet6. Without prefix_len6 none of it.
func TestAddHostIPv6(t *testing.T) {
	const cfg = `node: node1
fabric: {underlay_ip: 192.168.100.1, underlay_ipv6: "fd00:100::1"}
networks:
  - {name: red, vrf: 1, vni: 100, subnet: 10.10.0.0/16, pod_block: 10.10.1.0/24, subnet6: "fd00:10::/64", pod_block6: "fd00:10::1:0/112"}
  - {name: blue, vrf: 2, vni: 200, subnet: 10.20.0.0/16, pod_block: 10.20.1.0/24}
peers:
  - {name: node2, underlay_ip: 192.168.100.2, underlay_ipv6: "fd00:100::2", pod_blocks: {red: 10.10.2.0/24, blue: 10.20.2.0/24}, pod_blocks6: {red: "fd00:10::2:0/112"}}
host: {interface: vhost0, prefix_len: 24, prefix_len6: 64}
`
	for _, with6 := range []bool{true, false} {
		c := cfg
		if !with6 {
			c = strings.Replace(cfg, ", prefix_len6: 64", "", 1)
		}
		n := hostNode(t, c)
		s, err := n.desiredState()
		if err != nil {
			t.Fatal(err)
		}
		if err := n.addHost(s); err != nil {
			t.Fatal(err)
		}
		host, discard, tun := n.st.NextHops["host/vhost0"], n.st.NextHops["host/discard"], n.st.NextHops["tun/red/node2"]
		all := routeSet(s.Routes)
		has := func(r string) bool { return slices.Contains(all, r) }
		port := s.Ports[len(s.Ports)-1]
		if with6 {
			if !slices.Equal(port.Ipv6, []string{"fd00:100::1"}) || !has("1 fd00:100::1/128 "+itoa(host)) ||
				!has("1 fd00:100::2/128 "+itoa(tun)) || has("2 fd00:100::1/128 "+itoa(host)) {
				t.Errorf("IPv6 host port: port ipv6 %v, routes:\n%s", port.Ipv6, strings.Join(all, "\n"))
			}
		} else if len(port.Ipv6) != 0 || has("1 fd00:100::1/128 "+itoa(host)) || has("1 fd00:100::2/128 "+itoa(tun)) {
			t.Errorf("IPv4 host port: port ipv6 %v, routes:\n%s", port.Ipv6, strings.Join(all, "\n"))
		}
		// Either way the host VRF discards the rest of subnet6 and has
		// the peer's IPv6 block.
		if !has("0 fd00:10::/64 "+itoa(discard)) || !has("0 fd00:10::2:0/112 "+itoa(tun)) {
			t.Errorf("host VRF (IPv6 host port %v):\n%s", with6, strings.Join(all, "\n"))
		}
	}
}

// Kubernetes mode: a peer known only by its pods' host routes (no pod
// block) still gets a tunnel, and the host port routes its underlay
// address through it, as for a peer with a block.
func TestAddHostKubernetesPeer(t *testing.T) {
	n := hostNode(t, strings.Replace(hostCfg, "pod_blocks: {red: 10.10.2.0/24}", "pod_blocks: {}", 1)+
		"host: {interface: vhost0, prefix_len: 24}\n")
	n.cfg.Peers[0].Hosts = map[string][]netip.Prefix{"red": {netip.MustParsePrefix("10.10.7.9/32")}}
	s, err := n.desiredState()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.addHost(s); err != nil {
		t.Fatal(err)
	}
	tun := n.st.NextHops["tun/red/node2"]
	if tun == 0 {
		t.Fatalf("no tunnel to node2 in red: next-hops %v", n.st.NextHops)
	}
	got := routeSet(s.Routes)
	for _, want := range []string{"1 10.10.7.9/32 " + itoa(tun), "1 192.168.100.2/32 " + itoa(tun)} {
		if !slices.Contains(got, want) {
			t.Errorf("route %q missing from:\n%s", want, strings.Join(got, "\n"))
		}
	}
}
