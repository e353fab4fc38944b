package fastpath_test

// The outer UDP checksum over IPv6 with local checksum offload (LCO): the
// fast path sums only the headers when the inner checksum stands for the
// payload, the whole datagram otherwise. Either way the frame must be the
// one a full sum gives, byte for byte: the expected frames here compute
// the checksum over everything, in Go.

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"net/netip"
	"testing"

	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/dpdk/frames"
)

// lcoCase is an inner packet as the pod sends it (hop limit or TTL 64) and
// as the tunnel carries it (63).
type lcoCase struct {
	kind     string
	in, want []byte
}

// lcoInner4 builds a random IPv4 packet from src to dst of about size
// bytes: TCP, UDP (checksum or none), ICMP, a fragment or SCTP, with or
// without options.
func lcoInner4(r *rand.Rand, src, dst netip.Addr, size int) lcoCase {
	h := frames.IPv4{TOS: uint8(r.Intn(256)) &^ 3, ID: uint16(r.Intn(65536)), Src: src, Dst: dst}
	if r.Intn(4) == 0 {
		h.Options = []byte{1, 1, 1, 0, 1, 1, 1, 0}[:4*(1+r.Intn(2))] // NOPs, end
	}
	payload := make([]byte, max(size-frames.IPv4Len-len(h.Options)-20, 0))
	r.Read(payload)
	sport, dport := uint16(r.Intn(65536)), uint16(r.Intn(65536))
	var l4 []byte
	var name string
	switch k := r.Intn(7); k {
	case 0:
		name, h.Protocol = "tcp", frames.ProtoTCP
		l4 = frames.TCP{SrcPort: sport, DstPort: dport, Seq: r.Uint32(), Flags: frames.TCPSyn, Window: 1024}.Build(src, dst, payload)
	case 1:
		name, h.Protocol = "udp", frames.ProtoUDP
		l4 = frames.UDP{SrcPort: sport, DstPort: dport}.BuildChecksum(src, dst, payload)
	case 2:
		name, h.Protocol = "udp checksum 0", frames.ProtoUDP
		l4 = frames.UDP{SrcPort: sport, DstPort: dport}.Build(payload)
	case 3:
		name, h.Protocol = "icmp", frames.ProtoICMP
		l4 = frames.ICMPEcho{Type: frames.ICMPEchoRequest, ID: sport, Seq: dport}.Build(payload)
	case 4, 5:
		// A fragment: its bytes are not a whole segment, its first
		// carries a checksum for data it does not have.
		name, h.Protocol = "fragment", []uint8{frames.ProtoTCP, frames.ProtoUDP}[r.Intn(2)]
		if k == 4 {
			h.Flags = frames.IPv4MF
			l4 = frames.UDP{SrcPort: sport, DstPort: dport}.BuildChecksum(src, dst, append(payload, 1, 2, 3, 4, 5, 6, 7, 8))[:8+len(payload)]
		} else {
			h.FragOff = uint16(1 + r.Intn(100))
			l4 = payload
		}
	default:
		name, h.Protocol = "sctp", 132
		l4 = payload
	}
	in := h
	in.TTL = 64
	h.TTL = 63
	return lcoCase{kind: "ipv4 " + name, in: in.Build(l4), want: h.Build(l4)}
}

// lcoInner6 builds a random IPv6 packet: TCP, UDP (checksum or, invalid
// but sent, none), ICMPv6, a fragment or a destination options header in
// front of UDP.
func lcoInner6(r *rand.Rand, src, dst netip.Addr, size int) lcoCase {
	h := frames.IPv6{TrafficClass: uint8(r.Intn(256)) &^ 3, FlowLabel: uint32(r.Intn(1 << 20)), Src: src, Dst: dst}
	payload := make([]byte, max(size-frames.IPv6Len-20, 0))
	r.Read(payload)
	sport, dport := uint16(r.Intn(65536)), uint16(r.Intn(65536))
	var l4 []byte
	var name string
	switch r.Intn(6) {
	case 0:
		name, h.NextHeader = "tcp", frames.ProtoTCP
		l4 = frames.TCP{SrcPort: sport, DstPort: dport, Seq: r.Uint32(), Flags: frames.TCPSyn, Window: 1024}.Build(src, dst, payload)
	case 1:
		name, h.NextHeader = "udp", frames.ProtoUDP
		l4 = frames.UDP{SrcPort: sport, DstPort: dport}.BuildChecksum(src, dst, payload)
	case 2:
		name, h.NextHeader = "udp checksum 0", frames.ProtoUDP
		l4 = frames.UDP{SrcPort: sport, DstPort: dport}.Build(payload)
	case 3:
		name, h.NextHeader = "icmpv6", frames.ProtoICMP6
		l4 = frames.ICMP6{Type: frames.ICMP6EchoRequest, Data: uint32(sport)<<16 | uint32(dport), Body: payload}.Build(src, dst)
	case 4:
		// Fragment header (44): UDP, more fragments, offset 0.
		name, h.NextHeader = "fragment", 44
		udp := frames.UDP{SrcPort: sport, DstPort: dport}.BuildChecksum(src, dst, payload)
		l4 = append([]byte{frames.ProtoUDP, 0, 0, 1, 0, 0, 0x12, 0x34}, udp...)
	default:
		name, h.NextHeader = "destination options", 60
		udp := frames.UDP{SrcPort: sport, DstPort: dport}.BuildChecksum(src, dst, payload)
		l4 = append([]byte{frames.ProtoUDP, 0, 1, 4, 0, 0, 0, 0}, udp...)
	}
	in := h
	in.HopLimit = 64
	h.HopLimit = 63
	return lcoCase{kind: "ipv6 " + name, in: in.Build(l4), want: h.Build(l4)}
}

// Random inner packets, 64 to the largest the tunnel takes, odd lengths
// among them, through VXLAN and MPLSoUDP over IPv6: every frame is the
// full-sum one. A wrong LCO sum (a pseudo-header word, an offset, the
// full-sum fallback) changes the checksum of some of them.
func TestEncapUnderlay6Checksum(t *testing.T) {
	e := newEnv(t)
	const vrf = 73
	fab, a, ws := tunnels6(t, e, vrf)
	e.toPod(a.pod)
	e.toPod6(a)
	r := rand.New(rand.NewSource(6))
	kinds := map[string]int{}
	for i, w := range ws[:2] { // the UDP encapsulations
		mtu := 1500 - overhead(w.encap) - fastpath.Outer6Extra
		dst4 := netip.AddrFrom4([4]byte{10, vrf, byte(i + 1), 9})
		dst6 := netip.AddrFrom16([16]byte{0xfd, 0, 0, vrf, 0, byte(i + 1), 15: 9})
		for n := 0; n < 150; n++ {
			size := 64 + r.Intn(mtu-64+1)
			if n < 4 {
				size = []int{64, 65, mtu - 1, mtu}[n]
			}
			var c lcoCase
			var in []byte
			if n%2 == 0 {
				c = lcoInner4(r, a.ip, dst4, size)
				in = a.from(c.in)
			} else {
				c = lcoInner6(r, a.ip6, dst6, size)
				in = a.from6(c.in)
			}
			kinds[c.kind]++
			name := fmt.Sprintf("%s %s %d bytes", encapNames[i], c.kind, len(c.want))
			e.inject(a.id, in)
			got := e.expectFrames(fab, 1, timeout)[0]
			if len(got) < 14+40+8 {
				t.Fatalf("%s: %d-byte frame", name, len(got))
			}
			flow := binary.BigEndian.Uint32(got[14:]) & 0xfffff
			sport := binary.BigEndian.Uint16(got[14+40:])
			inner := c.want
			if w.encap == fastpath.EncapVXLAN {
				typ := uint16(frames.EtherTypeIPv4)
				if inner[0]>>4 == 6 {
					typ = frames.EtherTypeIPv6
				}
				inner = frames.Ethernet{Dst: vrMAC, Src: vrMAC, Type: typ}.Build(inner)
			}
			tc := c.want[1]
			if c.want[0]>>4 == 6 {
				tc = uint8(binary.BigEndian.Uint16(c.want) >> 4)
			}
			if d := frames.Diff(outer6(w, tc, flow, sport, inner), got); d != "" {
				t.Errorf("%s: encapsulated frame:\n%s", name, d)
			}
		}
	}
	for _, k := range []string{"ipv4 tcp", "ipv4 udp", "ipv4 udp checksum 0", "ipv4 icmp", "ipv4 fragment", "ipv4 sctp",
		"ipv6 tcp", "ipv6 udp", "ipv6 udp checksum 0", "ipv6 icmpv6", "ipv6 fragment", "ipv6 destination options"} {
		if kinds[k] == 0 {
			t.Errorf("no %q case among the random ones: %v", k, kinds)
		}
	}
}
