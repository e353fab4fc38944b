package frames

import (
	"net/netip"
	"strings"
	"testing"
)

// IPv6 decodes as the outer header of the tunnels (VXLAN with its UDP
// checksum, MPLSoGRE carrying IPv6 under the label) and as ICMPv6 with the
// checksum over the pseudo-header.
func TestParseIPv6(t *testing.T) {
	src, dst := netip.MustParseAddr("fd00:100::2"), netip.MustParseAddr("fd00:100::1")
	m1, m2 := MustMAC("02:00:00:00:00:01"), MustMAC("02:00:00:00:00:02")
	in4 := IPv4{TTL: 63, Protocol: ProtoUDP, Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2")}.Build(
		UDP{SrcPort: 1, DstPort: 2}.Build([]byte("x")))
	vx := Ethernet{Dst: m1, Src: m2, Type: EtherTypeIPv6}.Build(IPv6{TrafficClass: 0xb8, FlowLabel: 0x12345, NextHeader: ProtoUDP,
		HopLimit: 64, Src: src, Dst: dst}.Build(UDP{SrcPort: 50000, DstPort: PortVXLAN}.BuildChecksum(src, dst,
		VXLAN{Flags: VXLANFlagI, VNI: 77}.Build(Ethernet{Dst: m1, Src: m2, Type: EtherTypeIPv4}.Build(in4)))))
	p, err := Parse(vx)
	if err != nil {
		t.Fatal(err)
	}
	if h := p.IPv6; h == nil || h.Version != 6 || h.TrafficClass != 0xb8 || h.FlowLabel != 0x12345 || h.HopLimit != 64 ||
		h.Src != src || h.Dst != dst || int(h.PayloadLen) != len(vx)-EthernetLen-IPv6Len {
		t.Fatalf("outer IPv6 %+v", p.IPv6)
	}
	if p.UDP == nil || p.UDP.Checksum != L4Checksum(src, dst, ProtoUDP, vx[EthernetLen+IPv6Len:]) || p.VXLAN == nil ||
		p.VXLAN.VNI != 77 || p.Inner == nil || p.Inner.IPv4 == nil || p.Inner.UDP == nil {
		t.Fatalf("decoded %s", p)
	}
	if s := p.String(); !strings.Contains(s, "fd00:100::2>fd00:100::1 hlim 64") || !strings.Contains(s, "VXLAN vni 77 | ") {
		t.Errorf("summary %q", s)
	}

	in6 := IPv6{NextHeader: 59, HopLimit: 9, Src: netip.MustParseAddr("fd00:1::1"), Dst: netip.MustParseAddr("fd00:1::2")}.Build(nil)
	gre := Ethernet{Dst: m1, Src: m2, Type: EtherTypeIPv6}.Build(IPv6{NextHeader: ProtoGRE, HopLimit: 64, Src: src, Dst: dst}.Build(
		GRE{Protocol: GREProtoMPLS}.Build(MPLS{Label: 300, BoS: true, TTL: 64}.Build(in6))))
	p, err = Parse(gre)
	if err != nil {
		t.Fatal(err)
	}
	if p.GRE == nil || p.MPLS == nil || p.MPLS.Label != 300 || p.Inner == nil || p.Inner.IPv6 == nil || p.Inner.IPv6.HopLimit != 9 {
		t.Fatalf("MPLSoGRE over IPv6: %s", p)
	}

	echo := Ethernet{Dst: m1, Src: m2, Type: EtherTypeIPv6}.Build(IPv6{NextHeader: ProtoICMP6, HopLimit: 64, Src: src, Dst: dst}.Build(
		ICMP6{Type: ICMP6EchoRequest, Data: 1<<16 | 2}.Build(src, dst)))
	if p, err = Parse(echo); err != nil || p.ICMP == nil || !p.ICMP.ChecksumOK || p.ICMP.Type != ICMP6EchoRequest {
		t.Fatalf("ICMPv6 echo: %v %s", err, p)
	}
	echo[len(echo)-1] ^= 1
	if p, _ = Parse(echo); p.ICMP == nil || p.ICMP.ChecksumOK {
		t.Errorf("ICMPv6 with a wrong checksum decodes as correct: %s", p)
	}
	if _, err := Parse(vx[:EthernetLen+IPv6Len-1]); err == nil || !strings.Contains(err.Error(), "IPv6 truncated") {
		t.Errorf("truncated IPv6: %v", err)
	}
	long := append([]byte(nil), vx...)
	long[EthernetLen+4] = 0xff
	if _, err := Parse(long); err == nil || !strings.Contains(err.Error(), "payload length") {
		t.Errorf("IPv6 payload length beyond the frame: %v", err)
	}
}
