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
