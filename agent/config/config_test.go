package config

import (
	"strings"
	"testing"
)

const good = `node: node1
sockets: {dataplane: /run/f/dp.sock, cni: /run/f/cni.sock}
state_dir: /var/lib/filament
fabric: {underlay_ip: 192.168.100.1, mtu: 1500}
networks:
  - name: red
    vrf: 1
    vni: 100
    label: 100
    subnet: 10.20.0.0/16
    gateway: 10.20.0.1
    encap: vxlan
    pod_block: 10.20.1.0/24
peers:
  - name: node2
    underlay_ip: 192.168.100.2
    pod_blocks: {red: 10.20.2.0/24}
`

func TestGood(t *testing.T) {
	c, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	n, ok := c.Network("")
	if !ok || n.Name != "red" || c.PodMTU(n) != 1450 || c.Attach.Veth.Driver != "af_packet" {
		t.Errorf("%+v", c)
	}
	if c.Peers[0].PodBlocks["red"].String() != "10.20.2.0/24" {
		t.Errorf("peer blocks %v", c.Peers[0].PodBlocks)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte(`node: n
fabric: {underlay_ip: 10.0.0.1}
networks: [{name: red, vrf: 2, label: 20, encap: mplsoudp, subnet: 10.1.0.0/24, gateway: 10.1.0.1, pod_block: 10.1.0.0/24}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Sockets.CNI != "/run/filament/cni.sock" || c.Sockets.Dataplane != "/run/filament/dataplane.sock" ||
		c.StateDir != DefaultStateDir || c.Fabric.MTU != 1500 || c.PodMTU(&c.Networks[0]) != 1468 ||
		c.Attach.SocketDir != "/run/filament/pods" {
		t.Errorf("%+v", c)
	}
}

// encap: mplsogre takes the network's label; pods lose 28 bytes of MTU
// (1472 on a 1500 fabric), and it needs a label as mplsoudp does.
func TestMPLSoGRE(t *testing.T) {
	const in = `node: n
fabric: {underlay_ip: 10.0.0.1, mtu: 9000}
networks: [{name: red, vrf: 2, label: 20, encap: mplsogre, subnet: 10.1.0.0/24, gateway: 10.1.0.1, pod_block: 10.1.0.0/24}]
`
	c, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if n := &c.Networks[0]; n.Encap != EncapMPLSoGRE || n.Label != 20 || c.PodMTU(n) != 9000-28 || !IsMPLS(n.Encap) {
		t.Errorf("%+v, pod MTU %d", *n, c.PodMTU(n))
	}
	for encap, want := range map[string]int{EncapVXLAN: 50, EncapMPLSoUDP: 32, EncapMPLSoGRE: 28} {
		if got := Overhead(encap); got != want {
			t.Errorf("Overhead(%s) = %d, want %d", encap, got, want)
		}
	}
	_, err = Parse([]byte(strings.Replace(in, "label: 20, ", "vni: 20, ", 1)))
	if err == nil || !strings.Contains(err.Error(), "networks[0].label: required with encap mplsogre") {
		t.Errorf("mplsogre without a label: %v", err)
	}
}

func TestBad(t *testing.T) {
	for _, tc := range []struct{ from, to, want string }{
		{"node: node1", "node: Node_1", "node: \"Node_1\""},
		{"node: node1", "nodes: node1", "field nodes not found"},
		{"    vrf: 1\n", "    vrf: 0\n", "networks[0].vrf: required"},
		{"pod_block: 10.20.1.0/24", "pod_block: 10.21.1.0/24", "networks[0].pod_block: 10.21.1.0/24 is not inside subnet 10.20.0.0/16"},
		{"pod_block: 10.20.1.0/24", "pod_block: 10.20.1.1/24", "networks[0].pod_block: 10.20.1.1/24 has host bits set"},
		{"gateway: 10.20.0.1", "gateway: 10.30.0.1", "networks[0].gateway"},
		{"encap: vxlan", "encap: gre", "networks[0].encap: \"gre\": want vxlan, mplsoudp or mplsogre"},
		{"    vni: 100\n", "", "networks[0].vni: required with encap vxlan"},
		{"{red: 10.20.2.0/24}", "{red: 10.20.1.128/25}", "peers[0].pod_blocks.red: 10.20.1.128/25 overlaps this node's pod_block"},
		{"{red: 10.20.2.0/24}", "{blue: 10.20.2.0/24}", "peers[0].pod_blocks.blue: no network \"blue\""},
		{"underlay_ip: 192.168.100.2", "underlay_ip: 192.168.100.1", "peers[0].underlay_ip: 192.168.100.1 already used by fabric.underlay_ip"},
		{"mtu: 1500", "mtu: 100", "fabric.mtu: 100"},
		{"state_dir: /var/lib/filament", "state_dir: /var/lib/filament\nmetrics: {listen: nope}", `metrics.listen: "nope": want host:port`},
		{"cni: /run/f/cni.sock", "cni: run/cni.sock", `sockets.cni: "run/cni.sock": want an absolute path`},
		{"state_dir: /var/lib/filament", "state_dir: state", `state_dir: "state": want an absolute path`},
		{"state_dir: /var/lib/filament", "state_dir: /var/lib/filament\nattach: {socket_dir: pods}", `attach.socket_dir: "pods": want an absolute path`},
		{"state_dir: /var/lib/filament", "state_dir: /var/lib/filament\nattach: {socket_dir: /" + strings.Repeat("d", 76) + "}",
			`attach.socket_dir: "/ddd`},
		{"subnet: 10.20.0.0/16", "subnet: nope", `networks[0].subnet: "nope" is not an IPv4 prefix`},
	} {
		if !strings.Contains(good, tc.from) {
			t.Fatalf("%q not in the config", tc.from)
		}
		_, err := Parse([]byte(strings.Replace(good, tc.from, tc.to, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q -> %q: error %v, want %q", tc.from, tc.to, err, tc.want)
		}
	}
}

// The demo's agent configurations are valid.
func TestDemoConfigs(t *testing.T) {
	for _, f := range []string{"../../deploy/demo-agents/agent-node1.yaml", "../../deploy/demo-agents/agent-node2.yaml"} {
		if _, err := Load(f); err != nil {
			t.Error(err)
		}
	}
}

const dual = `node: node1
fabric: {underlay_ip: 192.168.100.1, underlay_ipv6: "fd00:100::1"}
networks:
  - name: red
    vrf: 1
    vni: 100
    subnet: 10.20.0.0/16
    pod_block: 10.20.1.0/24
    subnet6: "fd00:20::/64"
    pod_block6: "fd00:20::1:0/112"
  - name: blue
    vrf: 2
    vni: 200
    subnet: 10.30.0.0/16
    gateway: 10.30.0.1
    pod_block: 10.30.1.0/24
peers:
  - name: node2
    underlay_ip: 192.168.100.2
    underlay_ipv6: "fd00:100::2"
    pod_blocks: {red: 10.20.2.0/24, blue: 10.30.2.0/24}
    pod_blocks6: {red: "fd00:20::2:0/112"}
  - name: node3
    underlay_ip: 192.168.100.3
    pod_blocks: {red: 10.20.3.0/24}
`

// A dual-stack network beside an IPv4-only one: gateways default to the
// subnets' first addresses; tunnels to a peer with an IPv6 underlay are
// IPv6 (node2), to one without IPv4 (node3); an IPv6 outer header costs
// every pod 20 bytes more.
func TestDualStack(t *testing.T) {
	c, err := Parse([]byte(dual))
	if err != nil {
		t.Fatal(err)
	}
	red, blue := &c.Networks[0], &c.Networks[1]
	if !red.DualStack() || blue.DualStack() {
		t.Errorf("dual stack: red %v blue %v", red.DualStack(), blue.DualStack())
	}
	if red.Gateway.String() != "10.20.0.1" || red.Gateway6.String() != "fd00:20::1" || red.PodBlock6.String() != "fd00:20::1:0/112" {
		t.Errorf("red: gateway %v gateway6 %v block6 %v", red.Gateway, red.Gateway6, red.PodBlock6)
	}
	if got := c.Peers[0].PodBlocks6["red"].String(); got != "fd00:20::2:0/112" {
		t.Errorf("node2's red block6: %s", got)
	}
	if d := c.TunnelDst(&c.Peers[0]); d.String() != "fd00:100::2" {
		t.Errorf("tunnel to node2: %v, want its IPv6 underlay", d)
	}
	if d := c.TunnelDst(&c.Peers[1]); d.String() != "192.168.100.3" {
		t.Errorf("tunnel to node3: %v, want its IPv4 underlay", d)
	}
	if got := c.PodMTU(red); got != 1500-50-20 {
		t.Errorf("pod MTU with an IPv6 underlay: %d, want %d", got, 1500-50-20)
	}
	// Without this node's IPv6 underlay every tunnel is IPv4.
	c2, err := Parse([]byte(strings.Replace(dual, `, underlay_ipv6: "fd00:100::1"`, "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if d := c2.TunnelDst(&c2.Peers[0]); d.String() != "192.168.100.2" || c2.PodMTU(&c2.Networks[0]) != 1450 {
		t.Errorf("no local IPv6 underlay: tunnel to %v, pod MTU %d", d, c2.PodMTU(&c2.Networks[0]))
	}
}

func TestBadIPv6(t *testing.T) {
	for _, tc := range []struct{ from, to, want string }{
		{`subnet6: "fd00:20::/64"`, `subnet6: "fd00:20::/121"`, "networks[0].subnet6: fd00:20::/121: at most /120"},
		{`subnet6: "fd00:20::/64"`, `subnet6: "fd00:20::1/64"`, "networks[0].subnet6: fd00:20::1/64 has host bits set"},
		{`subnet6: "fd00:20::/64"`, `subnet6: 10.9.0.0/16`, `networks[0].subnet6: "10.9.0.0/16" is not an IPv6 prefix`},
		{`subnet6: "fd00:20::/64"`, `subnet6: "fe80::/64"`, "networks[0].subnet6: fe80::/64: want a global unicast or unique local prefix"},
		{`subnet6: "fd00:20::/64"`, "", "networks[0].subnet6: required with gateway6 and pod_block6"},
		{`pod_block6: "fd00:20::1:0/112"`, `pod_block6: "fd00:21::/112"`, "networks[0].pod_block6: fd00:21::/112 is not inside subnet6 fd00:20::/64"},
		{`pod_block6: "fd00:20::1:0/112"`, `pod_block6: "fd00:20::1:0/124"`, "networks[0].pod_block6: fd00:20::1:0/124: at most /120"},
		{`pod_block6: "fd00:20::1:0/112"`, "", "networks[0].pod_block6: required with subnet6"},
		{`pod_block6: "fd00:20::1:0/112"`, `pod_block6: "fd00:20::1:0/112"` + "\n    gateway6: \"fd00:21::1\"",
			"networks[0].gateway6: fd00:21::1: want an address inside subnet6 fd00:20::/64"},
		{`pod_block6: "fd00:20::1:0/112"`, `pod_block6: "fd00:20::1:0/112"` + "\n    gateway6: \"fd00:20::\"",
			"networks[0].gateway6: fd00:20:: is subnet6's subnet-router anycast address"},
		{`pod_block6: "fd00:20::1:0/112"`, `pod_block6: "fd00:20::1:0/112"` + "\n    gateway6: nope",
			`networks[0].gateway6: "nope" is not an IPv6 address`},
		{"    pod_block: 10.30.1.0/24\n", "    pod_block: 10.30.1.0/24\n    subnet6: \"fd00:20:0:0:8000::/65\"\n    pod_block6: \"fd00:20:0:0:8000::/112\"\n",
			"networks[1].subnet6: fd00:20:0:0:8000::/65 overlaps networks[0]'s fd00:20::/64"},
		{"    subnet: 10.20.0.0/16\n", "", "networks[0].subnet: required, an IPv4 prefix (a network is IPv4 or dual stack with subnet6: IPv6-only networks are not supported)"},
		{`pod_blocks6: {red: "fd00:20::2:0/112"}`, `pod_blocks6: {red: "fd00:20::1:8000/113"}`,
			"peers[0].pod_blocks6.red: fd00:20::1:8000/113 overlaps this node's pod_block6 fd00:20::1:0/112"},
		{`pod_blocks6: {red: "fd00:20::2:0/112"}`, `pod_blocks6: {blue: "fd00:20::2:0/112"}`, `peers[0].pod_blocks6.blue: network "blue" has no subnet6`},
		{`pod_blocks6: {red: "fd00:20::2:0/112"}`, `pod_blocks6: {red: "fd00:99::/112"}`, "peers[0].pod_blocks6.red: fd00:99::/112 is not inside subnet6 fd00:20::/64"},
		{`underlay_ipv6: "fd00:100::2"`, `underlay_ipv6: "fd00:100::1"`, "peers[0].underlay_ipv6: fd00:100::1 already used by fabric.underlay_ipv6"},
		{`underlay_ipv6: "fd00:100::2"`, `underlay_ipv6: "fe80::2"`, "peers[0].underlay_ipv6: fe80::2: want a global unicast IPv6 address"},
		{`underlay_ipv6: "fd00:100::1"`, `underlay_ipv6: 192.168.100.9`, `fabric.underlay_ipv6: "192.168.100.9" is not an IPv6 address`},
		{`fabric: {underlay_ip: 192.168.100.1, `, `fabric: {mtu: 1349, underlay_ip: 192.168.100.1, `,
			"fabric.mtu: 1349 leaves networks[0]'s pods 1279 bytes: IPv6 needs 1280"},
	} {
		if !strings.Contains(dual, tc.from) {
			t.Fatalf("%q not in the config", tc.from)
		}
		_, err := Parse([]byte(strings.Replace(dual, tc.from, tc.to, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q -> %q: error %v, want %q", tc.from, tc.to, err, tc.want)
		}
	}
	// With a host port, a node's IPv6 underlay address may not be inside
	// a subnet6 (the host VRF routes both).
	in := strings.Replace(dual, `"fd00:100::1"`, `"fd00:20::ffff:1"`, 1) + "host: {interface: vhost0, prefix_len: 24}\n"
	want := "fabric.underlay_ipv6: fd00:20::ffff:1 is inside networks[0]'s subnet6 fd00:20::/64"
	if _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("host port and an underlay address in subnet6: %v, want %q", err, want)
	}
}

func TestKubernetesMode(t *testing.T) {
	local := `node: node1
mode: kubernetes
sockets: {dataplane: /run/f/dp.sock, cni: /run/f/cni.sock}
fabric: {underlay_ip: 192.168.100.1}
`
	c, err := Parse([]byte(local))
	if err != nil || c.Mode != ModeKubernetes || len(c.Networks) != 0 {
		t.Fatalf("kubernetes mode without networks: %+v, %v", c, err)
	}
	// The file's networks and peers are the API server's in this mode.
	_, err = Parse([]byte(good), func(c *Config) { c.Mode = ModeKubernetes })
	if err == nil || !strings.Contains(err.Error(), "networks: must be empty in kubernetes mode") ||
		!strings.Contains(err.Error(), "peers: must be empty in kubernetes mode") {
		t.Errorf("kubernetes mode with networks and peers: %v", err)
	}
	if _, err := Parse([]byte(local), func(c *Config) { c.Mode = "cluster" }); err == nil || !strings.Contains(err.Error(), `mode: "cluster"`) {
		t.Errorf("unknown mode: %v", err)
	}
	if _, err := Parse([]byte(strings.Replace(local, "mode: kubernetes\n", "", 1))); err == nil ||
		!strings.Contains(err.Error(), "networks: at least one network is required") {
		t.Errorf("standalone (the default) without networks: %v", err)
	}
}
