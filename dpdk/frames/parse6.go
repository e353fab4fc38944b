package frames

import (
	"encoding/binary"
	"net/netip"
)

// IPv6Header is a decoded IPv6 fixed header (extension headers are not
// decoded: what follows is the payload unless it is UDP, TCP, GRE or
// ICMPv6).
type IPv6Header struct {
	IPv6
	Version    uint8
	PayloadLen uint16
}

func (p *Packet) parseIPv6(b []byte) {
	if len(b) < IPv6Len {
		p.Payload = b
		p.fail("IPv6 truncated: %d bytes", len(b))
		return
	}
	w := binary.BigEndian.Uint32(b)
	h := &IPv6Header{Version: b[0] >> 4, PayloadLen: binary.BigEndian.Uint16(b[4:])}
	h.TrafficClass = uint8(w >> 20)
	h.FlowLabel = w & 0xfffff
	h.NextHeader = b[IPv6NextHeaderOff]
	h.HopLimit = b[IPv6HopLimitOff]
	h.Src = netip.AddrFrom16([16]byte(b[IPv6SrcOff:IPv6DstOff]))
	h.Dst = netip.AddrFrom16([16]byte(b[IPv6DstOff:IPv6Len]))
	p.IPv6 = h
	if h.Version != 6 {
		p.Payload = b[IPv6Len:]
		p.fail("IPv6 header with version %d", h.Version)
		return
	}
	end := IPv6Len + int(h.PayloadLen)
	if end > len(b) {
		p.fail("IPv6 payload length %d beyond the %d bytes there are", h.PayloadLen, len(b)-IPv6Len)
		end = len(b)
	}
	if end < len(b) {
		p.Trailer = b[end:]
	}
	l4 := b[IPv6Len:end]
	switch h.NextHeader {
	case ProtoUDP:
		p.parseUDP(l4)
	case ProtoTCP:
		p.parseTCP(l4)
	case ProtoGRE:
		p.parseGRE(l4)
	case ProtoICMP6:
		p.parseICMP(l4)
		if p.ICMP != nil {
			// over the pseudo-header, unlike ICMP's
			p.ICMP.ChecksumOK = ICMP6Checksum(h.Src, h.Dst, l4) == p.ICMP.Checksum
		}
	default:
		p.Payload = l4
	}
}
