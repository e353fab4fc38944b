package fastpath_test

import (
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"

	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/dpdk/frames"
)

// ecmpFlows are n UDP flows from src into 10.<net2>.0.0/16, varying the
// destination address and the source port.
func ecmpFlows(src netip.Addr, net2 byte, n int) []pkt {
	fl := make([]pkt, n)
	for i := range fl {
		fl[i] = pkt{src: src, dst: netip.AddrFrom4([4]byte{10, net2, byte(i / 200), byte(i%200 + 1)}),
			sport: uint16(10000 + 7*i), dport: 8080, payload: []byte("ecmp")}
	}
	return fl
}

type flowKey struct {
	dst   netip.Addr
	sport uint16
}

// A group of 4 tunnels shares 1,000 flows evenly (each within 15% of 250),
// and a flow always takes the same member with the same outer source port
// (VXLAN; MPLSoGRE has none: the pick is the vRouter's, the underlay sees
// one flow per tunnel).
func TestECMP(t *testing.T) {
	for _, c := range []struct {
		name  string
		encap fastpath.Encap
		vni   uint32
		vrf   uint16
	}{
		{"vxlan", fastpath.EncapVXLAN, 5090, 90},
		{"mplsogre", fastpath.EncapMPLSoGRE, 690, 94},
	} {
		t.Run(c.name, func(t *testing.T) { testECMP(t, c.encap, c.vni, c.vrf) })
	}
}

func testECMP(t *testing.T, encap fastpath.Encap, vni uint32, vrf uint16) {
	e := newEnv(t)
	fab := e.fabric(1500)
	a := e.pod(vrf, "02:00:00:5a:00:0a", netip.AddrFrom4([4]byte{10, byte(vrf), 0, 10}).String())
	var members []uint32
	member := map[netip.Addr]int{}
	want := map[netip.Addr]encapWant{}
	for i := range 4 {
		r, m := remote(t, 10+i)
		w := encapWant{encap: encap, remote: r, nbrMAC: m, vni: vni}
		members = append(members, e.nh(fastpath.NextHop{Type: fastpath.NHTunnel, Port: fab, Encap: w.encap, TunnelDst: r, VNI: w.vni}))
		member[r] = i
		want[r] = w
	}
	net2 := byte(vrf + 1)
	e.route(vrf, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, net2, 0, 0}), 16).String(),
		e.nh(fastpath.NextHop{Type: fastpath.NHECMP, Members: members}))

	flows := ecmpFlows(a.ip, net2, 1000)
	byKey := map[flowKey]pkt{}
	var in [][]byte
	for _, p := range flows {
		byKey[flowKey{p.dst, p.sport}] = p
		in = append(in, a.from(p.ip4(64)))
	}
	type choice struct {
		member int
		sport  uint16
	}
	// run sends every flow and returns where each went.
	run := func(in [][]byte) map[flowKey]choice {
		e.inject(a.id, in...)
		out := e.expectFrames(fab, len(in), timeout)
		got := map[flowKey]choice{}
		for _, f := range out {
			p, err := frames.Parse(f)
			if err != nil || p.Inner == nil || p.Inner.IPv4 == nil || p.Inner.UDP == nil {
				t.Fatalf("not a tunnel frame with inner UDP: %v: %s", err, frames.Summary(f))
			}
			k := flowKey{p.Inner.IPv4.Dst, p.Inner.UDP.SrcPort}
			fl, ok := byKey[k]
			if !ok {
				t.Fatalf("frame of an unknown flow: %s", frames.Summary(f))
			}
			if _, dup := got[k]; dup {
				t.Fatalf("flow %v twice", k)
			}
			mi, ok := member[p.IPv4.Dst]
			if !ok {
				t.Fatalf("to %v, not a member", p.IPv4.Dst)
			}
			sport := checkEncap(t, f, want[p.IPv4.Dst], fl.ip4(63))
			got[k] = choice{mi, sport}
		}
		return got
	}
	first := run(in)
	count := make([]int, len(members))
	sports := map[uint16]bool{}
	for _, c := range first {
		count[c.member]++
		sports[c.sport] = true
	}
	t.Logf("flows per member: %v; %d distinct outer source ports", count, len(sports))
	for i, n := range count {
		if n < 212 || n > 288 {
			t.Errorf("member %d got %d of 1000 flows, want 250 ± 15%%", i, n)
		}
	}
	if encap == fastpath.EncapVXLAN && len(sports) < 500 {
		t.Errorf("only %d distinct outer UDP source ports for 1000 flows", len(sports))
	}

	// Again, in reverse order: every flow sticks to its member.
	slices.Reverse(in)
	second := run(in)
	for k, c := range first {
		if second[k] != c {
			t.Errorf("flow %v: member %d port %d, then member %d port %d", k, c.member, c.sport, second[k].member, second[k].sport)
		}
	}
}

// Groups of 64 members and more (up to FP_MAX_ECMP), over interface
// next-hops; every member of the largest one is used.
func TestECMPLarge(t *testing.T) {
	e := newEnv(t)
	a := e.pod(92, "02:00:00:5c:00:0a", "10.92.0.10")
	b := e.pod(92, "02:00:00:5c:00:0b", "10.92.0.11")
	var members []uint32
	memberMAC := map[string]int{}
	for i := range fastpath.MaxECMP {
		m := net.HardwareAddr{0x02, 0xec, 0, 0, byte(i >> 8), byte(i)}
		members = append(members, e.nh(fastpath.NextHop{Type: fastpath.NHIface, Port: b.id, DstMAC: m}))
		memberMAC[m.String()] = i
	}
	for _, n := range []int{64, 100} {
		e.nh(fastpath.NextHop{Type: fastpath.NHECMP, Members: members[:n]})
	}
	g := e.nh(fastpath.NextHop{Type: fastpath.NHECMP, Members: members})
	wantErr(t, "ECMP group of MaxECMP+1 members", dp.SetNextHop(65001, fastpath.NextHop{Type: fastpath.NHECMP,
		Members: append(members, members[0])}), syscall.EINVAL, "ECMP members")
	e.route(92, "10.93.0.0/16", g)

	flows := ecmpFlows(a.ip, 93, 1000)
	var in [][]byte
	for _, p := range flows {
		in = append(in, a.from(p.ip4(64)))
	}
	used := map[int]int{}
	pick := map[flowKey]int{}
	for round := range 2 {
		e.inject(a.id, in...)
		for _, f := range e.expectFrames(b.id, len(in), timeout) {
			p, err := frames.Parse(f)
			if err != nil || p.UDP == nil {
				t.Fatalf("bad frame: %v %s", err, frames.Summary(f))
			}
			mi, ok := memberMAC[p.Eth.Dst.String()]
			if !ok || p.IPv4.TTL != 63 || !p.IPv4.ChecksumOK {
				t.Fatalf("not from a member, or not forwarded right: %v", frames.Fields(f))
			}
			k := flowKey{p.IPv4.Dst, p.UDP.SrcPort}
			if round == 0 {
				pick[k] = mi
				used[mi]++
			} else if pick[k] != mi {
				t.Errorf("flow %v: member %d, then %d", k, pick[k], mi)
			}
		}
	}
	if len(used) < fastpath.MaxECMP*9/10 {
		t.Errorf("1000 flows used %d of %d members", len(used), fastpath.MaxECMP)
	}
	t.Logf("1000 flows over %d members: %d used", fastpath.MaxECMP, len(used))
}
