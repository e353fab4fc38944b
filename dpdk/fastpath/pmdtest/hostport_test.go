package pmdtest

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/dpdk/frames"
	"github.com/filament-net/filament/internal/testnet"
)

// The host port (TF's vhost0): a TAP in the node's namespace holding the
// underlay address. A remote host reaches the node's stack through the
// fabric, the node reaches a local pod through the vRouter (kubelet probes),
// and the pod reaches the node.
func TestHostPort(t *testing.T) {
	base := dp.MbufsInUse()
	t.Cleanup(func() { mbufsBack(t, base, 0) })
	tn := testnet.New(t)
	const hostVRF = 12
	fabMAC := frames.MustMAC("02:fa:00:00:77:01")
	underlay := netip.MustParseAddr("192.168.77.1")

	// Remote host on the fabric's L2.
	remote := tn.NS("rm")
	fab, r0 := tn.Name("fab"), tn.Name("r0")
	tn.Veth(fab, "", r0, remote)
	tn.MustIn(remote, "ip", "addr", "add", "192.168.77.2/24", "dev", r0)
	fabID, err := dp.AddPort(fmt.Sprintf("net_af_packet_%s,iface=%s,qpairs=%d", fab, fab, dp.Workers()),
		fastpath.PortConfig{Kind: fastpath.PortFabric, MAC: fabMAC, IPv4: []netip.Addr{underlay}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := dp.DelPort(fabID); err != nil {
			t.Errorf("delete fabric port: %v", err)
		}
	})

	// The node's stack: a TAP with the underlay address and the fabric MAC.
	node := tn.NS("nd")
	vh := tn.Name("vh0")
	hostID, err := dp.AddPort(fmt.Sprintf("net_tap_%s,iface=%s", vh, vh),
		fastpath.PortConfig{Kind: fastpath.PortHost, VRF: hostVRF})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := dp.DelPort(hostID); err != nil {
			t.Errorf("delete host port: %v", err)
		}
	})
	tn.Must("ip", "link", "set", vh, "netns", node)
	tn.MustIn(node, "ip", "link", "set", vh, "address", fabMAC.String())
	tn.MustIn(node, "ip", "addr", "add", "192.168.77.1/24", "dev", vh)
	tn.MustIn(node, "ip", "link", "set", vh, "up")
	tn.MustIn(node, "ip", "route", "add", "10.201.0.0/24", "dev", vh)

	// A local pod; the host VRF routes to it, its VRF routes to the node.
	pod := attach(t, tn, "af_packet", 1, "10.201.0.2")
	podHost := netip.MustParsePrefix("10.201.0.2/32")
	if err := dp.AddRoute4(hostVRF, podHost, 1001); err != nil { // attach's next-hop for pod 1
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dp.DelRoute4(hostVRF, podHost) })
	const toNode = 1100
	if err := dp.SetNextHop(toNode, fastpath.NextHop{Type: fastpath.NHIface, Port: hostID, DstMAC: fabMAC}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dp.DelNextHop(toNode) })
	nodeHost := netip.PrefixFrom(underlay, 32)
	if err := dp.AddRoute4(podVRF, nodeHost, toNode); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dp.DelRoute4(podVRF, nodeHost) })

	remoteHost := kernelPod{ns: remote}
	nodeHostNS := kernelPod{ns: node}
	ping(t, tn, remoteHost, underlay, 3)                            // fabric -> host port -> node stack and back
	ping(t, tn, nodeHostNS, pod.ip, 3)                              // node -> pod (kubelet probe)
	ping(t, tn, pod, underlay, 3)                                   // pod -> node
	ping(t, tn, nodeHostNS, netip.MustParseAddr("192.168.77.2"), 2) // node -> underlay through the fabric
}
