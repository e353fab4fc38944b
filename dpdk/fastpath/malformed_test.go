package fastpath_test

import (
	"encoding/binary"
	"testing"

	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/dpdk/frames"
)

// breakIP returns frame with its IPv4 header (at off) changed by f; the
// header checksum is recomputed unless f breaks it itself.
func breakIP(frame []byte, off int, fix bool, f func(h []byte)) []byte {
	b := frames.Clone(frame)
	f(b[off:])
	if fix {
		frames.FixIPv4Checksum(b[off:])
	}
	return b
}

// Every malformed or unroutable frame is dropped under its own reason, and
// nothing is sent.
func TestMalformed(t *testing.T) {
	e := newEnv(t)
	fab := e.fabric(1500)
	a := e.pod(80, "02:00:00:50:00:0a", "10.80.0.10")
	b := e.pod(80, "02:00:00:50:00:0b", "10.80.0.11")
	lonely := e.pod(3999, "02:00:00:50:00:0c", "10.99.0.10") // a VRF without any route
	e.toPod(a)
	e.toPod(b)
	e.route(80, "10.80.99.0/24", e.nh(fastpath.NextHop{Type: fastpath.NHDiscard}))
	e.vni(5080, 80)
	e.label(580, 80)
	r2, m2 := remote(t, 2)

	ok := pkt{src: a.ip, dst: b.ip, sport: 1, dport: 2, payload: []byte("payload")}
	good := a.from(ok.ip4(64)) // pod a to pod b
	inner := pkt{src: ip("10.80.9.9"), dst: b.ip, sport: 3, dport: 4, payload: []byte("inner")}
	innerEth := eth(vrMAC, vrMAC, inner.ip4(64))
	goodVX := vxlanIn(t, 2, frames.VXLANFlagI, 5080, innerEth)
	goodMPLS := mplsIn(t, 3, frames.MPLS{Label: 580, BoS: true, TTL: 64}, inner.ip4(64))
	const ipOff = frames.EthernetLen
	const outerUDP = frames.EthernetLen + frames.IPv4Len
	const vxInnerIP = outerUDP + frames.UDPLen + frames.VXLANLen + frames.EthernetLen
	const mplsInnerIP = outerUDP + frames.UDPLen + frames.MPLSLen
	label := frames.MPLS{Label: 580, BoS: true, TTL: 64}
	plainGRE := frames.GRE{Protocol: frames.GREProtoMPLS}
	goodGRE := greIn(t, 4, plainGRE, label, inner.ip4(64))
	const greInnerIP = outerUDP + frames.GRELen + frames.MPLSLen
	r4, m4 := remote(t, 4)
	// greTo is a GRE packet from remote 4 carrying payload as it is (a
	// header with options, or no valid header at all).
	greTo := func(ipFlags uint8, payload []byte) []byte {
		return eth(fabricMAC, m4, frames.IPv4{Flags: ipFlags, TTL: 64, Protocol: frames.ProtoGRE, Src: r4, Dst: underlay}.Build(payload))
	}
	// withOption is a GRE header with flags announcing one 4-byte option
	// (checksum, key or sequence number), then a valid label and packet.
	withOption := func(flags uint16) []byte {
		return greTo(frames.IPv4DF, frames.GRE{Flags: flags, Protocol: frames.GREProtoMPLS}.Build(
			append([]byte{0, 0, 0, 0}, label.Build(inner.ip4(64))...)))
	}
	// cutGRE cuts goodGRE to n bytes after the GRE header, outer IPv4
	// length and checksum consistent.
	cutGRE := func(n int) []byte {
		g := frames.Clone(goodGRE[:outerUDP+frames.GRELen+n])
		binary.BigEndian.PutUint16(g[ipOff+frames.IPv4TotalLenOff:], uint16(len(g)-ipOff))
		frames.FixIPv4Checksum(g[ipOff:])
		return g
	}

	// shorten cuts an overlay frame to n bytes after the outer UDP header,
	// with consistent outer IPv4 and UDP lengths.
	shorten := func(f []byte, n int) []byte {
		g := frames.Clone(f[:outerUDP+frames.UDPLen+n])
		binary.BigEndian.PutUint16(g[ipOff+frames.IPv4TotalLenOff:], uint16(len(g)-ipOff))
		frames.FixIPv4Checksum(g[ipOff:])
		binary.BigEndian.PutUint16(g[outerUDP+4:], uint16(frames.UDPLen+n))
		return g
	}
	podARP := func(a2 frames.ARP) []byte { return arpFrame(frames.Broadcast, a.mac, a2) }
	arpReq := frames.ARP{Op: frames.ARPRequest, SenderMAC: a.mac, SenderIP: a.ip, TargetIP: a.gw}

	rows := []struct {
		name   string
		port   fastpath.PortID
		frame  []byte
		reason string
	}{
		{"ethernet truncated", a.id, good[:13], "eth_truncated"},
		{"ethernet truncated on the fabric", fab, goodVX[:10], "eth_truncated"},
		{"empty frame", a.id, []byte{}, "eth_truncated"},
		{"ipv4 truncated", a.id, good[:ipOff+19], "ip_truncated"},
		{"ip version 6 in an ipv4 ethertype", a.id, breakIP(good, ipOff, true, func(h []byte) { h[0] = 0x65 }), "ip_version"},
		{"ihl < 5", a.id, breakIP(good, ipOff, true, func(h []byte) { h[0] = 0x44 }), "ip_ihl"},
		{"ihl beyond the frame", a.id, breakIP(good, ipOff, false, func(h []byte) { h[0] = 0x4f }), "ip_ihl"},
		{"total length beyond the frame", a.id, breakIP(good, ipOff, true, func(h []byte) {
			binary.BigEndian.PutUint16(h[frames.IPv4TotalLenOff:], uint16(len(good)-ipOff+1))
		}), "ip_total_length"},
		{"total length < ihl", a.id, breakIP(good, ipOff, true, func(h []byte) {
			binary.BigEndian.PutUint16(h[frames.IPv4TotalLenOff:], 19)
		}), "ip_total_length"},
		{"bad ipv4 checksum", a.id, breakIP(good, ipOff, false, func(h []byte) { h[frames.IPv4ChecksumOff] ^= 0x40 }), "ip_checksum"},
		{"ttl 1", a.id, a.from(ok.ip4(1)), "ttl_exceeded"},
		{"too big for the out port", a.id, a.from(pkt{src: a.ip, dst: b.ip, sport: 1, dport: 2, payload: make([]byte, 1500-28+1)}.ip4(64)), "too_big"},
		{"no route", a.id, a.from(pkt{src: a.ip, dst: ip("172.16.0.1"), sport: 1, dport: 2}.ip4(64)), "no_route"},
		{"route to a discard next-hop", a.id, a.from(pkt{src: a.ip, dst: ip("10.80.99.5"), sport: 1, dport: 2}.ip4(64)), "nh_discard"},
		{"vrf without a fib", lonely.id, lonely.from(pkt{src: lonely.ip, dst: b.ip, sport: 1, dport: 2}.ip4(64)), "vrf_invalid"},
		{"lldp on a pod port", a.id, frames.Ethernet{Dst: frames.MustMAC("01:80:c2:00:00:0e"), Src: a.mac, Type: frames.EtherTypeLLDP}.Build(make([]byte, 46)), "ethertype_unsupported"},
		{"ipv6 type, not ipv6 inside", a.id, frames.Ethernet{Dst: vrMAC, Src: a.mac, Type: frames.EtherTypeIPv6}.Build(make([]byte, 40)), "ip_version"},
		{"arp with hlen 8", a.id, func() []byte { f := podARP(arpReq); f[ipOff+4] = 8; return f }(), "arp_malformed"},
		{"arp with ptype ipv6", a.id, func() []byte { f := podARP(arpReq); f[ipOff+2], f[ipOff+3] = 0x86, 0xdd; return f }(), "arp_malformed"},
		{"arp truncated", a.id, podARP(arpReq)[:41], "arp_malformed"},
		{"arp reply from a pod", a.id, podARP(frames.ARP{Op: frames.ARPReply, SenderMAC: a.mac, SenderIP: a.ip, TargetIP: a.gw}), "arp_ignored"},
		{"arp for target 0.0.0.0", a.id, podARP(frames.ARP{Op: frames.ARPRequest, SenderMAC: a.mac, SenderIP: a.ip}), "arp_ignored"},
		{"pod ipv4 to a broadcast MAC", a.id, eth(frames.Broadcast, a.mac, ok.ip4(64)), "l2_not_for_us"},
		{"udp truncated on the fabric", fab, eth(fabricMAC, m2, frames.IPv4{TTL: 64, Protocol: frames.ProtoUDP, Src: r2, Dst: underlay}.Build([]byte{0x12, 0xb5, 0x12, 0xb5})), "udp_truncated"},
		{"vxlan truncated", fab, shorten(goodVX, 4), "vxlan_truncated"},
		{"vxlan without an inner ethernet", fab, shorten(goodVX, frames.VXLANLen+13), "vxlan_truncated"},
		{"vxlan udp length mismatch", fab, func() []byte {
			f := frames.Clone(goodVX)
			binary.BigEndian.PutUint16(f[outerUDP+4:], binary.BigEndian.Uint16(f[outerUDP+4:])-1)
			return f
		}(), "vxlan_truncated"},
		{"vxlan I flag clear", fab, vxlanIn(t, 2, 0, 5080, innerEth), "vxlan_flags"},
		{"vxlan other flags but not I", fab, vxlanIn(t, 2, 0x80, 5080, innerEth), "vxlan_flags"},
		{"unknown vni", fab, vxlanIn(t, 2, frames.VXLANFlagI, 5081, innerEth), "vni_unknown"},
		{"vxlan inner ipv6 type, not ipv6 inside", fab, vxlanIn(t, 2, frames.VXLANFlagI, 5080, frames.Ethernet{Dst: vrMAC, Src: vrMAC, Type: frames.EtherTypeIPv6}.Build(make([]byte, 40))), "ip_version"},
		{"vxlan inner arp", fab, vxlanIn(t, 2, frames.VXLANFlagI, 5080, arpFrame(frames.Broadcast, vrMAC, arpReq)), "inner_not_ipv4"},
		{"vxlan inner dst MAC not the vrouter's", fab, vxlanIn(t, 2, frames.VXLANFlagI, 5080, eth(b.mac, vrMAC, inner.ip4(64))), "l2_not_for_us"},
		{"vxlan inner ipv4 truncated", fab, vxlanIn(t, 2, frames.VXLANFlagI, 5080, innerEth[:frames.EthernetLen+12]), "ip_truncated"},
		{"vxlan inner bad checksum", fab, breakIP(goodVX, vxInnerIP, false, func(h []byte) { h[frames.IPv4ChecksumOff]++ }), "ip_checksum"},
		{"vxlan inner ttl 1", fab, vxlanIn(t, 2, frames.VXLANFlagI, 5080, eth(vrMAC, vrMAC, inner.ip4(1))), "ttl_exceeded"},
		{"vxlan inner no route", fab, vxlanIn(t, 2, frames.VXLANFlagI, 5080, eth(vrMAC, vrMAC, pkt{src: inner.src, dst: ip("172.16.0.1"), sport: 1, dport: 1}.ip4(64))), "no_route"},
		{"mpls truncated", fab, shorten(goodMPLS, frames.MPLSLen+19), "mpls_truncated"},
		{"mpls udp length mismatch", fab, func() []byte {
			f := frames.Clone(goodMPLS)
			binary.BigEndian.PutUint16(f[outerUDP+4:], binary.BigEndian.Uint16(f[outerUDP+4:])+1)
			return f
		}(), "mpls_truncated"},
		{"mpls without bottom of stack", fab, mplsIn(t, 3, frames.MPLS{Label: 580, TTL: 64}, frames.MPLS{Label: 580, BoS: true, TTL: 64}.Build(inner.ip4(64))), "mpls_stack"},
		{"unknown label", fab, mplsIn(t, 3, frames.MPLS{Label: 581, BoS: true, TTL: 64}, inner.ip4(64)), "mpls_label_unknown"},
		{"mpls inner ipv6, payload length beyond", fab, mplsIn(t, 3, frames.MPLS{Label: 580, BoS: true, TTL: 64}, append([]byte{0x60, 0, 0, 0, 0, 1}, make([]byte, 34)...)), "ip6_payload_length"},
		{"mpls inner neither", fab, mplsIn(t, 3, frames.MPLS{Label: 580, BoS: true, TTL: 64}, append([]byte{0x50}, make([]byte, 39)...)), "inner_not_ipv4"},
		{"mpls inner ihl < 5", fab, breakIP(goodMPLS, mplsInnerIP, true, func(h []byte) { h[0] = 0x43 }), "ip_ihl"},
		{"mpls inner total length beyond the packet", fab, breakIP(goodMPLS, mplsInnerIP, true, func(h []byte) {
			binary.BigEndian.PutUint16(h[frames.IPv4TotalLenOff:], 1000)
		}), "ip_total_length"},
		{"gre truncated", fab, greTo(frames.IPv4DF, []byte{0, 0, 0x88}), "gre_truncated"},
		{"gre empty", fab, greTo(frames.IPv4DF, nil), "gre_truncated"},
		{"gre checksum present", fab, withOption(frames.GREFlagChecksum), "gre_unsupported"},
		{"gre routing present", fab, withOption(frames.GREFlagRouting), "gre_unsupported"},
		{"gre key present", fab, withOption(frames.GREFlagKey), "gre_unsupported"},
		{"gre sequence number present", fab, withOption(frames.GREFlagSeq), "gre_unsupported"},
		{"gre strict source route", fab, greIn(t, 4, frames.GRE{Flags: 0x0800, Protocol: frames.GREProtoMPLS}, label, inner.ip4(64)), "gre_unsupported"},
		{"gre recursion control", fab, greIn(t, 4, frames.GRE{Flags: 0x0400, Protocol: frames.GREProtoMPLS}, label, inner.ip4(64)), "gre_unsupported"},
		{"gre version 1 (pptp)", fab, greIn(t, 4, frames.GRE{Flags: 1, Protocol: frames.GREProtoMPLS}, label, inner.ip4(64)), "gre_unsupported"},
		{"gre version 7", fab, greIn(t, 4, frames.GRE{Flags: 7, Protocol: frames.GREProtoMPLS}, label, inner.ip4(64)), "gre_unsupported"},
		{"mplsogre without a label", fab, cutGRE(0), "mpls_truncated"},
		{"mplsogre truncated", fab, cutGRE(frames.MPLSLen + 19), "mpls_truncated"},
		{"mplsogre without bottom of stack", fab, greIn(t, 4, plainGRE, frames.MPLS{Label: 580, TTL: 64}, label.Build(inner.ip4(64))), "mpls_stack"},
		{"mplsogre unknown label", fab, greIn(t, 4, plainGRE, frames.MPLS{Label: 581, BoS: true, TTL: 64}, inner.ip4(64)), "mpls_label_unknown"},
		{"mplsogre inner ipv6, payload length beyond", fab, greIn(t, 4, plainGRE, label, append([]byte{0x60, 0, 0, 0, 0, 1}, make([]byte, 34)...)), "ip6_payload_length"},
		{"mplsogre inner neither", fab, greIn(t, 4, plainGRE, label, append([]byte{0x50}, make([]byte, 39)...)), "inner_not_ipv4"},
		{"mplsogre inner bad checksum", fab, breakIP(goodGRE, greInnerIP, false, func(h []byte) { h[frames.IPv4ChecksumOff]++ }), "ip_checksum"},
		{"mplsogre inner total length beyond the packet", fab, breakIP(goodGRE, greInnerIP, true, func(h []byte) {
			binary.BigEndian.PutUint16(h[frames.IPv4TotalLenOff:], 1000)
		}), "ip_total_length"},
		{"mplsogre inner ttl 1", fab, greIn(t, 4, plainGRE, label, inner.ip4(1)), "ttl_exceeded"},
		{"mplsogre outer bad checksum", fab, breakIP(goodGRE, ipOff, false, func(h []byte) { h[frames.IPv4TTLOff]-- }), "ip_checksum"},
		// Not the vRouter's: the node's own GRE, and fragments (never
		// reassembled here), go to the host stack.
		{"gre not carrying mpls, no host port", fab, greIn(t, 4, frames.GRE{Protocol: frames.EtherTypeIPv4}, label, inner.ip4(64)), "no_host_port"},
		{"mplsogre fragment, no host port", fab, greTo(frames.IPv4MF, plainGRE.Build(label.Build(inner.ip4(64)))), "no_host_port"},
		{"fabric ipv4 not for an overlay, no host port", fab, eth(fabricMAC, m2, pkt{proto: frames.ProtoTCP, src: r2, dst: underlay, sport: 1, dport: 22}.ip4(64)), "no_host_port"},
		{"fabric arp for someone else, no host port", fab, arpFrame(frames.Broadcast, m2, frames.ARP{Op: frames.ARPRequest, SenderMAC: m2, SenderIP: r2, TargetIP: ip("192.168.100.99")}), "arp_ignored"},
		{"fabric arp malformed", fab, func() []byte {
			f := arpFrame(frames.Broadcast, m2, frames.ARP{Op: frames.ARPRequest, SenderMAC: m2, SenderIP: r2, TargetIP: underlay})
			f[ipOff+5] = 16
			return f
		}(), "arp_malformed"},
		{"fabric ipv6 not for the vRouter, no host port", fab, frames.Ethernet{Dst: fabricMAC, Src: m2, Type: frames.EtherTypeIPv6}.Build(
			frames.IPv6{NextHeader: 59, HopLimit: 64, Src: ip("fd00:100::2"), Dst: ip("fd00:100::9")}.Build(nil)), "ipv6_unsupported"},
		{"fabric ipv6 version 0", fab, frames.Ethernet{Dst: fabricMAC, Src: m2, Type: frames.EtherTypeIPv6}.Build(make([]byte, 40)), "ip_version"},
		{"fabric lldp, no host port", fab, frames.Ethernet{Dst: frames.MustMAC("01:80:c2:00:00:0e"), Src: m2, Type: frames.EtherTypeLLDP}.Build(make([]byte, 46)), "ethertype_unsupported"},
		{"fabric bad ipv4 checksum", fab, breakIP(goodVX, ipOff, false, func(h []byte) { h[frames.IPv4TTLOff]-- }), "ip_checksum"},
	}
	reasons := map[string]bool{}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			e := e.with(t)
			e.expectDrop(r.reason, 1, r.port, r.frame)
		})
		reasons[r.reason] = true
	}
	if len(rows) < 20 || len(reasons) < 20 {
		t.Errorf("%d rows, %d reasons: want at least 20 of each", len(rows), len(reasons))
	}

	// The frames all of the above were made from are fine.
	e.inject(a.id, good)
	e.expectFrame(b.id, b.to(ok.ip4(63)))
	// GRE reserved bits 6-12 are ignored on receipt (RFC 2784 2.3).
	reserved := greIn(t, 4, frames.GRE{Flags: 0x03f8, Protocol: frames.GREProtoMPLS}, label, inner.ip4(64))
	e.inject(fab, goodVX, goodMPLS, goodGRE, reserved)
	for _, f := range e.expectFrames(b.id, 4, timeout) {
		if d := frames.Diff(b.to(inner.ip4(63)), f); d != "" {
			t.Error(d)
		}
	}
}

// Every drop reason has a name, and the names are the documented API.
func TestDropReasonNames(t *testing.T) {
	names := fastpath.DropReasons()
	seen := map[string]bool{}
	for i, n := range names {
		if n == "" || seen[n] {
			t.Errorf("reason %d: name %q empty or duplicate", i, n)
		}
		seen[n] = true
	}
	for _, n := range []string{"eth_truncated", "ip_checksum", "spoof_mac", "spoof_ip", "ttl_exceeded", "no_route",
		"too_big", "neigh_unresolved", "vni_unknown", "mpls_label_unknown", "vxlan_flags", "mpls_stack",
		"inner_not_ipv4", "no_host_port", "ipv6_unsupported", "arp_ignored", "l2_not_for_us",
		"gre_truncated", "gre_unsupported", "ip6_truncated", "ip6_payload_length", "ip6_link_scope",
		"nd_malformed", "nd_ignored", "udp_checksum", "udp6_zero_checksum", "no_tailroom"} {
		if !seen[n] {
			t.Errorf("no drop reason %q", n)
		}
	}
	if d := dp.Drops(); len(d) != len(names) {
		t.Errorf("Drops has %d reasons, DropReasons %d", len(d), len(names))
	}
}
