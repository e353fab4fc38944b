package fastpath_test

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/dpdk/frames"
)

// vrfAddress gives vrf the vRouter address addr for the test's duration.
func vrfAddress(t *testing.T, vrf uint16, addr netip.Addr) {
	t.Helper()
	if err := dp.SetVRFAddress(vrf, addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dp.SetVRFAddress(vrf, netip.Addr{}) })
}

// icmpError is the IPv4 packet the vRouter (at from) sends to the source of
// orig: ICMP type/code, the next-hop MTU for "fragmentation needed", and
// orig's header plus 8 bytes.
func icmpError(from netip.Addr, orig []byte, typ, code uint8, mtu uint16) []byte {
	ihl := int(orig[0]&0xf) * 4
	quoted := orig[:min(len(orig), ihl+8)]
	icmp := make([]byte, 8, 8+len(quoted))
	icmp[0], icmp[1] = typ, code
	binary.BigEndian.PutUint16(icmp[6:], mtu)
	icmp = append(icmp, quoted...)
	binary.BigEndian.PutUint16(icmp[2:], frames.Checksum(icmp))
	src := netip.AddrFrom4([4]byte(orig[frames.IPv4SrcOff : frames.IPv4SrcOff+4]))
	return frames.IPv4{TOS: 0xc0, TTL: 64, Protocol: frames.ProtoICMP, Src: from, Dst: src}.Build(icmp)
}

// A packet whose TTL runs out gets "time exceeded" from the VRF's vRouter
// address; a packet too big for the next hop with DF gets "fragmentation
// needed" with the next hop's MTU, through an interface or a tunnel; each
// is still counted under its drop reason.
func TestICMPErrors(t *testing.T) {
	e := newEnv(t)
	const vrf = 31
	fab, a, vx, mp, gr := tunnels(t, e, vrf)
	_ = fab
	e.toPod(a)
	b := e.pod(vrf, "02:00:00:1f:00:0b", "10.31.0.11")
	e.toPod(b)
	gw := ip("10.31.0.1")
	vrfAddress(t, vrf, gw)

	expectError := func(name string, in, wantIP []byte, reason string) {
		t.Helper()
		before := dp.Drops()
		e.inject(a.id, a.from(in))
		e.expectFrame(a.id, a.to(wantIP))
		e.expectNothing()
		e.checkDrops(before, map[string]uint64{reason: 1})
	}

	p := pkt{src: a.ip, dst: b.ip, sport: 7, dport: 9, payload: []byte("a payload longer than eight bytes")}
	for _, ttl := range []uint8{0, 1} {
		orig := p.ip4(ttl)
		expectError("time exceeded", orig, icmpError(gw, orig, 11, 0, 0), "ttl_exceeded")
	}
	// ICMP echo requests get errors too (traceroute -I).
	echo := pkt{src: a.ip, dst: b.ip, proto: frames.ProtoICMP, sport: 1, dport: 1}.ip4(1)
	expectError("time exceeded, echo", echo, icmpError(gw, echo, 11, 0, 0), "ttl_exceeded")

	big := pkt{src: a.ip, dst: b.ip, flags: frames.IPv4DF, sport: 7, dport: 9, payload: make([]byte, 1500-28+1)}.ip4(64)
	expectError("frag needed, interface", big, icmpError(gw, big, 3, 4, 1500), "too_big")
	for _, c := range []struct {
		w   encapWant
		dst string
		mtu uint16
	}{{vx, "10.31.1.9", 1450}, {mp, "10.31.2.9", 1468}, {gr, "10.31.3.9", 1472}} {
		big := pkt{src: a.ip, dst: ip(c.dst), flags: frames.IPv4DF, sport: 7, dport: 9,
			payload: make([]byte, int(c.mtu)-28+1)}.ip4(64)
		expectError("frag needed, tunnel", big, icmpError(gw, big, 3, 4, c.mtu), "too_big")
	}

	// Without DF: dropped, no error (the vRouter does not fragment).
	noDF := pkt{src: a.ip, dst: b.ip, sport: 7, dport: 9, payload: make([]byte, 1500-28+1)}.ip4(64)
	e.expectDrop("too_big", 1, a.id, a.from(noDF))
	// No error about an ICMP error (RFC 1812 4.3.2.7).
	unreach := frames.IPv4{TTL: 1, Protocol: frames.ProtoICMP, Src: a.ip, Dst: b.ip}.Build(make([]byte, 36))
	unreach[20] = 3
	e.expectDrop("ttl_exceeded", 1, a.id, a.from(unreach))
	// Nor about a non-first fragment.
	frag := pkt{src: a.ip, dst: b.ip, sport: 7, dport: 9}.ip4(1)
	frag[frames.IPv4FragOff+1] = 10
	frames.FixIPv4Checksum(frag[:20])
	e.expectDrop("ttl_exceeded", 1, a.id, a.from(frag))
	// A VRF without an address sends no errors.
	if err := dp.SetVRFAddress(vrf, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	e.expectDrop("ttl_exceeded", 1, a.id, a.from(p.ip4(1)))
}

// An ICMP error the vRouter cannot send back (here: no route to the
// sender) is counted icmp_error_unsent, and the packet that caused it once,
// under its own reason: never twice under two causes.
func TestICMPErrorUnsent(t *testing.T) {
	e := newEnv(t)
	t.Run("IPv4", func(t *testing.T) {
		e := e.with(t)
		const vrf = 35
		a := e.pod(vrf, "02:00:00:23:00:0a", "10.35.0.10") // no route back to it
		b := e.pod(vrf, "02:00:00:23:00:0b", "10.35.0.11")
		e.toPod(b)
		vrfAddress(t, vrf, ip("10.35.0.1"))
		ttl := pkt{src: a.ip, dst: b.ip, sport: 7, dport: 9, payload: []byte("expiring")}.ip4(1)
		big := pkt{src: a.ip, dst: b.ip, flags: frames.IPv4DF, sport: 7, dport: 9, payload: make([]byte, 1500-28+1)}.ip4(64)
		for _, c := range []struct {
			in     []byte
			reason string
		}{{ttl, "ttl_exceeded"}, {big, "too_big"}} {
			before := dp.Drops()
			e.inject(a.id, a.from(c.in))
			waitFor(t, "icmp_error_unsent +1", func() bool { return dp.Drops()["icmp_error_unsent"] > before["icmp_error_unsent"] })
			e.expectNothing()
			e.checkDrops(before, map[string]uint64{c.reason: 1, "icmp_error_unsent": 1})
		}
	})
	t.Run("IPv6", func(t *testing.T) {
		e := e.with(t)
		const vrf = 36
		a := e.pod6(vrf, "02:00:00:24:00:0a", "10.36.0.10", "fd00:36::a", 0) // no route back to it
		b := e.pod6(vrf, "02:00:00:24:00:0b", "10.36.0.11", "fd00:36::b", 1400)
		e.toPod6(b)
		e.vrfAddr6(vrf, "fd00:36::1")
		ttl := pkt6{src: a.ip6, dst: b.ip6, sport: 1, dport: 2, payload: []byte("expiring")}.ip6(1)
		big := pkt6{src: a.ip6, dst: b.ip6, sport: 1, dport: 2, payload: make([]byte, 1400-40-8+1)}.ip6(64)
		for _, c := range []struct {
			in     []byte
			reason string
		}{{ttl, "ttl_exceeded"}, {big, "too_big"}} {
			before := dp.Drops()
			e.inject(a.id, a.from6(c.in))
			waitFor(t, "icmp_error_unsent +1", func() bool { return dp.Drops()["icmp_error_unsent"] > before["icmp_error_unsent"] })
			e.expectNothing()
			e.checkDrops(before, map[string]uint64{c.reason: 1, "icmp_error_unsent": 1})
		}
	})
}

// Changing a port's MTU reaches the next-hops that use it.
func TestPortUpdateRebuildsNextHops(t *testing.T) {
	e := newEnv(t)
	const vrf = 32
	a := e.pod(vrf, "02:00:00:20:00:0a", "10.32.0.10")
	b := e.pod(vrf, "02:00:00:20:00:0b", "10.32.0.11")
	e.toPod(b)
	p := pkt{src: a.ip, dst: b.ip, sport: 7, dport: 9, payload: make([]byte, 1000-28)}
	e.inject(a.id, a.from(p.ip4(64)))
	e.expectFrame(b.id, b.to(p.ip4(63)))
	if err := dp.UpdatePort(b.id, fastpath.PortConfig{Kind: fastpath.PortPod, VRF: vrf, MAC: b.mac,
		IPv4: []netip.Addr{b.ip}, MTU: 999}); err != nil {
		t.Fatal(err)
	}
	e.expectDrop("too_big", 1, a.id, a.from(p.ip4(64)))
	if err := dp.UpdatePort(b.id, fastpath.PortConfig{Kind: fastpath.PortPod, VRF: vrf, MAC: b.mac,
		IPv4: []netip.Addr{b.ip}, MTU: 1000}); err != nil {
		t.Fatal(err)
	}
	e.inject(a.id, a.from(p.ip4(64)))
	e.expectFrame(b.id, b.to(p.ip4(63)))
}
