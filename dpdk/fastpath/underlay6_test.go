package fastpath_test

// Golden tests of the IPv6 underlay: tunnels whose outer header is IPv6
// (VXLAN, MPLSoUDP, MPLSoGRE; IPv4 and IPv6 inside), their decapsulation
// with the outer UDP checksum verified, and neighbour discovery on the
// fabric port. Crafted frames in, exact frames out.

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/dpdk/frames"
)

var underlay6 = netip.MustParseAddr("fd00:100::1")

// fabric6 adds the fabric port with both underlay addresses: 192.168.100.1
// and fd00:100::1.
func (e *env) fabric6(mtu int) fastpath.PortID {
	e.t.Helper()
	id, _ := e.addPort(fastpath.PortConfig{
		Kind: fastpath.PortFabric, MTU: mtu, MAC: fabricMAC, IPv4: []netip.Addr{underlay}, IPv6: []netip.Addr{underlay6},
	})
	return id
}

// remote6 is another vRouter on the fabric's L2 over IPv6, pinned as a
// static neighbour: fd00:100::<n> at 02:fb:00:00:00:<n>.
func remote6(t *testing.T, n int) (netip.Addr, net.HardwareAddr) {
	t.Helper()
	a := netip.AddrFrom16([16]byte{0xfd, 0, 1, 0, 15: byte(n)})
	m := net.HardwareAddr{0x02, 0xfb, 0, 0, 0, byte(n)}
	if err := dp.SetNeighbor(a, m); err != nil {
		t.Fatalf("SetNeighbor(%v): %v", a, err)
	}
	return a, m
}

// outer6 is what a tunnel over IPv6 sends: the outer Ethernet and IPv6
// (traffic class tc, flow label flow, hop limit 64) then UDP with its
// checksum (source port sport) or GRE, the label or VXLAN header, and
// inner: the inner Ethernet frame for VXLAN, else the inner IP packet.
func outer6(w encapWant, tc uint8, flow uint32, sport uint16, inner []byte) []byte {
	var l4 []byte
	proto := uint8(frames.ProtoUDP)
	switch w.encap {
	case fastpath.EncapVXLAN:
		l4 = frames.UDP{SrcPort: sport, DstPort: frames.PortVXLAN}.BuildChecksum(underlay6, w.remote,
			frames.VXLAN{Flags: frames.VXLANFlagI, VNI: w.vni}.Build(inner))
	case fastpath.EncapMPLSoUDP:
		l4 = frames.UDP{SrcPort: sport, DstPort: frames.PortMPLSoUDP}.BuildChecksum(underlay6, w.remote,
			frames.MPLS{Label: w.vni, BoS: true, TTL: 64}.Build(inner))
	default:
		proto = frames.ProtoGRE
		l4 = frames.GRE{Protocol: frames.GREProtoMPLS}.Build(frames.MPLS{Label: w.vni, BoS: true, TTL: 64}.Build(inner))
	}
	return eth6(w.nbrMAC, fabricMAC, frames.IPv6{TrafficClass: tc, FlowLabel: flow, NextHeader: proto, HopLimit: 64,
		Src: underlay6, Dst: w.remote}.Build(l4))
}

// tunnels6 sets up the fabric port with an IPv6 underlay, a dual-stack pod
// in vrf, and three tunnel next-hops over IPv6: VXLAN VNI 5000+vrf to
// remote 2 for 10.<vrf>.1.0/24 and fd00:<vrf>:1::/48, MPLSoUDP label
// 500+vrf to remote 3 for .2 and :2::, MPLSoGRE label 600+vrf to remote 4
// for .3 and :3::.
func tunnels6(t *testing.T, e *env, vrf uint16) (fab fastpath.PortID, a pod6, ws []encapWant) {
	fab = e.fabric6(1500)
	a = e.pod6(vrf, "02:00:00:00:06:0a", netip.AddrFrom4([4]byte{10, byte(vrf), 0, 10}).String(),
		netip.AddrFrom16([16]byte{0xfd, 0, 0, byte(vrf), 15: 10}).String(), 0)
	for i, enc := range []fastpath.Encap{fastpath.EncapVXLAN, fastpath.EncapMPLSoUDP, fastpath.EncapMPLSoGRE} {
		r, m := remote6(t, i+2)
		w := encapWant{encap: enc, remote: r, nbrMAC: m, vni: []uint32{5000, 500, 600}[i] + uint32(vrf)}
		ws = append(ws, w)
		id := e.nh(fastpath.NextHop{Type: fastpath.NHTunnel, Port: fab, Encap: w.encap, TunnelDst: w.remote, VNI: w.vni})
		e.route(vrf, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(vrf), byte(i + 1), 0}), 24).String(), id)
		e.route6(vrf, netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0, 0, byte(vrf), 0, byte(i + 1)}), 48).String(), id)
	}
	return fab, a, ws
}

var encapNames = []string{"vxlan", "mplsoudp", "mplsogre"}

// The outer header over IPv6, byte for byte: flow label and UDP source
// port from the inner flow's hash (the same low 14 bits), traffic class
// from the inner packet, hop limit 64, the UDP checksum right (the
// expected frame computes it in Go), and the overhead 20 bytes more than
// over IPv4: the largest inner packet fits a 1514-byte frame, one byte
// more is too_big with "fragmentation needed" (IPv4) or "packet too big"
// (IPv6) carrying that MTU.
func TestEncapUnderlay6(t *testing.T) {
	e := newEnv(t)
	const vrf = 70
	fab, a, ws := tunnels6(t, e, vrf)
	e.toPod(a.pod)
	e.toPod6(a)
	gw, gw6 := ip("10.70.0.1"), ip("fd00:0:0:70::1")
	vrfAddress(t, vrf, gw)
	e.vrfAddr6(vrf, gw6.String())
	for i, w := range ws {
		t.Run(encapNames[i], func(t *testing.T) {
			e := e.with(t)
			dst4 := netip.AddrFrom4([4]byte{10, vrf, byte(i + 1), 9})
			dst6 := netip.AddrFrom16([16]byte{0xfd, 0, 0, vrf, 0, byte(i + 1), 15: 9})
			mtu := 1500 - overhead(w.encap) - fastpath.Outer6Extra
			if want := []int{1430, 1448, 1452}[i]; mtu != want {
				t.Fatalf("MTU over IPv6: %d, want %d", mtu, want)
			}
			for _, c := range []struct {
				name  string
				in    []byte // the pod's frame
				inner []byte // what the tunnel carries after the label (or VXLAN's inner Ethernet)
				tc    uint8
			}{
				{"ipv4", a.from(pkt{src: a.ip, dst: dst4, proto: frames.ProtoTCP, sport: 33000, dport: 443, tos: 0xb8}.ip4(64)),
					pkt{src: a.ip, dst: dst4, proto: frames.ProtoTCP, sport: 33000, dport: 443, tos: 0xb8}.ip4(63), 0xb8},
				{"ipv6", a.from6(pkt6{src: a.ip6, dst: dst6, proto: frames.ProtoTCP, sport: 33000, dport: 443, tc: 0x2e << 2}.ip6(64)),
					pkt6{src: a.ip6, dst: dst6, proto: frames.ProtoTCP, sport: 33000, dport: 443, tc: 0x2e << 2}.ip6(63), 0x2e << 2},
				// an odd length: the checksum's last byte
				{"ipv4 odd", a.from(pkt{src: a.ip, dst: dst4, sport: 5, dport: 7, payload: []byte("odd")}.ip4(64)),
					pkt{src: a.ip, dst: dst4, sport: 5, dport: 7, payload: []byte("odd")}.ip4(63), 0},
				// the largest that fits: a 1514-byte frame
				{"ipv6 at the MTU", a.from6(pkt6{src: a.ip6, dst: dst6, sport: 5, dport: 7, payload: make([]byte, mtu-48)}.ip6(64)),
					pkt6{src: a.ip6, dst: dst6, sport: 5, dport: 7, payload: make([]byte, mtu-48)}.ip6(63), 0},
			} {
				e.inject(a.id, c.in)
				got := e.expectFrames(fab, 1, timeout)[0]
				if len(got) < 14+40+8 {
					t.Fatalf("%s: %d-byte frame", c.name, len(got))
				}
				flow := binary.BigEndian.Uint32(got[14:]) & 0xfffff
				var sport uint16
				if w.encap != fastpath.EncapMPLSoGRE {
					sport = binary.BigEndian.Uint16(got[14+40:])
					if sport < 0xc000 || uint32(sport)&0x3fff != flow&0x3fff {
						t.Errorf("%s: outer source port %#x, flow label %#x: want 0xc000 | the hash's low 14 bits, as the label's", c.name, sport, flow)
					}
				}
				inner := c.inner
				if w.encap == fastpath.EncapVXLAN {
					typ := uint16(frames.EtherTypeIPv4)
					if c.inner[0]>>4 == 6 {
						typ = frames.EtherTypeIPv6
					}
					inner = frames.Ethernet{Dst: vrMAC, Src: vrMAC, Type: typ}.Build(c.inner)
				}
				if d := frames.Diff(outer6(w, c.tc, flow, sport, inner), got); d != "" {
					t.Errorf("%s: encapsulated frame:\n%s", c.name, d)
				}
				if c.name == "ipv6 at the MTU" && len(got) != 1514 {
					t.Errorf("at the MTU: %d-byte frame, want 1514", len(got))
				}
			}
			// One byte more: too big, the error carries the MTU.
			big4 := pkt{src: a.ip, dst: dst4, sport: 5, dport: 7, flags: frames.IPv4DF, payload: make([]byte, mtu-28+1)}
			before := dp.Drops()
			e.inject(a.id, a.from(big4.ip4(64)))
			e.expectFrame(a.id, a.to(icmpError(gw, big4.ip4(64), 3, 4, uint16(mtu))))
			e.checkDrops(before, map[string]uint64{"too_big": 1})
			big6 := pkt6{src: a.ip6, dst: dst6, sport: 5, dport: 7, payload: make([]byte, mtu-48+1)}
			before = dp.Drops()
			e.inject(a.id, a.from6(big6.ip6(64)))
			e.expectFrame(a.id, a.to6(icmp6(gw6, a.ip6, 64, frames.ICMP6{Type: frames.ICMP6TooBig, Data: uint32(mtu),
				Body: big6.ip6(64)[:1280-48]})))
			e.checkDrops(before, map[string]uint64{"too_big": 1})
		})
	}
}

// in6 is a tunnel frame from remote n over IPv6 to this node: UDP to dport
// with a correct checksum (or GRE), carrying payload.
func in6(t *testing.T, n int, proto uint8, dport uint16, payload []byte) []byte {
	r, m := remote6(t, n)
	l4 := payload
	if proto == frames.ProtoUDP {
		l4 = frames.UDP{SrcPort: 51000, DstPort: dport}.BuildChecksum(r, underlay6, payload)
	}
	return eth6(fabricMAC, m, frames.IPv6{FlowLabel: 0x12345, NextHeader: proto, HopLimit: 64, Src: r, Dst: underlay6}.Build(l4))
}

// Decapsulation over IPv6, for each encapsulation and both inner families:
// the same VNI/label to VRF mapping as over IPv4. The outer UDP checksum is
// verified: a wrong one is udp_checksum, a zero one udp6_zero_checksum;
// IPv6 to another address, or UDP to another port, is not the vRouter's.
func TestDecapUnderlay6(t *testing.T) {
	e := newEnv(t)
	fab := e.fabric6(1500)
	a := e.pod6(71, "02:00:00:47:00:0a", "10.71.0.10", "fd00:71::a", 0)
	e.toPod(a.pod)
	e.toPod6(a)
	e.vni(5071, 71)
	e.label(571, 71)
	p4 := pkt{src: ip("10.99.0.9"), dst: a.ip, sport: 4000, dport: 5000, payload: []byte("from afar, v4")}
	p6 := pkt6{src: ip("fd00:99::9"), dst: a.ip6, sport: 4000, dport: 5000, payload: []byte("from afar, v6")}
	lbl := frames.MPLS{Label: 571, BoS: true, TTL: 64}
	vx := func(inner []byte) []byte { return frames.VXLAN{Flags: frames.VXLANFlagI, VNI: 5071}.Build(inner) }
	gre := func(inner []byte) []byte { return frames.GRE{Protocol: frames.GREProtoMPLS}.Build(lbl.Build(inner)) }
	for _, c := range []struct {
		name     string
		in, want []byte
	}{
		{"vxlan ipv4", in6(t, 2, frames.ProtoUDP, frames.PortVXLAN, vx(eth(vrMAC, vrMAC, p4.ip4(63)))), a.to(p4.ip4(62))},
		{"vxlan ipv6", in6(t, 2, frames.ProtoUDP, frames.PortVXLAN, vx(eth6(vrMAC, vrMAC, p6.ip6(63)))), a.to6(p6.ip6(62))},
		{"mplsoudp ipv4", in6(t, 3, frames.ProtoUDP, frames.PortMPLSoUDP, lbl.Build(p4.ip4(60))), a.to(p4.ip4(59))},
		{"mplsoudp ipv6", in6(t, 3, frames.ProtoUDP, frames.PortMPLSoUDP, lbl.Build(p6.ip6(60))), a.to6(p6.ip6(59))},
		{"mplsogre ipv4", in6(t, 4, frames.ProtoGRE, 0, gre(p4.ip4(60))), a.to(p4.ip4(59))},
		{"mplsogre ipv6", in6(t, 4, frames.ProtoGRE, 0, gre(p6.ip6(60))), a.to6(p6.ip6(59))},
	} {
		e.inject(fab, c.in)
		if got := e.expectFrames(a.id, 1, timeout)[0]; !bytes.Equal(got, c.want) {
			t.Errorf("%s: delivered frame:\n%s", c.name, frames.Diff(c.want, got))
		}
	}

	good := in6(t, 2, frames.ProtoUDP, frames.PortVXLAN, vx(eth(vrMAC, vrMAC, p4.ip4(63))))
	const udpSum = 14 + 40 + 6
	bad := frames.Clone(good)
	bad[udpSum] ^= 0x01
	e.expectDrop("udp_checksum", 1, fab, bad)
	body := frames.Clone(good)
	body[len(body)-1] ^= 0x80 // the checksum covers the whole datagram
	e.expectDrop("udp_checksum", 1, fab, body)
	zero := frames.Clone(good)
	zero[udpSum], zero[udpSum+1] = 0, 0
	e.expectDrop("udp6_zero_checksum", 1, fab, zero)
	mp := in6(t, 3, frames.ProtoUDP, frames.PortMPLSoUDP, lbl.Build(p6.ip6(60)))
	mp[udpSum] ^= 0x10
	e.expectDrop("udp_checksum", 1, fab, mp)
	e.expectDrop("vni_unknown", 1, fab, in6(t, 2, frames.ProtoUDP, frames.PortVXLAN,
		frames.VXLAN{Flags: frames.VXLANFlagI, VNI: 9999}.Build(eth(vrMAC, vrMAC, p4.ip4(63)))))
	e.expectDrop("gre_unsupported", 1, fab, in6(t, 4, frames.ProtoGRE, 0,
		frames.GRE{Flags: 0x8000, Protocol: frames.GREProtoMPLS}.Build(lbl.Build(p4.ip4(60)))))
	e.expectDrop("udp_truncated", 1, fab, eth6(fabricMAC, frames.MustMAC("02:fb:00:00:00:02"),
		frames.IPv6{NextHeader: frames.ProtoUDP, HopLimit: 64, Src: ip("fd00:100::2"), Dst: underlay6}.Build([]byte{0x12, 0xb5})))
	// Not the vRouter's, and no host port to take it.
	other := frames.Clone(good)
	other[14+24+15] = 0x77 // to fd00:100::77
	e.expectDrop("ipv6_unsupported", 1, fab, other)
	e.expectDrop("ipv6_unsupported", 1, fab, in6(t, 2, frames.ProtoUDP, 4790, []byte("not vxlan")))
}

// Neighbour discovery on the fabric port: a solicitation for the node's
// IPv6 underlay address is answered with the fabric MAC; a tunnel to a
// neighbour nobody pinned turns its first packet into a solicitation (to
// the solicited-node group) and learns the MAC from the advertisement,
// which, with no host port, is consumed; an asker a tunnel uses is learnt
// from its solicitation; a pinned neighbour is not overwritten; an echo
// request to the underlay address is answered; malformed ND is counted.
func TestFabricND(t *testing.T) {
	e := newEnv(t)
	fab := e.fabric6(1500)
	asker, askerMAC := ip("fd00:100::50"), frames.MustMAC("02:fb:00:00:00:50")
	solicit := func(from netip.Addr, mac net.HardwareAddr, target netip.Addr) []byte {
		dst, dmac := frames.SolicitedNode(target)
		return eth6(dmac, mac, icmp6(from, dst, 255, frames.ICMP6{Type: frames.NDNeighborSolicit,
			Body: frames.NDBody(target, 1, mac)}))
	}
	e.inject(fab, solicit(asker, askerMAC, underlay6))
	e.expectFrame(fab, eth6(askerMAC, fabricMAC, icmp6(underlay6, asker, 255, frames.ICMP6{Type: frames.NDNeighborAdvert,
		Data: 0x60000000, Body: frames.NDBody(underlay6, 2, fabricMAC)})))

	nbr, nbrMAC := ip("fd00:100::60"), frames.MustMAC("02:fb:00:00:00:60")
	a := e.pod6(72, "02:00:00:48:00:0a", "10.72.0.10", "fd00:72::a", 0)
	id := e.nh(fastpath.NextHop{Type: fastpath.NHTunnel, Port: fab, Encap: fastpath.EncapVXLAN, TunnelDst: nbr, VNI: 5072})
	e.route(72, "10.72.1.0/24", id)
	if m, ok, err := dp.Neighbor(nbr); err != nil || ok {
		t.Fatalf("neighbour %v before ND: %v %v %v, want pending", nbr, m, ok, err)
	}
	p := pkt{src: a.ip, dst: ip("10.72.1.1"), sport: 1, dport: 2, payload: []byte("first")}
	before := dp.Drops()
	e.inject(a.id, a.from(p.ip4(64)), a.from(p.ip4(64)))
	e.expectFrame(fab, solicit(underlay6, fabricMAC, nbr))
	waitFor(t, "neigh_unresolved +2", func() bool { return dp.Drops()["neigh_unresolved"] >= before["neigh_unresolved"]+2 })
	e.expectNothing()
	e.checkDrops(before, map[string]uint64{"neigh_unresolved": 2})

	consumed := func() (n uint64) {
		for w := 0; w < dp.Workers(); w++ {
			s, _ := dp.LcoreStats(w)
			n += s.Consumed
		}
		return n
	}
	before, c0 := dp.Drops(), consumed()
	e.inject(fab, eth6(fabricMAC, nbrMAC, icmp6(nbr, underlay6, 255, frames.ICMP6{Type: frames.NDNeighborAdvert,
		Data: 0x60000000, Body: frames.NDBody(nbr, 2, nbrMAC)})))
	waitFor(t, "the advertisement consumed", func() bool { return consumed() == c0+1 })
	e.expectNothing()
	e.checkDrops(before, nil)
	if m, ok, err := dp.Neighbor(nbr); err != nil || !ok || !bytes.Equal(m, nbrMAC) {
		t.Fatalf("neighbour %v after the advertisement: %v %v %v, want %v", nbr, m, ok, err, nbrMAC)
	}
	e.inject(a.id, a.from(p.ip4(64)))
	got := e.expectFrames(fab, 1, timeout)[0]
	w := encapWant{encap: fastpath.EncapVXLAN, remote: nbr, nbrMAC: nbrMAC, vni: 5072}
	flow := binary.BigEndian.Uint32(got[14:]) & 0xfffff
	if d := frames.Diff(outer6(w, 0, flow, binary.BigEndian.Uint16(got[14+40:]), eth(vrMAC, vrMAC, p.ip4(63))), got); d != "" {
		t.Errorf("encapsulated to the learnt neighbour:\n%s", d)
	}

	// A tunnel neighbour asking for our address is learnt from its
	// solicitation.
	nbr2, nbr2MAC := ip("fd00:100::61"), frames.MustMAC("02:fb:00:00:00:61")
	e.route(72, "10.72.2.0/24", e.nh(fastpath.NextHop{Type: fastpath.NHTunnel, Port: fab,
		Encap: fastpath.EncapMPLSoGRE, TunnelDst: nbr2, VNI: 672}))
	e.inject(fab, solicit(nbr2, nbr2MAC, underlay6))
	e.expectFrame(fab, eth6(nbr2MAC, fabricMAC, icmp6(underlay6, nbr2, 255, frames.ICMP6{Type: frames.NDNeighborAdvert,
		Data: 0x60000000, Body: frames.NDBody(underlay6, 2, fabricMAC)})))
	if m, ok, err := dp.Neighbor(nbr2); err != nil || !ok || !bytes.Equal(m, nbr2MAC) {
		t.Errorf("neighbour %v after its solicitation: %v %v %v, want %v", nbr2, m, ok, err, nbr2MAC)
	}

	// A pinned neighbour is not overwritten by an advertisement.
	r2, m2 := remote6(t, 2)
	e.expectDrop("nd_ignored", 1, fab, eth6(fabricMAC, nbrMAC, icmp6(r2, underlay6, 255, frames.ICMP6{Type: frames.NDNeighborAdvert,
		Data: 0x60000000, Body: frames.NDBody(r2, 2, frames.MustMAC("02:66:66:66:66:66"))})))
	if m, ok, err := dp.Neighbor(r2); err != nil || !ok || !bytes.Equal(m, m2) {
		t.Errorf("pinned neighbour %v after a forged advertisement: %v %v %v, want %v", r2, m, ok, err, m2)
	}

	// Echo to the underlay address: answered (no host port here).
	echo := icmp6(asker, underlay6, 64, frames.ICMP6{Type: frames.ICMP6EchoRequest, Data: 0x00070001, Body: []byte("ping")})
	e.inject(fab, eth6(fabricMAC, askerMAC, echo))
	e.expectFrame(fab, eth6(askerMAC, fabricMAC, icmp6(underlay6, asker, 64, frames.ICMP6{Type: frames.ICMP6EchoReply,
		Data: 0x00070001, Body: []byte("ping")})))

	// Not answered: someone else's address, a bad checksum, a hop limit
	// that says it was routed.
	e.expectDrop("nd_ignored", 1, fab, solicit(asker, askerMAC, ip("fd00:100::99")))
	bad := solicit(asker, askerMAC, underlay6)
	bad[len(bad)-1] ^= 1
	e.expectDrop("nd_malformed", 1, fab, bad)
	dst, dmac := frames.SolicitedNode(underlay6)
	e.expectDrop("nd_malformed", 1, fab, eth6(dmac, askerMAC, icmp6(asker, dst, 64, frames.ICMP6{Type: frames.NDNeighborSolicit,
		Body: frames.NDBody(underlay6, 1, askerMAC)})))
}

// A fabric port whose IPv6 address IPv6 tunnels use keeps it; a tunnel
// over IPv6 needs one.
func TestUnderlay6Config(t *testing.T) {
	e := newEnv(t)
	fab := e.fabric(1500)
	r, _ := remote6(t, 2)
	err := dp.SetNextHop(4000, fastpath.NextHop{Type: fastpath.NHTunnel, Port: fab, Encap: fastpath.EncapVXLAN, TunnelDst: r, VNI: 1})
	if err == nil {
		_ = dp.DelNextHop(4000)
		t.Fatal("an IPv6 tunnel from a fabric port without an IPv6 address was taken")
	}
	pc := fastpath.PortConfig{Kind: fastpath.PortFabric, MTU: 1500, MAC: fabricMAC, IPv4: []netip.Addr{underlay}, IPv6: []netip.Addr{underlay6}}
	if err := dp.UpdatePort(fab, pc); err != nil {
		t.Fatal(err)
	}
	e.nh(fastpath.NextHop{Type: fastpath.NHTunnel, Port: fab, Encap: fastpath.EncapVXLAN, TunnelDst: r, VNI: 1})
	pc.IPv6 = nil
	if err := dp.UpdatePort(fab, pc); err == nil {
		t.Error("the fabric's IPv6 address was removed under an IPv6 tunnel")
	}
}
