package pmdtest

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/dpdk/frames"
	"github.com/filament-net/filament/internal/testnet"
)

// snmp6 reads the kernel's IPv6 UDP counters in ns.
func snmp6(t *testing.T, tn *testnet.Net, ns string) map[string]uint64 {
	t.Helper()
	out := tn.MustIn(ns, "cat", "/proc/net/snmp6")
	m := map[string]uint64{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && strings.HasPrefix(f[0], "Udp6") {
			m[f[0]], _ = strconv.ParseUint(f[1], 10, 64)
		}
	}
	return m
}

// The outer UDP checksum over an IPv6 underlay, computed by the fabric's
// device: net_tap advertises RTE_ETH_TX_OFFLOAD_UDP_CKSUM (and sums in
// software), so the fast path leaves the sum to it. The kernel behind the
// tap checks UDP checksums: every datagram to the VXLAN port, where nobody
// listens, must count as Udp6NoPorts, none as Udp6InCsumErrors.
func TestTapFabricUDPChecksumOffload(t *testing.T) {
	base := dp.MbufsInUse()
	t.Cleanup(func() { mbufsBack(t, base, 0) })
	tn := testnet.New(t)
	const vrf = 14
	fabMAC := frames.MustMAC("02:fa:00:00:78:01")
	peerMAC := frames.MustMAC("02:fb:00:00:78:02")
	local, peer := netip.MustParseAddr("fd00:78::1"), netip.MustParseAddr("fd00:78::2")

	ns := tn.NS("u6")
	tap := tn.Name("fab6")
	fabID, err := dp.AddPort(fmt.Sprintf("net_tap_%s,iface=%s", tap, tap),
		fastpath.PortConfig{Kind: fastpath.PortFabric, MAC: fabMAC, IPv6: []netip.Addr{local}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := dp.DelPort(fabID); err != nil {
			t.Errorf("delete fabric port: %v", err)
		}
	})
	tn.Must("ip", "link", "set", tap, "netns", ns)
	tn.MustIn(ns, "sysctl", "-qw", "net.ipv6.conf."+tap+".disable_ipv6=0")
	tn.MustIn(ns, "ip", "link", "set", tap, "address", peerMAC.String())
	tn.MustIn(ns, "ip", "addr", "add", peer.String()+"/64", "dev", tap, "nodad")
	tn.MustIn(ns, "ip", "link", "set", tap, "up")
	if err := dp.SetNeighbor(peer, peerMAC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dp.DelNeighbor(peer) })

	pod := addPod(t, "u6pod", "", vrf, 3101, "02:cc:00:00:78:05", "10.204.0.5")
	const tun = 3102
	if err := dp.SetNextHop(tun, fastpath.NextHop{Type: fastpath.NHTunnel, Port: fabID, Encap: fastpath.EncapVXLAN,
		TunnelDst: peer, VNI: 7800}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dp.DelNextHop(tun) })
	remote := netip.MustParsePrefix("10.204.1.0/24")
	if err := dp.AddRoute4(vrf, remote, tun); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dp.DelRoute4(vrf, remote) })

	before := snmp6(t, tn, ns)
	src, dst := netip.MustParseAddr(pod.ip), netip.MustParseAddr("10.204.1.9")
	const n = 24
	for i := 0; i < n; i++ {
		payload := make([]byte, 1+i*53) // odd and even lengths up to 1220
		for j := range payload {
			payload[j] = byte(i*7 + j)
		}
		f := frames.Ethernet{Dst: vrouterMAC, Src: pod.mac, Type: frames.EtherTypeIPv4}.Build(
			frames.IPv4{TTL: 64, Protocol: frames.ProtoUDP, Src: src, Dst: dst}.Build(
				frames.UDP{SrcPort: uint16(3000 + i), DstPort: 9}.BuildChecksum(src, dst, payload)))
		if k, err := dp.Inject(pod.id, f); err != nil || k != 1 {
			t.Fatalf("inject: %d frames (%v)", k, err)
		}
	}
	var after map[string]uint64
	deadline := time.Now().Add(5 * time.Second)
	for {
		after = snmp6(t, tn, ns)
		if after["Udp6NoPorts"]+after["Udp6InCsumErrors"] >= before["Udp6NoPorts"]+before["Udp6InCsumErrors"]+n {
			break
		}
		if time.Now().After(deadline) {
			s, _ := dp.PortStats(fabID)
			t.Fatalf("the kernel saw %d of %d datagrams in 5s (before %v, after %v); fabric stats %+v, drops %v",
				after["Udp6NoPorts"]+after["Udp6InCsumErrors"]-before["Udp6NoPorts"]-before["Udp6InCsumErrors"], n,
				before, after, s, nonzero(dp.Drops()))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := after["Udp6InCsumErrors"] - before["Udp6InCsumErrors"]; got != 0 {
		t.Errorf("Udp6InCsumErrors +%d: the tap's checksums are wrong", got)
	}
	if got := after["Udp6NoPorts"] - before["Udp6NoPorts"]; got != n {
		t.Errorf("Udp6NoPorts +%d, want +%d", got, n)
	}
}
