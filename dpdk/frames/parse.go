package frames

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// ARPHeader is a decoded ARP message.
type ARPHeader struct {
	ARP
	HType, PType uint16
	HLen, PLen   uint8
}

// IPv4Header is a decoded IPv4 header: the builder's fields and the ones
// Build computes.
type IPv4Header struct {
	IPv4
	Version    uint8
	IHL        uint8 // in 32-bit words
	TotalLen   uint16
	Checksum   uint16
	ChecksumOK bool
}

// UDPHeader is a decoded UDP header.
type UDPHeader struct {
	UDP
	Length, Checksum uint16
}

// TCPHeader is a decoded TCP header.
type TCPHeader struct {
	TCP
	DataOff          uint8 // in 32-bit words
	Checksum, Urgent uint16
}

// ICMPHeader is a decoded ICMP header (ID and Seq are the second word, as in
// echo messages).
type ICMPHeader struct {
	ICMPEcho
	Checksum   uint16
	ChecksumOK bool // over the whole ICMP message
}

// VXLANHeader is a decoded VXLAN header.
type VXLANHeader struct {
	VXLAN
	Reserved1 uint32 // 24 bits after the flags
	Reserved2 uint8  // the last byte
}

// Packet is a decoded frame. Headers that are not present are nil. For
// VXLAN, Inner is the inner Ethernet frame; for MPLSoUDP and MPLSoGRE it is
// the inner IPv4 packet (Inner.Eth nil).
type Packet struct {
	Eth   *Ethernet
	ARP   *ARPHeader
	IPv4  *IPv4Header
	IPv6  *IPv6Header
	UDP   *UDPHeader
	TCP   *TCPHeader
	ICMP  *ICMPHeader
	VXLAN *VXLANHeader
	GRE   *GRE
	MPLS  *MPLS
	Inner *Packet
	// Payload is what follows the last decoded header, up to the end of
	// the IPv4 packet (or of the frame when there is no IPv4).
	Payload []byte
	// Trailer is what follows the IPv4 packet or ARP message in the frame
	// (Ethernet padding).
	Trailer []byte
	// Err says where and why decoding stopped early; nil for a frame that
	// decodes completely.
	Err error
}

// Parse decodes an Ethernet frame as far as it can. The error, if any, is
// the first decoding problem at any depth (also in the Packet's Err fields);
// the Packet holds everything decoded before it.
func Parse(frame []byte) (*Packet, error) {
	p := &Packet{}
	p.parseEth(frame)
	return p, p.firstErr()
}

// ParseIPv4 decodes a bare IPv4 packet (no Ethernet), like the payload of
// MPLSoUDP.
func ParseIPv4(pkt []byte) (*Packet, error) {
	p := &Packet{}
	p.parseIPv4(pkt)
	return p, p.firstErr()
}

func (p *Packet) firstErr() error {
	for q := p; q != nil; q = q.Inner {
		if q.Err != nil {
			return q.Err
		}
	}
	return nil
}

func (p *Packet) fail(format string, args ...any) {
	if p.Err == nil {
		p.Err = fmt.Errorf(format, args...)
	}
}

func mac(b []byte) net.HardwareAddr { return append(net.HardwareAddr(nil), b[:6]...) }

func ip4(b []byte) netip.Addr { return netip.AddrFrom4([4]byte(b[:4])) }

func (p *Packet) parseEth(b []byte) {
	if len(b) < EthernetLen {
		p.Payload = b
		p.fail("Ethernet truncated: %d bytes", len(b))
		return
	}
	p.Eth = &Ethernet{Dst: mac(b[0:]), Src: mac(b[6:]), Type: binary.BigEndian.Uint16(b[12:])}
	rest := b[EthernetLen:]
	switch p.Eth.Type {
	case EtherTypeARP:
		p.parseARP(rest)
	case EtherTypeIPv4:
		p.parseIPv4(rest)
	case EtherTypeIPv6:
		p.parseIPv6(rest)
	default:
		p.Payload = rest
	}
}

func (p *Packet) parseARP(b []byte) {
	if len(b) < ARPLen {
		p.Payload = b
		p.fail("ARP truncated: %d bytes", len(b))
		return
	}
	a := &ARPHeader{
		HType: binary.BigEndian.Uint16(b[0:]),
		PType: binary.BigEndian.Uint16(b[2:]),
		HLen:  b[4],
		PLen:  b[5],
	}
	a.Op = binary.BigEndian.Uint16(b[6:])
	a.SenderMAC = mac(b[8:])
	a.SenderIP = ip4(b[14:])
	a.TargetMAC = mac(b[18:])
	a.TargetIP = ip4(b[24:])
	p.ARP = a
	if a.HType != 1 || a.PType != EtherTypeIPv4 || a.HLen != 6 || a.PLen != 4 {
		p.fail("ARP for hardware %d/%d protocol %#04x/%d, not Ethernet/IPv4",
			a.HType, a.HLen, a.PType, a.PLen)
	}
	if len(b) > ARPLen {
		p.Trailer = b[ARPLen:]
	}
}

func (p *Packet) parseIPv4(b []byte) {
	if len(b) < IPv4Len {
		p.Payload = b
		p.fail("IPv4 truncated: %d bytes", len(b))
		return
	}
	h := &IPv4Header{
		Version:  b[0] >> 4,
		IHL:      b[0] & 0xf,
		TotalLen: binary.BigEndian.Uint16(b[2:]),
		Checksum: binary.BigEndian.Uint16(b[10:]),
	}
	h.TOS = b[1]
	h.ID = binary.BigEndian.Uint16(b[4:])
	ff := binary.BigEndian.Uint16(b[6:])
	h.Flags = uint8(ff >> 13)
	h.FragOff = ff & 0x1fff
	h.TTL = b[8]
	h.Protocol = b[9]
	h.Src = ip4(b[12:])
	h.Dst = ip4(b[16:])
	p.IPv4 = h
	hl := int(h.IHL) * 4
	switch {
	case h.Version != 4:
		p.fail("IPv4 header with version %d", h.Version)
	case hl < IPv4Len:
		p.fail("IPv4 IHL %d < 5", h.IHL)
	case hl > len(b):
		p.fail("IPv4 IHL %d: header beyond the %d bytes there are", h.IHL, len(b))
	}
	if p.Err != nil {
		p.Payload = b[IPv4Len:]
		return
	}
	h.Options = b[IPv4Len:hl]
	h.ChecksumOK = Checksum(b[:hl]) == 0
	end := int(h.TotalLen)
	switch {
	case end > len(b):
		p.fail("IPv4 total length %d beyond the %d bytes there are", end, len(b))
		end = len(b)
	case end < hl:
		p.fail("IPv4 total length %d < header length %d", end, hl)
		end = hl
	}
	if end < len(b) {
		p.Trailer = b[end:]
	}
	l4 := b[hl:end]
	if h.FragOff != 0 || h.Flags&IPv4MF != 0 {
		p.Payload = l4 // a fragment: no L4 header to decode
		return
	}
	switch h.Protocol {
	case ProtoUDP:
		p.parseUDP(l4)
	case ProtoTCP:
		p.parseTCP(l4)
	case ProtoICMP:
		p.parseICMP(l4)
	case ProtoGRE:
		p.parseGRE(l4)
	default:
		p.Payload = l4
	}
}

// parseGRE decodes a GRE header; only a plain one (no flags, version 0)
// carrying MPLS is decoded further.
func (p *Packet) parseGRE(b []byte) {
	if len(b) < GRELen {
		p.Payload = b
		p.fail("GRE truncated: %d bytes", len(b))
		return
	}
	p.GRE = &GRE{Flags: binary.BigEndian.Uint16(b[0:]), Protocol: binary.BigEndian.Uint16(b[2:])}
	data := b[GRELen:]
	if p.GRE.Flags != 0 || p.GRE.Protocol != GREProtoMPLS {
		p.Payload = data
		return
	}
	p.parseMPLS(data)
}

// parseMPLS decodes one label stack entry and, at the bottom of the stack,
// the IPv4 or IPv6 packet under it (its first nibble says which).
func (p *Packet) parseMPLS(data []byte) {
	if len(data) < MPLSLen {
		p.Payload = data
		p.fail("MPLS truncated: %d bytes", len(data))
		return
	}
	w := binary.BigEndian.Uint32(data)
	p.MPLS = &MPLS{Label: w >> 12, TC: uint8(w>>9) & 7, BoS: w&0x100 != 0, TTL: uint8(w)}
	if !p.MPLS.BoS {
		p.Payload = data[MPLSLen:]
		return
	}
	p.Inner = &Packet{}
	if in := data[MPLSLen:]; len(in) > 0 && in[0]>>4 == 6 {
		p.Inner.parseIPv6(in)
		return
	}
	p.Inner.parseIPv4(data[MPLSLen:])
}

func (p *Packet) parseUDP(b []byte) {
	if len(b) < UDPLen {
		p.Payload = b
		p.fail("UDP truncated: %d bytes", len(b))
		return
	}
	u := &UDPHeader{Length: binary.BigEndian.Uint16(b[4:]), Checksum: binary.BigEndian.Uint16(b[6:])}
	u.SrcPort = binary.BigEndian.Uint16(b[0:])
	u.DstPort = binary.BigEndian.Uint16(b[2:])
	p.UDP = u
	data := b[UDPLen:]
	switch {
	case u.DstPort == PortVXLAN && len(data) >= VXLANLen:
		v := &VXLANHeader{
			Reserved1: binary.BigEndian.Uint32(data[0:]) & 0xffffff,
			Reserved2: data[7],
		}
		v.Flags = data[0]
		v.VNI = binary.BigEndian.Uint32(data[4:]) >> 8
		p.VXLAN = v
		p.Inner = &Packet{}
		p.Inner.parseEth(data[VXLANLen:])
	case u.DstPort == PortMPLSoUDP && len(data) >= MPLSLen:
		p.parseMPLS(data)
	default:
		p.Payload = data
	}
}

func (p *Packet) parseTCP(b []byte) {
	if len(b) < TCPLen {
		p.Payload = b
		p.fail("TCP truncated: %d bytes", len(b))
		return
	}
	t := &TCPHeader{
		DataOff:  b[12] >> 4,
		Checksum: binary.BigEndian.Uint16(b[16:]),
		Urgent:   binary.BigEndian.Uint16(b[18:]),
	}
	t.SrcPort = binary.BigEndian.Uint16(b[0:])
	t.DstPort = binary.BigEndian.Uint16(b[2:])
	t.Seq = binary.BigEndian.Uint32(b[4:])
	t.Ack = binary.BigEndian.Uint32(b[8:])
	t.Flags = b[13]
	t.Window = binary.BigEndian.Uint16(b[14:])
	p.TCP = t
	off := int(t.DataOff) * 4
	if off < TCPLen || off > len(b) {
		p.fail("TCP data offset %d", t.DataOff)
		off = TCPLen
	}
	p.Payload = b[off:]
}

func (p *Packet) parseICMP(b []byte) {
	if len(b) < ICMPLen {
		p.Payload = b
		p.fail("ICMP truncated: %d bytes", len(b))
		return
	}
	c := &ICMPHeader{Checksum: binary.BigEndian.Uint16(b[2:]), ChecksumOK: Checksum(b) == 0}
	c.Type = b[0]
	c.Code = b[1]
	c.ID = binary.BigEndian.Uint16(b[4:])
	c.Seq = binary.BigEndian.Uint16(b[6:])
	p.ICMP = c
	p.Payload = b[ICMPLen:]
}

// Field is one named, formatted value of a decoded frame.
type Field struct {
	Name, Value string
}

// Fields decodes frame and lists its fields in wire order ("eth.dst",
// "ip.ttl", "vxlan.vni", "inner.ip.checksum", ...), ending with the payload
// and trailer, and "error" when decoding stopped early.
func Fields(frame []byte) []Field {
	p, _ := Parse(frame)
	return p.Fields()
}

var etherTypeNames = map[uint16]string{
	EtherTypeIPv4: "IPv4", EtherTypeARP: "ARP", EtherTypeIPv6: "IPv6", EtherTypeLLDP: "LLDP",
}

var protoNames = map[uint8]string{ProtoICMP: "ICMP", ProtoTCP: "TCP", ProtoUDP: "UDP", ProtoGRE: "GRE", ProtoICMP6: "ICMPv6"}

func hexBytes(b []byte) string {
	const max = 48
	if len(b) <= max {
		return fmt.Sprintf("%d bytes %x", len(b), b)
	}
	return fmt.Sprintf("%d bytes %x...", len(b), b[:max])
}

// Fields lists the packet's fields (see the function Fields).
func (p *Packet) Fields() []Field {
	var fs []Field
	p.appendFields(&fs, "")
	return fs
}

func (p *Packet) appendFields(fs *[]Field, prefix string) {
	add := func(name, format string, args ...any) {
		*fs = append(*fs, Field{prefix + name, fmt.Sprintf(format, args...)})
	}
	if e := p.Eth; e != nil {
		add("eth.dst", "%v", e.Dst)
		add("eth.src", "%v", e.Src)
		add("eth.type", "%#04x %s", e.Type, etherTypeNames[e.Type])
	}
	if a := p.ARP; a != nil {
		add("arp.htype", "%d", a.HType)
		add("arp.ptype", "%#04x", a.PType)
		add("arp.hlen", "%d", a.HLen)
		add("arp.plen", "%d", a.PLen)
		add("arp.op", "%d", a.Op)
		add("arp.sha", "%v", a.SenderMAC)
		add("arp.spa", "%v", a.SenderIP)
		add("arp.tha", "%v", a.TargetMAC)
		add("arp.tpa", "%v", a.TargetIP)
	}
	if h := p.IPv4; h != nil {
		add("ip.version", "%d", h.Version)
		add("ip.ihl", "%d", h.IHL)
		add("ip.tos", "%#02x", h.TOS)
		add("ip.len", "%d", h.TotalLen)
		add("ip.id", "%#04x", h.ID)
		add("ip.flags", "%#x", h.Flags)
		add("ip.frag", "%d", h.FragOff)
		add("ip.ttl", "%d", h.TTL)
		add("ip.proto", "%d %s", h.Protocol, protoNames[h.Protocol])
		ok := "correct"
		if !h.ChecksumOK {
			ok = "WRONG"
		}
		add("ip.checksum", "%#04x (%s)", h.Checksum, ok)
		add("ip.src", "%v", h.Src)
		add("ip.dst", "%v", h.Dst)
		if len(h.Options) > 0 {
			add("ip.options", "%x", h.Options)
		}
	}
	if h := p.IPv6; h != nil {
		add("ip6.version", "%d", h.Version)
		add("ip6.tclass", "%#02x", h.TrafficClass)
		add("ip6.flow", "%#05x", h.FlowLabel)
		add("ip6.plen", "%d", h.PayloadLen)
		add("ip6.next", "%d %s", h.NextHeader, protoNames[h.NextHeader])
		add("ip6.hlim", "%d", h.HopLimit)
		add("ip6.src", "%v", h.Src)
		add("ip6.dst", "%v", h.Dst)
	}
	if u := p.UDP; u != nil {
		add("udp.sport", "%d", u.SrcPort)
		add("udp.dport", "%d", u.DstPort)
		add("udp.len", "%d", u.Length)
		add("udp.checksum", "%#04x", u.Checksum)
	}
	if t := p.TCP; t != nil {
		add("tcp.sport", "%d", t.SrcPort)
		add("tcp.dport", "%d", t.DstPort)
		add("tcp.seq", "%d", t.Seq)
		add("tcp.ack", "%d", t.Ack)
		add("tcp.doff", "%d", t.DataOff)
		add("tcp.flags", "%#02x", t.Flags)
		add("tcp.window", "%d", t.Window)
		add("tcp.checksum", "%#04x", t.Checksum)
		add("tcp.urgent", "%d", t.Urgent)
	}
	if c := p.ICMP; c != nil {
		ok := "correct"
		if !c.ChecksumOK {
			ok = "WRONG"
		}
		add("icmp.type", "%d", c.Type)
		add("icmp.code", "%d", c.Code)
		add("icmp.checksum", "%#04x (%s)", c.Checksum, ok)
		add("icmp.id", "%d", c.ID)
		add("icmp.seq", "%d", c.Seq)
	}
	if v := p.VXLAN; v != nil {
		add("vxlan.flags", "%#02x", v.Flags)
		add("vxlan.rsvd1", "%#06x", v.Reserved1)
		add("vxlan.vni", "%d", v.VNI)
		add("vxlan.rsvd2", "%#02x", v.Reserved2)
	}
	if g := p.GRE; g != nil {
		add("gre.flags", "%#04x", g.Flags)
		add("gre.proto", "%#04x", g.Protocol)
	}
	if m := p.MPLS; m != nil {
		add("mpls.label", "%d", m.Label)
		add("mpls.tc", "%d", m.TC)
		add("mpls.bos", "%v", m.BoS)
		add("mpls.ttl", "%d", m.TTL)
	}
	if p.Inner != nil {
		p.Inner.appendFields(fs, prefix+"inner.")
	}
	if len(p.Payload) > 0 {
		add("payload", "%s", hexBytes(p.Payload))
	}
	if len(p.Trailer) > 0 {
		add("trailer", "%s", hexBytes(p.Trailer))
	}
	if p.Err != nil {
		add("error", "%v", p.Err)
	}
}

// String is a one-line summary of the packet.
func (p *Packet) String() string {
	var parts []string
	for q, in := p, ""; q != nil; q, in = q.Inner, "| " {
		var s []string
		if e := q.Eth; e != nil {
			s = append(s, fmt.Sprintf("%v>%v %s", e.Src, e.Dst, etherTypeNames[e.Type]))
			if etherTypeNames[e.Type] == "" {
				s = append(s, fmt.Sprintf("type %#04x", e.Type))
			}
		}
		if a := q.ARP; a != nil {
			s = append(s, fmt.Sprintf("op %d %v/%v > %v/%v", a.Op, a.SenderIP, a.SenderMAC, a.TargetIP, a.TargetMAC))
		}
		if h := q.IPv4; h != nil {
			s = append(s, fmt.Sprintf("%v>%v ttl %d len %d", h.Src, h.Dst, h.TTL, h.TotalLen))
		}
		if h := q.IPv6; h != nil {
			s = append(s, fmt.Sprintf("%v>%v hlim %d plen %d flow %#05x", h.Src, h.Dst, h.HopLimit, h.PayloadLen, h.FlowLabel))
		}
		if u := q.UDP; u != nil {
			s = append(s, fmt.Sprintf("UDP %d>%d", u.SrcPort, u.DstPort))
		}
		if t := q.TCP; t != nil {
			s = append(s, fmt.Sprintf("TCP %d>%d", t.SrcPort, t.DstPort))
		}
		if c := q.ICMP; c != nil {
			s = append(s, fmt.Sprintf("ICMP %d/%d", c.Type, c.Code))
		}
		if v := q.VXLAN; v != nil {
			s = append(s, fmt.Sprintf("VXLAN vni %d", v.VNI))
		}
		if g := q.GRE; g != nil {
			s = append(s, fmt.Sprintf("GRE %#04x", g.Protocol))
			if g.Flags != 0 {
				s = append(s, fmt.Sprintf("flags %#04x", g.Flags))
			}
		}
		if m := q.MPLS; m != nil {
			s = append(s, fmt.Sprintf("MPLS %d", m.Label))
		}
		if q.Err != nil {
			s = append(s, "error: "+q.Err.Error())
		}
		parts = append(parts, in+strings.Join(s, " "))
	}
	return strings.Join(parts, " ")
}

// Summary is Parse(frame).String().
func Summary(frame []byte) string {
	p, _ := Parse(frame)
	return p.String()
}
