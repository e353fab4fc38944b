package fastpath_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"net"
	"net/netip"
	"syscall"
	"testing"

	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/dpdk/frames"
)

// checksumID returns an IP ID for which p at ttl has header checksum sum.
func checksumID(t *testing.T, p pkt, ttl uint8, sum uint16) uint16 {
	t.Helper()
	for id := 0; id <= 0xffff; id++ {
		p.id = uint16(id)
		if binary.BigEndian.Uint16(p.ip4(ttl)[frames.IPv4ChecksumOff:]) == sum {
			return uint16(id)
		}
	}
	t.Fatalf("no IP ID gives checksum %#04x", sum)
	return 0
}

// Pod to pod in a VRF: destination MAC from the next-hop, source the vRouter
// MAC, TTL - 1, checksum updated, nothing else touched.
func TestPodToPod(t *testing.T) {
	e := newEnv(t)
	a := e.pod(10, "02:00:00:0a:00:0a", "10.10.0.10")
	b := e.pod(10, "02:00:00:0a:00:0b", "10.10.0.11")
	e.toPod(a)
	e.toPod(b)

	corner := pkt{src: a.ip, dst: b.ip, sport: 7, dport: 7, payload: []byte("rfc1624")}
	// Header checksum 0xfeff before the TTL decrement: an incremental
	// update that cannot produce 0x0000 writes 0xffff (RFC 1624, section 3).
	corner.id = checksumID(t, corner, 64, 0xfeff)

	cases := []struct {
		name     string
		from, to pod
		p        pkt
		ttl      uint8
	}{
		{"udp", a, b, pkt{src: a.ip, dst: b.ip, sport: 1234, dport: 5678, payload: []byte("hello, pod b")}, 64},
		{"tcp with DF and DSCP", a, b, pkt{proto: frames.ProtoTCP, src: a.ip, dst: b.ip, sport: 40000, dport: 80,
			tos: 0xb8, id: 0x4242, flags: frames.IPv4DF}, 64},
		{"icmp back", b, a, pkt{proto: frames.ProtoICMP, src: b.ip, dst: a.ip, sport: 99, dport: 1,
			payload: bytes.Repeat([]byte{0x5a}, 56)}, 2},
		{"ip options", a, b, pkt{src: a.ip, dst: b.ip, sport: 1, dport: 2, options: []byte{0x94, 0x04, 0, 0},
			payload: []byte("ra")}, 255},
		{"checksum corner case", a, b, corner, 64},
		{"large", b, a, pkt{src: b.ip, dst: a.ip, sport: 3, dport: 4, payload: make([]byte, 1472)}, 64},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := e.with(t)
			rx0, _ := dp.PortStats(c.from.id)
			tx0, _ := dp.PortStats(c.to.id)
			in, out := c.from.from(c.p.ip4(c.ttl)), c.to.to(c.p.ip4(c.ttl-1))
			e.inject(c.from.id, in)
			e.expectFrame(c.to.id, out)
			e.expectNothing()
			rx1, _ := dp.PortStats(c.from.id)
			tx1, _ := dp.PortStats(c.to.id)
			if rx1.RxPackets-rx0.RxPackets != 1 || tx1.TxPackets-tx0.TxPackets != 1 {
				t.Errorf("port stats: rx +%d, tx +%d, want +1 +1", rx1.RxPackets-rx0.RxPackets, tx1.TxPackets-tx0.TxPackets)
			}
			// bytes as received and as sent (fp_tx sums what it buffers)
			if rx1.RxBytes-rx0.RxBytes != uint64(len(in)) || tx1.TxBytes-tx0.TxBytes != uint64(len(out)) {
				t.Errorf("port stats: rx +%d bytes, tx +%d bytes, want +%d +%d",
					rx1.RxBytes-rx0.RxBytes, tx1.TxBytes-tx0.TxBytes, len(in), len(out))
			}
		})
	}

	// A minimum-size frame: 14 + 20 + 8 bytes padded to 60 by the sender.
	// The padding must not travel on.
	t.Run("ethernet padding", func(t *testing.T) {
		e := e.with(t)
		p := pkt{src: a.ip, dst: b.ip, sport: 5, dport: 6}
		in := frames.Pad(a.from(p.ip4(64)), frames.MinFrame, 0xa5)
		if len(in) != 60 {
			t.Fatalf("padded frame is %d bytes", len(in))
		}
		e.inject(a.id, in)
		got := e.expectFrame(b.id, b.to(p.ip4(63)))
		if len(got) != 42 {
			t.Errorf("padding not trimmed: %d bytes out", len(got))
		}
	})

	// A burst in both directions keeps order and every frame.
	t.Run("burst", func(t *testing.T) {
		e := e.with(t)
		var in, want [][]byte
		for i := range 100 {
			p := pkt{src: a.ip, dst: b.ip, sport: uint16(1000 + i), dport: 53, payload: []byte{byte(i)}}
			in = append(in, a.from(p.ip4(64)))
			want = append(want, b.to(p.ip4(63)))
		}
		e.inject(a.id, in...)
		got := e.expectFrames(b.id, len(want), timeout)
		for i := range want {
			if d := frames.Diff(want[i], got[i]); d != "" {
				t.Fatalf("frame %d:\n%s", i, d)
			}
		}
	})
}

func TestTTLExpired(t *testing.T) {
	e := newEnv(t)
	a := e.pod(11, "02:00:00:0b:00:0a", "10.11.0.10")
	b := e.pod(11, "02:00:00:0b:00:0b", "10.11.0.11")
	e.toPod(b)
	for _, ttl := range []uint8{1, 0} {
		p := pkt{src: a.ip, dst: b.ip, sport: 1, dport: 2, payload: []byte("ttl")}
		e.expectDrop("ttl_exceeded", 1, a.id, a.from(p.ip4(ttl)))
	}
	// TTL 2 still goes through, with TTL 1.
	p := pkt{src: a.ip, dst: b.ip, sport: 1, dport: 2}
	e.inject(a.id, a.from(p.ip4(2)))
	e.expectFrame(b.id, b.to(p.ip4(1)))
}

// encapWant describes the outer headers a tunnel next-hop must write.
type encapWant struct {
	encap  fastpath.Encap
	remote netip.Addr
	nbrMAC net.HardwareAddr
	vni    uint32 // or label
	tos    uint8
}

// flowPort is the outer UDP source port the fast path gives an inner IPv4
// packet (fp_flow_hash): CRC32-C steps (SSE4.2's, no inversions) from
// 0x9e3779b9 over the addresses, the protocol as a little-endian 32-bit
// word and, for unfragmented TCP and UDP, the ports as sent; then the
// dynamic range's 0xc000 and the hash's low 14 bits (RFC 7348). Pinned:
// a new hash would move every flow of a running cluster to other underlay
// paths on upgrade.
func flowPort(ip []byte) uint16 {
	ihl := int(ip[0]&0xf) * 4
	b := append(append([]byte{}, ip[12:20]...), ip[9], 0, 0, 0)
	frag := binary.BigEndian.Uint16(ip[6:8]) & 0x3fff // MF and offset
	if (ip[9] == frames.ProtoTCP || ip[9] == frames.ProtoUDP) && frag == 0 && len(ip) >= ihl+4 {
		b = append(b, ip[ihl:ihl+4]...)
	}
	h := ^crc32.Update(^uint32(0x9e3779b9), crc32.MakeTable(crc32.Castagnoli), b)
	return 0xc000 | uint16(h&0x3fff)
}

// checkEncap checks an encapsulated frame field by field, the UDP source
// port against flowPort, then byte for byte against the frame built with
// the source port it carries. innerIP is the
// inner IPv4 packet expected (TTL already decremented). Returns the UDP
// source port (0 for MPLSoGRE, which has none).
func checkEncap(t *testing.T, got []byte, w encapWant, innerIP []byte) uint16 {
	t.Helper()
	p, err := frames.Parse(got)
	if err != nil {
		t.Errorf("encapsulated frame does not decode: %v\n%s", err, frames.Summary(got))
	}
	check := func(what string, ok bool, gotv, wantv any) {
		t.Helper()
		if !ok {
			t.Errorf("outer %s: got %v, want %v", what, gotv, wantv)
		}
	}
	gre := w.encap == fastpath.EncapMPLSoGRE
	if p.Eth == nil || p.IPv4 == nil || (p.UDP == nil && !gre) || (p.GRE == nil && gre) {
		t.Fatalf("not Ethernet/IPv4/UDP or GRE: %s", frames.Summary(got))
	}
	check("eth dst (neighbour MAC)", bytes.Equal(p.Eth.Dst, w.nbrMAC), p.Eth.Dst, w.nbrMAC)
	check("eth src (fabric MAC)", bytes.Equal(p.Eth.Src, fabricMAC), p.Eth.Src, fabricMAC)
	check("ethertype", p.Eth.Type == frames.EtherTypeIPv4, p.Eth.Type, frames.EtherTypeIPv4)
	h := p.IPv4
	check("ip version", h.Version == 4, h.Version, 4)
	check("ip ihl", h.IHL == 5, h.IHL, 5)
	check("ip tos (copied from inner)", h.TOS == w.tos, h.TOS, w.tos)
	check("ip DF", h.Flags == frames.IPv4DF && h.FragOff == 0, h.Flags, "DF only")
	check("ip ttl", h.TTL == 64, h.TTL, 64)
	proto := uint8(frames.ProtoUDP)
	if gre {
		proto = frames.ProtoGRE
	}
	check("ip proto", h.Protocol == proto, h.Protocol, proto)
	check("ip src (underlay)", h.Src == underlay, h.Src, underlay)
	check("ip dst (remote vRouter)", h.Dst == w.remote, h.Dst, w.remote)
	check("ip total length", int(h.TotalLen) == len(got)-frames.EthernetLen, h.TotalLen, len(got)-frames.EthernetLen)
	check("ip checksum", h.ChecksumOK, frames.IPv4Checksum(got[14:]), "correct")
	var sport uint16
	if gre {
		g := p.GRE
		check("gre flags and version", g.Flags == 0, g.Flags, 0)
		check("gre protocol", g.Protocol == frames.GREProtoMPLS, g.Protocol, frames.GREProtoMPLS)
	} else {
		u := p.UDP
		dport := uint16(frames.PortVXLAN)
		if w.encap == fastpath.EncapMPLSoUDP {
			dport = frames.PortMPLSoUDP
		}
		check("udp dst port", u.DstPort == dport, u.DstPort, dport)
		check("udp src port (the inner flow's hash)", u.SrcPort == flowPort(innerIP), u.SrcPort, flowPort(innerIP))
		check("udp length", int(u.Length) == int(h.TotalLen)-20, u.Length, int(h.TotalLen)-20)
		check("udp checksum", u.Checksum == 0, u.Checksum, 0)
		sport = u.SrcPort
	}

	var inner []byte
	if w.encap == fastpath.EncapVXLAN {
		v := p.VXLAN
		if v == nil || p.Inner == nil || p.Inner.Eth == nil {
			t.Fatalf("no VXLAN header and inner Ethernet: %s", frames.Summary(got))
		}
		check("vxlan flags", v.Flags == frames.VXLANFlagI && v.Reserved1 == 0 && v.Reserved2 == 0, v.Flags, "0x08, reserved 0")
		check("vxlan vni", v.VNI == w.vni, v.VNI, w.vni)
		ie := p.Inner.Eth
		check("inner eth (vRouter to vRouter)", bytes.Equal(ie.Dst, vrMAC) && bytes.Equal(ie.Src, vrMAC) &&
			ie.Type == frames.EtherTypeIPv4, ie, vrMAC)
		inner = got[14+20+8+8+14:]
	} else {
		m := p.MPLS
		if m == nil {
			t.Fatalf("no MPLS label: %s", frames.Summary(got))
		}
		check("mpls label", m.Label == w.vni, m.Label, w.vni)
		check("mpls bottom of stack", m.BoS, m.BoS, true)
		check("mpls ttl", m.TTL == 64, m.TTL, 64)
		check("mpls tc", m.TC == 0, m.TC, 0)
		inner = got[14+20+8+4:]
		if gre {
			inner = got[14+20+4+4:]
		}
	}
	if len(inner) >= 20 {
		check("inner ip checksum", frames.IPv4ChecksumValid(inner), frames.IPv4Checksum(inner), "correct")
	}
	if d := frames.Diff(innerIP, inner); d != "" {
		t.Errorf("inner packet:\n%s", d)
	}
	want := encapFrame(w, sport, innerIP)
	if d := frames.Diff(want, got); d != "" {
		t.Errorf("encapsulated frame:\n%s", d)
	}
	return sport
}

// encapFrame is what a tunnel next-hop sends for innerIP.
func encapFrame(w encapWant, sport uint16, innerIP []byte) []byte {
	var l4 []byte
	proto := uint8(frames.ProtoUDP)
	switch w.encap {
	case fastpath.EncapVXLAN:
		l4 = frames.UDP{SrcPort: sport, DstPort: frames.PortVXLAN}.Build(
			frames.VXLAN{Flags: frames.VXLANFlagI, VNI: w.vni}.Build(eth(vrMAC, vrMAC, innerIP)))
	case fastpath.EncapMPLSoUDP:
		l4 = frames.UDP{SrcPort: sport, DstPort: frames.PortMPLSoUDP}.Build(
			frames.MPLS{Label: w.vni, BoS: true, TTL: 64}.Build(innerIP))
	default:
		proto = frames.ProtoGRE
		l4 = frames.GRE{Protocol: frames.GREProtoMPLS}.Build(
			frames.MPLS{Label: w.vni, BoS: true, TTL: 64}.Build(innerIP))
	}
	return eth(w.nbrMAC, fabricMAC, frames.IPv4{TOS: w.tos, Flags: frames.IPv4DF, TTL: 64,
		Protocol: proto, Src: underlay, Dst: w.remote}.Build(l4))
}

// tunnels sets up a fabric port (MTU 1500), a pod in vrf, and three tunnel
// next-hops: VXLAN VNI 5000+vrf to remote 2 for 10.<vrf>.1.0/24, MPLSoUDP
// label 500+vrf to remote 3 for 10.<vrf>.2.0/24 and MPLSoGRE label 600+vrf
// to remote 4 for 10.<vrf>.3.0/24.
func tunnels(t *testing.T, e *env, vrf uint16) (fab fastpath.PortID, a pod, vx, mp, gr encapWant) {
	fab = e.fabric(1500)
	a = e.pod(vrf, "02:00:00:00:00:0a", netip.AddrFrom4([4]byte{10, byte(vrf), 0, 10}).String())
	r2, m2 := remote(t, 2)
	r3, m3 := remote(t, 3)
	r4, m4 := remote(t, 4)
	vx = encapWant{encap: fastpath.EncapVXLAN, remote: r2, nbrMAC: m2, vni: 5000 + uint32(vrf)}
	mp = encapWant{encap: fastpath.EncapMPLSoUDP, remote: r3, nbrMAC: m3, vni: 500 + uint32(vrf)}
	gr = encapWant{encap: fastpath.EncapMPLSoGRE, remote: r4, nbrMAC: m4, vni: 600 + uint32(vrf)}
	for i, w := range []encapWant{vx, mp, gr} {
		id := e.nh(fastpath.NextHop{Type: fastpath.NHTunnel, Port: fab, Encap: w.encap, TunnelDst: w.remote, VNI: w.vni})
		e.route(vrf, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(vrf), byte(i + 1), 0}), 24).String(), id)
	}
	return fab, a, vx, mp, gr
}

func TestEncap(t *testing.T) {
	e := newEnv(t)
	fab, a, vx, mp, gr := tunnels(t, e, 20)
	for _, w := range []encapWant{vx, mp, gr} {
		net3 := byte(1)
		name := "vxlan"
		switch w.encap {
		case fastpath.EncapMPLSoUDP:
			net3, name = 2, "mplsoudp"
		case fastpath.EncapMPLSoGRE:
			net3, name = 3, "mplsogre"
		}
		dst := netip.AddrFrom4([4]byte{10, 20, net3, 5})
		t.Run(name, func(t *testing.T) {
			e := e.with(t)
			for _, p := range []pkt{
				{src: a.ip, dst: dst, sport: 1111, dport: 2222, payload: []byte("over the fabric")},
				{proto: frames.ProtoTCP, src: a.ip, dst: dst, sport: 33000, dport: 443, tos: 0x2e << 2, flags: frames.IPv4DF, id: 77},
				{proto: frames.ProtoICMP, src: a.ip, dst: dst, sport: 1, dport: 1, payload: []byte("ping")},
			} {
				e.inject(a.id, a.from(p.ip4(64)))
				got := e.expectFrames(fab, 1, timeout)[0]
				ww := w
				ww.tos = p.tos
				sport := checkEncap(t, got, ww, p.ip4(63))
				// The same flow again: the same entropy.
				e.inject(a.id, a.from(p.ip4(64)))
				again := e.expectFrames(fab, 1, timeout)[0]
				if d := frames.Diff(got, again); d != "" {
					t.Errorf("same flow, different frame (source port %d before):\n%s", sport, d)
				}
			}
		})
	}

	t.Run("ttl", func(t *testing.T) {
		e := e.with(t)
		p := pkt{src: a.ip, dst: ip("10.20.1.5"), sport: 1, dport: 2}
		e.expectDrop("ttl_exceeded", 1, a.id, a.from(p.ip4(1)))
		e.inject(a.id, a.from(p.ip4(2)))
		checkEncap(t, e.expectFrames(fab, 1, timeout)[0], vx, p.ip4(1))
	})
}

// A pod packet must fit the fabric MTU once encapsulated: 1500 - 50 for
// VXLAN, 1500 - 32 for MPLSoUDP, 1500 - 28 for MPLSoGRE.
func TestEncapTooBig(t *testing.T) {
	e := newEnv(t)
	fab, a, vx, mp, gr := tunnels(t, e, 21)
	for _, c := range []struct {
		w   encapWant
		dst netip.Addr
		max int
	}{
		{vx, ip("10.21.1.9"), 1500 - fastpath.VXLANOverhead},
		{mp, ip("10.21.2.9"), 1500 - fastpath.MPLSoUDPOverhead},
		{gr, ip("10.21.3.9"), 1500 - fastpath.MPLSoGREOverhead},
	} {
		if c.w.encap == fastpath.EncapVXLAN && c.max != 1450 || c.w.encap == fastpath.EncapMPLSoUDP && c.max != 1468 ||
			c.w.encap == fastpath.EncapMPLSoGRE && c.max != 1472 {
			t.Errorf("overhead constants: %d, %d, %d", fastpath.VXLANOverhead, fastpath.MPLSoUDPOverhead,
				fastpath.MPLSoGREOverhead)
		}
		fit := pkt{src: a.ip, dst: c.dst, sport: 9, dport: 9, payload: make([]byte, c.max-20-8)}
		big := fit
		big.payload = make([]byte, c.max-20-8+1)
		e.expectDrop("too_big", 1, a.id, a.from(big.ip4(64)))
		e.inject(a.id, a.from(fit.ip4(64)))
		got := e.expectFrames(fab, 1, timeout)[0]
		checkEncap(t, got, c.w, fit.ip4(63))
		if len(got) != 1514 {
			t.Errorf("%v at the limit: %d-byte frame, want 1514", c.w.encap, len(got))
		}
	}
}

func TestDecap(t *testing.T) {
	e := newEnv(t)
	fabID := e.fabric(1500)
	a := e.pod(30, "02:00:00:1e:00:0a", "10.30.0.10")
	e.toPod(a)
	e.vni(5030, 30)
	e.label(530, 30)

	t.Run("vxlan", func(t *testing.T) {
		e := e.with(t)
		p := pkt{src: ip("10.30.9.9"), dst: a.ip, sport: 4000, dport: 5000, payload: []byte("from afar")}
		e.inject(fabID, vxlanIn(t, 2, frames.VXLANFlagI, 5030, eth(vrMAC, vrMAC, p.ip4(63))))
		e.expectFrame(a.id, a.to(p.ip4(62)))
	})
	t.Run("vxlan padded inner", func(t *testing.T) {
		e := e.with(t)
		// The inner frame padded to 60 bytes by the remote: trimmed here.
		p := pkt{src: ip("10.30.9.9"), dst: a.ip, sport: 4000, dport: 5001}
		e.inject(fabID, vxlanIn(t, 2, frames.VXLANFlagI, 5030, frames.Pad(eth(vrMAC, vrMAC, p.ip4(63)), 60, 0)))
		e.expectFrame(a.id, a.to(p.ip4(62)))
	})
	t.Run("mplsoudp", func(t *testing.T) {
		e := e.with(t)
		p := pkt{proto: frames.ProtoTCP, src: ip("10.30.9.9"), dst: a.ip, sport: 4000, dport: 22, tos: 0x10}
		e.inject(fabID, mplsIn(t, 3, frames.MPLS{Label: 530, BoS: true, TTL: 64}, p.ip4(60)))
		e.expectFrame(a.id, a.to(p.ip4(59)))
	})
	t.Run("mplsogre", func(t *testing.T) {
		e := e.with(t)
		p := pkt{proto: frames.ProtoTCP, src: ip("10.30.9.9"), dst: a.ip, sport: 4000, dport: 23, tos: 0x10, payload: []byte("over gre")}
		e.inject(fabID, greIn(t, 4, frames.GRE{Protocol: frames.GREProtoMPLS}, frames.MPLS{Label: 530, BoS: true, TTL: 64}, p.ip4(60)))
		e.expectFrame(a.id, a.to(p.ip4(59)))
	})
	t.Run("mplsogre trailer", func(t *testing.T) {
		e := e.with(t)
		// Bytes after the outer IPv4 packet do not travel on.
		p := pkt{src: ip("10.30.9.9"), dst: a.ip, sport: 4000, dport: 5002}
		f := greIn(t, 4, frames.GRE{Protocol: frames.GREProtoMPLS}, frames.MPLS{Label: 530, BoS: true, TTL: 64}, p.ip4(60))
		e.inject(fabID, frames.Pad(f, len(f)+8, 0xee))
		e.expectFrame(a.id, a.to(p.ip4(59)))
	})
}

// Overlay frames the fast path cannot map or parse.
func TestDecapRejects(t *testing.T) {
	e := newEnv(t)
	fab := e.fabric(1500)
	a := e.pod(31, "02:00:00:1f:00:0a", "10.31.0.10")
	e.toPod(a)
	e.vni(5031, 31)
	e.label(531, 31)
	p := pkt{src: ip("10.31.9.9"), dst: a.ip, sport: 1, dport: 2}
	inner := eth(vrMAC, vrMAC, p.ip4(64))
	e.expectDrop("vni_unknown", 1, fab, vxlanIn(t, 2, frames.VXLANFlagI, 5032, inner))
	e.expectDrop("mpls_label_unknown", 1, fab, mplsIn(t, 3, frames.MPLS{Label: 532, BoS: true, TTL: 64}, p.ip4(64)))
	e.expectDrop("vxlan_flags", 1, fab, vxlanIn(t, 2, 0, 5031, inner))
	e.expectDrop("mpls_stack", 1, fab, mplsIn(t, 3, frames.MPLS{Label: 531, TTL: 64},
		frames.MPLS{Label: 531, BoS: true, TTL: 64}.Build(p.ip4(64))))
	gre := frames.GRE{Protocol: frames.GREProtoMPLS}
	e.expectDrop("mpls_label_unknown", 1, fab, greIn(t, 4, gre, frames.MPLS{Label: 532, BoS: true, TTL: 64}, p.ip4(64)))
	e.expectDrop("mpls_stack", 1, fab, greIn(t, 4, gre, frames.MPLS{Label: 531, TTL: 64},
		frames.MPLS{Label: 531, BoS: true, TTL: 64}.Build(p.ip4(64))))
	// And the valid ones still go through.
	e.inject(fab, vxlanIn(t, 2, frames.VXLANFlagI, 5031, inner), mplsIn(t, 3, frames.MPLS{Label: 531, BoS: true, TTL: 64}, p.ip4(64)),
		greIn(t, 4, gre, frames.MPLS{Label: 531, BoS: true, TTL: 64}, p.ip4(64)))
	for _, f := range e.expectFrames(a.id, 3, timeout) {
		if d := frames.Diff(a.to(p.ip4(63)), f); d != "" {
			t.Error(d)
		}
	}
}

// Proxy ARP: a pod's every ARP request is answered with the vRouter MAC,
// except a probe for its own address (duplicate address detection).
func TestProxyARP(t *testing.T) {
	e := newEnv(t)
	a := e.pod(40, "02:00:00:28:00:0a", "10.40.0.10")
	for _, target := range []netip.Addr{a.gw, ip("10.40.0.77"), ip("8.8.8.8")} {
		req := frames.Pad(arpFrame(frames.Broadcast, a.mac, frames.ARP{Op: frames.ARPRequest,
			SenderMAC: a.mac, SenderIP: a.ip, TargetIP: target}), frames.MinFrame, 0)
		e.inject(a.id, req)
		want := arpFrame(a.mac, vrMAC, frames.ARP{Op: frames.ARPReply,
			SenderMAC: vrMAC, SenderIP: target, TargetMAC: a.mac, TargetIP: a.ip})
		if got := e.expectFrame(a.id, want); len(got) != 42 {
			t.Errorf("ARP reply for %v is %d bytes, want 42", target, len(got))
		}
	}
	// Unicast request (ARP cache refresh) as well.
	e.inject(a.id, arpFrame(vrMAC, a.mac, frames.ARP{Op: frames.ARPRequest, SenderMAC: a.mac, SenderIP: a.ip,
		TargetMAC: vrMAC, TargetIP: a.gw}))
	e.expectFrame(a.id, arpFrame(a.mac, vrMAC, frames.ARP{Op: frames.ARPReply, SenderMAC: vrMAC, SenderIP: a.gw,
		TargetMAC: a.mac, TargetIP: a.ip}))

	e.expectDrop("arp_ignored", 1, a.id, arpFrame(frames.Broadcast, a.mac, frames.ARP{Op: frames.ARPRequest,
		SenderMAC: a.mac, TargetIP: a.ip})) // DAD probe: sender 0.0.0.0
	e.expectDrop("arp_ignored", 1, a.id, arpFrame(frames.Broadcast, a.mac, frames.ARP{Op: frames.ARPRequest,
		SenderMAC: a.mac, SenderIP: a.ip, TargetIP: a.ip})) // gratuitous ARP
	e.expectDrop("arp_ignored", 1, a.id, arpFrame(vrMAC, a.mac, frames.ARP{Op: frames.ARPReply,
		SenderMAC: a.mac, SenderIP: a.ip, TargetMAC: vrMAC, TargetIP: a.gw}))
	other := frames.MustMAC("02:00:00:28:00:99")
	e.expectDrop("spoof_mac", 1, a.id, arpFrame(frames.Broadcast, other, frames.ARP{Op: frames.ARPRequest,
		SenderMAC: other, SenderIP: a.ip, TargetIP: a.gw}))
	e.expectDrop("spoof_mac", 1, a.id, arpFrame(frames.Broadcast, a.mac, frames.ARP{Op: frames.ARPRequest,
		SenderMAC: other, SenderIP: a.ip, TargetIP: a.gw}))
}

func TestAntiSpoofing(t *testing.T) {
	e := newEnv(t)
	a := e.pod(41, "02:00:00:29:00:0a", "10.41.0.10")
	b := e.pod(41, "02:00:00:29:00:0b", "10.41.0.11")
	e.toPod(a)
	e.toPod(b)
	ok := pkt{src: a.ip, dst: b.ip, sport: 1, dport: 2}
	spoofed := pkt{src: ip("10.41.0.99"), dst: b.ip, sport: 1, dport: 2}
	e.expectDrop("spoof_ip", 1, a.id, a.from(spoofed.ip4(64)))
	spoofed.src = b.ip // another pod's address
	e.expectDrop("spoof_ip", 1, a.id, a.from(spoofed.ip4(64)))
	e.expectDrop("spoof_mac", 1, a.id, eth(vrMAC, frames.MustMAC("02:00:00:29:00:99"), ok.ip4(64)))
	e.expectDrop("spoof_mac", 1, a.id, eth(vrMAC, b.mac, ok.ip4(64)))
	e.expectDrop("l2_not_for_us", 1, a.id, eth(b.mac, a.mac, ok.ip4(64)))
	e.expectDrop("l2_not_for_us", 1, a.id, eth(frames.Broadcast, a.mac, ok.ip4(64)))
	e.inject(a.id, a.from(ok.ip4(64)))
	e.expectFrame(b.id, b.to(ok.ip4(63)))

	// A second address given to the pod while it runs: allowed from then on.
	second := pkt{src: ip("10.41.0.99"), dst: b.ip, sport: 1, dport: 2}
	if err := dp.UpdatePort(a.id, fastpath.PortConfig{Kind: fastpath.PortPod, VRF: a.vrf, MAC: a.mac,
		IPv4: []netip.Addr{a.ip, second.src}}); err != nil {
		t.Fatal(err)
	}
	e.inject(a.id, a.from(second.ip4(64)), a.from(ok.ip4(64)))
	for i, f := range e.expectFrames(b.id, 2, timeout) {
		want := []pkt{second, ok}[i]
		if d := frames.Diff(b.to(want.ip4(63)), f); d != "" {
			t.Errorf("frame %d:\n%s", i, d)
		}
	}
	// And taken away again.
	if err := dp.UpdatePort(a.id, fastpath.PortConfig{Kind: fastpath.PortPod, VRF: a.vrf, MAC: a.mac,
		IPv4: []netip.Addr{a.ip}}); err != nil {
		t.Fatal(err)
	}
	e.expectDrop("spoof_ip", 1, a.id, a.from(second.ip4(64)))
}

// ARP on the fabric: answer for the underlay address, resolve tunnel
// neighbours by ARP and learn the reply.
func TestFabricARP(t *testing.T) {
	e := newEnv(t)
	fab := e.fabric(1500)
	asker, askerMAC := ip("192.168.100.50"), frames.MustMAC("02:fb:00:00:00:50")
	e.inject(fab, frames.Pad(arpFrame(frames.Broadcast, askerMAC, frames.ARP{Op: frames.ARPRequest,
		SenderMAC: askerMAC, SenderIP: asker, TargetIP: underlay}), frames.MinFrame, 0))
	e.expectFrame(fab, arpFrame(askerMAC, fabricMAC, frames.ARP{Op: frames.ARPReply,
		SenderMAC: fabricMAC, SenderIP: underlay, TargetMAC: askerMAC, TargetIP: asker}))

	// A tunnel to a neighbour nobody pinned: the first packet becomes an
	// ARP request, the next (within the rate limit) is just dropped.
	nbr, nbrMAC := ip("192.168.100.60"), frames.MustMAC("02:fb:00:00:00:60")
	a := e.pod(50, "02:00:00:32:00:0a", "10.50.0.10")
	id := e.nh(fastpath.NextHop{Type: fastpath.NHTunnel, Port: fab, Encap: fastpath.EncapVXLAN, TunnelDst: nbr, VNI: 5050})
	e.route(50, "10.50.1.0/24", id)
	if m, ok, err := dp.Neighbor(nbr); err != nil || ok {
		t.Fatalf("neighbour %v before ARP: %v %v %v, want pending", nbr, m, ok, err)
	}
	p := pkt{src: a.ip, dst: ip("10.50.1.1"), sport: 1, dport: 2, payload: []byte("first")}
	before := dp.Drops()
	e.inject(a.id, a.from(p.ip4(64)), a.from(p.ip4(64)))
	e.expectFrame(fab, arpFrame(frames.Broadcast, fabricMAC, frames.ARP{Op: frames.ARPRequest,
		SenderMAC: fabricMAC, SenderIP: underlay, TargetIP: nbr}))
	waitFor(t, "neigh_unresolved +2", func() bool { return dp.Drops()["neigh_unresolved"] >= before["neigh_unresolved"]+2 })
	e.expectNothing()
	e.checkDrops(before, map[string]uint64{"neigh_unresolved": 2})

	// The reply is learnt and, with no host port, consumed: not a drop.
	before = dp.Drops()
	consumed := func() (n uint64) {
		for w := 0; w < dp.Workers(); w++ {
			s, _ := dp.LcoreStats(w)
			n += s.Consumed
		}
		return n
	}
	c0 := consumed()
	e.inject(fab, frames.Pad(arpFrame(fabricMAC, nbrMAC, frames.ARP{Op: frames.ARPReply,
		SenderMAC: nbrMAC, SenderIP: nbr, TargetMAC: fabricMAC, TargetIP: underlay}), frames.MinFrame, 0))
	waitFor(t, "the ARP reply consumed", func() bool { return consumed() == c0+1 })
	e.expectNothing()
	e.checkDrops(before, nil)
	m, ok, err := dp.Neighbor(nbr)
	if err != nil || !ok || !bytes.Equal(m, nbrMAC) {
		t.Fatalf("neighbour %v after the reply: %v %v %v, want %v", nbr, m, ok, err, nbrMAC)
	}
	e.inject(a.id, a.from(p.ip4(64)))
	checkEncap(t, e.expectFrames(fab, 1, timeout)[0],
		encapWant{encap: fastpath.EncapVXLAN, remote: nbr, nbrMAC: nbrMAC, vni: 5050}, p.ip4(63))

	// A tunnel neighbour asking for our address is learnt from its request.
	nbr2, nbr2MAC := ip("192.168.100.61"), frames.MustMAC("02:fb:00:00:00:61")
	e.route(50, "10.50.2.0/24", e.nh(fastpath.NextHop{Type: fastpath.NHTunnel, Port: fab,
		Encap: fastpath.EncapMPLSoUDP, TunnelDst: nbr2, VNI: 550}))
	e.inject(fab, arpFrame(frames.Broadcast, nbr2MAC, frames.ARP{Op: frames.ARPRequest,
		SenderMAC: nbr2MAC, SenderIP: nbr2, TargetIP: underlay}))
	e.expectFrame(fab, arpFrame(nbr2MAC, fabricMAC, frames.ARP{Op: frames.ARPReply,
		SenderMAC: fabricMAC, SenderIP: underlay, TargetMAC: nbr2MAC, TargetIP: nbr2}))
	if m, ok, err := dp.Neighbor(nbr2); err != nil || !ok || !bytes.Equal(m, nbr2MAC) {
		t.Errorf("neighbour %v after its request: %v %v %v, want %v", nbr2, m, ok, err, nbr2MAC)
	}
	p2 := pkt{src: a.ip, dst: ip("10.50.2.1"), sport: 3, dport: 4}
	e.inject(a.id, a.from(p2.ip4(64)))
	checkEncap(t, e.expectFrames(fab, 1, timeout)[0],
		encapWant{encap: fastpath.EncapMPLSoUDP, remote: nbr2, nbrMAC: nbr2MAC, vni: 550}, p2.ip4(63))

	// A pinned neighbour is not overwritten by ARP.
	r2, m2 := remote(t, 2)
	e.expectDrop("arp_ignored", 1, fab, arpFrame(fabricMAC, nbrMAC, frames.ARP{Op: frames.ARPReply,
		SenderMAC: frames.MustMAC("02:66:66:66:66:66"), SenderIP: r2, TargetMAC: fabricMAC, TargetIP: underlay}))
	if m, ok, err := dp.Neighbor(r2); err != nil || !ok || !bytes.Equal(m, m2) {
		t.Errorf("pinned neighbour %v after a forged reply: %v %v %v, want %v", r2, m, ok, err, m2)
	}
}

// The node's own traffic: between the fabric and the host port, untouched,
// and from the host to pods through the host's VRF (kubelet probes).
func TestHostPunt(t *testing.T) {
	e := newEnv(t)
	fab := e.fabric(1500)
	host := e.host(60)
	hostMAC := frames.MustMAC("02:40:00:00:00:01")
	a := e.pod(61, "02:00:00:3d:00:0a", "10.61.0.10")
	e.route(60, "10.61.0.10/32", e.nh(fastpath.NextHop{Type: fastpath.NHIface, Port: a.id, DstMAC: a.mac}))
	r2, m2 := remote(t, 2)

	toNode := []struct {
		name  string
		frame []byte
	}{
		{"ssh to the underlay address", eth(fabricMAC, m2, pkt{proto: frames.ProtoTCP, src: r2, dst: underlay,
			sport: 50000, dport: 22}.ip4(64))},
		{"udp to the underlay address", eth(fabricMAC, m2, pkt{src: r2, dst: underlay, sport: 5353, dport: 53,
			payload: []byte("dns")}.ip4(64))},
		{"vxlan port to another address", eth(fabricMAC, m2, pkt{src: r2, dst: ip("192.168.100.77"),
			sport: 50000, dport: frames.PortVXLAN, payload: make([]byte, 64)}.ip4(64))},
		{"arp for another address", arpFrame(frames.Broadcast, m2, frames.ARP{Op: frames.ARPRequest,
			SenderMAC: m2, SenderIP: r2, TargetIP: ip("192.168.100.77")})},
		{"lldp", frames.Ethernet{Dst: frames.MustMAC("01:80:c2:00:00:0e"), Src: m2, Type: frames.EtherTypeLLDP}.Build(make([]byte, 46))},
	}
	for _, c := range toNode {
		t.Run("fabric to host: "+c.name, func(t *testing.T) {
			e := e.with(t)
			e.inject(fab, c.frame)
			e.expectFrame(host, c.frame)
		})
	}
	fromNode := []struct {
		name  string
		frame []byte
	}{
		{"tcp", eth(m2, hostMAC, pkt{proto: frames.ProtoTCP, src: underlay, dst: r2, sport: 22, dport: 50000}.ip4(64))},
		{"arp", arpFrame(frames.Broadcast, hostMAC, frames.ARP{Op: frames.ARPRequest, SenderMAC: hostMAC,
			SenderIP: underlay, TargetIP: r2})},
	}
	for _, c := range fromNode {
		t.Run("host to fabric: "+c.name, func(t *testing.T) {
			e := e.with(t)
			e.inject(host, c.frame)
			e.expectFrame(fab, c.frame)
		})
	}
	t.Run("host resolves a local pod", func(t *testing.T) {
		e := e.with(t)
		e.inject(host, arpFrame(frames.Broadcast, hostMAC, frames.ARP{Op: frames.ARPRequest, SenderMAC: hostMAC,
			SenderIP: underlay, TargetIP: a.ip}))
		e.expectFrame(host, arpFrame(hostMAC, vrMAC, frames.ARP{Op: frames.ARPReply, SenderMAC: vrMAC,
			SenderIP: a.ip, TargetMAC: hostMAC, TargetIP: underlay}))
	})
	t.Run("host to pod", func(t *testing.T) {
		e := e.with(t)
		p := pkt{proto: frames.ProtoTCP, src: underlay, dst: a.ip, sport: 45000, dport: 8080}
		e.inject(host, eth(vrMAC, hostMAC, p.ip4(64)))
		e.expectFrame(a.id, a.to(p.ip4(63)))
	})
}

func TestNoHostPort(t *testing.T) {
	e := newEnv(t)
	fab := e.fabric(1500)
	r2, m2 := remote(t, 2)
	e.expectDrop("no_host_port", 1, fab, eth(fabricMAC, m2, pkt{proto: frames.ProtoTCP, src: r2, dst: underlay,
		sport: 50000, dport: 22}.ip4(64)))
}

// A receive next-hop answers ICMP echo requests to the gateway address.
func TestEchoReply(t *testing.T) {
	e := newEnv(t)
	a := e.pod(70, "02:00:00:46:00:0a", "10.70.0.10")
	e.toPod(a)
	e.route(70, a.gw.String()+"/32", e.nh(fastpath.NextHop{Type: fastpath.NHReceive}))
	payload := make([]byte, 56)
	for i := range payload {
		payload[i] = byte(i)
	}
	for _, ttl := range []uint8{64, 1} {
		req := frames.IPv4{ID: 0x1234, Flags: frames.IPv4DF, TTL: ttl, Protocol: frames.ProtoICMP, Src: a.ip, Dst: a.gw}.Build(
			frames.ICMPEcho{Type: frames.ICMPEchoRequest, ID: 0x0bad, Seq: uint16(ttl)}.Build(payload))
		rep := frames.IPv4{ID: 0x1234, Flags: frames.IPv4DF, TTL: 64, Protocol: frames.ProtoICMP, Src: a.gw, Dst: a.ip}.Build(
			frames.ICMPEcho{Type: frames.ICMPEchoReply, ID: 0x0bad, Seq: uint16(ttl)}.Build(payload))
		e.inject(a.id, a.from(req))
		got := e.expectFrame(a.id, a.to(rep))
		if p, _ := frames.Parse(got); p.ICMP == nil || !p.ICMP.ChecksumOK || !p.IPv4.ChecksumOK {
			t.Errorf("echo reply checksums: %v", frames.Fields(got))
		}
	}
	// Anything else to the gateway is for the host, and there is none.
	e.expectDrop("no_host_port", 1, a.id, a.from(pkt{src: a.ip, dst: a.gw, sport: 1, dport: 2}.ip4(64)))
}

// Deleting a port frees what it had not sent yet.
func TestDeletePortWithFrames(t *testing.T) {
	e := newEnv(t)
	a := e.pod(71, "02:00:00:47:00:0a", "10.71.0.10")
	bmac := frames.MustMAC("02:00:00:47:00:0b")
	b, err := dp.AddRingPort("undrained", fastpath.PortConfig{Kind: fastpath.PortPod, VRF: 71, MAC: bmac,
		IPv4: []netip.Addr{ip("10.71.0.11")}})
	if err != nil {
		t.Fatal(err)
	}
	nh := uint32(65000)
	pfx := netip.MustParsePrefix("10.71.0.11/32")
	if err := dp.SetNextHop(nh, fastpath.NextHop{Type: fastpath.NHIface, Port: b, DstMAC: bmac}); err != nil {
		t.Fatal(err)
	}
	if err := dp.AddRoute4(71, pfx, nh); err != nil {
		t.Fatal(err)
	}
	var in [][]byte
	for i := range 50 {
		in = append(in, a.from(pkt{src: a.ip, dst: pfx.Addr(), sport: uint16(i), dport: 9}.ip4(64)))
	}
	e.inject(a.id, in...)
	waitFor(t, "50 frames sent to the undrained port", func() bool {
		s, _ := dp.PortStats(b)
		return s.TxPackets == 50
	})
	if n := dp.MbufsInUse(); n < baseMbufs+50 {
		t.Errorf("%d mbufs in use with 50 frames queued, %d at start", n, baseMbufs)
	}
	wantErr(t, "delete a port a next-hop uses", dp.DelPort(b), syscall.EBUSY, "used by")
	if err := dp.DelRoute4(71, pfx); err != nil {
		t.Error(err)
	}
	if err := dp.DelNextHop(nh); err != nil {
		t.Error(err)
	}
	if err := dp.DelPort(b); err != nil {
		t.Error(err)
	}
	waitMbufs(t)
	if _, err := dp.Drain(b, 1); err == nil {
		t.Error("Drain of a deleted port")
	}
}

// A cross-connected port sends everything it receives out of its peer,
// byte for byte, whatever it is (service chaining, the benchmarks' io
// baseline).
func TestXConnect(t *testing.T) {
	e := newEnv(t)
	b := e.pod(72, "02:00:00:48:00:0b", "10.72.0.11")
	peer := b.id
	a, _ := e.addPort(fastpath.PortConfig{Kind: fastpath.PortPod, VRF: 72, MAC: frames.MustMAC("02:00:00:48:00:0a"),
		XConnect: &peer})
	in := [][]byte{
		eth(frames.Broadcast, frames.MustMAC("02:99:00:00:00:01"), pkt{src: ip("1.1.1.1"), dst: ip("2.2.2.2"), sport: 1, dport: 2}.ip4(1)),
		frames.Ethernet{Dst: frames.MustMAC("01:80:c2:00:00:0e"), Type: frames.EtherTypeLLDP}.Build(make([]byte, 46)),
		{1, 2, 3},
	}
	e.inject(a, in...)
	for i, f := range e.expectFrames(b.id, len(in), timeout) {
		if d := frames.Diff(in[i], f); d != "" {
			t.Errorf("frame %d:\n%s", i, d)
		}
	}
}
