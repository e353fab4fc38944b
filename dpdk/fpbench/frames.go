package fpbench

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// Minimal frame builders: just what the scenarios send, with valid IPv4
// checksums (the fast path checks them); the pods' UDP has its checksum,
// the tunnels' (over IPv4) none.

const (
	ethLen  = 14
	ipLen   = 20
	udpLen  = 8
	vxlLen  = 8
	mplsLen = 4
	greLen  = 4

	etherIPv4 = 0x0800
	etherIPv6 = 0x86dd
	ip6Len    = 40
	protoUDP  = 17
	protoGRE  = 47
)

func putEth(b []byte, dst, src net.HardwareAddr, typ uint16) []byte {
	copy(b[0:6], dst)
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:14], typ)
	return b[ethLen:]
}

func csum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// putIPv4 writes an IPv4 header (TTL 64, DF) of a packet of total length
// tot; returns its payload.
func putIPv4(b []byte, src, dst netip.Addr, proto uint8, tot int) []byte {
	ip := b[:ipLen]
	ip[0] = 0x45
	ip[1] = 0
	binary.BigEndian.PutUint16(ip[2:], uint16(tot))
	binary.BigEndian.PutUint16(ip[4:], 0x1234)
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
	ip[8] = 64
	ip[9] = proto
	ip[10], ip[11] = 0, 0
	s, d := src.As4(), dst.As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	binary.BigEndian.PutUint16(ip[10:], csum(ip))
	return b[ipLen:tot]
}

// putIPv4UDP writes an IPv4 header (TTL 64, DF) and a UDP header for a
// datagram of total IPv4 length tot; returns the UDP payload.
func putIPv4UDP(b []byte, src, dst netip.Addr, sport, dport uint16, tot int) []byte {
	putIPv4(b, src, dst, protoUDP, tot)
	u := b[ipLen : ipLen+udpLen]
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(tot-ipLen))
	binary.BigEndian.PutUint16(u[6:], 0)
	return b[ipLen+udpLen : tot]
}

// inner is the overlay packet of one flow: an Ethernet frame of size bytes
// carrying IPv4/UDP from src:sport to dst:dport.
type inner struct {
	dstMAC, srcMAC net.HardwareAddr
	src, dst       netip.Addr
	sport, dport   uint16
	size           int
}

// frame builds the plain Ethernet frame.
func (in inner) frame() []byte {
	b := make([]byte, in.size)
	in.put(b)
	return b
}

func (in inner) put(b []byte) {
	var pl []byte
	if in.src.Is6() {
		p := putEth(b, in.dstMAC, in.srcMAC, etherIPv6)
		pl = putIPv6UDP(p, in.src, in.dst, in.sport, in.dport, in.size-ethLen)
	} else {
		p := putEth(b, in.dstMAC, in.srcMAC, etherIPv4)
		pl = putIPv4UDP(p, in.src, in.dst, in.sport, in.dport, in.size-ethLen)
	}
	for i := range pl {
		pl[i] = byte(i)
	}
	putUDPChecksum(in.src, in.dst, b[in.size-len(pl)-udpLen:in.size])
}

// putUDPChecksum writes the checksum of udp, a datagram from src to dst
// whose checksum field is 0: pods send UDP with one (Linux does), and the
// outer checksum over an IPv6 underlay sums only the headers when it is
// there (local checksum offload).
func putUDPChecksum(src, dst netip.Addr, udp []byte) {
	ph := append(src.AsSlice(), dst.AsSlice()...)
	if src.Is6() {
		ph = binary.BigEndian.AppendUint32(ph, uint32(len(udp)))
		ph = append(ph, 0, 0, 0, protoUDP)
	} else {
		ph = append(ph, 0, protoUDP)
		ph = binary.BigEndian.AppendUint16(ph, uint16(len(udp)))
	}
	c := csum(append(ph, udp...))
	if c == 0 {
		c = 0xffff // 0 says "no checksum"
	}
	binary.BigEndian.PutUint16(udp[6:], c)
}

// putIPv6UDP writes an IPv6 header (hop limit 64) and a UDP header for a
// packet of tot bytes; returns the UDP payload. UDP checksum 0 (the
// caller writes one if it needs it).
func putIPv6UDP(b []byte, src, dst netip.Addr, sport, dport uint16, tot int) []byte {
	ip := b[:ip6Len]
	binary.BigEndian.PutUint32(ip[0:], 6<<28)
	binary.BigEndian.PutUint16(ip[4:], uint16(tot-ip6Len))
	ip[6] = protoUDP
	ip[7] = 64
	s, d := src.As16(), dst.As16()
	copy(ip[8:24], s[:])
	copy(ip[24:40], d[:])
	u := b[ip6Len : ip6Len+udpLen]
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(tot-ip6Len))
	binary.BigEndian.PutUint16(u[6:], 0)
	return b[ip6Len+udpLen : tot]
}

// underlay is the outer header of a tunnelled frame.
type underlay struct {
	dstMAC, srcMAC net.HardwareAddr
	src, dst       netip.Addr
	sport          uint16
}

// vxlan wraps the whole inner Ethernet frame (RFC 7348).
func (u underlay) vxlan(vni uint32, in inner) []byte {
	b := make([]byte, ethLen+ipLen+udpLen+vxlLen+in.size)
	p := putEth(b, u.dstMAC, u.srcMAC, etherIPv4)
	pl := putIPv4UDP(p, u.src, u.dst, u.sport, 4789, len(b)-ethLen)
	binary.BigEndian.PutUint32(pl[0:], 0x08000000)
	binary.BigEndian.PutUint32(pl[4:], vni<<8)
	in.put(pl[vxlLen:])
	return b
}

// vxlan6 is vxlan over an IPv6 underlay, with the UDP checksum (mandatory
// over IPv6: the fast path verifies it).
func (u underlay) vxlan6(vni uint32, in inner) []byte {
	b := make([]byte, ethLen+ip6Len+udpLen+vxlLen+in.size)
	p := putEth(b, u.dstMAC, u.srcMAC, etherIPv6)
	pl := putIPv6UDP(p, u.src, u.dst, u.sport, 4789, len(b)-ethLen)
	binary.BigEndian.PutUint32(pl[0:], 0x08000000)
	binary.BigEndian.PutUint32(pl[4:], vni<<8)
	in.put(pl[vxlLen:])
	udp := p[ip6Len:]
	ph := make([]byte, 0, 40+len(udp))
	ph = append(ph, p[8:40]...) // source and destination
	ph = binary.BigEndian.AppendUint32(ph, uint32(len(udp)))
	ph = append(ph, 0, 0, 0, protoUDP)
	c := csum(append(ph, udp...))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(udp[6:], c)
	return b
}

// mplsoudp carries the inner IPv4 packet under one label (RFC 7510).
func (u underlay) mplsoudp(label uint32, in inner) []byte {
	f := in.frame()
	b := make([]byte, ethLen+ipLen+udpLen+mplsLen+in.size-ethLen)
	p := putEth(b, u.dstMAC, u.srcMAC, etherIPv4)
	pl := putIPv4UDP(p, u.src, u.dst, u.sport, 6635, len(b)-ethLen)
	binary.BigEndian.PutUint32(pl[0:], label<<12|0x100|64) // bottom of stack, TTL 64
	copy(pl[mplsLen:], f[ethLen:])
	return b
}

// mplsogre carries the inner IPv4 packet under one label in plain GRE
// (RFC 4023: no checksum, key or sequence number, protocol 0x8847).
func (u underlay) mplsogre(label uint32, in inner) []byte {
	f := in.frame()
	b := make([]byte, ethLen+ipLen+greLen+mplsLen+in.size-ethLen)
	p := putEth(b, u.dstMAC, u.srcMAC, etherIPv4)
	g := putIPv4(p, u.src, u.dst, protoGRE, len(b)-ethLen)
	binary.BigEndian.PutUint32(g[0:], 0x8847) // flags and version 0, protocol MPLS
	binary.BigEndian.PutUint32(g[greLen:], label<<12|0x100|64)
	copy(g[greLen+mplsLen:], f[ethLen:])
	return b
}
