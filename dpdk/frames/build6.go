package frames

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// IPv6 and ICMPv6: header size, protocol, the types the fast path knows.
const (
	IPv6Len    = 40
	ProtoICMP6 = 58

	ICMP6TooBig       = 2
	ICMP6TimeExceeded = 3
	ICMP6EchoRequest  = 128
	ICMP6EchoReply    = 129
	NDRouterSolicit   = 133
	NDRouterAdvert    = 134
	NDNeighborSolicit = 135
	NDNeighborAdvert  = 136

	IPv6PayloadLenOff = 4
	IPv6NextHeaderOff = 6
	IPv6HopLimitOff   = 7
	IPv6SrcOff        = 8
	IPv6DstOff        = 24
)

// IPv6 is an IPv6 fixed header. Build fills in the version and the payload
// length.
type IPv6 struct {
	TrafficClass uint8
	FlowLabel    uint32
	NextHeader   uint8
	HopLimit     uint8
	Src, Dst     netip.Addr
}

// Build returns the header followed by payload.
func (h IPv6) Build(payload []byte) []byte {
	b := make([]byte, IPv6Len+len(payload))
	binary.BigEndian.PutUint32(b[0:4], 6<<28|uint32(h.TrafficClass)<<20|h.FlowLabel&0xfffff)
	binary.BigEndian.PutUint16(b[4:6], uint16(len(payload)))
	b[6] = h.NextHeader
	b[7] = h.HopLimit
	s, d := h.Src.As16(), h.Dst.As16()
	copy(b[8:24], s[:])
	copy(b[24:40], d[:])
	copy(b[IPv6Len:], payload)
	return b
}

// ICMP6 is an ICMPv6 message: type, code, the 4 bytes after the checksum
// (echo id and sequence, an MTU, ND flags...) and a body. Build computes
// the checksum over the pseudo-header of src and dst.
type ICMP6 struct {
	Type, Code uint8
	Data       uint32
	Body       []byte
}

func (m ICMP6) Build(src, dst netip.Addr) []byte {
	b := make([]byte, 8+len(m.Body))
	b[0], b[1] = m.Type, m.Code
	binary.BigEndian.PutUint32(b[4:8], m.Data)
	copy(b[8:], m.Body)
	binary.BigEndian.PutUint16(b[2:4], ICMP6Checksum(src, dst, b))
	return b
}

// ICMP6Checksum is the ICMPv6 checksum of msg (its checksum field taken as
// zero) over the pseudo-header of src and dst.
func ICMP6Checksum(src, dst netip.Addr, msg []byte) uint16 {
	var ph []byte
	s, d := src.As16(), dst.As16()
	ph = append(append(ph, s[:]...), d[:]...)
	ph = binary.BigEndian.AppendUint32(ph, uint32(len(msg)))
	ph = append(ph, 0, 0, 0, ProtoICMP6)
	m := append([]byte(nil), msg...)
	if len(m) >= 4 {
		m[2], m[3] = 0, 0
	}
	return ^uint16(sum16(sum16(0, ph), m))
}

// NDBody is a Neighbor Solicitation's or Advertisement's body: the target,
// then a link-layer address option (type 1 source, 2 target) if mac is set.
func NDBody(target netip.Addr, optType uint8, mac net.HardwareAddr) []byte {
	t := target.As16()
	b := append([]byte(nil), t[:]...)
	if mac != nil {
		b = append(b, optType, 1)
		b = append(b, mac...)
	}
	return b
}

// SolicitedNode is the solicited-node multicast address of a, and its MAC.
func SolicitedNode(a netip.Addr) (netip.Addr, net.HardwareAddr) {
	b := a.As16()
	m := netip.AddrFrom16([16]byte{0xff, 0x02, 11: 1, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]})
	return m, net.HardwareAddr{0x33, 0x33, 0xff, b[13], b[14], b[15]}
}
