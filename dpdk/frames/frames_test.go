package frames

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
)

var (
	macA = MustMAC("02:00:00:00:00:0a")
	macB = MustMAC("02:00:00:00:00:0b")
	ipA  = netip.MustParseAddr("10.0.0.1")
	ipB  = netip.MustParseAddr("10.0.0.2")
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The IPv4 header of Wikipedia's "IPv4 header checksum" example.
const wikiHeader = "4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7"

func TestIPv4Checksum(t *testing.T) {
	h := unhex(t, wikiHeader)
	if got := IPv4Checksum(h); got != 0xb861 {
		t.Errorf("IPv4Checksum = %#04x, want 0xb861", got)
	}
	if !IPv4ChecksumValid(h) {
		t.Error("valid header reported invalid")
	}
	h[IPv4TTLOff]--
	if IPv4ChecksumValid(h) {
		t.Error("header with a changed TTL reported valid")
	}
	FixIPv4Checksum(h)
	if !IPv4ChecksumValid(h) || binary.BigEndian.Uint16(h[IPv4ChecksumOff:]) != 0xb961 {
		t.Errorf("FixIPv4Checksum: %x", h)
	}
	// Odd length: the last byte is padded with zero.
	if got := Checksum([]byte{0x01}); got != 0xfeff {
		t.Errorf("Checksum(01) = %#04x, want 0xfeff", got)
	}
}

func TestIPv4Build(t *testing.T) {
	payload := make([]byte, 0x73-20)
	got := IPv4{Flags: IPv4DF, TTL: 64, Protocol: ProtoUDP,
		Src: netip.MustParseAddr("192.168.0.1"), Dst: netip.MustParseAddr("192.168.0.199")}.Build(payload)
	if want := unhex(t, wikiHeader); !bytes.Equal(got[:20], want) {
		t.Errorf("header %x, want %x", got[:20], want)
	}
	// Options: IHL 6, checksum over 24 bytes.
	o := IPv4{TTL: 1, Protocol: ProtoUDP, Src: ipA, Dst: ipB, Options: []byte{1, 1, 1, 0}}.Build(nil)
	if len(o) != 24 || o[0] != 0x46 || binary.BigEndian.Uint16(o[2:]) != 24 || !IPv4ChecksumValid(o) {
		t.Errorf("with options: %x", o)
	}
}

func TestL4Checksums(t *testing.T) {
	u := UDP{SrcPort: 1000, DstPort: 2000}.BuildChecksum(ipA, ipB, []byte("hello"))
	if want := unhex(t, "03e8 07d0 000d 9c47 68656c6c6f"); !bytes.Equal(u, want) {
		t.Errorf("UDP %x, want %x", u, want)
	}
	if u0 := (UDP{SrcPort: 1000, DstPort: 2000}).Build([]byte("hello")); binary.BigEndian.Uint16(u0[6:]) != 0 {
		t.Errorf("UDP without checksum: %x", u0)
	}
	tc := TCP{SrcPort: 40000, DstPort: 80, Seq: 1, Flags: TCPSyn, Window: 65535}.Build(ipA, ipB, nil)
	if want := unhex(t, "9c40 0050 00000001 00000000 5002 ffff ff4e 0000"); !bytes.Equal(tc, want) {
		t.Errorf("TCP %x, want %x", tc, want)
	}
	ic := ICMPEcho{Type: ICMPEchoRequest, ID: 0x1234, Seq: 1}.Build([]byte("abcdefghijklmnopqrstuvwabcdefghi"))
	if binary.BigEndian.Uint16(ic[2:]) != 0x3b27 || Checksum(ic) != 0 {
		t.Errorf("ICMP %x: checksum want 0x3b27", ic)
	}
}

func TestEncapHeaders(t *testing.T) {
	if got := (VXLAN{Flags: VXLANFlagI, VNI: 5001}).Build(nil); !bytes.Equal(got, unhex(t, "08000000 00138900")) {
		t.Errorf("VXLAN %x", got)
	}
	m := MPLS{Label: 100, BoS: true, TTL: 64}
	if got := m.Build(nil); !bytes.Equal(got, unhex(t, "00064140")) {
		t.Errorf("MPLS %x", got)
	}
	if w := (MPLS{Label: 0xfffff, TC: 7, TTL: 1}).Word(); w != 0xfffffe01 {
		t.Errorf("MPLS word %#x", w)
	}
	a := ARP{Op: ARPRequest, SenderMAC: macA, SenderIP: ipA, TargetIP: ipB}.Build()
	want := unhex(t, "0001 0800 06 04 0001 02000000000a 0a000001 000000000000 0a000002")
	if !bytes.Equal(a, want) {
		t.Errorf("ARP %x, want %x", a, want)
	}
	e := Ethernet{Dst: Broadcast, Src: macA, Type: EtherTypeARP}.Build(a)
	if len(e) != 42 || !bytes.Equal(e[:14], unhex(t, "ffffffffffff 02000000000a 0806")) {
		t.Errorf("Ethernet %x", e[:14])
	}
	if p := Pad(e, MinFrame, 0xee); len(p) != 60 || p[59] != 0xee || len(e) != 42 {
		t.Errorf("Pad: %d bytes", len(p))
	}
}

func vxlanFrame() []byte {
	inner := Ethernet{Dst: macB, Src: macA, Type: EtherTypeIPv4}.Build(
		IPv4{TTL: 63, Protocol: ProtoICMP, Src: ipA, Dst: ipB}.Build(
			ICMPEcho{Type: ICMPEchoRequest, ID: 7, Seq: 9}.Build([]byte("ping"))))
	return Ethernet{Dst: macB, Src: macA, Type: EtherTypeIPv4}.Build(
		IPv4{Flags: IPv4DF, TTL: 64, Protocol: ProtoUDP, Src: netip.MustParseAddr("192.168.1.1"),
			Dst: netip.MustParseAddr("192.168.1.2")}.Build(
			UDP{SrcPort: 50000, DstPort: PortVXLAN}.Build(
				VXLAN{Flags: VXLANFlagI, VNI: 77}.Build(inner))))
}

func TestParse(t *testing.T) {
	p, err := Parse(vxlanFrame())
	if err != nil {
		t.Fatal(err)
	}
	if p.IPv4 == nil || p.IPv4.Version != 4 || p.IPv4.IHL != 5 || !p.IPv4.ChecksumOK ||
		p.IPv4.Flags != IPv4DF || p.IPv4.TotalLen != 20+8+8+14+20+8+4 {
		t.Errorf("outer IPv4 %+v", p.IPv4)
	}
	if p.UDP == nil || p.UDP.DstPort != PortVXLAN || p.UDP.Length != 8+8+14+20+8+4 {
		t.Errorf("UDP %+v", p.UDP)
	}
	if p.VXLAN == nil || p.VXLAN.VNI != 77 || p.VXLAN.Flags != VXLANFlagI {
		t.Errorf("VXLAN %+v", p.VXLAN)
	}
	in := p.Inner
	if in == nil || in.Eth == nil || in.IPv4 == nil || in.ICMP == nil || !in.ICMP.ChecksumOK ||
		in.ICMP.ID != 7 || in.ICMP.Seq != 9 || string(in.Payload) != "ping" || in.IPv4.TTL != 63 {
		t.Fatalf("inner %v", in)
	}

	mpls := Ethernet{Dst: macB, Src: macA, Type: EtherTypeIPv4}.Build(
		IPv4{TTL: 64, Protocol: ProtoUDP, Src: ipA, Dst: ipB}.Build(
			UDP{SrcPort: 50000, DstPort: PortMPLSoUDP}.Build(
				MPLS{Label: 1234, BoS: true, TTL: 64}.Build(
					IPv4{TTL: 9, Protocol: ProtoTCP, Src: ipB, Dst: ipA}.Build(
						TCP{SrcPort: 1, DstPort: 2, Flags: TCPAck}.Build(ipB, ipA, []byte("x")))))))
	p, err = Parse(mpls)
	if err != nil {
		t.Fatal(err)
	}
	if p.MPLS == nil || p.MPLS.Label != 1234 || !p.MPLS.BoS || p.Inner == nil || p.Inner.Eth != nil ||
		p.Inner.IPv4 == nil || p.Inner.TCP == nil || p.Inner.TCP.Flags != TCPAck || string(p.Inner.Payload) != "x" {
		t.Errorf("MPLSoUDP: %v", p)
	}

	mplsogre := Ethernet{Dst: macB, Src: macA, Type: EtherTypeIPv4}.Build(
		IPv4{TTL: 64, Protocol: ProtoGRE, Src: ipA, Dst: ipB}.Build(
			GRE{Protocol: GREProtoMPLS}.Build(
				MPLS{Label: 4321, BoS: true, TTL: 64}.Build(
					IPv4{TTL: 9, Protocol: ProtoTCP, Src: ipB, Dst: ipA}.Build(
						TCP{SrcPort: 1, DstPort: 2, Flags: TCPAck}.Build(ipB, ipA, []byte("y")))))))
	if got := mplsogre[EthernetLen+IPv4Len : EthernetLen+IPv4Len+GRELen+MPLSLen]; !bytes.Equal(got,
		[]byte{0, 0, 0x88, 0x47, 0x01, 0x0e, 0x11, 0x40}) {
		t.Errorf("GRE + MPLS bytes % x", got)
	}
	p, err = Parse(mplsogre)
	if err != nil {
		t.Fatal(err)
	}
	if p.GRE == nil || p.GRE.Flags != 0 || p.GRE.Protocol != GREProtoMPLS || p.MPLS == nil ||
		p.MPLS.Label != 4321 || !p.MPLS.BoS || p.Inner == nil || p.Inner.Eth != nil ||
		p.Inner.TCP == nil || string(p.Inner.Payload) != "y" {
		t.Errorf("MPLSoGRE: %v", p)
	}
	// A GRE key is not decoded further: the 4 bytes after the header are
	// the key, not a label.
	keyed := Ethernet{Dst: macB, Src: macA, Type: EtherTypeIPv4}.Build(
		IPv4{TTL: 64, Protocol: ProtoGRE, Src: ipA, Dst: ipB}.Build(
			GRE{Flags: GREFlagKey, Protocol: GREProtoMPLS}.Build([]byte{1, 2, 3, 4})))
	p, err = Parse(keyed)
	if err != nil || p.GRE == nil || p.GRE.Flags != GREFlagKey || p.MPLS != nil || !bytes.Equal(p.Payload, []byte{1, 2, 3, 4}) {
		t.Errorf("keyed GRE: %v %v", p, err)
	}
	if _, err := Parse(Ethernet{Dst: macB, Src: macA, Type: EtherTypeIPv4}.Build(
		IPv4{TTL: 64, Protocol: ProtoGRE, Src: ipA, Dst: ipB}.Build([]byte{0, 0}))); err == nil {
		t.Error("2 bytes of GRE parsed without error")
	}

	// Ethernet padding ends up in Trailer, not in the payload.
	short := Ethernet{Dst: macB, Src: macA, Type: EtherTypeIPv4}.Build(
		IPv4{TTL: 64, Protocol: ProtoUDP, Src: ipA, Dst: ipB}.Build(UDP{SrcPort: 1, DstPort: 2}.Build(nil)))
	p, err = Parse(Pad(short, MinFrame, 0))
	if err != nil || len(p.Payload) != 0 || len(p.Trailer) != 18 {
		t.Errorf("padded: err %v payload %d trailer %d", err, len(p.Payload), len(p.Trailer))
	}

	arp := Ethernet{Dst: Broadcast, Src: macA, Type: EtherTypeARP}.Build(
		ARP{Op: ARPReply, SenderMAC: macA, SenderIP: ipA, TargetMAC: macB, TargetIP: ipB}.Build())
	p, err = Parse(arp)
	if err != nil || p.ARP == nil || p.ARP.Op != ARPReply || p.ARP.SenderIP != ipA ||
		p.ARP.TargetMAC.String() != macB.String() {
		t.Errorf("ARP: %v %v", p, err)
	}
}

func TestParseMalformed(t *testing.T) {
	good := Ethernet{Dst: macB, Src: macA, Type: EtherTypeIPv4}.Build(
		IPv4{TTL: 64, Protocol: ProtoUDP, Src: ipA, Dst: ipB}.Build(UDP{SrcPort: 1, DstPort: 2}.Build([]byte("data"))))
	for name, tc := range map[string]struct {
		frame []byte
		want  string
	}{
		"short ethernet": {good[:10], "Ethernet truncated"},
		"short ipv4":     {good[:30], "IPv4 truncated"},
		"version 6":      {func() []byte { b := Clone(good); b[14] = 0x65; return b }(), "version 6"},
		"ihl 4":          {func() []byte { b := Clone(good); b[14] = 0x44; return b }(), "IHL 4"},
		"total length":   {func() []byte { b := Clone(good); b[17] = 200; return b }(), "total length 200"},
		"short udp":      {func() []byte { b := Clone(good[:38]); b[17] = 24; FixIPv4Checksum(b[14:]); return b }(), "UDP truncated"},
		"short arp":      {Ethernet{Type: EtherTypeARP}.Build(make([]byte, 27)), "ARP truncated"},
	} {
		_, err := Parse(tc.frame)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}
	b := Clone(good)
	b[14+IPv4ChecksumOff] ^= 1
	if p, err := Parse(b); err != nil || p.IPv4.ChecksumOK {
		t.Errorf("bad checksum: err %v, ChecksumOK %v", err, p.IPv4.ChecksumOK)
	}
}

func TestDiff(t *testing.T) {
	a := vxlanFrame()
	if d := Diff(a, Clone(a)); d != "" {
		t.Errorf("equal frames: %s", d)
	}
	b := Clone(a)
	b[14+8]-- // outer TTL
	d := Diff(a, b)
	for _, s := range []string{"ip.ttl:", "want 64, got 63", "ip.checksum:", "(WRONG)", "first difference at byte 22"} {
		if !strings.Contains(d, s) {
			t.Errorf("diff lacks %q:\n%s", s, d)
		}
	}
	if strings.Contains(d, "inner.") {
		t.Errorf("diff reports inner fields that are equal:\n%s", d)
	}
	// An inner change is named as such.
	c := Clone(a)
	c[len(c)-20-12+8] = 1 // inner TTL: 20+8+4 bytes of inner IPv4/ICMP, TTL at offset 8
	if d := Diff(a, c); !strings.Contains(d, "inner.ip.ttl:") || !strings.Contains(d, "want 63, got 1") {
		t.Errorf("inner diff:\n%s", d)
	}
	// Different lengths: the missing fields show as absent.
	if d := Diff(a, a[:14]); !strings.Contains(d, "ip.ttl:") || !strings.Contains(d, "(absent)") ||
		!strings.Contains(d, "then one ends") {
		t.Errorf("truncated diff:\n%s", d)
	}
	if s := Summary(a); !strings.Contains(s, "VXLAN vni 77") || !strings.Contains(s, "| ") {
		t.Errorf("summary %q", s)
	}
}
