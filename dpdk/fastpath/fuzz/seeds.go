// Package fuzz runs the fast path's libFuzzer harness (harness/, built by
// build.sh with ASan and UBSan) and holds its seed corpus: the golden tests'
// kinds of frames, addressed to the harness's table state
// (harness/fuzz_topology.h), in the harness's input format.
package fuzz

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/filament-net/filament/dpdk/frames"
)

// Port selectors of the harness (harness/fuzz_topology.h).
const (
	PodA byte = iota
	PodB
	Fabric
	Host
	PodC
	XConnect
)

// Input modes: the first byte of an input.
const (
	OneByOne byte = 0 // each frame injected, processed and accounted alone
	Burst    byte = 1 // all injected, then every port polled in bursts
	// State set before the input (the rest of the mode byte):
	NoICMP   byte = 2 // the ICMP error budget is spent
	Resolved byte = 4 // the learnt neighbour 192.168.100.9 is resolved
	// NoTailroom: each frame ends its mbuf's buffer (under 8 bytes of
	// tailroom).
	NoTailroom byte = 8
)

// Frame is one frame of an input, received on port (a selector).
type Frame struct {
	Port  byte
	Bytes []byte
}

// Encode writes an input as the harness reads it: the mode, then per frame
// the port selector, its length (2 bytes, big endian) and its bytes.
func Encode(mode byte, fs ...Frame) []byte {
	b := []byte{mode}
	for _, f := range fs {
		if len(f.Bytes) > 0x7ff {
			panic(fmt.Sprintf("fuzz: %d-byte frame: at most 2047", len(f.Bytes)))
		}
		b = append(b, f.Port, 0, 0)
		binary.BigEndian.PutUint16(b[len(b)-2:], uint16(len(f.Bytes)))
		b = append(b, f.Bytes...)
	}
	return b
}

var (
	vrMAC     = frames.MustMAC("00:00:5e:00:01:00") // fp_config_defaults
	podAMAC   = frames.MustMAC("02:00:00:01:00:0a")
	podBMAC   = frames.MustMAC("02:00:00:01:00:0b")
	podCMAC   = frames.MustMAC("02:00:00:02:00:0a")
	fabricMAC = frames.MustMAC("02:fa:00:00:00:01")
	remoteMAC = frames.MustMAC("02:fb:00:00:00:02")
	hostMAC   = frames.MustMAC("02:40:00:00:00:01")
	underlay  = ip("192.168.100.1")
	remote2   = ip("192.168.100.2")
	podA      = ip("10.1.0.10")
	podB      = ip("10.1.0.11")
	gateway   = ip("10.1.0.1")
	podA6     = ip("fd00:1::a")
	podB6     = ip("fd00:1::b")
	gateway6  = ip("fd00:1::1")
	podALL    = ip("fe80::ff:fe01:a") // from 02:00:00:01:00:0a
	underlay6 = ip("fd00:100::1")
	remote6   = ip("fd00:100::2")
)

// fromPodA6 is an IPv6 packet as pod A sends it to its gateway.
func fromPodA6(pkt []byte) Frame {
	return Frame{PodA, eth(vrMAC, podAMAC, frames.EtherTypeIPv6, pkt)}
}

func udp6(src, dst netip.Addr, hl uint8, payload []byte) []byte {
	return frames.IPv6{NextHeader: frames.ProtoUDP, HopLimit: hl, Src: src, Dst: dst}.Build(
		frames.UDP{SrcPort: 1000, DstPort: 2000}.BuildChecksum(src, dst, payload))
}

func icmp6(src, dst netip.Addr, hl uint8, m frames.ICMP6) []byte {
	return frames.IPv6{NextHeader: frames.ProtoICMP6, HopLimit: hl, Src: src, Dst: dst}.Build(m.Build(src, dst))
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func eth(dst, src net.HardwareAddr, typ uint16, payload []byte) []byte {
	return frames.Ethernet{Dst: dst, Src: src, Type: typ}.Build(payload)
}

func udp4(src, dst netip.Addr, ttl uint8, payload []byte) []byte {
	return frames.IPv4{TTL: ttl, Protocol: frames.ProtoUDP, Src: src, Dst: dst}.Build(
		frames.UDP{SrcPort: 1000, DstPort: 2000}.Build(payload))
}

// fromPodA is an IPv4 packet as pod A sends it to its gateway.
func fromPodA(pkt []byte) Frame {
	return Frame{PodA, eth(vrMAC, podAMAC, frames.EtherTypeIPv4, pkt)}
}

// fromFabric is an outer UDP packet from the remote vRouter 192.168.100.2.
func fromFabric(dport uint16, payload []byte) Frame {
	return Frame{Fabric, eth(fabricMAC, remoteMAC, frames.EtherTypeIPv4,
		frames.IPv4{TTL: 64, Protocol: frames.ProtoUDP, Src: remote2, Dst: underlay}.Build(
			frames.UDP{SrcPort: 50000, DstPort: dport}.Build(payload)))}
}

// fromFabric6 is an outer IPv6 packet from the remote vRouter fd00:100::2:
// UDP to dport (with its checksum, mandatory over IPv6) or, dport 0, GRE.
func fromFabric6(dport uint16, payload []byte) Frame {
	l4, proto := payload, uint8(frames.ProtoGRE)
	if dport != 0 {
		l4, proto = frames.UDP{SrcPort: 50000, DstPort: dport}.BuildChecksum(remote6, underlay6, payload), frames.ProtoUDP
	}
	return Frame{Fabric, eth(fabricMAC, remoteMAC, frames.EtherTypeIPv6,
		frames.IPv6{NextHeader: proto, HopLimit: 64, Src: remote6, Dst: underlay6}.Build(l4))}
}

func vxlan(vni uint32, flags uint8, inner []byte) Frame {
	return fromFabric(frames.PortVXLAN, frames.VXLAN{Flags: flags, VNI: vni}.Build(
		eth(vrMAC, vrMAC, frames.EtherTypeIPv4, inner)))
}

func mpls(label uint32, bos bool, inner []byte) Frame {
	return fromFabric(frames.PortMPLSoUDP, frames.MPLS{Label: label, BoS: bos, TTL: 64}.Build(inner))
}

// broken returns a copy of f with b[off] set to v (off counts from the
// frame's start).
func broken(f Frame, off int, v byte) Frame {
	b := frames.Clone(f.Bytes)
	b[off] = v
	return Frame{f.Port, b}
}

// Seeds returns the seed corpus by file name: one input per kind of frame
// of the golden tests (one by one), and all of them in one burst.
func Seeds() map[string][]byte {
	payload := []byte("filament fuzz seed")
	big := make([]byte, 1460) // > 1500 with VXLAN's 50 bytes
	toB := fromPodA(udp4(podA, podB, 64, payload))
	toB6 := fromPodA6(udp6(podA6, podB6, 64, payload))
	u6vx := fromFabric6(frames.PortVXLAN, frames.VXLAN{Flags: frames.VXLANFlagI, VNI: 100}.Build(
		eth(vrMAC, vrMAC, frames.EtherTypeIPv4, udp4(ip("10.16.0.5"), podA, 64, payload))))
	u6sum := frames.EthernetLen + frames.IPv6Len + 6 // the outer UDP checksum
	ipOff := frames.EthernetLen
	named := []struct {
		name string
		f    Frame
	}{
		{"pod-to-pod", toB},
		{"pod-to-pod-tcp", fromPodA(frames.IPv4{TTL: 64, Protocol: frames.ProtoTCP, Src: podA, Dst: podB}.Build(
			frames.TCP{SrcPort: 40000, DstPort: 80, Seq: 1, Flags: 0x02, Window: 65535}.Build(podA, podB, nil)))},
		{"padded", Frame{PodA, frames.Pad(toB.Bytes, frames.MinFrame, 0xa5)}},
		{"encap-vxlan", fromPodA(udp4(podA, ip("10.2.0.5"), 64, payload))},
		{"encap-mplsoudp", fromPodA(udp4(podA, ip("10.3.0.5"), 64, payload))},
		{"encap-ecmp-1", fromPodA(udp4(podA, ip("10.4.0.1"), 64, payload))},
		{"encap-ecmp-2", fromPodA(udp4(podA, ip("10.4.0.2"), 64, payload))},
		{"discard", fromPodA(udp4(podA, ip("10.5.0.1"), 64, payload))},
		{"neigh-unresolved", fromPodA(udp4(podA, ip("10.9.0.1"), 64, payload))},
		{"no-route", fromPodA(udp4(podA, ip("172.16.0.1"), 64, payload))},
		{"ttl-1", fromPodA(udp4(podA, podB, 1, payload))},
		{"ttl-0", fromPodA(udp4(podA, podB, 0, payload))},
		{"too-big-df", fromPodA(frames.IPv4{TTL: 64, Flags: frames.IPv4DF, Protocol: frames.ProtoUDP, Src: podA, Dst: ip("10.2.0.5")}.Build(
			frames.UDP{SrcPort: 1, DstPort: 2}.Build(big)))},
		{"ip-options", fromPodA(frames.IPv4{TTL: 64, Protocol: frames.ProtoUDP, Src: podA, Dst: podB, Options: []byte{1, 1, 1, 0}}.Build(
			frames.UDP{SrcPort: 1, DstPort: 2}.Build(payload)))},
		{"echo-gateway", fromPodA(frames.IPv4{TTL: 64, Protocol: frames.ProtoICMP, Src: podA, Dst: gateway}.Build(
			frames.ICMPEcho{Type: frames.ICMPEchoRequest, ID: 7, Seq: 1}.Build(payload)))},
		{"punt-host", fromPodA(udp4(podA, gateway, 64, payload))},
		{"arp-request", Frame{PodA, eth(frames.Broadcast, podAMAC, frames.EtherTypeARP, frames.ARP{
			Op: frames.ARPRequest, SenderMAC: podAMAC, SenderIP: podA, TargetIP: gateway}.Build())}},
		{"spoof-ip", fromPodA(udp4(ip("10.1.0.99"), podB, 64, payload))},
		{"spoof-mac", Frame{PodA, eth(vrMAC, podBMAC, frames.EtherTypeIPv4, udp4(podA, podB, 64, payload))}},
		{"l2-not-for-us", Frame{PodA, eth(podBMAC, podAMAC, frames.EtherTypeIPv4, udp4(podA, podB, 64, payload))}},
		{"ipv6", Frame{PodA, eth(vrMAC, podAMAC, frames.EtherTypeIPv6, make([]byte, 40))}},
		{"lldp", Frame{PodA, eth(vrMAC, podAMAC, frames.EtherTypeLLDP, payload)}},
		{"eth-truncated", Frame{PodA, toB.Bytes[:13]}},
		{"ip-truncated", Frame{PodA, toB.Bytes[:ipOff+19]}},
		{"ip-version", broken(toB, ipOff+frames.IPv4VersionIHLOff, 0x65)},
		{"ip-ihl", broken(toB, ipOff+frames.IPv4VersionIHLOff, 0x4f)},
		{"ip-total-length", broken(toB, ipOff+frames.IPv4TotalLenOff, 0xff)},
		{"ip-checksum", broken(toB, ipOff+frames.IPv4ChecksumOff, toB.Bytes[ipOff+frames.IPv4ChecksumOff]^0xff)},
		{"decap-vxlan", vxlan(100, frames.VXLANFlagI, udp4(ip("10.2.0.5"), podA, 64, payload))},
		{"decap-vxlan-vrf2", vxlan(102, frames.VXLANFlagI, udp4(ip("10.2.0.5"), podA, 64, payload))},
		{"decap-vxlan-no-fib", vxlan(103, frames.VXLANFlagI, udp4(ip("10.2.0.5"), podA, 64, payload))},
		{"decap-vxlan-vni-unknown", vxlan(999, frames.VXLANFlagI, udp4(ip("10.2.0.5"), podA, 64, payload))},
		{"decap-vxlan-flags", vxlan(100, 0, udp4(ip("10.2.0.5"), podA, 64, payload))},
		{"decap-vxlan-empty", vxlan(100, frames.VXLANFlagI, nil)},
		{"decap-mplsoudp", mpls(200, true, udp4(ip("10.3.0.5"), podB, 64, payload))},
		{"decap-mplsoudp-label-unknown", mpls(201, true, udp4(ip("10.3.0.5"), podB, 64, payload))},
		{"decap-mplsoudp-stack", mpls(200, false, udp4(ip("10.3.0.5"), podB, 64, payload))},
		{"decap-mplsoudp-not-ip", mpls(200, true, make([]byte, 20))},
		{"fabric-arp-reply", Frame{Fabric, eth(fabricMAC, frames.MustMAC("02:fb:00:00:00:09"), frames.EtherTypeARP, frames.ARP{
			Op: frames.ARPReply, SenderMAC: frames.MustMAC("02:fb:00:00:00:09"), SenderIP: ip("192.168.100.9"),
			TargetMAC: fabricMAC, TargetIP: underlay}.Build())}},
		{"fabric-arp-request", Frame{Fabric, eth(frames.Broadcast, remoteMAC, frames.EtherTypeARP, frames.ARP{
			Op: frames.ARPRequest, SenderMAC: remoteMAC, SenderIP: remote2, TargetIP: underlay}.Build())}},
		{"fabric-echo", Frame{Fabric, eth(fabricMAC, remoteMAC, frames.EtherTypeIPv4,
			frames.IPv4{TTL: 64, Protocol: frames.ProtoICMP, Src: remote2, Dst: underlay}.Build(
				frames.ICMPEcho{Type: frames.ICMPEchoRequest, ID: 1, Seq: 1}.Build(payload)))}},
		{"host-to-pod", Frame{Host, eth(vrMAC, hostMAC, frames.EtherTypeIPv4, udp4(gateway, podA, 64, payload))}},
		{"pod-c-too-big", Frame{PodC, eth(vrMAC, podCMAC, frames.EtherTypeIPv4,
			frames.IPv4{TTL: 64, Flags: frames.IPv4DF, Protocol: frames.ProtoUDP, Src: podA, Dst: ip("10.7.0.1")}.Build(
				frames.UDP{SrcPort: 1, DstPort: 2}.Build(big)))}},
		{"pod-c-echo", Frame{PodC, eth(vrMAC, podCMAC, frames.EtherTypeIPv4,
			frames.IPv4{TTL: 64, Protocol: frames.ProtoICMP, Src: podA, Dst: gateway}.Build(
				frames.ICMPEcho{Type: frames.ICMPEchoRequest, ID: 2, Seq: 1}.Build(payload)))}},
		{"xconnect", Frame{XConnect, toB.Bytes}},
		// IPv6
		{"ipv6-pod-to-pod", toB6},
		{"ipv6-padded", Frame{PodA, frames.Pad(fromPodA6(frames.IPv6{NextHeader: 59, HopLimit: 64, Src: podA6, Dst: podB6}.Build(nil)).Bytes,
			frames.MinFrame, 0xa5)}},
		{"ipv6-ext-header", fromPodA6(frames.IPv6{NextHeader: 60, HopLimit: 64, Src: podA6, Dst: podB6}.Build(
			append([]byte{frames.ProtoUDP, 0, 1, 4, 0, 0, 0, 0}, frames.UDP{SrcPort: 1, DstPort: 2}.Build(payload)...)))},
		{"ipv6-encap-vxlan", fromPodA6(udp6(podA6, ip("fd00:2::5"), 64, payload))},
		{"ipv6-encap-mplsoudp", fromPodA6(udp6(podA6, ip("fd00:3::5"), 64, payload))},
		{"ipv6-hop-limit-1", fromPodA6(udp6(podA6, podB6, 1, payload))},
		{"ipv6-too-big", fromPodA6(udp6(podA6, ip("fd00:2::5"), 64, big))},
		{"ipv6-echo-gateway", fromPodA6(icmp6(podA6, gateway6, 64, frames.ICMP6{Type: frames.ICMP6EchoRequest, Data: 7<<16 | 1, Body: payload}))},
		{"ipv6-echo-link-local", fromPodA6(icmp6(podALL, ip("fe80::1"), 64, frames.ICMP6{Type: frames.ICMP6EchoRequest, Data: 8<<16 | 1, Body: payload}))},
		{"ipv6-ns", Frame{PodA, eth(frames.MustMAC("33:33:ff:00:00:01"), podAMAC, frames.EtherTypeIPv6,
			icmp6(podALL, ip("ff02::1:ff00:1"), 255, frames.ICMP6{Type: frames.NDNeighborSolicit, Body: frames.NDBody(ip("fe80::1"), 1, podAMAC)}))}},
		{"ipv6-ns-dad", Frame{PodA, eth(frames.MustMAC("33:33:ff:00:00:0a"), podAMAC, frames.EtherTypeIPv6,
			icmp6(ip("::"), ip("ff02::1:ff00:a"), 255, frames.ICMP6{Type: frames.NDNeighborSolicit, Body: frames.NDBody(podA6, 0, nil)}))}},
		{"ipv6-ns-hop-limit", Frame{PodA, eth(frames.MustMAC("33:33:ff:00:00:01"), podAMAC, frames.EtherTypeIPv6,
			icmp6(podALL, ip("ff02::1:ff00:1"), 64, frames.ICMP6{Type: frames.NDNeighborSolicit, Body: frames.NDBody(ip("fe80::1"), 1, podAMAC)}))}},
		{"ipv6-rs", Frame{PodA, eth(frames.MustMAC("33:33:00:00:00:02"), podAMAC, frames.EtherTypeIPv6,
			icmp6(podALL, ip("ff02::2"), 255, frames.ICMP6{Type: frames.NDRouterSolicit, Body: append([]byte{1, 1}, podAMAC...)}))}},
		{"ipv6-rs-unspecified", Frame{PodA, eth(frames.MustMAC("33:33:00:00:00:02"), podAMAC, frames.EtherTypeIPv6,
			icmp6(ip("::"), ip("ff02::2"), 255, frames.ICMP6{Type: frames.NDRouterSolicit}))}},
		{"ipv6-rs-option-length", Frame{PodA, eth(frames.MustMAC("33:33:00:00:00:02"), podAMAC, frames.EtherTypeIPv6,
			icmp6(podALL, ip("ff02::2"), 255, frames.ICMP6{Type: frames.NDRouterSolicit, Body: []byte{1, 0, 0, 0, 0, 0, 0, 0}}))}},
		{"ipv6-spoof", fromPodA6(udp6(ip("fd00:1::99"), podB6, 64, payload))},
		{"ipv6-link-scope", fromPodA6(udp6(podALL, podB6, 64, payload))},
		{"ipv6-truncated", Frame{PodA, toB6.Bytes[:ipOff+39]}},
		{"ipv6-payload-length", broken(toB6, ipOff+frames.IPv6PayloadLenOff, 0xff)},
		{"ipv6-decap-vxlan", fromFabric(frames.PortVXLAN, frames.VXLAN{Flags: frames.VXLANFlagI, VNI: 100}.Build(
			eth(vrMAC, vrMAC, frames.EtherTypeIPv6, udp6(ip("fd00:2::5"), podA6, 64, payload))))},
		{"ipv6-decap-mplsoudp", mpls(200, true, udp6(ip("fd00:3::5"), podB6, 64, payload))},
		{"ipv6-host-ns", Frame{Host, eth(frames.MustMAC("33:33:ff:00:00:0a"), hostMAC, frames.EtherTypeIPv6,
			icmp6(ip("fd00:1::fe"), ip("ff02::1:ff00:a"), 255, frames.ICMP6{Type: frames.NDNeighborSolicit, Body: frames.NDBody(podA6, 1, hostMAC)}))}},
		{"ipv6-host-to-pod", Frame{Host, eth(vrMAC, hostMAC, frames.EtherTypeIPv6, udp6(ip("fd00:1::fe"), podA6, 64, payload))}},
		// IPv6 underlay
		{"u6-encap-vxlan", fromPodA(udp4(podA, ip("10.16.0.5"), 64, payload))},
		{"u6-encap-vxlan-ipv6", fromPodA6(udp6(podA6, ip("fd00:16::5"), 64, payload))},
		{"u6-encap-mplsogre", fromPodA(udp4(podA, ip("10.17.0.5"), 64, payload))},
		{"u6-encap-odd", fromPodA(udp4(podA, ip("10.16.0.5"), 64, payload[:7]))},
		{"u6-too-big-df", fromPodA(frames.IPv4{TTL: 64, Flags: frames.IPv4DF, Protocol: frames.ProtoUDP, Src: podA, Dst: ip("10.16.0.5")}.Build(
			frames.UDP{SrcPort: 1, DstPort: 2}.Build(big)))},
		{"u6-neigh-unresolved", fromPodA(udp4(podA, ip("10.18.0.1"), 64, payload))},
		{"u6-decap-vxlan", u6vx},
		{"u6-decap-vxlan-ipv6", fromFabric6(frames.PortVXLAN, frames.VXLAN{Flags: frames.VXLANFlagI, VNI: 100}.Build(
			eth(vrMAC, vrMAC, frames.EtherTypeIPv6, udp6(ip("fd00:16::5"), podA6, 64, payload))))},
		{"u6-decap-mplsoudp", fromFabric6(frames.PortMPLSoUDP, frames.MPLS{Label: 200, BoS: true, TTL: 64}.Build(
			udp4(ip("10.3.0.5"), podB, 64, payload)))},
		{"u6-decap-mplsogre", fromFabric6(0, frames.GRE{Protocol: frames.GREProtoMPLS}.Build(
			frames.MPLS{Label: 200, BoS: true, TTL: 64}.Build(udp6(ip("fd00:16::5"), podB6, 64, payload))))},
		{"u6-decap-udp-checksum", broken(u6vx, u6sum, u6vx.Bytes[u6sum]^0x40)},
		{"u6-decap-udp-zero-checksum", func() Frame { f := broken(u6vx, u6sum, 0); f.Bytes[u6sum+1] = 0; return f }()},
		{"u6-decap-udp-truncated", Frame{Fabric, eth(fabricMAC, remoteMAC, frames.EtherTypeIPv6,
			frames.IPv6{NextHeader: frames.ProtoUDP, HopLimit: 64, Src: remote6, Dst: underlay6}.Build([]byte{0xc3, 0x50, 0x12, 0xb5}))}},
		{"u6-fabric-ns", Frame{Fabric, eth(frames.MustMAC("33:33:ff:00:00:01"), remoteMAC, frames.EtherTypeIPv6,
			icmp6(remote6, ip("ff02::1:ff00:1"), 255, frames.ICMP6{Type: frames.NDNeighborSolicit, Body: frames.NDBody(underlay6, 1, remoteMAC)}))}},
		{"u6-fabric-na", Frame{Fabric, eth(fabricMAC, frames.MustMAC("02:fb:00:00:00:09"), frames.EtherTypeIPv6,
			icmp6(ip("fd00:100::9"), underlay6, 255, frames.ICMP6{Type: frames.NDNeighborAdvert, Data: 0x60000000,
				Body: frames.NDBody(ip("fd00:100::9"), 2, frames.MustMAC("02:fb:00:00:00:09"))}))}},
		{"u6-fabric-nd-options", Frame{Fabric, eth(fabricMAC, frames.MustMAC("02:fb:00:00:00:09"), frames.EtherTypeIPv6,
			icmp6(ip("fd00:100::9"), underlay6, 255, frames.ICMP6{Type: frames.NDNeighborAdvert, Data: 0x60000000,
				Body: append(frames.NDBody(ip("fd00:100::9"), 14, nil), 14, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0)}))}},
		{"u6-fabric-echo", Frame{Fabric, eth(fabricMAC, remoteMAC, frames.EtherTypeIPv6, icmp6(remote6, underlay6, 64,
			frames.ICMP6{Type: frames.ICMP6EchoRequest, Data: 9<<16 | 1, Body: payload}))}},
	}
	out := make(map[string][]byte, len(named)+1)
	all := make([]Frame, 0, len(named))
	for _, n := range named {
		out[n.name] = Encode(OneByOne, n.f)
		all = append(all, n.f)
	}
	out["burst-all"] = Encode(Burst, all...)
	out["ttl-1-no-icmp"] = Encode(OneByOne|NoICMP, fromPodA(udp4(podA, podB, 1, payload)))
	unresolved := fromPodA(udp4(podA, ip("10.9.0.1"), 64, payload))
	out["neigh-resolved"] = Encode(OneByOne|Resolved, unresolved)
	// The second is dropped: one ARP request per neighbour per 100 ms.
	out["neigh-unresolved-twice"] = Encode(OneByOne, unresolved, unresolved)
	unresolved6 := fromPodA(udp4(podA, ip("10.18.0.1"), 64, payload))
	out["u6-neigh-resolved"] = Encode(OneByOne|Resolved, unresolved6)
	out["u6-neigh-unresolved-twice"] = Encode(OneByOne, unresolved6, unresolved6)
	// The Router Advertisement is longer than the solicitation: no room to
	// grow into.
	for _, n := range named {
		if n.name == "ipv6-rs" {
			out["ipv6-rs-no-tailroom"] = Encode(OneByOne|NoTailroom, n.f)
		}
	}
	return out
}
