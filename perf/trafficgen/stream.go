package trafficgen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Proto is the L4 protocol of a stream's (inner) packets.
type Proto string

const (
	UDP Proto = "udp"
	TCP Proto = "tcp"
)

// EncapKind is how a stream's frames arrive pre-encapsulated (to exercise
// the device's decapsulation).
type EncapKind string

const (
	EncapNone     EncapKind = ""
	EncapVXLAN    EncapKind = "vxlan"
	EncapMPLSoUDP EncapKind = "mplsoudp"
)

// Range is an inclusive range of addresses: the low 32 bits vary, so an
// IPv6 range must stay inside one /96. Step (default 1) spaces the addresses
// used: 256 puts consecutive flows in consecutive /24s.
type Range struct {
	Lo, Hi netip.Addr
	Step   uint32
}

// PortRange is an inclusive range of L4 ports.
type PortRange struct{ Lo, Hi uint16 }

// Encap describes the outer headers of a pre-encapsulated stream.
type Encap struct {
	Kind           EncapKind
	SrcMAC, DstMAC net.HardwareAddr // outer Ethernet
	Src, Dst       netip.Addr       // outer IP (both IPv4 or both IPv6)
	VNI            uint32           // VXLAN
	Label          uint32           // MPLSoUDP
	InnerDstMAC    net.HardwareAddr // VXLAN inner Ethernet destination (the vRouter's MAC)
}

// Stream is one sequence of frames: the (inner) packet, the fields that vary
// across its flows, its frame sizes and its share of the trial's rate.
//
// Flow f (0 <= f < Flows) uses address Lo+(f mod size of the range) in each
// range, and likewise for ports: ranges of coprime sizes give Flows distinct
// 5-tuples. A pre-encapsulated stream's outer UDP source port varies with the
// flow as a VTEP's would (RFC 7348).
type Stream struct {
	Port           int // generator port it leaves from
	SrcMAC, DstMAC net.HardwareAddr
	Src, Dst       Range
	SrcPort        PortRange
	DstPort        PortRange
	Proto          Proto
	Flows          int
	Sizes          []int // frame sizes on the wire, FCS included (64..9022), cycled
	Weight         int   // share of the trial's packets (default 1)
	Encap          *Encap
}

// IMIX is the simple IMIX (7 x 64, 4 x 570, 1 x 1518), interleaved.
var IMIX = []int{64, 570, 64, 64, 1518, 64, 570, 64, 64, 570, 64, 570}

const (
	fcsLen         = 4
	ethLen         = 14
	vxlanPort      = 4789
	mplsoudpPort   = 6635
	outerPortBase  = 49152
	outerPortCount = 16384
)

// template is a stream compiled for the worker.
type template struct {
	hdr     []byte
	fields  []field
	lens    []lenField
	ip4csum []int
	l4csum  []l4csum
	flows   int
	sizes   []int // without FCS
	weight  int
	port    int
}

type field struct {
	off, width        int
	base, count, step uint32
}

type lenField struct{ off, delta int }

type l4csum struct {
	l3, l4, at int
	v6         bool
}

func (r Range) size() (uint32, error) {
	if !r.Lo.IsValid() || !r.Hi.IsValid() {
		return 0, errors.New("address range needs both ends")
	}
	if r.Lo.Is4() != r.Hi.Is4() {
		return 0, fmt.Errorf("range %s-%s mixes IPv4 and IPv6", r.Lo, r.Hi)
	}
	lo, hi := r.Lo.As16(), r.Hi.As16()
	for i := 0; i < 12; i++ {
		if lo[i] != hi[i] {
			return 0, fmt.Errorf("range %s-%s: only the low 32 bits may vary", r.Lo, r.Hi)
		}
	}
	l, h := binary.BigEndian.Uint32(lo[12:]), binary.BigEndian.Uint32(hi[12:])
	if h < l {
		return 0, fmt.Errorf("range %s-%s is empty", r.Lo, r.Hi)
	}
	if h-l == 0xffffffff {
		return 0, fmt.Errorf("range %s-%s: at most 2^32-1 addresses", r.Lo, r.Hi)
	}
	return (h-l)/r.step() + 1, nil
}

func (r Range) step() uint32 { return max(r.Step, 1) }

func low32(a netip.Addr) uint32 {
	b := a.As16()
	return binary.BigEndian.Uint32(b[12:])
}

func (p PortRange) size() (uint32, error) {
	if p.Hi < p.Lo {
		return 0, fmt.Errorf("port range %d-%d is empty", p.Lo, p.Hi)
	}
	return uint32(p.Hi-p.Lo) + 1, nil
}

func mac6(m net.HardwareAddr, what string) ([]byte, error) {
	if len(m) != 6 {
		return nil, fmt.Errorf("%s: want a 6-byte MAC, got %q", what, m)
	}
	return m, nil
}

// Frame sizes a stream may have, FCS included: Ethernet's minimum, and a
// 9000-byte jumbo payload with its Ethernet header, a VLAN tag and FCS.
const (
	MinFrame = 64
	MaxFrame = 9022
	// FrameOverhead is what a frame carries besides its MTU's worth:
	// the Ethernet header and the FCS (a port of MTU m sends frames of
	// up to m + FrameOverhead bytes).
	FrameOverhead = 18
)

// Validate says whether the stream can be sent, without a generator: the
// checks a trial makes of it (addresses, ranges, sizes against its
// headers), so a command can refuse bad input before it starts DPDK.
func (s *Stream) Validate() error {
	_, err := s.compile()
	return err
}

// compile turns a stream into its worker template, checking every field.
func (s *Stream) compile() (*template, error) {
	t := &template{flows: s.Flows, weight: s.Weight, port: s.Port}
	if t.flows == 0 {
		t.flows = 1
	}
	if t.flows < 0 {
		return nil, fmt.Errorf("flows %d: must be >= 1", s.Flows)
	}
	if t.weight == 0 {
		t.weight = 1
	}
	if t.weight < 0 {
		return nil, fmt.Errorf("weight %d: must be >= 1", s.Weight)
	}
	if s.Proto != UDP && s.Proto != TCP {
		return nil, fmt.Errorf("proto %q: want udp or tcp", s.Proto)
	}
	v6 := s.Src.Lo.Is6()
	if s.Dst.Lo.Is6() != v6 {
		return nil, errors.New("source and destination ranges mix IPv4 and IPv6")
	}
	var hdr []byte
	// Outer headers first.
	innerDst, err := mac6(s.DstMAC, "destination MAC")
	if err != nil {
		return nil, err
	}
	innerSrc, err := mac6(s.SrcMAC, "source MAC")
	if err != nil {
		return nil, err
	}
	var outerL3, outerL4 = -1, -1
	var outerV6 bool
	if e := s.Encap; e != nil && e.Kind != EncapNone {
		osrc, err := mac6(e.SrcMAC, "outer source MAC")
		if err != nil {
			return nil, err
		}
		odst, err := mac6(e.DstMAC, "outer destination MAC")
		if err != nil {
			return nil, err
		}
		if !e.Src.IsValid() || !e.Dst.IsValid() || e.Src.Is4() != e.Dst.Is4() {
			return nil, errors.New("outer source and destination must both be IPv4 or both IPv6")
		}
		outerV6 = e.Src.Is6()
		hdr = ethernet(hdr, odst, osrc, outerV6)
		outerL3 = len(hdr)
		hdr = ipHeader(hdr, e.Src, e.Dst, 17)
		outerL4 = len(hdr)
		dport := uint16(vxlanPort)
		if e.Kind == EncapMPLSoUDP {
			dport = mplsoudpPort
		} else if e.Kind != EncapVXLAN {
			return nil, fmt.Errorf("encapsulation %q: want vxlan or mplsoudp", e.Kind)
		}
		hdr = binary.BigEndian.AppendUint16(hdr, outerPortBase)
		hdr = binary.BigEndian.AppendUint16(hdr, dport)
		hdr = append(hdr, 0, 0, 0, 0) // length, checksum
		t.fields = append(t.fields, field{off: outerL4, width: 2, base: outerPortBase,
			count: uint32(min(t.flows, outerPortCount)), step: 1})
		t.lens = append(t.lens, lenField{off: outerL4 + 4, delta: outerL4})
		switch e.Kind {
		case EncapVXLAN:
			if e.VNI >= 1<<24 {
				return nil, fmt.Errorf("VNI %d: at most 24 bits", e.VNI)
			}
			hdr = append(hdr, 0x08, 0, 0, 0)
			hdr = binary.BigEndian.AppendUint32(hdr, e.VNI<<8)
			d := innerDst
			if e.InnerDstMAC != nil {
				if d, err = mac6(e.InnerDstMAC, "inner destination MAC"); err != nil {
					return nil, err
				}
			}
			hdr = ethernet(hdr, d, innerSrc, v6)
		case EncapMPLSoUDP:
			if e.Label >= 1<<20 {
				return nil, fmt.Errorf("MPLS label %d: at most 20 bits", e.Label)
			}
			hdr = binary.BigEndian.AppendUint32(hdr, e.Label<<12|1<<8|64) // bottom of stack, TTL 64
		}
	} else {
		hdr = ethernet(hdr, innerDst, innerSrc, v6)
	}
	l3 := len(hdr)
	proto := byte(17)
	if s.Proto == TCP {
		proto = 6
	}
	hdr = ipHeader(hdr, s.Src.Lo, s.Dst.Lo, proto)
	l4 := len(hdr)
	hdr = binary.BigEndian.AppendUint16(hdr, s.SrcPort.Lo)
	hdr = binary.BigEndian.AppendUint16(hdr, s.DstPort.Lo)
	csumAt := 6
	if s.Proto == TCP {
		hdr = binary.BigEndian.AppendUint32(hdr, 1)           // sequence
		hdr = binary.BigEndian.AppendUint32(hdr, 0)           // ack
		hdr = append(hdr, 5<<4, 0x10, 0xff, 0xff, 0, 0, 0, 0) // ACK, window 65535
		csumAt = 16
	} else {
		hdr = append(hdr, 0, 0, 0, 0)
		t.lens = append(t.lens, lenField{off: l4 + 4, delta: l4})
	}
	ipAddrOff := l3 + 12
	addrLen := 4
	if v6 {
		ipAddrOff, addrLen = l3+8, 16
		t.lens = append(t.lens, lenField{off: l3 + 4, delta: l3 + 40})
	} else {
		t.lens = append(t.lens, lenField{off: l3 + 2, delta: l3})
		t.ip4csum = append(t.ip4csum, l3)
	}
	srcN, err := s.Src.size()
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	dstN, err := s.Dst.size()
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	spN, err := s.SrcPort.size()
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	dpN, err := s.DstPort.size()
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	for _, f := range []field{
		{off: ipAddrOff + addrLen - 4, width: 4, base: low32(s.Src.Lo), count: srcN, step: s.Src.step()},
		{off: ipAddrOff + 2*addrLen - 4, width: 4, base: low32(s.Dst.Lo), count: dstN, step: s.Dst.step()},
		{off: l4, width: 2, base: uint32(s.SrcPort.Lo), count: spN, step: 1},
		{off: l4 + 2, width: 2, base: uint32(s.DstPort.Lo), count: dpN, step: 1},
	} {
		if f.count > 1 {
			t.fields = append(t.fields, f)
		}
	}
	// IPv4 UDP goes without a checksum (0 is valid); TCP and IPv6 UDP
	// need theirs. Inner before outer: the outer one covers the inner.
	if s.Proto == TCP || v6 {
		t.l4csum = append(t.l4csum, l4csum{l3: l3, l4: l4, at: csumAt, v6: v6})
	}
	if outerL3 >= 0 {
		if outerV6 {
			t.lens = append(t.lens, lenField{off: outerL3 + 4, delta: outerL3 + 40})
			t.l4csum = append(t.l4csum, l4csum{l3: outerL3, l4: outerL4, at: 6, v6: true})
		} else {
			t.lens = append(t.lens, lenField{off: outerL3 + 2, delta: outerL3})
			t.ip4csum = append(t.ip4csum, outerL3)
		}
	}
	t.hdr = hdr
	sizes := s.Sizes
	if len(sizes) == 0 {
		sizes = []int{64}
	}
	if len(sizes) > maxSizes {
		return nil, fmt.Errorf("%d frame sizes: at most %d", len(sizes), maxSizes)
	}
	minSize := max(MinFrame, len(hdr)+sigLen+fcsLen)
	for _, z := range sizes {
		if z < minSize || z > MaxFrame {
			return nil, fmt.Errorf("frame size %d: must be %d..%d (this stream's headers take %d bytes, "+
				"its %d-byte signature and the FCS %d more)", z, minSize, MaxFrame, len(hdr), sigLen, fcsLen)
		}
		t.sizes = append(t.sizes, z-fcsLen)
	}
	return t, nil
}

func ethernet(b, dst, src []byte, v6 bool) []byte {
	b = append(b, dst...)
	b = append(b, src...)
	if v6 {
		return append(b, 0x86, 0xdd)
	}
	return append(b, 0x08, 0x00)
}

// ipHeader appends an IPv4 or IPv6 header; lengths and checksums are the
// worker's to write.
func ipHeader(b []byte, src, dst netip.Addr, proto byte) []byte {
	if src.Is4() {
		b = append(b, 0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0) // DF, TTL 64
		s, d := src.As4(), dst.As4()
		b = append(b, s[:]...)
		return append(b, d[:]...)
	}
	b = append(b, 0x60, 0, 0, 0, 0, 0, proto, 64)
	s, d := src.As16(), dst.As16()
	b = append(b, s[:]...)
	return append(b, d[:]...)
}
