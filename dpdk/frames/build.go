// Package frames builds and parses the Ethernet frames of the fast path's
// golden tests: Ethernet, ARP, IPv4, UDP, TCP, ICMP echo, VXLAN, GRE and MPLS.
//
// Builders fill in what a valid packet needs (lengths, checksums) and nest:
//
//	frame := frames.Ethernet{Dst: gw, Src: pod, Type: frames.EtherTypeIPv4}.Build(
//		frames.IPv4{TTL: 64, Protocol: frames.ProtoUDP, Src: a, Dst: b}.Build(
//			frames.UDP{SrcPort: 1000, DstPort: 2000}.Build(payload)))
//
// A malformed frame is a valid one broken afterwards (the offsets are the
// *Off constants). Parse decodes a frame back into headers, Fields flattens it
// into named fields and Diff compares two frames field by field.
//
// Pure Go, no cgo: it is usable by any test, with or without DPDK.
package frames

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
)

// EtherTypes, IP protocols and UDP ports the fast path knows.
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeARP  = 0x0806
	EtherTypeIPv6 = 0x86dd
	EtherTypeLLDP = 0x88cc

	ProtoICMP = 1
	ProtoTCP  = 6
	ProtoUDP  = 17
	ProtoGRE  = 47

	// GREProtoMPLS is the GRE protocol type of MPLS unicast (RFC 4023).
	GREProtoMPLS = 0x8847

	PortVXLAN    = 4789
	PortMPLSoUDP = 6635
)

// Header sizes and the offsets of IPv4 fields inside an IPv4 header.
const (
	EthernetLen = 14
	ARPLen      = 28
	IPv4Len     = 20 // without options
	UDPLen      = 8
	TCPLen      = 20 // without options
	ICMPLen     = 8  // echo: type, code, checksum, id, sequence
	VXLANLen    = 8
	MPLSLen     = 4
	GRELen      = 4 // without checksum, key or sequence number
	// MinFrame is the shortest Ethernet frame without FCS: shorter ones
	// are padded to it on the wire.
	MinFrame = 60

	IPv4VersionIHLOff = 0
	IPv4TOSOff        = 1
	IPv4TotalLenOff   = 2
	IPv4IDOff         = 4
	IPv4FragOff       = 6
	IPv4TTLOff        = 8
	IPv4ProtocolOff   = 9
	IPv4ChecksumOff   = 10
	IPv4SrcOff        = 12
	IPv4DstOff        = 16
)

// IPv4 flags (the top 3 bits of the flags/fragment offset word).
const (
	IPv4DF = 0x2
	IPv4MF = 0x1
)

// ARP opcodes.
const (
	ARPRequest = 1
	ARPReply   = 2
)

// ICMP types.
const (
	ICMPEchoReply   = 0
	ICMPEchoRequest = 8
)

// VXLANFlagI is the "VNI valid" flag every VXLAN header must carry.
const VXLANFlagI = 0x08

// Broadcast is ff:ff:ff:ff:ff:ff.
var Broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// MustMAC parses a MAC address or panics (for test tables).
func MustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil || len(m) != 6 {
		panic(fmt.Sprintf("frames: bad MAC %q", s))
	}
	return m
}

func putMAC(b []byte, m net.HardwareAddr) {
	if m == nil {
		return // zero
	}
	if len(m) != 6 {
		panic(fmt.Sprintf("frames: MAC %v is not 6 bytes", m))
	}
	copy(b, m)
}

func putIP4(b []byte, a netip.Addr) {
	if !a.IsValid() {
		return // 0.0.0.0
	}
	if !a.Is4() {
		panic(fmt.Sprintf("frames: %v is not an IPv4 address", a))
	}
	v := a.As4()
	copy(b, v[:])
}

func concat(hdr, payload []byte) []byte {
	out := make([]byte, len(hdr)+len(payload))
	copy(out, hdr)
	copy(out[len(hdr):], payload)
	return out
}

// Ethernet is an Ethernet II header.
type Ethernet struct {
	Dst, Src net.HardwareAddr
	Type     uint16
}

// Build returns the header followed by payload (no padding, no FCS).
func (e Ethernet) Build(payload []byte) []byte {
	h := make([]byte, EthernetLen)
	putMAC(h[0:6], e.Dst)
	putMAC(h[6:12], e.Src)
	binary.BigEndian.PutUint16(h[12:14], e.Type)
	return concat(h, payload)
}

// ARP is an Ethernet/IPv4 ARP message.
type ARP struct {
	Op        uint16
	SenderMAC net.HardwareAddr
	SenderIP  netip.Addr
	TargetMAC net.HardwareAddr
	TargetIP  netip.Addr
}

// Build returns the 28-byte ARP message (hardware Ethernet, protocol IPv4).
func (a ARP) Build() []byte {
	b := make([]byte, ARPLen)
	binary.BigEndian.PutUint16(b[0:2], 1)
	binary.BigEndian.PutUint16(b[2:4], EtherTypeIPv4)
	b[4] = 6
	b[5] = 4
	binary.BigEndian.PutUint16(b[6:8], a.Op)
	putMAC(b[8:14], a.SenderMAC)
	putIP4(b[14:18], a.SenderIP)
	putMAC(b[18:24], a.TargetMAC)
	putIP4(b[24:28], a.TargetIP)
	return b
}

// IPv4 is an IPv4 header. Build fills in version, IHL, total length and the
// header checksum.
type IPv4 struct {
	TOS      uint8
	ID       uint16
	Flags    uint8  // IPv4DF, IPv4MF
	FragOff  uint16 // in 8-byte units
	TTL      uint8
	Protocol uint8
	Src, Dst netip.Addr
	Options  []byte // length a multiple of 4, at most 40
}

// Build returns the header followed by payload.
func (h IPv4) Build(payload []byte) []byte {
	if len(h.Options)%4 != 0 || len(h.Options) > 40 {
		panic(fmt.Sprintf("frames: %d bytes of IPv4 options", len(h.Options)))
	}
	hl := IPv4Len + len(h.Options)
	b := make([]byte, hl+len(payload))
	b[0] = 4<<4 | byte(hl/4)
	b[1] = h.TOS
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	binary.BigEndian.PutUint16(b[4:6], h.ID)
	binary.BigEndian.PutUint16(b[6:8], uint16(h.Flags)<<13|h.FragOff&0x1fff)
	b[8] = h.TTL
	b[9] = h.Protocol
	putIP4(b[12:16], h.Src)
	putIP4(b[16:20], h.Dst)
	copy(b[20:hl], h.Options)
	FixIPv4Checksum(b)
	copy(b[hl:], payload)
	return b
}

// UDP is a UDP header.
type UDP struct {
	SrcPort, DstPort uint16
}

// Build returns the header (length filled in, checksum 0: "none", valid
// over IPv4) followed by payload.
func (u UDP) Build(payload []byte) []byte {
	b := make([]byte, UDPLen+len(payload))
	binary.BigEndian.PutUint16(b[0:2], u.SrcPort)
	binary.BigEndian.PutUint16(b[2:4], u.DstPort)
	binary.BigEndian.PutUint16(b[4:6], uint16(len(b)))
	copy(b[UDPLen:], payload)
	return b
}

// BuildChecksum is Build with the UDP checksum over the IPv4 pseudo-header
// of src and dst.
func (u UDP) BuildChecksum(src, dst netip.Addr, payload []byte) []byte {
	b := u.Build(payload)
	c := L4Checksum(src, dst, ProtoUDP, b)
	if c == 0 {
		c = 0xffff // 0 means "no checksum" in UDP
	}
	binary.BigEndian.PutUint16(b[6:8], c)
	return b
}

// TCP flags.
const (
	TCPFin = 0x01
	TCPSyn = 0x02
	TCPRst = 0x04
	TCPPsh = 0x08
	TCPAck = 0x10
)

// TCP is a TCP header without options.
type TCP struct {
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	Flags            uint8
	Window           uint16
}

// Build returns the header followed by payload, with the checksum over the
// IPv4 pseudo-header of src and dst.
func (t TCP) Build(src, dst netip.Addr, payload []byte) []byte {
	b := make([]byte, TCPLen+len(payload))
	binary.BigEndian.PutUint16(b[0:2], t.SrcPort)
	binary.BigEndian.PutUint16(b[2:4], t.DstPort)
	binary.BigEndian.PutUint32(b[4:8], t.Seq)
	binary.BigEndian.PutUint32(b[8:12], t.Ack)
	b[12] = (TCPLen / 4) << 4
	b[13] = t.Flags
	binary.BigEndian.PutUint16(b[14:16], t.Window)
	copy(b[TCPLen:], payload)
	binary.BigEndian.PutUint16(b[16:18], L4Checksum(src, dst, ProtoTCP, b))
	return b
}

// ICMPEcho is an ICMP echo request or reply header.
type ICMPEcho struct {
	Type, Code uint8 // ICMPEchoRequest or ICMPEchoReply, 0
	ID, Seq    uint16
}

// Build returns the header followed by payload, checksum filled in.
func (e ICMPEcho) Build(payload []byte) []byte {
	b := make([]byte, ICMPLen+len(payload))
	b[0] = e.Type
	b[1] = e.Code
	binary.BigEndian.PutUint16(b[4:6], e.ID)
	binary.BigEndian.PutUint16(b[6:8], e.Seq)
	copy(b[ICMPLen:], payload)
	binary.BigEndian.PutUint16(b[2:4], Checksum(b))
	return b
}

// VXLAN is a VXLAN header. Flags is written as given: a valid header has
// VXLANFlagI.
type VXLAN struct {
	Flags uint8
	VNI   uint32 // 24 bits
}

// Build returns the 8-byte header followed by the inner Ethernet frame.
func (v VXLAN) Build(inner []byte) []byte {
	b := make([]byte, VXLANLen)
	b[0] = v.Flags
	binary.BigEndian.PutUint32(b[4:8], v.VNI<<8)
	return concat(b, inner)
}

// GRE flag bits (RFC 2784, RFC 2890) in the first 16-bit word.
const (
	GREFlagChecksum = 0x8000
	GREFlagRouting  = 0x4000
	GREFlagKey      = 0x2000
	GREFlagSeq      = 0x1000
)

// GRE is a GRE header without options. Flags is the first 16-bit word as
// given (flags, reserved bits and version): a plain header has 0. Options
// the flags announce are not added: a header with them is malformed unless
// the caller appends them to the payload.
type GRE struct {
	Flags    uint16
	Protocol uint16 // GREProtoMPLS
}

// Build returns the 4-byte header followed by payload.
func (g GRE) Build(payload []byte) []byte {
	b := make([]byte, GRELen)
	binary.BigEndian.PutUint16(b[0:2], g.Flags)
	binary.BigEndian.PutUint16(b[2:4], g.Protocol)
	return concat(b, payload)
}

// MPLS is one MPLS label stack entry.
type MPLS struct {
	Label uint32 // 20 bits
	TC    uint8  // 3 bits
	BoS   bool   // bottom of stack
	TTL   uint8
}

// Word is the 32-bit label stack entry.
func (m MPLS) Word() uint32 {
	w := m.Label<<12 | uint32(m.TC&7)<<9 | uint32(m.TTL)
	if m.BoS {
		w |= 0x100
	}
	return w
}

// Build returns the 4-byte entry followed by payload.
func (m MPLS) Build(payload []byte) []byte {
	b := make([]byte, MPLSLen)
	binary.BigEndian.PutUint32(b, m.Word())
	return concat(b, payload)
}

// Pad returns frame extended with pad bytes to at least min bytes, as a
// NIC pads short frames (the padding need not be zero on the wire).
func Pad(frame []byte, min int, pad byte) []byte {
	out := append([]byte(nil), frame...)
	for len(out) < min {
		out = append(out, pad)
	}
	return out
}

// Clone returns a copy of b, for breaking a valid frame.
func Clone(b []byte) []byte { return append([]byte(nil), b...) }
