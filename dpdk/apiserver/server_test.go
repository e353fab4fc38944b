package apiserver_test

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/dpdk/apiclient"
	"github.com/filament-net/filament/dpdk/fastpath"
)

func TestHello(t *testing.T) {
	h := cl.Server
	if h.ServerVersion != "test-1" || h.ApiVersion.GetMajor() != pb.APIMajor || h.ApiVersion.GetMinor() != pb.APIMinor {
		t.Errorf("versions: %v", h)
	}
	if h.Workers != uint32(dp.Workers()) || h.Workers < 1 {
		t.Errorf("workers %d, dataplane has %d", h.Workers, dp.Workers())
	}
	tb := h.Tables
	if tb.NextHops != testNextHops || tb.Vrfs != testVRFs || tb.Fib4Routes != testRoutes || tb.Mbufs != 2047 ||
		tb.Ports != fastpath.MaxPorts || tb.EcmpMembers != fastpath.MaxECMP {
		t.Errorf("tables: %v", tb)
	}
	if h.VrouterMac != fpConfig.VRouterMAC.String() {
		t.Errorf("vRouter MAC %q, want %q", h.VrouterMac, fpConfig.VRouterMAC)
	}
	for _, c := range []string{"ipv4", "ipv6", "vxlan", "mplsoudp", "mplsogre", "ecmp", "trace", "capture"} {
		if !cl.Has(c) {
			t.Errorf("capability %q missing: %v", c, h.Capabilities)
		}
	}

	// Another minor is fine, another major is refused.
	c, err := apiclient.Dial(ctx(t), sock, apiclient.WithAPIVersion(pb.APIMajor, pb.APIMinor+7))
	if err != nil {
		t.Fatalf("client of a later minor: %v", err)
	}
	c.Close()
	_, err = apiclient.Dial(ctx(t), sock, apiclient.WithAPIVersion(pb.APIMajor+1, 0))
	if err == nil || !strings.Contains(err.Error(), "refused the handshake: API version mismatch: the client speaks v2.0") {
		t.Errorf("client of the next major: err %v", err)
	}
	for _, v := range []*pb.ApiVersion{{Major: 0, Minor: 9}, {Major: 2}, nil} {
		_, err := cl.Hello(ctx(t), &pb.HelloRequest{ApiVersion: v, Client: "test"})
		wantCode(t, err, codes.FailedPrecondition, "API version mismatch", fmt.Sprintf("speaks v%d.%d", pb.APIMajor, pb.APIMinor))
	}
}

// TestInvalid sends every kind of invalid batch: each is refused whole
// with INVALID_ARGUMENT naming the op and field, and nothing changes.
func TestInvalid(t *testing.T) {
	fresh(t)
	mustApply(t, baseBatch())
	before := dump(t)
	b := func() *apiclient.Batch { return &apiclient.Batch{} }
	otherPod := podPort(1, 1)
	otherPod.Mtu = 1400
	moved := podPort(1, 1)
	moved.Devargs = "net_null7" + nullRx
	noMAC := podPort(5, 1)
	noMAC.Mac = ""
	for _, tc := range []struct {
		name  string
		batch *apiclient.Batch
		want  []string
	}{
		{"unknown next-hop", b().Create(route(1, "10.9.0.0/16", 99)),
			[]string{"ops[0].route.next_hop: next-hop 99 does not exist"}},
		{"bad prefix", b().Create(route(1, "10.9.0.0/33", 7)),
			[]string{`ops[0].route.prefix: "10.9.0.0/33" is not an IPv4 or IPv6 prefix`}},
		{"IPv6 prefix with host bits", b().Replace(route(1, "fd00::1/64", 7)),
			[]string{`ops[0].route.prefix: fd00::1/64 has host bits set (the network is fd00::/64)`}},
		{"IPv6 prefix of an unknown next-hop", b().Create(route(1, "fd00::/64", 99)),
			[]string{"ops[0].route.next_hop: next-hop 99 does not exist"}},
		{"pod IPv6 twice", b().Create(withIPv6(podPort(5, 1), "fd00:1::5", "fd00:1::5")),
			[]string{"ops[0].port.ipv6[1]: fd00:1::5 given twice"}},
		{"pod IPv6 link-local", b().Create(withIPv6(podPort(5, 1), "fe80::5")),
			[]string{"ops[0].port.ipv6[0]: fe80::5 cannot be a host's address"}},
		{"pod IPv6 multicast", b().Create(withIPv6(podPort(5, 1), "ff02::5")),
			[]string{"ops[0].port.ipv6[0]: ff02::5 cannot be a host's address"}},
		{"pod IPv6 not IPv6", b().Create(withIPv6(podPort(5, 1), "10.1.0.9")),
			[]string{`ops[0].port.ipv6[0]: "10.1.0.9" is not an IPv6 address`}},
		{"pod with 9 IPv6 addresses", b().Create(withIPv6(podPort(5, 1), "fd00::1", "fd00::2", "fd00::3",
			"fd00::4", "fd00::5", "fd00::6", "fd00::7", "fd00::8", "fd00::9")),
			[]string{"ops[0].port.ipv6: 9 addresses: at most 8"}},
		{"tunnel of mixed families", b().Create(mplsNH(20, "192.168.100.9", "fd00::fe", 300)),
			[]string{"ops[0].next_hop.tunnel_gw: fd00::fe and tunnel_dst 192.168.100.9: the underlay next hop must be of the tunnel's family"}},
		{"tunnel over IPv6 from a fabric without IPv6", b().Create(vxlanNH(20, "fd00::9", 9)),
			[]string{`ops[0].next_hop.tunnel_dst: fd00::9: an IPv6 underlay needs the fabric port "fabric" to have an IPv6 address (ipv6)`}},
		{"tunnel of mixed families, IPv6 destination", b().Create(mplsNH(20, "fd00::9", "192.168.100.254", 300)),
			[]string{"ops[0].next_hop.tunnel_gw: 192.168.100.254 and tunnel_dst fd00::9: the underlay next hop must be of the tunnel's family"}},
		{"host bits set", b().Create(route(1, "10.9.0.1/16", 7)),
			[]string{"ops[0].route.prefix: 10.9.0.1/16 has host bits set (the network is 10.9.0.0/16)"}},
		{"route VRF out of range", b().Create(route(testVRFs, "10.9.0.0/16", 7)),
			[]string{"ops[0].route.vrf: VRF 16 out of range 0..15"}},
		{"port VRF out of range", b().Create(podPort(5, 99)),
			[]string{"ops[0].port.vrf: VRF 99 out of range 0..15"}},
		{"VNI VRF out of range", b().Create(&pb.VniMap{Vni: 5, Vrf: 1000}),
			[]string{"ops[0].vni.vrf: VRF 1000 out of range 0..15"}},
		{"next-hop on an unknown port", b().Create(ifaceNH(20, "pod9", "02:00:00:00:00:09")),
			[]string{`ops[0].next_hop.port: "pod9" is not a port`}},
		{"tunnel out of a pod port", b().Create(&pb.NextHop{Id: 20, Type: pb.NextHopType_NEXT_HOP_TYPE_TUNNEL,
			Port: "pod1", Encap: pb.Encap_ENCAP_VXLAN, TunnelDst: "192.168.100.9", Vni: 9}),
			[]string{`ops[0].next_hop.port: "pod1" is a pod port: tunnels leave by the fabric port`}},
		{"ECMP member missing", b().Create(ecmpNH(20, 3, 99)),
			[]string{"ops[0].next_hop.members[1]: next-hop 99 does not exist"}},
		{"ECMP member not interface or tunnel", b().Create(ecmpNH(20, 3, 7)),
			[]string{"ops[0].next_hop.members[1]: next-hop 7 is a discard next-hop: members must be interface or tunnel"}},
		{"ECMP member turned discard", b().Replace(discardNH(3)),
			[]string{"ops[0].next_hop.type: next-hop 3 is a member of ECMP groups 5"}},
		{"ECMP group containing itself", b().Create(ecmpNH(20, 3, 20)),
			[]string{"ops[0].next_hop.members[1]: a group cannot contain itself"}},
		{"delete a port next-hops use", b().Delete(&pb.Port{Name: "pod1"}),
			[]string{`ops[0].port.name: port "pod1" is used by next-hops 1: delete or repoint them too`}},
		{"delete a next-hop routes use", b().Delete(&pb.NextHop{Id: 1}),
			[]string{"ops[0].next_hop.id: next-hop 1 is used by 1 routes"}},
		{"delete an ECMP member", b().Delete(&pb.NextHop{Id: 3}),
			[]string{"ops[0].next_hop.id: next-hop 3 is used by ECMP groups 5"}},
		{"create a next-hop id with other contents", b().Create(ifaceNH(1, "pod1", "02:00:00:00:01:99")),
			[]string{"ops[0].next_hop: next-hop 1 exists with other contents (ACTION_REPLACE replaces it)"}},
		{"create a route with another next-hop", b().Create(route(1, "10.1.0.2/32", 2)),
			[]string{"ops[0].route: 10.1.0.2/32 in VRF 1 exists with next-hop 1"}},
		{"create a port name with other contents", b().Create(otherPod),
			[]string{`ops[0].port: port "pod1" exists with other contents`}},
		{"create a VNI mapped elsewhere", b().Create(&pb.VniMap{Vni: 100, Vrf: 2}),
			[]string{"ops[0].vni: VNI 100 exists, mapped to VRF 1"}},
		{"replace a port's devargs", b().Replace(moved),
			[]string{`ops[0].port.devargs: cannot change (is "net_null1,no-rx=1"): delete the port and create it again`}},
		{"second fabric port", b().Create(&pb.Port{Name: "fabric2", Devargs: "net_null8" + nullRx,
			Kind: pb.PortKind_PORT_KIND_FABRIC, Ipv4: []string{"192.168.200.1"}}),
			[]string{`ops[0].port.kind: there is one fabric port per dataplane, and port "fabric" is it`}},
		{"device of another port", b().Create(&pb.Port{Name: "podx", Devargs: "net_null1" + nullRx,
			Kind: pb.PortKind_PORT_KIND_POD, Vrf: 1, Mac: "02:00:00:00:00:0a", Ipv4: []string{"10.1.0.50"}}),
			[]string{`ops[0].port.devargs: device "net_null1" is already port "pod1"`}},
		{"pod port without MAC", b().Create(noMAC), []string{"ops[0].port.mac: required for a pod port"}},
		{"next-hop id out of range", b().Create(discardNH(testNextHops)),
			[]string{"ops[0].next_hop.id: 256 out of range 0..255"}},
		{"VNI out of range", b().Create(vxlanNH(20, "192.168.100.9", 1<<24)),
			[]string{"ops[0].next_hop.vni: 16777216 out of range 0..16777215"}},
		{"MPLSoGRE label out of range", b().Create(greNH(20, "192.168.100.9", 15)),
			[]string{"ops[0].next_hop.label: 15 out of range 16..1048575 (required for mplsogre)"}},
		{"MPLSoGRE without a label", b().Create(greNH(20, "192.168.100.9", 0)),
			[]string{"ops[0].next_hop.label: 0 out of range 16..1048575 (required for mplsogre)"}},
		{"MPLSoGRE with a VNI", b().Create(&pb.NextHop{Id: 20, Type: pb.NextHopType_NEXT_HOP_TYPE_TUNNEL, Port: "fabric",
			Encap: pb.Encap_ENCAP_MPLSOGRE, TunnelDst: "192.168.100.9", Label: 300, Vni: 9}),
			[]string{"ops[0].next_hop.vni: does not apply to a tunnel mplsogre next-hop"}},
		{"unknown encapsulation", b().Create(&pb.NextHop{Id: 20, Type: pb.NextHopType_NEXT_HOP_TYPE_TUNNEL, Port: "fabric",
			Encap: pb.Encap(9), TunnelDst: "192.168.100.9", Label: 300}),
			[]string{"ops[0].next_hop.encap: 9: must be ENCAP_VXLAN, ENCAP_MPLSOUDP or ENCAP_MPLSOGRE"}},
		{"field of another type", b().Create(&pb.NextHop{Id: 20, Type: pb.NextHopType_NEXT_HOP_TYPE_DISCARD, Port: "pod1"}),
			[]string{"ops[0].next_hop.port: does not apply to a discard next-hop"}},
		{"label out of range", b().Create(&pb.LabelMap{Label: 3, Vrf: 1}),
			[]string{"ops[0].label.label: 3 out of range 16..1048575"}},
		{"neighbour MAC", b().Create(&pb.Neighbor{Ip: "192.168.100.9", Mac: "ff:ff:ff:ff:ff:ff"}),
			[]string{"ops[0].neighbor.mac: ff:ff:ff:ff:ff:ff is a multicast address"}},
		{"VRF address of a pod", b().Replace(&pb.VrfAddress{Vrf: 1, Address: "10.1.0.2"}),
			[]string{`ops[0].vrf_address.address: 10.1.0.2 is the address of pod port "pod1" in VRF 1`}},
		{"VRF IPv6 address not IPv6", b().Replace(&pb.VrfAddress{Vrf: 1, Address: "10.1.0.254", Address6: "10.1.0.9"}),
			[]string{`ops[0].vrf_address.address6: `, "not an IPv6 address"}},
		{"VRF IPv6 address link-local", b().Replace(&pb.VrfAddress{Vrf: 1, Address: "10.1.0.254", Address6: "fe80::1"}),
			[]string{`ops[0].vrf_address.address6: `, "cannot be a host's address"}},
		{"no action", &apiclient.Batch{Ops: []*pb.Op{{Object: &pb.Op_Route{Route: route(1, "10.9.0.0/16", 7)}}}},
			[]string{"ops[0].action: ACTION_UNSPECIFIED: must be ACTION_CREATE, ACTION_REPLACE or ACTION_DELETE"}},
		{"no object", &apiclient.Batch{Ops: []*pb.Op{{Action: pb.Action_ACTION_CREATE}}},
			[]string{"ops[0]: no object"}},
		// Atomicity: valid ops, then a bad last one.
		{"bad last op", b().Create(discardNH(30), route(1, "10.30.0.0/16", 30), vxlanNH(31, "192.168.100.31", 31),
			route(3, "10.31.0.0/16", 31), podPort(6, 3), &pb.VniMap{Vni: 31, Vrf: 3}, route(1, "10.32.0.0/16", 32)),
			[]string{"ops[6].route.next_hop: next-hop 32 does not exist"}},
		// Ops are checked against the state the whole batch leads to.
		{"delete what another op uses", b().Delete(route(1, "10.1.0.3/32", 0), &pb.NextHop{Id: 2}).
			Create(route(1, "10.40.0.0/16", 2)),
			[]string{"ops[1].next_hop.id: next-hop 2 is used by 1 routes: repoint or delete them too"}},
		{"same object twice", b().Create(discardNH(30)).Replace(discardNH(30)),
			[]string{"ops[1].next_hop: next-hop 30 is also ops[0]: one op per object in a batch"}},
		{"every error is reported", b().Create(route(1, "10.9.0.1/16", 7), ifaceNH(21, "nowhere", "02:00:00:00:00:21")),
			[]string{"ops[0].route.prefix", `ops[1].next_hop.port: "nowhere" is not a port`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := apply(t, tc.batch)
			wantCode(t, err, codes.InvalidArgument, append([]string{"batch refused, nothing changed: "}, tc.want...)...)
			sameState(t, tc.name, before, dump(t))
		})
	}
	// The fast path saw none of it: what the refused batches routed is
	// still routed by the default route.
	for _, a := range []string{"10.30.0.1", "10.9.0.1", "10.40.0.1"} {
		if nh := lookup(1, a); nh != 7 {
			t.Errorf("%s routes to next-hop %d in the fast path, want the default route's 7", a, nh)
		}
	}
	if nh := lookup(3, "10.31.0.1"); nh != -1 {
		t.Errorf("VRF 3 has a route the refused batch asked for (next-hop %d)", nh)
	}
	if _, err := dp.LcoreStats(0); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `"msg":"batch refused"`) {
		t.Errorf("refusals not logged:\n%s", logs.String())
	}
}

// TestNeighborDelete: the fast path cannot delete static neighbours yet;
// the request is refused whole (UNIMPLEMENTED), a missing one is no-op.
// An MPLSoGRE next-hop is taken, reaches the fast path and reads back as
// it was given, label and all; it can be an ECMP member like the others.
func TestMPLSoGRE(t *testing.T) {
	fresh(t)
	mustApply(t, baseBatch())
	gre := greNH(8, "192.168.100.4", 300)
	mustApply(t, (&apiclient.Batch{}).Create(gre, ecmpNH(9, 3, 8), route(1, "10.3.0.0/16", 8),
		route(1, "10.4.0.0/16", 9), &pb.LabelMap{Label: 300, Vrf: 1}))
	if nh := lookup(1, "10.3.0.1"); nh != 8 {
		t.Errorf("10.3.0.1 routes to next-hop %d in the fast path, want 8", nh)
	}
	if nh := lookup(1, "10.4.0.1"); nh != 9 {
		t.Errorf("10.4.0.1 routes to next-hop %d in the fast path, want 9", nh)
	}
	var got *pb.NextHop
	for _, n := range dump(t).NextHops {
		if n.Id == 8 {
			got = n
		}
	}
	if got == nil || got.Encap != pb.Encap_ENCAP_MPLSOGRE || got.Label != 300 || got.Vni != 0 ||
		got.TunnelDst != "192.168.100.4" || got.Port != "fabric" || got.Type != pb.NextHopType_NEXT_HOP_TYPE_TUNNEL {
		t.Errorf("next-hop 8 reads back as %v, want %v", got, gre)
	}
}

// An IPv6 underlay: the fabric port's IPv6 address, tunnels of each
// encapsulation to IPv6 endpoints (one through an IPv6 gateway), an IPv6
// static neighbour; all read back as given, the neighbours listed with
// their next-hops, and the fabric keeps its IPv6 address while tunnels use
// it.
func TestUnderlay6(t *testing.T) {
	fresh(t)
	mustApply(t, baseBatch())
	fab := fabricPort()
	fab.Ipv6 = []string{"fd00:100::1"}
	v6 := []*pb.NextHop{vxlanNH(20, "fd00:100::2", 20), mplsNH(21, "fd00:100::3", "fd00:100::fe", 321), greNH(22, "fd00:100::4", 322)}
	nbr := &pb.Neighbor{Ip: "fd00:100::fe", Mac: "02:fe:00:00:00:fe"}
	b := (&apiclient.Batch{}).Replace(fab).Create(nbr, route(1, "10.20.0.0/16", 20), route(1, "10.21.0.0/16", 21), route(1, "fd00:22::/48", 22))
	for _, n := range v6 {
		b.Create(n)
	}
	mustApply(t, b)
	if nh := lookup(1, "10.21.0.1"); nh != 21 {
		t.Errorf("10.21.0.1 routes to next-hop %d in the fast path, want 21", nh)
	}
	s := dump(t)
	for _, want := range v6 {
		var got *pb.NextHop
		for _, n := range s.NextHops {
			if n.Id == want.Id {
				got = n
			}
		}
		if got == nil || got.TunnelDst != want.TunnelDst || got.TunnelGw != want.TunnelGw || got.Encap != want.Encap {
			t.Errorf("next-hop %d reads back as %v, want %v", want.Id, got, want)
		}
	}
	for _, p := range s.Ports {
		if p.Name == "fabric" && (len(p.Ipv6) != 1 || p.Ipv6[0] != "fd00:100::1") {
			t.Errorf("fabric port's ipv6 %v, want [fd00:100::1]", p.Ipv6)
		}
	}
	resp, err := cl.ListNeighbors(ctx(t), &pb.ListNeighborsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ns := resp.Neighbors
	found := map[string]bool{}
	for _, n := range ns {
		found[n.Ip] = true
		if n.Ip == "fd00:100::fe" && (!n.Static || n.Mac != "02:fe:00:00:00:fe" || len(n.NextHops) != 1 || n.NextHops[0] != 21) {
			t.Errorf("neighbour fd00:100::fe: %v, want static with next-hop 21", n)
		}
		if n.Ip == "fd00:100::2" && (n.Static || n.Resolved || len(n.NextHops) != 1 || n.NextHops[0] != 20) {
			t.Errorf("neighbour fd00:100::2: %v, want unresolved with next-hop 20", n)
		}
	}
	if !found["fd00:100::2"] || !found["fd00:100::4"] || !found["fd00:100::fe"] || found["fd00:100::3"] {
		t.Errorf("neighbours %v: want fd00:100::2, ::4 and the gateway ::fe, not ::3", ns)
	}
	// The fabric's IPv6 address cannot go while IPv6 tunnels use it.
	_, err = apply(t, (&apiclient.Batch{}).Replace(fabricPort()))
	wantCode(t, err, codes.FailedPrecondition, "IPv6 tunnels use its IPv6 underlay address")
}

func TestNeighborDelete(t *testing.T) {
	fresh(t)
	mustApply(t, (&apiclient.Batch{}).Create(&pb.Neighbor{Ip: "192.168.100.77", Mac: "02:fe:00:00:00:77"}))
	before := dump(t)
	_, err := apply(t, (&apiclient.Batch{}).Create(discardNH(9)).Delete(&pb.Neighbor{Ip: "192.168.100.77"}))
	if cl.Has("neighbor-delete") {
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	wantCode(t, err, codes.Unimplemented, "ops[1].neighbor: deleting static neighbour 192.168.100.77 needs the fast path's DelNeighbor")
	sameState(t, "neighbour delete", before, dump(t))
	r := mustApply(t, (&apiclient.Batch{}).Delete(&pb.Neighbor{Ip: "192.168.100.78"}))
	if r.Unchanged != 1 {
		t.Errorf("deleting a missing neighbour: %v", r)
	}
}

// TestRollback: a batch the fast path refuses mid-way (the FIB of VRF 3
// holds 16 routes) is undone: ports added are removed, next-hops and
// routes deleted or restored, maps removed.
func TestRollback(t *testing.T) {
	fresh(t)
	mustApply(t, baseBatch())
	before := dump(t)
	gen := before.Generation
	b := (&apiclient.Batch{}).Create(podPort(3, 3), ifaceNH(40, "pod3", "02:00:00:00:03:03")).
		Replace(route(1, "10.1.0.3/32", 1), ifaceNH(2, "pod2", "02:00:00:00:01:22"), &pb.VrfAddress{Vrf: 1, Address: "10.1.0.253", Address6: "fd00:1::fd"}).
		Delete(route(1, "10.2.0.0/16", 0)).
		Create(&pb.VniMap{Vni: 300, Vrf: 3}, &pb.VrfAddress{Vrf: 3, Address: "10.3.0.254"})
	for i := 0; i < testRoutes+4; i++ {
		b.Create(route(3, fmt.Sprintf("10.3.%d.0/24", i), 40))
	}
	_, err := apply(t, b)
	// The first route past the FIB's 16 (tables.fib4_routes) fails.
	// VRF 1's route changes went first (one fast path call), then VRF 3's
	// were refused: ops[24] is the 17th route.
	wantCode(t, err, codes.ResourceExhausted, "batch failed at ops[24] (route 10.3.16.0/24 in VRF 3 to next-hop 40)",
		"were rolled back, nothing changed")
	after := dump(t)
	sameState(t, "rolled back", before, after)
	if after.Generation != gen {
		t.Errorf("generation %d after a rolled back batch, was %d", after.Generation, gen)
	}
	// The fast path is back too.
	if nh := lookup(1, "10.1.0.3"); nh != 2 {
		t.Errorf("10.1.0.3 routes to %d, want 2 (the repointed route restored)", nh)
	}
	if nh := lookup(1, "10.2.0.1"); nh != 5 {
		t.Errorf("10.2.0.1 routes to %d, want 5 (the deleted route restored)", nh)
	}
	if nh := lookup(3, "10.3.0.1"); nh != -1 {
		t.Errorf("10.3.0.1 routes to %d in VRF 3, want no route", nh)
	}
	if err := dp.DelNextHop(40); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("next-hop 40 after the rollback: delete says %v, want ENOENT", err)
	}
	// The port was removed: its device can be added again.
	mustApply(t, (&apiclient.Batch{}).Create(podPort(3, 3)))
	if !strings.Contains(logs.String(), `"msg":"batch failed, rolled back"`) {
		t.Errorf("rollback not logged")
	}
}

// TestIdempotent: create twice, replace, delete twice.
func TestIdempotent(t *testing.T) {
	fresh(t)
	n := len(baseBatch().Ops)
	r := mustApply(t, baseBatch())
	if r.Created != uint32(n)-1 && r.Created != uint32(n) { // the neighbour may be left from another test
		t.Errorf("first create: %v", r)
	}
	first := dump(t)
	r = mustApply(t, baseBatch())
	if r.Created != 0 || r.Unchanged != uint32(n) || r.Generation != first.Generation {
		t.Errorf("second create: %v, want %d unchanged at generation %d", r, n, first.Generation)
	}
	sameState(t, "create twice", first, dump(t))

	// Replace: repoint a route, move a pod's address, change a tunnel and
	// a group's members, remap a VNI.
	pod := podPort(2, 1)
	pod.Ipv4 = []string{"10.1.0.3", "10.1.0.33"}
	pod.Mtu = 1400
	r = mustApply(t, (&apiclient.Batch{}).Replace(pod, route(1, "10.1.0.3/32", 1), vxlanNH(3, "192.168.100.12", 101),
		ecmpNH(5, 4, 3, 3), &pb.VniMap{Vni: 100, Vrf: 2}, route(1, "10.1.0.33/32", 2)))
	if r.Updated != 5 || r.Created != 1 || r.Generation != first.Generation+1 {
		t.Errorf("replace: %v", r)
	}
	if nh := lookup(1, "10.1.0.3"); nh != 1 {
		t.Errorf("repointed route: next-hop %d in the fast path, want 1", nh)
	}
	got := dump(t)
	want := proto.Clone(pod).(*pb.Port)
	for _, p := range got.Ports {
		if p.Name == "pod2" && !proto.Equal(p, want) {
			t.Errorf("pod2 after replace: %v, want %v", p, want)
		}
	}
	for _, n := range got.NextHops {
		if n.Id == 5 && fmt.Sprint(n.Members) != "[4 3 3]" {
			t.Errorf("group 5 after replace: %v", n)
		}
	}
	// Replace with the same contents: no change.
	if r := mustApply(t, (&apiclient.Batch{}).Replace(pod)); r.Unchanged != 1 || r.Generation != got.Generation {
		t.Errorf("replace unchanged: %v", r)
	}

	// Delete twice.
	del := (&apiclient.Batch{}).Delete(route(1, "10.1.0.33/32", 0), route(1, "10.2.0.0/16", 0),
		&pb.NextHop{Id: 5}, &pb.VniMap{Vni: 100}, &pb.LabelMap{Label: 200}, &pb.VrfAddress{Vrf: 1})
	if r := mustApply(t, del); r.Deleted != 6 {
		t.Errorf("delete: %v", r)
	}
	after := dump(t)
	if r := mustApply(t, del); r.Deleted != 0 || r.Unchanged != 6 || r.Generation != after.Generation {
		t.Errorf("delete again: %v", r)
	}
	sameState(t, "delete twice", after, dump(t))
	if nh := lookup(1, "10.2.0.1"); nh != 7 {
		t.Errorf("deleted route: 10.2.0.1 goes to %d, want the default route's 7", nh)
	}
}

// TestResync programs a state, dumps it, deletes everything with a batch
// built from the dump, programs it again from the dump, and dumps the same.
func TestResync(t *testing.T) {
	fresh(t)
	mustApply(t, baseBatch())
	mustApply(t, (&apiclient.Batch{}).Create(podPort(3, 3), ifaceNH(40, "pod3", "02:00:00:00:03:03"),
		&pb.Port{Name: "host", Devargs: "net_null9" + nullRx, Kind: pb.PortKind_PORT_KIND_HOST, Ipv4: []string{"10.0.0.1"}},
		route(3, "10.3.0.4/32", 40), &pb.LabelMap{Label: 300, Vrf: 3}, ecmpNH(41, 40, 1)))
	first := dump(t)
	if len(first.Ports) != 5 || len(first.NextHops) != 9 || len(first.Routes) != 6 || len(first.VNIs) != 1 ||
		len(first.Labels) != 2 || len(first.VRFAddresses) != 1 || len(first.Neighbors) < 1 {
		t.Fatalf("dump: %v", first)
	}
	deleteAll(t)
	for _, a := range []string{"10.1.0.2", "10.2.0.1"} {
		if nh := lookup(1, a); nh != -1 {
			t.Errorf("%s still routed (next-hop %d) after deleting everything", a, nh)
		}
	}
	r := mustApply(t, first.Batch(pb.Action_ACTION_CREATE))
	if r.Created == 0 || r.Unchanged != uint32(len(first.Neighbors)) {
		t.Errorf("re-create: %v", r)
	}
	second := dump(t)
	sameState(t, "dump, delete, program from the dump", first, second)
	if nh := lookup(3, "10.3.0.4"); nh != 40 {
		t.Errorf("10.3.0.4 in VRF 3: next-hop %d, want 40", nh)
	}
	// Replaying it changes nothing: resync by REPLACE is a no-op too.
	again := second.Batch(pb.Action_ACTION_REPLACE)
	r = mustApply(t, again)
	if r.Unchanged != uint32(len(again.Ops)) || r.Generation != second.Generation {
		t.Errorf("replace the same state: %v, want %d unchanged at generation %d", r, len(again.Ops), second.Generation)
	}
}

// TestOrder: a batch's ops may come in any order: the server applies its
// changes in an order the fast path accepts (a port before its next-hops,
// members before their group, a group's member list changed before a
// member turns into a discard next-hop, routes moved before their old
// next-hop goes).
func TestOrder(t *testing.T) {
	fresh(t)
	mustApply(t, baseBatch())
	b := (&apiclient.Batch{}).
		Replace(route(1, "10.1.0.3/32", 8), route(1, "10.2.0.0/16", 9)).
		Create(route(1, "10.5.0.0/16", 9), ecmpNH(9, 8, 3), ifaceNH(8, "pod3", "02:00:00:00:01:03"), podPort(3, 1)).
		Replace(discardNH(4)).
		Delete(&pb.NextHop{Id: 5}, &pb.NextHop{Id: 2})
	r := mustApply(t, b)
	if r.Created != 4 || r.Updated != 3 || r.Deleted != 2 {
		t.Errorf("apply: %v", r)
	}
	for a, want := range map[string]int{"10.1.0.3": 8, "10.2.0.1": 9, "10.5.0.1": 9, "10.1.0.2": 1} {
		if nh := lookup(1, a); nh != want {
			t.Errorf("%s: next-hop %d in the fast path, want %d", a, nh, want)
		}
	}
	// A port that takes the device of one it deletes, with the old one's
	// next-hop moving to it: each needs the other first. Refused whole.
	before := dump(t)
	moved := podPort(3, 1)
	moved.Name = "pod3b"
	_, err := apply(t, (&apiclient.Batch{}).Delete(&pb.Port{Name: "pod3"}).Create(moved).
		Replace(ifaceNH(8, "pod3b", "02:00:00:00:01:03")))
	wantCode(t, err, codes.InvalidArgument, "the fast path accepts its changes in no order", "split the batch")
	sameState(t, "unorderable batch", before, dump(t))
	// Split, it goes through: the next-hop and routes go first, then the
	// port moves, then they come back.
	mustApply(t, (&apiclient.Batch{}).Delete(route(1, "10.1.0.3/32", 0), ecmpNH(9), route(1, "10.2.0.0/16", 0),
		route(1, "10.5.0.0/16", 0), &pb.NextHop{Id: 8}))
	mustApply(t, (&apiclient.Batch{}).Delete(&pb.Port{Name: "pod3"}).Create(moved, ifaceNH(8, "pod3b", "02:00:00:00:01:03"),
		route(1, "10.1.0.3/32", 8)))
	if nh := lookup(1, "10.1.0.3"); nh != 8 {
		t.Errorf("10.1.0.3: next-hop %d, want 8", nh)
	}
}

// TestListsAndCounters: what the List RPCs add to the objects.
func TestListsAndCounters(t *testing.T) {
	fresh(t)
	mustApply(t, baseBatch())
	ps, err := cl.ListPorts(ctx(t), &pb.ListPortsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.Ports) != 3 || ps.Ports[0].Port.Name != "fabric" || ps.Ports[0].DeviceMac != "02:fa:00:00:00:01" || !ps.Ports[0].LinkUp {
		t.Errorf("ports: %v", ps)
	}
	nhs, err := cl.ListNextHops(ctx(t), &pb.ListNextHopsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	refs := map[uint32]string{}
	for _, e := range nhs.NextHops {
		refs[e.NextHop.Id] = fmt.Sprintf("%d/%d", e.Routes, e.EcmpGroups)
	}
	if refs[3] != "0/1" || refs[5] != "1/0" || refs[7] != "1/0" {
		t.Errorf("next-hop references (routes/groups): %v", refs)
	}
	one := uint32(1)
	rs, _, err := cl.Routes(ctx(t), &one)
	if err != nil || len(rs) != 5 || rs[0].Prefix != "0.0.0.0/0" {
		t.Errorf("routes of VRF 1: %v %v", rs, err)
	}
	two := uint32(2)
	if rs, _, err := cl.Routes(ctx(t), &two); err != nil || len(rs) != 0 {
		t.Errorf("routes of VRF 2: %v %v", rs, err)
	}
	big := uint32(testVRFs)
	if _, _, err := cl.Routes(ctx(t), &big); err == nil {
		t.Errorf("routes of VRF %d: no error", big)
	}
	vrfs, err := cl.ListVRFs(ctx(t), &pb.ListVRFsRequest{})
	if err != nil || len(vrfs.Vrfs) != 1 {
		t.Fatalf("vrfs: %v %v", vrfs, err)
	}
	if v := vrfs.Vrfs[0]; v.Vrf != 1 || v.Address != "10.1.0.254" || v.Address6 != "fd00:1::fe" || v.Routes != 5 ||
		strings.Join(v.Ports, ",") != "pod1,pod2" || fmt.Sprint(v.Vnis, v.Labels) != "[100] [200]" {
		t.Errorf("vrf 1: %v", v)
	}
	ns, err := cl.ListNeighbors(ctx(t), &pb.ListNeighborsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	byIP := map[string]*pb.NeighborEntry{}
	for _, n := range ns.Neighbors {
		byIP[n.Ip] = n
	}
	if n := byIP["192.168.100.254"]; n == nil || !n.Static || n.Mac != "02:fe:00:00:00:01" || fmt.Sprint(n.NextHops) != "[4]" {
		t.Errorf("static neighbour: %v", n)
	}
	if n := byIP["192.168.100.2"]; n == nil || n.Static || n.Resolved || fmt.Sprint(n.NextHops) != "[3]" {
		t.Errorf("tunnel neighbour: %v", n)
	}
	c, err := cl.GetCounters(ctx(t), &pb.GetCountersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Drops) != len(fastpath.DropReasons()) || c.Drops[0].Reason != fastpath.DropReasons()[0] ||
		len(c.Ports) != 3 || len(c.Lcores) != dp.Workers() {
		t.Errorf("counters: %d drops, %d ports, %d lcores", len(c.Drops), len(c.Ports), len(c.Lcores))
	}
}

// TestTraceAndCapture: the RPCs reach the fast path (nothing is received on
// null ports: the trace times out empty, the capture ends with its header).
func TestTraceAndCapture(t *testing.T) {
	fresh(t)
	mustApply(t, baseBatch())
	port := "pod1"
	tr, err := cl.Trace(ctx(t), &pb.TraceRequest{Count: 2, Port: &port, TimeoutMs: 50})
	if err != nil || tr.Complete || len(tr.Records) != 0 {
		t.Errorf("trace on an idle port: %v %v", tr, err)
	}
	bad := "nope"
	_, err = cl.Trace(ctx(t), &pb.TraceRequest{Port: &bad})
	wantCode(t, err, codes.NotFound, `port: "nope" is not a port`)
	stream, err := cl.Capture(ctx(t), &pb.CaptureRequest{Port: "pod1", Count: 5, TimeoutMs: 50})
	if err != nil {
		t.Fatal(err)
	}
	var pcap []byte
	var stats *pb.CaptureStats
	for {
		m, err := stream.Recv()
		if err != nil {
			if !strings.Contains(err.Error(), "EOF") {
				t.Fatal(err)
			}
			break
		}
		pcap = append(pcap, m.Pcap...)
		if m.Stats != nil {
			stats = m.Stats
		}
	}
	if len(pcap) != 24 || stats == nil || stats.Written != 0 {
		t.Errorf("capture of an idle port: %d bytes, stats %v", len(pcap), stats)
	}
	_ = netip.Addr{}
}

// TestConcurrent: batches from several clients are serialised, lists run
// beside them and always see whole batches.
func TestConcurrent(t *testing.T) {
	fresh(t)
	mustApply(t, (&apiclient.Batch{}).Create(discardNH(1), receiveNH(2)))
	const writers, rounds = 4, 10
	errs := make(chan error, writers+2)
	stop := make(chan struct{})
	for w := 0; w < writers; w++ {
		go func(w int) {
			var err error
			for r := 0; r < rounds && err == nil; r++ {
				// Each batch holds three routes of this writer, or none.
				b := &apiclient.Batch{}
				for k := 0; k < 3; k++ {
					rt := route(2, fmt.Sprintf("10.2.%d.%d/32", w, k), uint32(1+r%2))
					if r%3 == 2 {
						b.Delete(rt)
					} else {
						b.Replace(rt)
					}
				}
				_, err = cl.ApplyBatch(ctx(t), b)
			}
			errs <- err
		}(w)
	}
	for l := 0; l < 2; l++ {
		go func() {
			for {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				two := uint32(2)
				rs, _, err := cl.Routes(ctx(t), &two)
				if err != nil {
					errs <- err
					return
				}
				per := map[string]int{}
				for _, r := range rs {
					per[strings.Join(strings.Split(r.Prefix, ".")[:3], ".")]++
				}
				for w, n := range per {
					if n != 3 {
						errs <- fmt.Errorf("writer %s has %d routes listed: a batch seen in part", w, n)
						return
					}
				}
			}
		}()
	}
	for w := 0; w < writers; w++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	close(stop)
	for l := 0; l < 2; l++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	// Round 9 replaced every writer's routes to next-hop 2.
	two := uint32(2)
	rs, _, err := cl.Routes(ctx(t), &two)
	if err != nil || len(rs) != 3*writers {
		t.Fatalf("routes: %v %v", rs, err)
	}
	for _, r := range rs {
		if r.NextHop != 2 || lookup(2, strings.TrimSuffix(r.Prefix, "/32")) != 2 {
			t.Errorf("route %v (fast path: %d)", r, lookup(2, strings.TrimSuffix(r.Prefix, "/32")))
		}
	}
}

func withIPv6(p *pb.Port, a ...string) *pb.Port {
	p.Ipv6 = a
	return p
}

// TestDualStack: pod ports with IPv6 addresses (and one without IPv4),
// IPv6 routes beside IPv4 ones in a batch, in the fast path, in ListRoutes
// (IPv4 then IPv6 in each VRF) and through a dump and re-creation; a
// failing batch mixing both families changes neither.
func TestDualStack(t *testing.T) {
	fresh(t)
	mustApply(t, baseBatch())
	v6only := withIPv6(podPort(3, 1), "fd00:1::4")
	v6only.Ipv4 = nil
	mustApply(t, (&apiclient.Batch{}).Replace(withIPv6(podPort(1, 1), "fd00:1::2", "2001:db8:1::2")).Create(
		v6only, ifaceNH(40, "pod3", "02:00:00:00:01:03"),
		route(1, "fd00:1::2/128", 1), route(1, "fd00:1::4/128", 40), route(1, "fd00:2::/48", 5),
		route(1, "::/0", 7), route(1, "10.9.0.0/16", 40)))
	for a, want := range map[string]int{"fd00:1::2": 1, "fd00:1::4": 40, "fd00:2:0:1::9": 5, "2001:db8::1": 7, "10.9.1.1": 40} {
		if nh := lookup(1, a); nh != want {
			t.Errorf("%s in VRF 1: next-hop %d, want %d", a, nh, want)
		}
	}
	first := dump(t)
	var prefixes []string
	for _, r := range first.Routes {
		if r.Vrf == 1 {
			prefixes = append(prefixes, r.Prefix)
		}
	}
	want := []string{"0.0.0.0/0", "10.1.0.2/32", "10.1.0.3/32", "10.1.0.254/32", "10.2.0.0/16", "10.9.0.0/16",
		"::/0", "fd00:1::2/128", "fd00:1::4/128", "fd00:2::/48"}
	if strings.Join(prefixes, " ") != strings.Join(want, " ") {
		t.Errorf("ListRoutes of VRF 1:\n%v\nwant\n%v", prefixes, want)
	}
	var ports []string
	for _, p := range first.Ports {
		ports = append(ports, p.Name+"="+strings.Join(p.Ipv6, ","))
	}
	if got := strings.Join(ports, " "); !strings.Contains(got, "pod1=fd00:1::2,2001:db8:1::2") || !strings.Contains(got, "pod3=fd00:1::4") {
		t.Errorf("ports' IPv6 addresses: %s", got)
	}
	// all or none: valid IPv6 and IPv4 routes, then an invalid one
	_, err := apply(t, (&apiclient.Batch{}).Create(route(1, "fd00:3::/48", 1), route(1, "10.10.0.0/16", 1),
		route(1, "fd00:4::1/64", 1)))
	wantCode(t, err, codes.InvalidArgument, "ops[2].route.prefix: fd00:4::1/64 has host bits set")
	if nh := lookup(1, "fd00:3::1"); nh != 7 {
		t.Errorf("a refused batch's IPv6 route reached the fast path: next-hop %d", nh)
	}
	deleteAll(t)
	if nh := lookup(1, "fd00:1::2"); nh != -1 {
		t.Errorf("fd00:1::2 still routed (next-hop %d) after deleting everything", nh)
	}
	mustApply(t, first.Batch(pb.Action_ACTION_CREATE))
	sameState(t, "dual-stack dump, delete, program from the dump", first, dump(t))
	if nh := lookup(1, "fd00:1::4"); nh != 40 {
		t.Errorf("fd00:1::4 after re-creation: next-hop %d, want 40", nh)
	}
}

// IPv6 links have an MTU of 1280 at least (RFC 8200): a port with IPv6
// addresses needs that much, and so does every next-hop an IPv6 route
// uses (a tunnel's: its port's MTU less the encapsulation), or its RAs
// and packet too big messages would carry an MTU hosts ignore. IPv4 keeps
// working below it: small MTUs are refused only where IPv6 goes.
func TestIPv6MinMTU(t *testing.T) {
	fresh(t)
	mustApply(t, baseBatch())
	b := func() *apiclient.Batch { return &apiclient.Batch{} }
	small := fabricPort()
	small.Mtu = 1300
	smallPod := podPort(3, 1)
	smallPod.Mtu = 576
	// IPv4 over a 1300-byte fabric (1250 through VXLAN) and a 576-byte pod.
	mustApply(t, b().Replace(small).Create(smallPod, ifaceNH(40, "pod3", "02:00:00:00:01:03"),
		route(1, "10.40.0.0/16", 40), route(1, "10.41.0.0/16", 3)))
	pod6 := func(mtu uint32) *pb.Port {
		p := withIPv6(podPort(5, 1), "fd00:1::6")
		p.Mtu = mtu
		return p
	}
	fab6 := func(mtu uint32) *pb.Port {
		p := fabricPort()
		p.Ipv6, p.Mtu = []string{"fd00:100::1"}, mtu
		return p
	}
	const need = "IPv6 needs an MTU of at least 1280 (RFC 8200)"
	refused := func(name string, batch *apiclient.Batch, want ...string) {
		t.Helper()
		before := dump(t)
		_, err := apply(t, batch)
		wantCode(t, err, codes.InvalidArgument, want...)
		sameState(t, name, before, dump(t))
	}
	refused("IPv6 pod port", b().Create(pod6(1279)),
		"ops[0].port.mtu: 1279: a port with IPv6 addresses (ipv6) needs at least 1280 (RFC 8200)")
	refused("IPv6 underlay", b().Replace(fab6(1279)),
		"ops[0].port.mtu: 1279: a port with IPv6 addresses (ipv6) needs at least 1280 (RFC 8200)")
	refused("IPv6 route over a tunnel", b().Create(route(1, "fd00:9::/48", 3)),
		`ops[0].route.next_hop: next-hop 3 sends at most 1250 bytes (port "fabric"'s MTU 1300 less 50 of vxlan over IPv4): `+need)
	refused("IPv6 route over an ECMP group", b().Create(route(1, "fd00:9::/48", 5)),
		`ops[0].route.next_hop: ECMP member next-hop 3 sends at most 1250 bytes`)
	refused("IPv6 route to an IPv4-only pod's small MTU", b().Create(route(1, "fd00:9::/48", 40)),
		`ops[0].route.next_hop: next-hop 40 sends at most 576 bytes (port "pod3" has MTU 576): `+need)
	refused("IPv6 route over an IPv6 underlay", b().Replace(fab6(1349)).Create(vxlanNH(20, "fd00:100::2", 20),
		route(1, "fd00:9::/48", 20)),
		`ops[2].route.next_hop: next-hop 20 sends at most 1279 bytes (port "fabric"'s MTU 1349 less 70 of vxlan over IPv6): `+need,
		`ops[1].next_hop.port: next-hop 20 sends at most 1279 bytes`)

	// At 1280 (the fabric: 1350 with VXLAN over IPv6) IPv6 goes.
	mustApply(t, b().Create(pod6(1280)).Replace(fab6(1350)).Create(vxlanNH(20, "fd00:100::2", 20),
		route(1, "fd00:9::/48", 20)))
	// With IPv6 routes in place, what they use cannot shrink below it.
	mustApply(t, b().Replace(fab6(1500), route(1, "fd00:9::/48", 5)).Delete(vxlanNH(20, "", 0)))
	refused("fabric MTU under IPv6 routes", b().Replace(small),
		`ops[0].port.mtu: 1300: next-hop 3 sends at most 1250 bytes (port "fabric"'s MTU 1300 less 50 of vxlan over IPv4) (and 1 more next-hops), and IPv6 routes use it`)
	refused("ECMP member repointed under IPv6 routes", b().Replace(ifaceNH(3, "pod3", "02:00:00:00:01:03")),
		`ops[0].next_hop.port: next-hop 3 sends at most 576 bytes (port "pod3" has MTU 576), and IPv6 routes use it: `+need)
	refused("ECMP group given a small member under IPv6 routes", b().Replace(ecmpNH(5, 3, 40)),
		`ops[0].next_hop.members: ECMP member next-hop 40 sends at most 576 bytes (port "pod3" has MTU 576), and IPv6 routes use it`)
	// Once the IPv6 route is gone, IPv4 takes the small MTU again.
	mustApply(t, b().Delete(route(1, "fd00:9::/48", 0)).Replace(small))
}
