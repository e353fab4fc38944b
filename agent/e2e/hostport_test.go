package e2e

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/internal/testnet"
)

const hostSection = "host: {interface: vhost0, prefix_len: 24}\n"

// pingNS pings to from namespace ns: 3 replies, no duplicates (a duplicate
// would mean the kernel answered on the fabric interface as well).
func pingNS(t *testing.T, tn *testnet.Net, ns string, to netip.Addr) {
	t.Helper()
	var out string
	var err error
	for try := 0; try < 3; try++ { // the first packets may wait for ARP
		out, err = tn.Output(ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", to.String())
		if err == nil && strings.Contains(out, " 3 received") {
			break
		}
	}
	if err != nil || !strings.Contains(out, " 3 received") || strings.Contains(out, "duplicates") {
		t.Fatalf("ping %v from %s: %v\n%s", to, ns, err, out)
	}
}

// TestHostPort: each agent makes its node's host port (vhost0, TF's
// vhost0): the node reaches a local pod and a remote one (over VXLAN) by
// ping and TCP, pods reach the node's underlay address, the nodes reach
// each other through both host ports; an agent restart keeps the host
// port (same interface, nothing changed in the dataplane, a ping from the
// node across it loses nothing); a dataplane restart makes it again;
// without the host section the agent sweeps it.
func TestHostPort(t *testing.T) {
	tn := testnet.New(t)
	ns1, ns2 := tn.NS("n1"), tn.NS("n2")
	f1, f2 := tn.Name("f1"), tn.Name("f2")
	tn.Veth(f1, ns1, f2, ns2)
	n1 := startNode(t, tn, 1, ns1, f1, "vxlan", []peer{{"node2", "192.168.100.2", "10.20.2.0/24"}}, hostSection)
	n2 := startNode(t, tn, 2, ns2, f2, "vxlan", []peer{{"node1", "192.168.100.1", "10.20.1.0/24"}}, hostSection)
	p1 := n1.add(t, tn, "p1")
	p2 := n2.add(t, tn, "p2")
	under1, under2 := netip.MustParseAddr(n1.underlay), netip.MustParseAddr(n2.underlay)

	// The kernel side: the TAP has the fabric port's MAC and the underlay
	// address, the pod network goes to the vRouter; the fabric veth is
	// off the kernel's hands.
	if out := tn.MustIn(ns1, "ip", "-o", "-4", "addr", "show", "dev", "vhost0"); !strings.Contains(out, "inet 192.168.100.1/24") {
		t.Errorf("vhost0's address: %s", out)
	}
	if out := tn.MustIn(ns1, "ip", "-o", "link", "show", "vhost0"); !strings.Contains(out, "link/ether 02:fe:c0:a8:64:01") {
		t.Errorf("vhost0's MAC: %s", out)
	}
	if out := tn.MustIn(ns1, "ip", "route", "show", "10.20.0.0/16"); !strings.Contains(out, "via 10.20.0.1 dev vhost0 proto 249 onlink mtu 1450") {
		t.Errorf("route to the pod network: %q", out)
	}
	if out := tn.MustIn(ns1, "ip", "neigh", "show", "10.20.0.1", "dev", "vhost0"); !strings.Contains(out, "lladdr 00:00:5e:00:01:00 PERMANENT") {
		t.Errorf("the gateway's neighbour entry: %q", out)
	}
	if out := tn.MustIn(ns1, "ip", "-o", "link", "show", f1); !strings.Contains(out, "NOARP") {
		t.Errorf("fabric interface: %s, want NOARP", out)
	}
	s := dump(t, dial(t, n1))
	hostPorts := 0
	for _, p := range s.Ports {
		if p.Kind == pb.PortKind_PORT_KIND_HOST {
			hostPorts++
			if p.Name != "vhost0" || p.Vrf != 0 || p.Mac != "02:fe:c0:a8:64:01" {
				t.Errorf("host port %v", p)
			}
		}
	}
	if hostPorts != 1 || !hasRoute(s, 0, p1.ip.String()+"/32") || !hasRoute(s, 0, "10.20.2.0/24") ||
		!hasRoute(s, 0, "10.20.0.0/16") || !hasRoute(s, 1, "192.168.100.1/32") || !hasRoute(s, 1, "192.168.100.2/32") {
		t.Fatalf("host port objects: ports %v routes %v", s.Ports, s.Routes)
	}

	pingNS(t, tn, ns1, p1.ip)    // node -> local pod
	pingNS(t, tn, ns1, p2.ip)    // node -> remote pod, over VXLAN
	pingNS(t, tn, p1.ns, under1) // pod -> its node
	pingNS(t, tn, p2.ns, under1) // pod -> the other node, over VXLAN
	pingNS(t, tn, ns2, under1)   // node -> node: host port, fabric, host port
	pingNS(t, tn, ns1, under2)
	tcpCheck(t, ns1, p1.ns, p1.ip.String()+":7000")
	tcpCheck(t, ns1, p2.ns, p2.ip.String()+":7001")
	tcpCheck(t, p2.ns, ns1, under1.String()+":7002")

	// A pod deleted: its host VRF route goes with it.
	p3 := n1.add(t, tn, "p3")
	pingNS(t, tn, ns1, p3.ip)
	if _, err := n1.cni(t, "DEL", p3.cid, p3.netns, "eth0"); err != nil {
		t.Fatal(err)
	}
	if s := dump(t, dial(t, n1)); hasRoute(s, 0, p3.ip.String()+"/32") {
		t.Errorf("the host VRF route of a deleted pod is still there")
	}

	// Agent restart: the host port stays as it is.
	c := dial(t, n1)
	before := dump(t, c)
	idx := tn.MustIn(ns1, "cat", "/sys/class/net/vhost0/ifindex")
	pingOut := make(chan string, 1)
	go func() {
		out, _ := tn.Output(ns1, "ping", "-c", "30", "-i", "0.1", "-W", "2", p2.ip.String())
		pingOut <- out
	}()
	time.Sleep(500 * time.Millisecond) // an interval: some pings before the agent goes
	if err := n1.agent.stop(); err != nil {
		t.Fatal(err)
	}
	n1.startAgent(t)
	if out := <-pingOut; !strings.Contains(out, " 0% packet loss") {
		t.Errorf("ping from the node across the agent's restart lost packets:\n%s", out)
	}
	if after := dump(t, c); !before.Equal(after) {
		t.Errorf("the restarted agent changed the dataplane:\nbefore %v\nafter  %v", before, after)
	}
	if again := tn.MustIn(ns1, "cat", "/sys/class/net/vhost0/ifindex"); again != idx {
		t.Errorf("vhost0 was made again across the agent's restart (ifindex %s, then %s)", idx, again)
	}

	// Dataplane restart: the TAP goes with it; the resync makes it again.
	if err := n1.dataplane.stop(); err != nil {
		t.Fatalf("dataplane exit: %v", err)
	}
	waitFor(t, "STATUS not ready", 20*time.Second, func() bool {
		_, err := n1.cni(t, "STATUS", "", "", "")
		return err != nil
	})
	n1.dataplane = start(t, filepath.Join(n1.dir, "dataplane-2.log"), n1.dpArgs...)
	waitFor(t, "STATUS ready again", 60*time.Second, func() bool {
		_, err := n1.cni(t, "STATUS", "", "", "")
		return err == nil
	})
	pingNS(t, tn, ns1, p1.ip)
	pingNS(t, tn, ns1, p2.ip)
	pingNS(t, tn, p1.ns, under1)

	// The host section removed: the agent sweeps its host port and routes;
	// the pods keep forwarding.
	if err := n1.agent.stop(); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(n1.agentCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n1.agentCfg, []byte(strings.Replace(string(cfg), hostSection, "", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	n1.startAgent(t)
	s = dump(t, dial(t, n1))
	for _, p := range s.Ports {
		if p.Kind == pb.PortKind_PORT_KIND_HOST {
			t.Errorf("host port %s kept without a host section", p.Name)
		}
	}
	for _, r := range s.Routes {
		if r.Vrf == 0 || r.Prefix == "192.168.100.1/32" || r.Prefix == "192.168.100.2/32" {
			t.Errorf("host port route %v kept without a host section", r)
		}
	}
	if out, err := tn.Output(ns1, "ip", "link", "show", "vhost0"); err == nil {
		t.Errorf("vhost0 still there: %s", out)
	}
	ping(t, tn, p1, p2.ip)
}
