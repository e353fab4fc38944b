package fastpath_test

// Golden tests of the IPv6 fast path (fp_worker6.h): crafted frames in,
// exact frames out. Routing and rewrite, neighbour discovery, ICMPv6
// errors and echo, anti-spoofing, malformed headers, and IPv6 inside
// VXLAN, MPLSoUDP and MPLSoGRE (IPv4 outer).

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/dpdk/frames"
)

// pod6 is a pod with one IPv4 and one IPv6 address.
type pod6 struct {
	pod
	ip6 netip.Addr
	ll  netip.Addr // its link-local address, from its MAC
}

func (e *env) pod6(vrf uint16, mac, addr4, addr6 string, mtu int) pod6 {
	e.t.Helper()
	p := pod6{pod: pod{vrf: vrf, mac: frames.MustMAC(mac), ip: ip(addr4)}, ip6: ip(addr6)}
	m := p.mac
	p.ll = netip.AddrFrom16([16]byte{0xfe, 0x80, 8: m[0] ^ 2, 9: m[1], 10: m[2], 11: 0xff, 12: 0xfe, 13: m[3], 14: m[4], 15: m[5]})
	p.id, p.name = e.addPort(fastpath.PortConfig{
		Kind: fastpath.PortPod, VRF: vrf, MAC: p.mac, MTU: mtu, IPv4: []netip.Addr{p.ip}, IPv6: []netip.Addr{p.ip6},
	})
	return p
}

func (e *env) route6(vrf uint16, prefix string, nh uint32) {
	e.t.Helper()
	p := netip.MustParsePrefix(prefix)
	if err := dp.AddRoute6(vrf, p, nh); err != nil {
		e.t.Fatalf("AddRoute6 %v vrf %d: %v", p, vrf, err)
	}
	e.onCleanup("delete route "+prefix, func() error { return dp.DelRoute6(vrf, p) })
}

// toPod6 is the interface next-hop to a pod and its /128 route.
func (e *env) toPod6(p pod6) uint32 {
	e.t.Helper()
	id := e.nh(fastpath.NextHop{Type: fastpath.NHIface, Port: p.id, DstMAC: p.mac})
	e.route6(p.vrf, p.ip6.String()+"/128", id)
	return id
}

func (e *env) vrfAddr6(vrf uint16, a string) {
	e.t.Helper()
	if err := dp.SetVRFAddress6(vrf, ip(a)); err != nil {
		e.t.Fatal(err)
	}
	e.onCleanup("clear VRF IPv6 address", func() error { return dp.SetVRFAddress6(vrf, netip.Addr{}) })
}

// pkt6 describes an IPv6 packet; ip6 builds it with a hop limit.
type pkt6 struct {
	src, dst     netip.Addr
	proto        uint8
	sport, dport uint16
	tc           uint8
	flow         uint32
	payload      []byte
}

func (p pkt6) ip6(hl uint8) []byte {
	var l4 []byte
	switch p.proto {
	case frames.ProtoTCP:
		l4 = frames.TCP{SrcPort: p.sport, DstPort: p.dport, Seq: 1, Flags: frames.TCPSyn, Window: 1024}.Build(p.src, p.dst, p.payload)
	case frames.ProtoICMP6:
		l4 = frames.ICMP6{Type: frames.ICMP6EchoRequest, Data: uint32(p.sport)<<16 | uint32(p.dport), Body: p.payload}.Build(p.src, p.dst)
	case 59: // no next header
	case 60: // destination options (8 bytes of padding), then UDP
		udp := frames.UDP{SrcPort: p.sport, DstPort: p.dport}.BuildChecksum(p.src, p.dst, p.payload)
		l4 = append([]byte{frames.ProtoUDP, 0, 1, 4, 0, 0, 0, 0}, udp...)
	default:
		p.proto = frames.ProtoUDP
		l4 = frames.UDP{SrcPort: p.sport, DstPort: p.dport}.BuildChecksum(p.src, p.dst, p.payload)
	}
	return frames.IPv6{TrafficClass: p.tc, FlowLabel: p.flow, NextHeader: p.proto, HopLimit: hl, Src: p.src, Dst: p.dst}.Build(l4)
}

func eth6(dst, src net.HardwareAddr, ipPkt []byte) []byte {
	return frames.Ethernet{Dst: dst, Src: src, Type: frames.EtherTypeIPv6}.Build(ipPkt)
}

func (p pod6) from6(ipPkt []byte) []byte { return eth6(vrMAC, p.mac, ipPkt) }
func (p pod6) to6(ipPkt []byte) []byte   { return eth6(p.mac, vrMAC, ipPkt) }

// icmp6 is an ICMPv6 packet from src to dst with hop limit hl.
func icmp6(src, dst netip.Addr, hl uint8, m frames.ICMP6) []byte {
	return frames.IPv6{NextHeader: frames.ProtoICMP6, HopLimit: hl, Src: src, Dst: dst}.Build(m.Build(src, dst))
}

// ns is a Neighbor Solicitation from src for target, to its solicited-node
// group (or to dst if valid), with a source link-layer option.
func ns(p pod6, src, target netip.Addr, hl uint8) []byte {
	dst, dmac := frames.SolicitedNode(target)
	return eth6(dmac, p.mac, icmp6(src, dst, hl, frames.ICMP6{Type: frames.NDNeighborSolicit,
		Body: frames.NDBody(target, 1, p.mac)}))
}

// na is the vRouter's answer to ns: target is at the vRouter MAC.
func na(p pod6, to, target netip.Addr) []byte {
	return eth6(p.mac, vrMAC, icmp6(target, to, 255, frames.ICMP6{Type: frames.NDNeighborAdvert,
		Data: 0xe0000000, Body: frames.NDBody(target, 2, vrMAC)}))
}

// Pod to pod over IPv6: destination MAC from the next-hop, source the
// vRouter MAC, hop limit - 1, nothing else touched.
func TestPodToPod6(t *testing.T) {
	e := newEnv(t)
	a := e.pod6(60, "02:00:00:3c:00:0a", "10.60.0.10", "fd00:60::a", 0)
	b := e.pod6(60, "02:00:00:3c:00:0b", "10.60.0.11", "fd00:60::b", 0)
	e.toPod6(a)
	e.toPod6(b)
	for _, c := range []struct {
		name     string
		from, to pod6
		p        pkt6
		hl       uint8
	}{
		{"udp", a, b, pkt6{src: a.ip6, dst: b.ip6, sport: 1234, dport: 5678, payload: []byte("hello, pod b")}, 64},
		{"tcp with traffic class and flow label", a, b, pkt6{proto: frames.ProtoTCP, src: a.ip6, dst: b.ip6, sport: 40000, dport: 80, tc: 0xb8, flow: 0xabcde}, 64},
		{"echo back", b, a, pkt6{proto: frames.ProtoICMP6, src: b.ip6, dst: a.ip6, sport: 7, dport: 1, payload: make([]byte, 56)}, 2},
		{"extension header", a, b, pkt6{proto: 60, src: a.ip6, dst: b.ip6, sport: 9, dport: 9, payload: []byte("dst opts")}, 255},
		{"large", b, a, pkt6{src: b.ip6, dst: a.ip6, sport: 3, dport: 4, payload: make([]byte, 1500-40-8)}, 64},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := e.with(t)
			e.inject(c.from.id, c.from.from6(c.p.ip6(c.hl)))
			e.expectFrame(c.to.id, c.to.to6(c.p.ip6(c.hl-1)))
		})
	}
	t.Run("ethernet padding", func(t *testing.T) {
		e := e.with(t)
		p := pkt6{src: a.ip6, dst: b.ip6, proto: 59} // no next header: 54 bytes
		in := frames.Pad(a.from6(p.ip6(64)), frames.MinFrame, 0xa5)
		e.inject(a.id, in)
		e.expectFrame(b.id, b.to6(p.ip6(63)))
	})
}

// Neighbor discovery on a pod port: every solicited address is the
// vRouter's but the pod's own.
func TestND6(t *testing.T) {
	e := newEnv(t)
	a := e.pod6(61, "02:00:00:3d:00:0a", "10.61.0.10", "fd00:61::a", 0)
	b := e.pod6(61, "02:00:00:3d:00:0b", "10.61.0.11", "fd00:61::b", 0)
	gw := ip("fe80::1")
	for _, c := range []struct {
		name        string
		src, target netip.Addr
	}{
		{"gateway link-local from link-local", a.ll, gw},
		{"another pod from the global address", a.ip6, b.ip6},
		{"a remote address", a.ll, ip("2001:db8::99")},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := e.with(t)
			e.inject(a.id, ns(a, c.src, c.target, 255))
			e.expectFrame(a.id, na(a, c.src, c.target))
		})
	}
	t.Run("unicast solicitation", func(t *testing.T) {
		e := e.with(t)
		f := eth6(vrMAC, a.mac, icmp6(a.ll, gw, 255, frames.ICMP6{Type: frames.NDNeighborSolicit, Body: frames.NDBody(gw, 0, nil)}))
		e.inject(a.id, f)
		e.expectFrame(a.id, na(a, a.ll, gw))
	})
	e.expectDrop("nd_ignored", 1, a.id, ns(a, netip.IPv6Unspecified(), a.ip6, 255)) // DAD
	e.expectDrop("nd_ignored", 1, a.id, ns(a, a.ll, a.ip6, 255))                    // its own
	e.expectDrop("nd_ignored", 1, a.id, ns(a, a.ll, a.ll, 255))
	e.expectDrop("nd_malformed", 1, a.id, ns(a, a.ll, gw, 64)) // forwarded: not ND
	bad := ns(a, a.ll, gw, 255)
	bad[len(bad)-1] ^= 1
	e.expectDrop("nd_malformed", 1, a.id, bad)
	e.expectDrop("spoof_ip", 1, a.id, ns(a, b.ip6, gw, 255))
}

// rs is a Router Solicitation from src to all routers, its options opts
// (raw bytes after the reserved word).
func rs(p pod6, src netip.Addr, hl uint8, opts []byte) []byte {
	return eth6(frames.MustMAC("33:33:00:00:00:02"), p.mac, icmp6(src, ip("ff02::2"), hl,
		frames.ICMP6{Type: frames.NDRouterSolicit, Body: opts}))
}

// Router Solicitations from a pod are answered with the vRouter's Router
// Advertisement: from its link-local address, lifetime 9000 s, M = O = 0,
// no prefix, its MAC and the port's MTU as options. The expected bytes are
// written out rather than built from the fast path's constants.
func TestRouterSolicit(t *testing.T) {
	e := newEnv(t)
	a := e.pod6(64, "02:00:00:40:00:0a", "10.64.0.10", "fd00:64::a", 1450)
	b := e.pod6(64, "02:00:00:40:00:0b", "10.64.0.11", "fd00:64::b", 0)
	m := vrMAC
	vrLL := netip.AddrFrom16([16]byte{0xfe, 0x80, 8: m[0] ^ 2, 9: m[1], 10: m[2], 11: 0xff, 12: 0xfe, 13: m[3], 14: m[4], 15: m[5]})
	ra := func(dmac net.HardwareAddr, to netip.Addr, mtu uint16) []byte {
		body := []byte{
			0, 0, 0, 0, // reachable time: unspecified
			0, 0, 0, 0, // retransmission timer: unspecified
			1, 1, m[0], m[1], m[2], m[3], m[4], m[5], // source link-layer address
			5, 1, 0, 0, 0, 0, byte(mtu >> 8), byte(mtu), // MTU
		}
		return eth6(dmac, vrMAC, icmp6(vrLL, to, 255, frames.ICMP6{Type: frames.NDRouterAdvert,
			Data: 0x00_00_2328, Body: body})) // hop limit 0 (unspecified), M = O = 0, lifetime 9000
	}
	slla := func(p pod6) []byte { return append([]byte{1, 1}, p.mac...) }
	adverts := func() (n uint64) {
		for w := 0; w < dp.Workers(); w++ {
			s, err := dp.LcoreStats(w)
			if err != nil {
				t.Fatal(err)
			}
			n += s.RouterAdverts
		}
		return n
	}
	for _, c := range []struct {
		name string
		p    pod6
		in   []byte
		want []byte
	}{
		{"from link-local with its MAC", a, rs(a, a.ll, 255, slla(a)), ra(a.mac, a.ll, 1450)},
		{"from the global address, padded", a, frames.Pad(rs(a, a.ip6, 255, nil), frames.MinFrame, 0xa5),
			ra(a.mac, a.ip6, 1450)},
		{"from :: to all nodes", a, rs(a, netip.IPv6Unspecified(), 255, nil),
			ra(frames.MustMAC("33:33:00:00:00:01"), ip("ff02::1"), 1450)},
		{"port of default MTU", b, rs(b, b.ll, 255, slla(b)), ra(b.mac, b.ll, 1500)},
		{"unknown option skipped", a, rs(a, a.ll, 255, append(slla(a), 99, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)),
			ra(a.mac, a.ll, 1450)},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := e.with(t)
			n0 := adverts()
			e.inject(c.p.id, c.in)
			e.expectFrame(c.p.id, c.want)
			if n := adverts(); n != n0+1 {
				t.Errorf("router_adverts grew by %d, want 1", n-n0)
			}
		})
	}
	n0 := adverts()
	e.expectDrop("nd_malformed", 1, a.id, rs(a, a.ll, 64, slla(a))) // forwarded: not ND
	bad := rs(a, a.ll, 255, slla(a))
	bad[len(bad)-1] ^= 1
	e.expectDrop("nd_malformed", 1, a.id, bad)
	e.expectDrop("nd_malformed", 1, a.id, eth6(frames.MustMAC("33:33:00:00:00:02"), a.mac, icmp6(a.ll, ip("ff02::2"), 255,
		frames.ICMP6{Type: frames.NDRouterSolicit, Code: 1})))
	e.expectDrop("nd_malformed", 1, a.id, rs(a, a.ll, 255, []byte{1, 0, 0, 0, 0, 0, 0, 0})) // option of length 0
	e.expectDrop("nd_malformed", 1, a.id, rs(a, a.ll, 255, []byte{1, 2, 0, 0, 0, 0, 0, 0})) // option past the end
	e.expectDrop("nd_malformed", 1, a.id, rs(a, a.ll, 255, []byte{1}))                      // half an option header
	e.expectDrop("nd_malformed", 1, a.id, rs(a, netip.IPv6Unspecified(), 255, slla(a)))     // RFC 4861 6.1.1
	e.expectDrop("nd_malformed", 1, a.id, eth6(frames.MustMAC("33:33:00:00:00:02"), a.mac,
		frames.IPv6{NextHeader: frames.ProtoICMP6, HopLimit: 255, Src: a.ll, Dst: ip("ff02::2")}.Build([]byte{133, 0, 0, 0}))) // 4 bytes
	e.expectDrop("spoof_ip", 1, a.id, rs(a, b.ip6, 255, slla(a)))
	e.expectDrop("spoof_ip", 1, a.id, rs(a, b.ll, 255, slla(a)))
	// An IPv4-only pod is not offered an IPv6 default router.
	v4 := e.pod(64, "02:00:00:40:00:0c", "10.64.0.12")
	v4ll := netip.AddrFrom16([16]byte{0xfe, 0x80, 8: v4.mac[0] ^ 2, 9: v4.mac[1], 10: v4.mac[2], 11: 0xff, 12: 0xfe,
		13: v4.mac[3], 14: v4.mac[4], 15: v4.mac[5]})
	e.expectDrop("nd_ignored", 1, v4.id, rs(pod6{pod: v4}, v4ll, 255, append([]byte{1, 1}, v4.mac...)))
	// A pod's own advertisement is not the vRouter's to answer.
	e.expectDrop("nd_ignored", 1, a.id, eth6(frames.MustMAC("33:33:00:00:00:01"), a.mac, icmp6(a.ll, ip("ff02::1"), 255,
		frames.ICMP6{Type: frames.NDRouterAdvert, Data: 0x40000708, Body: make([]byte, 8)})))
	if n := adverts(); n != n0 {
		t.Errorf("router_adverts grew by %d on rejected solicitations", n-n0)
	}
}

// Echo to the vRouter: to a receive next-hop (routed, from the VRF), and
// to a link-local address (the pod's gateway), answered out of the port.
func TestEcho6(t *testing.T) {
	e := newEnv(t)
	a := e.pod6(62, "02:00:00:3e:00:0a", "10.62.0.10", "fd00:62::a", 0)
	e.toPod6(a)
	e.route6(62, "fd00:62::1/128", e.nh(fastpath.NextHop{Type: fastpath.NHReceive}))
	body := []byte("ping6 payload")
	req := func(src, dst netip.Addr) []byte {
		return a.from6(icmp6(src, dst, 64, frames.ICMP6{Type: frames.ICMP6EchoRequest, Data: 0x12340001, Body: body}))
	}
	rep := func(src, dst netip.Addr) []byte {
		return a.to6(icmp6(src, dst, 64, frames.ICMP6{Type: frames.ICMP6EchoReply, Data: 0x12340001, Body: body}))
	}
	e.inject(a.id, req(a.ip6, ip("fd00:62::1")))
	e.expectFrame(a.id, rep(ip("fd00:62::1"), a.ip6))
	e.inject(a.id, req(a.ll, ip("fe80::1")))
	e.expectFrame(a.id, rep(ip("fe80::1"), a.ll))
}

// Hop limit and MTU: ICMPv6 time exceeded and packet too big from the
// VRF's IPv6 address, quoting the packet; none without an address.
func TestICMP6Errors(t *testing.T) {
	e := newEnv(t)
	a := e.pod6(63, "02:00:00:3f:00:0a", "10.63.0.10", "fd00:63::a", 0)
	b := e.pod6(63, "02:00:00:3f:00:0b", "10.63.0.11", "fd00:63::b", 1400)
	e.toPod6(a)
	e.toPod6(b)
	p := pkt6{src: a.ip6, dst: b.ip6, sport: 1, dport: 2, payload: []byte("expiring")}
	e.expectDrop("ttl_exceeded", 1, a.id, a.from6(p.ip6(1)))
	e.vrfAddr6(63, "fd00:63::1")
	gw := ip("fd00:63::1")
	t.Run("time exceeded", func(t *testing.T) {
		e := e.with(t)
		before := dp.Drops()
		e.inject(a.id, a.from6(p.ip6(1)))
		e.expectFrame(a.id, a.to6(icmp6(gw, a.ip6, 64, frames.ICMP6{Type: frames.ICMP6TimeExceeded, Body: p.ip6(1)})))
		e.checkDrops(before, map[string]uint64{"ttl_exceeded": 1})
	})
	t.Run("packet too big", func(t *testing.T) {
		e := e.with(t)
		big := pkt6{src: a.ip6, dst: b.ip6, sport: 1, dport: 2, payload: make([]byte, 1400-40-8+1)}
		before := dp.Drops()
		e.inject(a.id, a.from6(big.ip6(64)))
		quoted := big.ip6(64)[:1280-48]
		e.expectFrame(a.id, a.to6(icmp6(gw, a.ip6, 64, frames.ICMP6{Type: frames.ICMP6TooBig, Data: 1400, Body: quoted})))
		e.checkDrops(before, map[string]uint64{"too_big": 1})
		fit := big
		fit.payload = fit.payload[1:]
		e.inject(a.id, a.from6(fit.ip6(64)))
		e.expectFrame(b.id, b.to6(fit.ip6(63)))
	})
	t.Run("no error about an error", func(t *testing.T) {
		e := e.with(t)
		te := icmp6(a.ip6, b.ip6, 1, frames.ICMP6{Type: frames.ICMP6TimeExceeded, Body: p.ip6(1)})
		e.expectDrop("ttl_exceeded", 1, a.id, a.from6(te))
	})
}

// A port with IPv6 addresses has IPv6's minimum MTU at least (RFC 8200):
// below it, its RAs and packet too big messages would carry an MTU hosts
// ignore. An IPv4-only port keeps 576.
func TestIPv6PortMinMTU(t *testing.T) {
	e := newEnv(t)
	mac := frames.MustMAC("02:00:00:25:00:0a")
	v6 := fastpath.PortConfig{Kind: fastpath.PortPod, VRF: 37, MAC: mac, MTU: 1279,
		IPv4: []netip.Addr{ip("10.37.0.10")}, IPv6: []netip.Addr{ip("fd00:37::a")}}
	if id, err := dp.AddRingPort("ipv6-1279", v6); err == nil || !strings.Contains(err.Error(), "a port with IPv6 addresses needs at least 1280") {
		if err == nil {
			_ = dp.DelPort(id)
		}
		t.Fatalf("AddRingPort with IPv6 and MTU 1279: %v, want refused", err)
	}
	p := e.pod(37, "02:00:00:25:00:0a", "10.37.0.10")
	v4 := fastpath.PortConfig{Kind: fastpath.PortPod, VRF: 37, MAC: mac, MTU: 576, IPv4: []netip.Addr{p.ip}}
	if err := dp.UpdatePort(p.id, v4); err != nil {
		t.Fatalf("IPv4-only port at MTU 576: %v", err)
	}
	if err := dp.UpdatePort(p.id, v6); err == nil || !strings.Contains(err.Error(), "needs at least 1280") {
		t.Fatalf("UpdatePort to IPv6 with MTU 1279: %v, want refused", err)
	}
	v6.MTU = 1280
	if err := dp.UpdatePort(p.id, v6); err != nil {
		t.Fatalf("IPv6 port at MTU 1280: %v", err)
	}
}

// What a pod may not send, and what is not IPv6 enough to route.
func TestAntiSpoofing6(t *testing.T) {
	e := newEnv(t)
	a := e.pod6(64, "02:00:00:40:00:0a", "10.64.0.10", "fd00:64::a", 0)
	b := e.pod6(64, "02:00:00:40:00:0b", "10.64.0.11", "fd00:64::b", 0)
	e.toPod6(b)
	ok := pkt6{src: a.ip6, dst: b.ip6, sport: 1, dport: 2}
	e.expectDrop("spoof_ip", 1, a.id, a.from6(pkt6{src: ip("fd00:64::c"), dst: b.ip6, sport: 1, dport: 2}.ip6(64)))
	e.expectDrop("ip6_link_scope", 1, a.id, a.from6(pkt6{src: a.ll, dst: b.ip6, sport: 1, dport: 2}.ip6(64)))
	e.expectDrop("ip6_link_scope", 1, a.id, a.from6(pkt6{src: a.ip6, dst: ip("ff05::1"), sport: 1, dport: 2}.ip6(64)))
	e.expectDrop("ip6_link_scope", 1, a.id, a.from6(pkt6{src: a.ip6, dst: ip("::1"), sport: 1, dport: 2}.ip6(64)))
	e.expectDrop("spoof_mac", 1, a.id, eth6(vrMAC, b.mac, ok.ip6(64)))
	e.expectDrop("l2_not_for_us", 1, a.id, eth6(b.mac, a.mac, ok.ip6(64)))
	e.expectDrop("no_route", 1, a.id, a.from6(pkt6{src: a.ip6, dst: ip("fd00:99::1"), sport: 1, dport: 2}.ip6(64)))
	e.inject(a.id, a.from6(ok.ip6(64)))
	e.expectFrame(b.id, b.to6(ok.ip6(63)))
}

// Malformed IPv6 headers, each counted.
func TestMalformed6(t *testing.T) {
	e := newEnv(t)
	a := e.pod6(65, "02:00:00:41:00:0a", "10.65.0.10", "fd00:65::a", 0)
	b := e.pod6(65, "02:00:00:41:00:0b", "10.65.0.11", "fd00:65::b", 0)
	e.toPod6(b)
	good := a.from6(pkt6{src: a.ip6, dst: b.ip6, sport: 1, dport: 2, payload: []byte("x")}.ip6(64))
	e.expectDrop("ip6_truncated", 1, a.id, good[:14+39])
	long := frames.Clone(good)
	binary.BigEndian.PutUint16(long[14+frames.IPv6PayloadLenOff:], uint16(len(good)-14-40+1))
	e.expectDrop("ip6_payload_length", 1, a.id, long)
	v4 := frames.Clone(good)
	v4[14] = 0x40
	e.expectDrop("ip_version", 1, a.id, v4)
	jumbo := frames.Clone(good)
	binary.BigEndian.PutUint16(jumbo[14+frames.IPv6PayloadLenOff:], 0)
	jumbo[14+frames.IPv6NextHeaderOff] = 0
	e.expectDrop("ip6_payload_length", 1, a.id, jumbo)
}

// IPv6 inside the IPv4 overlays: the same outer headers as for IPv4, the
// inner Ethernet type (VXLAN) IPv6, the outer TOS the traffic class.
func TestEncap6(t *testing.T) {
	e := newEnv(t)
	fab, _, vx, mp, gr := tunnels(t, e, 66)
	a := e.pod6(66, "02:00:00:42:00:0b", "10.66.0.11", "fd00:66::b", 0)
	for i, w := range []encapWant{vx, mp, gr} {
		name := []string{"vxlan", "mplsoudp", "mplsogre"}[i]
		id := e.nh(fastpath.NextHop{Type: fastpath.NHTunnel, Port: fab, Encap: w.encap, TunnelDst: w.remote, VNI: w.vni})
		e.route6(66, netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0, 0, 0x66, 0, byte(i + 1)}), 48).String(), id)
		dst := netip.AddrFrom16([16]byte{0xfd, 0, 0, 0x66, 0, byte(i + 1), 15: 5})
		t.Run(name, func(t *testing.T) {
			e := e.with(t)
			p := pkt6{proto: frames.ProtoTCP, src: a.ip6, dst: dst, sport: 33000, dport: 443, tc: 0x2e << 2}
			e.inject(a.id, a.from6(p.ip6(64)))
			got := e.expectFrames(fab, 1, timeout)[0]
			var sport uint16
			if w.encap != fastpath.EncapMPLSoGRE {
				sport = binary.BigEndian.Uint16(got[14+20:])
				if sport < 0xc000 {
					t.Errorf("outer source port %d: not in 49152..65535", sport)
				}
			}
			ww := w
			ww.tos = p.tc
			if d := frames.Diff(encapFrame6(ww, sport, p.ip6(63)), got); d != "" {
				t.Errorf("encapsulated frame:\n%s", d)
			}
			big := pkt6{src: a.ip6, dst: dst, sport: 1, dport: 2, payload: make([]byte, 1500-overhead(w.encap)-48+1)}
			e.expectDrop("too_big", 1, a.id, a.from6(big.ip6(64)))
		})
	}
}

func overhead(enc fastpath.Encap) int {
	switch enc {
	case fastpath.EncapVXLAN:
		return fastpath.VXLANOverhead
	case fastpath.EncapMPLSoUDP:
		return fastpath.MPLSoUDPOverhead
	}
	return fastpath.MPLSoGREOverhead
}

// encapFrame6 is what a tunnel next-hop sends for an inner IPv6 packet.
func encapFrame6(w encapWant, sport uint16, inner []byte) []byte {
	if w.encap != fastpath.EncapVXLAN {
		return encapFrame(w, sport, inner)
	}
	l4 := frames.UDP{SrcPort: sport, DstPort: frames.PortVXLAN}.Build(
		frames.VXLAN{Flags: frames.VXLANFlagI, VNI: w.vni}.Build(eth6(vrMAC, vrMAC, inner)))
	return eth(w.nbrMAC, fabricMAC, frames.IPv4{TOS: w.tos, Flags: frames.IPv4DF, TTL: 64,
		Protocol: frames.ProtoUDP, Src: underlay, Dst: w.remote}.Build(l4))
}

// IPv6 out of the IPv4 overlays: MPLS says nothing of what it carries, the
// first nibble does.
func TestDecap6(t *testing.T) {
	e := newEnv(t)
	fab := e.fabric(1500)
	a := e.pod6(67, "02:00:00:43:00:0a", "10.67.0.10", "fd00:67::a", 0)
	e.toPod6(a)
	e.vni(5067, 67)
	e.label(567, 67)
	p := pkt6{src: ip("fd00:99::9"), dst: a.ip6, sport: 4000, dport: 5000, payload: []byte("from afar")}
	lbl := frames.MPLS{Label: 567, BoS: true, TTL: 64}
	e.inject(fab, vxlanIn(t, 2, frames.VXLANFlagI, 5067, eth6(vrMAC, vrMAC, p.ip6(63))))
	e.expectFrame(a.id, a.to6(p.ip6(62)))
	e.inject(fab, mplsIn(t, 3, lbl, p.ip6(60)))
	e.expectFrame(a.id, a.to6(p.ip6(59)))
	e.inject(fab, greIn(t, 4, frames.GRE{Protocol: frames.GREProtoMPLS}, lbl, p.ip6(60)))
	e.expectFrame(a.id, a.to6(p.ip6(59)))
	// not IP at all, and link-local inside
	notIP := p.ip6(60)
	notIP[0] = 0x50
	e.expectDrop("inner_not_ipv4", 1, fab, mplsIn(t, 3, lbl, notIP))
	ll := pkt6{src: ip("fe80::9"), dst: a.ip6, sport: 1, dport: 2}
	e.expectDrop("ip6_link_scope", 1, fab, mplsIn(t, 3, lbl, ll.ip6(60)))
	e.expectDrop("ip6_truncated", 1, fab, vxlanIn(t, 2, frames.VXLANFlagI, 5067, eth6(vrMAC, vrMAC, p.ip6(63)[:30])))
}

// The node's stack over IPv6: a pod address routed in the host VRF is
// resolved to the vRouter (NS answered) and routed to the pod; anything
// else goes out of the fabric unchanged.
func TestHostPort6(t *testing.T) {
	e := newEnv(t)
	fab := e.fabric(1500)
	a := e.pod6(68, "02:00:00:44:00:0a", "10.68.0.10", "fd00:68::a", 0)
	e.toPod6(a)
	h := e.host(68)
	hostMAC := frames.MustMAC("02:40:00:00:00:01")
	node := ip("fd00:68::fe")
	dst, dmac := frames.SolicitedNode(a.ip6)
	nsf := eth6(dmac, hostMAC, icmp6(node, dst, 255, frames.ICMP6{Type: frames.NDNeighborSolicit,
		Body: frames.NDBody(a.ip6, 1, hostMAC)}))
	e.inject(h, nsf)
	e.expectFrame(h, eth6(hostMAC, vrMAC, icmp6(a.ip6, node, 255, frames.ICMP6{Type: frames.NDNeighborAdvert,
		Data: 0xe0000000, Body: frames.NDBody(a.ip6, 2, vrMAC)})))
	p := pkt6{proto: frames.ProtoTCP, src: node, dst: a.ip6, sport: 40000, dport: 8080}
	e.inject(h, eth6(vrMAC, hostMAC, p.ip6(64)))
	e.expectFrame(a.id, a.to6(p.ip6(63)))
	// not routed in the host VRF: out of the fabric as it is
	other := eth6(frames.MustMAC("02:fb:00:00:00:09"), hostMAC, pkt6{src: node, dst: ip("2001:db8::9"), sport: 1, dport: 2}.ip6(64))
	e.inject(h, other)
	e.expectFrame(fab, other)
}
