package frames

import (
	"encoding/binary"
	"net/netip"
)

// sum16 is the RFC 1071 one's-complement sum of b as big-endian 16-bit
// words (an odd last byte is padded with zero), folded to 16 bits, added to
// initial.
func sum16(initial uint32, b []byte) uint32 {
	s := initial
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return s
}

// Checksum is the Internet checksum of b (RFC 1071): the one's complement
// of the one's-complement sum. A buffer whose checksum field holds the
// right value has Checksum 0.
func Checksum(b []byte) uint16 {
	return ^uint16(sum16(0, b))
}

// IPv4Checksum is the header checksum an IPv4 header should carry: the
// checksum over its IHL*4 bytes with the checksum field taken as zero.
// hdr may be longer than the header (the payload is ignored).
func IPv4Checksum(hdr []byte) uint16 {
	hl := ipv4HeaderLen(hdr)
	h := append([]byte(nil), hdr[:hl]...)
	h[IPv4ChecksumOff], h[IPv4ChecksumOff+1] = 0, 0
	return Checksum(h)
}

// FixIPv4Checksum writes IPv4Checksum into the header at the start of hdr.
func FixIPv4Checksum(hdr []byte) {
	binary.BigEndian.PutUint16(hdr[IPv4ChecksumOff:], IPv4Checksum(hdr))
}

// IPv4ChecksumValid says whether the header at the start of hdr verifies.
func IPv4ChecksumValid(hdr []byte) bool {
	return Checksum(hdr[:ipv4HeaderLen(hdr)]) == 0
}

// ipv4HeaderLen is IHL*4, bounded by len(hdr) and at least 20 if it fits.
func ipv4HeaderLen(hdr []byte) int {
	if len(hdr) < IPv4Len {
		panic("frames: IPv4 header shorter than 20 bytes")
	}
	hl := int(hdr[0]&0xf) * 4
	if hl < IPv4Len {
		hl = IPv4Len
	}
	if hl > len(hdr) {
		hl = len(hdr)
	}
	return hl
}

// L4Checksum is the TCP or UDP checksum of segment (its checksum field taken
// as zero) over the IPv4 or IPv6 pseudo-header of src and dst.
func L4Checksum(src, dst netip.Addr, proto uint8, segment []byte) uint16 {
	var ph []byte
	if src.Is6() {
		s, d := src.As16(), dst.As16()
		ph = append(append(ph, s[:]...), d[:]...)
		ph = binary.BigEndian.AppendUint32(ph, uint32(len(segment)))
		ph = append(ph, 0, 0, 0, proto)
	} else {
		ph = make([]byte, 12)
		putIP4(ph[0:4], src)
		putIP4(ph[4:8], dst)
		ph[9] = proto
		binary.BigEndian.PutUint16(ph[10:12], uint16(len(segment)))
	}
	seg := append([]byte(nil), segment...)
	switch proto {
	case ProtoUDP:
		if len(seg) >= 8 {
			seg[6], seg[7] = 0, 0
		}
	case ProtoTCP:
		if len(seg) >= 18 {
			seg[16], seg[17] = 0, 0
		}
	}
	return ^uint16(sum16(sum16(0, ph), seg))
}
