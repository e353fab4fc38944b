package fastpath_test

import (
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/dpdk/frames"
)

// wantErr fails unless err wraps errno and carries a message containing msg.
func wantErr(t *testing.T, what string, err error, errno syscall.Errno, msg string) {
	t.Helper()
	var fe *fastpath.Error
	switch {
	case err == nil:
		t.Errorf("%s: accepted, want %v", what, errno)
	case !errors.Is(err, errno):
		t.Errorf("%s: %v, want %v", what, err, errno)
	case !errors.As(err, &fe) || fe.Msg == "" || !strings.Contains(err.Error(), msg):
		t.Errorf("%s: message %q, want one containing %q", what, err, msg)
	}
}

// The control API refuses what the fast path could not forward with, says
// why, and leaves the tables as they were.
func TestControlValidation(t *testing.T) {
	e := newEnv(t)
	fab := e.fabric(1500)
	a := e.pod(100, "02:00:00:64:00:0a", "10.100.0.10")
	iface := e.toPod(a)
	r2, _ := remote(t, 2)
	const missingNH = 60000
	pfx := netip.MustParsePrefix

	// Routes.
	wantErr(t, "host bits set", dp.AddRoute4(100, pfx("10.100.1.1/24"), iface), syscall.EINVAL, "host bits")
	wantErr(t, "prefix length 33", dp.AddRoute4(100, netip.PrefixFrom(ip("10.100.1.0"), 33), iface), syscall.EINVAL, "")
	wantErr(t, "IPv6 prefix", dp.AddRoute4(100, pfx("2001:db8::/32"), iface), syscall.EINVAL, "not an IPv4 prefix")
	wantErr(t, "VRF out of range", dp.AddRoute4(fastpath.MaxVRFs, pfx("10.100.1.0/24"), iface), syscall.EINVAL, "VRF")
	wantErr(t, "route to a missing next-hop", dp.AddRoute4(100, pfx("10.100.1.0/24"), missingNH), syscall.EINVAL, "does not exist")
	wantErr(t, "next-hop id out of range", dp.AddRoute4(100, pfx("10.100.1.0/24"), 1<<30), syscall.EINVAL, "does not exist")
	wantErr(t, "delete a missing route", dp.DelRoute4(100, pfx("10.100.1.0/24")), syscall.ENOENT, "no such route")
	wantErr(t, "delete in a VRF without FIB", dp.DelRoute4(4000, pfx("10.100.1.0/24")), syscall.ENOENT, "no such route")
	if _, ok := dp.LookupRoute4(100, ip("10.100.1.1")); ok {
		t.Error("a refused route is in the FIB")
	}

	// Next-hops.
	wantErr(t, "next-hop on a missing port", dp.SetNextHop(missingNH, fastpath.NextHop{Type: fastpath.NHIface,
		Port: 31, DstMAC: a.mac}), syscall.EINVAL, "port 31 does not exist")
	wantErr(t, "tunnel on a pod port", dp.SetNextHop(missingNH, fastpath.NextHop{Type: fastpath.NHTunnel,
		Port: a.id, TunnelDst: r2, VNI: 1}), syscall.EINVAL, "not a fabric port")
	wantErr(t, "tunnel to 0.0.0.0", dp.SetNextHop(missingNH, fastpath.NextHop{Type: fastpath.NHTunnel,
		Port: fab, TunnelDst: ip("0.0.0.0"), VNI: 1}), syscall.EINVAL, "0.0.0.0")
	wantErr(t, "VNI 2^24", dp.SetNextHop(missingNH, fastpath.NextHop{Type: fastpath.NHTunnel,
		Port: fab, TunnelDst: r2, VNI: 1 << 24}), syscall.EINVAL, "VNI 16777216")
	wantErr(t, "label 15", dp.SetNextHop(missingNH, fastpath.NextHop{Type: fastpath.NHTunnel, Encap: fastpath.EncapMPLSoUDP,
		Port: fab, TunnelDst: r2, VNI: 15}), syscall.EINVAL, "label 15")
	wantErr(t, "label 2^20", dp.SetNextHop(missingNH, fastpath.NextHop{Type: fastpath.NHTunnel, Encap: fastpath.EncapMPLSoUDP,
		Port: fab, TunnelDst: r2, VNI: 1 << 20}), syscall.EINVAL, "label")
	wantErr(t, "unknown encapsulation", dp.SetNextHop(missingNH, fastpath.NextHop{Type: fastpath.NHTunnel, Encap: 7,
		Port: fab, TunnelDst: r2, VNI: 100}), syscall.EINVAL, "encapsulation")
	wantErr(t, "unknown type", dp.SetNextHop(missingNH, fastpath.NextHop{Type: 9}), syscall.EINVAL, "type")
	wantErr(t, "ECMP without members", dp.SetNextHop(missingNH, fastpath.NextHop{Type: fastpath.NHECMP}), syscall.EINVAL, "members")
	wantErr(t, "ECMP with a missing member", dp.SetNextHop(missingNH, fastpath.NextHop{Type: fastpath.NHECMP,
		Members: []uint32{iface, missingNH + 1}}), syscall.EINVAL, "does not exist")
	rcv := e.nh(fastpath.NextHop{Type: fastpath.NHReceive})
	wantErr(t, "ECMP with a receive member", dp.SetNextHop(missingNH, fastpath.NextHop{Type: fastpath.NHECMP,
		Members: []uint32{iface, rcv}}), syscall.EINVAL, "interface or tunnel")
	wantErr(t, "next-hop id out of range", dp.SetNextHop(1<<30, fastpath.NextHop{Type: fastpath.NHDiscard}), syscall.EINVAL, "out of range")
	wantErr(t, "delete a missing next-hop", dp.DelNextHop(missingNH), syscall.ENOENT, "does not exist")
	wantErr(t, "delete a next-hop a route uses", dp.DelNextHop(iface), syscall.EBUSY, "used by")
	e.nh(fastpath.NextHop{Type: fastpath.NHECMP, Members: []uint32{iface}})
	wantErr(t, "make an ECMP member a discard", dp.SetNextHop(iface, fastpath.NextHop{Type: fastpath.NHDiscard}), syscall.EBUSY, "ECMP group")

	// Ports.
	wantErr(t, "a second fabric port", addRing("dupfab", fastpath.PortConfig{Kind: fastpath.PortFabric, MAC: fabricMAC,
		IPv4: []netip.Addr{underlay}}), syscall.EEXIST, "fabric port exists")
	wantErr(t, "pod port without a MAC", addRing("nomac", fastpath.PortConfig{Kind: fastpath.PortPod, VRF: 100}), syscall.EINVAL, "MAC")
	wantErr(t, "pod port with a multicast MAC", addRing("mcast", fastpath.PortConfig{Kind: fastpath.PortPod,
		MAC: frames.MustMAC("01:00:5e:00:00:01")}), syscall.EINVAL, "MAC")
	wantErr(t, "port VRF out of range", addRing("badvrf", fastpath.PortConfig{Kind: fastpath.PortPod, VRF: fastpath.MaxVRFs,
		MAC: a.mac}), syscall.EINVAL, "VRF")
	wantErr(t, "MTU 100", addRing("badmtu", fastpath.PortConfig{Kind: fastpath.PortPod, MTU: 100, MAC: a.mac}), syscall.EINVAL, "mtu")
	wantErr(t, "delete a port next-hops use", dp.DelPort(a.id), syscall.EBUSY, "used by")
	wantErr(t, "delete a missing port", dp.DelPort(31), syscall.ENOENT, "does not exist")

	// Maps and neighbours.
	wantErr(t, "VNI 2^24", dp.SetVNI(1<<24, 100), syscall.EINVAL, "VNI")
	wantErr(t, "VNI to a VRF out of range", dp.SetVNI(5100, fastpath.MaxVRFs), syscall.EINVAL, "VRF")
	wantErr(t, "label 15", dp.SetLabel(15, 100), syscall.EINVAL, "label 15")
	wantErr(t, "delete an unmapped VNI", dp.DelVNI(5100), syscall.ENOENT, "not mapped")
	wantErr(t, "delete an unmapped label", dp.DelLabel(5100), syscall.ENOENT, "not mapped")
	wantErr(t, "neighbour with a multicast MAC", dp.SetNeighbor(r2, frames.MustMAC("01:00:00:00:00:01")), syscall.EINVAL, "unicast")
	wantErr(t, "neighbour 0.0.0.0", dp.SetNeighbor(ip("0.0.0.0"), frames.MustMAC("02:00:00:00:00:01")), syscall.EINVAL, "non-zero")
	if _, _, err := dp.Neighbor(ip("192.168.100.250")); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("unknown neighbour: %v, want ENOENT", err)
	}

	// Nothing above changed the forwarding.
	b := e.pod(100, "02:00:00:64:00:0b", "10.100.0.11")
	p := pkt{src: b.ip, dst: a.ip, sport: 1, dport: 2}
	e.inject(b.id, b.from(p.ip4(64)))
	e.expectFrame(a.id, a.to(p.ip4(63)))
}

func addRing(name string, pc fastpath.PortConfig) error {
	id, err := dp.AddRingPort(name, pc)
	if err == nil {
		dp.DelPort(id)
	}
	return err
}

// Longest-prefix match, route replacement and deletion, as the fast path
// sees them.
func TestRoutes(t *testing.T) {
	e := newEnv(t)
	a := e.pod(101, "02:00:00:65:00:0a", "10.101.0.10")
	b := e.pod(101, "02:00:00:65:00:0b", "10.101.0.11")
	na := e.nh(fastpath.NextHop{Type: fastpath.NHIface, Port: a.id, DstMAC: a.mac})
	nb := e.nh(fastpath.NextHop{Type: fastpath.NHIface, Port: b.id, DstMAC: b.mac})
	disc := e.nh(fastpath.NextHop{Type: fastpath.NHDiscard})
	rcv := e.nh(fastpath.NextHop{Type: fastpath.NHReceive})
	e.route(101, "0.0.0.0/0", disc)
	e.route(101, "10.0.0.0/8", na)
	e.route(101, "10.101.0.0/16", nb)
	e.route(101, "10.101.7.0/24", na)
	e.route(101, "10.101.7.128/25", nb)
	e.route(101, "10.101.7.200/32", rcv)
	for _, c := range []struct {
		addr string
		nh   uint32
	}{
		{"1.2.3.4", disc}, {"10.1.1.1", na}, {"10.101.200.1", nb}, {"10.101.7.1", na},
		{"10.101.7.127", na}, {"10.101.7.128", nb}, {"10.101.7.199", nb}, {"10.101.7.200", rcv},
		{"10.101.7.201", nb}, {"10.101.8.0", nb}, {"11.0.0.0", disc},
	} {
		if got, ok := dp.LookupRoute4(101, ip(c.addr)); !ok || got != c.nh {
			t.Errorf("lookup %s: %d %v, want %d", c.addr, got, ok, c.nh)
		}
	}
	if _, ok := dp.LookupRoute4(102, ip("10.1.1.1")); ok {
		t.Error("lookup in a VRF without routes succeeded")
	}

	// The default route forwards, holds its next-hop, can be repointed and
	// deleted.
	far := pkt{src: a.ip, dst: ip("1.2.3.4"), sport: 5, dport: 6}
	e.expectDrop("nh_discard", 1, a.id, a.from(far.ip4(64)))
	def := e.nh(fastpath.NextHop{Type: fastpath.NHIface, Port: b.id, DstMAC: frames.MustMAC("02:00:00:65:00:dd")})
	if err := dp.AddRoute4(101, netip.MustParsePrefix("0.0.0.0/0"), def); err != nil {
		t.Fatal(err)
	}
	e.inject(a.id, a.from(far.ip4(64)))
	e.expectFrame(b.id, eth(frames.MustMAC("02:00:00:65:00:dd"), vrMAC, far.ip4(63)))
	wantErr(t, "delete the default route's next-hop", dp.DelNextHop(def), syscall.EBUSY, "used by")
	if err := dp.DelRoute4(101, netip.MustParsePrefix("0.0.0.0/0")); err != nil {
		t.Fatal(err)
	}
	if nh, ok := dp.LookupRoute4(101, far.dst); ok {
		t.Errorf("lookup after deleting the default route: %d", nh)
	}
	e.expectDrop("no_route", 1, a.id, a.from(far.ip4(64)))
	wantErr(t, "delete the default route twice", dp.DelRoute4(101, netip.MustParsePrefix("0.0.0.0/0")), syscall.ENOENT, "no such route")
	if err := dp.AddRoute4(101, netip.MustParsePrefix("0.0.0.0/0"), disc); err != nil {
		t.Fatal(err) // back for the cleanup
	}

	// Replace the /25's next-hop: traffic moves, the old next-hop is free
	// of that route.
	p := pkt{src: a.ip, dst: ip("10.101.7.130"), sport: 1, dport: 2}
	e.inject(a.id, a.from(p.ip4(64)))
	e.expectFrame(b.id, eth(b.mac, vrMAC, p.ip4(63)))
	if err := dp.AddRoute4(101, netip.MustParsePrefix("10.101.7.128/25"), na); err != nil {
		t.Fatal(err)
	}
	if got, _ := dp.LookupRoute4(101, ip("10.101.7.130")); got != na {
		t.Errorf("after replacing: next-hop %d, want %d", got, na)
	}
	e.inject(a.id, a.from(p.ip4(64)))
	e.expectFrame(a.id, eth(a.mac, vrMAC, p.ip4(63)))

	// A next-hop is free once its last route is gone.
	extra := e.nh(fastpath.NextHop{Type: fastpath.NHIface, Port: b.id, DstMAC: b.mac})
	if err := dp.AddRoute4(101, netip.MustParsePrefix("10.101.9.0/24"), extra); err != nil {
		t.Fatal(err)
	}
	if err := dp.AddRoute4(101, netip.MustParsePrefix("10.101.9.0/24"), nb); err != nil {
		t.Fatal(err)
	}
	if err := dp.DelNextHop(extra); err != nil {
		t.Errorf("next-hop whose route was repointed: %v", err)
	} else if err := dp.SetNextHop(extra, fastpath.NextHop{Type: fastpath.NHDiscard}); err != nil {
		t.Fatal(err) // recreated for the cleanup to delete
	}
	if err := dp.DelRoute4(101, netip.MustParsePrefix("10.101.9.0/24")); err != nil {
		t.Fatal(err)
	}
	if got, _ := dp.LookupRoute4(101, ip("10.101.9.1")); got != nb {
		t.Errorf("after deleting the /24: next-hop %d, want the /16's %d", got, nb)
	}

	// Replacing a next-hop in place: the route follows it.
	if err := dp.SetNextHop(nb, fastpath.NextHop{Type: fastpath.NHIface, Port: b.id, DstMAC: frames.MustMAC("02:00:00:65:00:bb")}); err != nil {
		t.Fatal(err)
	}
	q := pkt{src: a.ip, dst: ip("10.101.50.1"), sport: 3, dport: 4}
	e.inject(a.id, a.from(q.ip4(64)))
	e.expectFrame(b.id, eth(frames.MustMAC("02:00:00:65:00:bb"), vrMAC, q.ip4(63)))
}

// Adaptive polling: an idle worker sleeps.
func TestAdaptivePolling(t *testing.T) {
	for w := range dp.Workers() {
		s0, err := dp.LcoreStats(w)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the idle worker to sleep", func() bool {
			s, _ := dp.LcoreStats(w)
			return s.Sleeps > s0.Sleeps+10
		})
		s1, _ := dp.LcoreStats(w)
		if s1.Polls <= s0.Polls {
			t.Errorf("worker %d: polls %d -> %d", w, s0.Polls, s1.Polls)
		}
	}
	// Stats of a missing worker are refused.
	if _, err := dp.LcoreStats(dp.Workers()); err == nil {
		t.Error("LcoreStats of a worker that does not exist")
	}
}
