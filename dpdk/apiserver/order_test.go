package apiserver

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"

	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/dpdk/fastpath"
)

// TestOrderPlan: the plan's order, without a fast path.
func TestOrderPlan(t *testing.T) {
	base := newState()
	a := &port{name: "a", devargs: "net_null0", kind: fastpath.PortPod}
	base.setPort(a)
	b := &port{name: "b", devargs: "net_null0,no-rx=1", kind: fastpath.PortPod}
	nh := &nextHop{id: 1, typ: fastpath.NHIface, port: "b"}
	rt := newRouteKey(1, netip.MustParsePrefix("10.0.0.0/8"))
	neigh := &neighChange{idx: 0, ip: netip.MustParseAddr("192.0.2.1"), new: net.HardwareAddr{2, 0, 0, 0, 0, 1}}
	changes := []change{
		neigh,
		&routeBatch{rs: []routeChange{{idx: 1, key: rt, new: 1, hasNew: true}}},
		&nhChange{idx: 2, id: 1, new: nh},
		&portChange{idx: 3, name: "b", new: b},
		&portChange{idx: 4, name: "a", old: a},
	}
	plan, stuck := order(base, changes)
	if stuck != nil {
		t.Fatalf("stuck: %v", stuck)
	}
	got := fmt.Sprint(plan)
	want := "[delete port a add port b (net_null0,no-rx=1) add next-hop 1 (interface) route 10.0.0.0/8 in VRF 1 to next-hop 1 neighbour 192.0.2.1 at 02:00:00:00:00:01]"
	if got != want {
		t.Errorf("plan\n got %s\nwant %s", got, want)
	}
	// The base state is untouched.
	if p, _ := base.ports.get("a"); p != a || base.ports.len() != 1 {
		t.Errorf("base changed")
	}
	// Each one's inverse, in reverse, is a valid order too.
	sim := base.child()
	for _, c := range plan {
		c.apply(sim)
	}
	for i := len(plan) - 1; i >= 0; i-- {
		inv := plan[i].inverse()
		if _, ok := inv.(*neighChange); !ok && !inv.ready(sim) {
			t.Errorf("undo %s not ready", inv)
		}
		inv.apply(sim)
	}
	if _, ok := sim.ports.get("a"); !ok || sim.ports.len() != 1 || sim.nhs.len() != 0 || sim.routes.len() != 0 {
		t.Errorf("undoing the plan does not give the base state back")
	}
}

func TestCodeOf(t *testing.T) {
	for errno, want := range map[syscall.Errno]codes.Code{
		syscall.ENOSPC: codes.ResourceExhausted, syscall.EINVAL: codes.InvalidArgument,
		syscall.ENOENT: codes.NotFound, syscall.EBUSY: codes.FailedPrecondition,
		syscall.EEXIST: codes.AlreadyExists, syscall.ENODEV: codes.FailedPrecondition, syscall.EIO: codes.Internal,
	} {
		if got := codeOf(&fastpath.Error{Op: "x", Errno: errno, Msg: "m"}); got != want {
			t.Errorf("%v: %v, want %v", errno, got, want)
		}
	}
	if got := codeOf(&fastpath.Error{Op: "x", Errno: syscall.ENODEV, Msg: "dataplane closed"}); got != codes.Unavailable {
		t.Errorf("closed: %v", got)
	}
}

// TestOrderRoutes: a batch's route changes become one fast path call per
// VRF and pass, in VRF order; a route whose next-hop comes in a later
// pass waits for it while the others go.
func TestOrderRoutes(t *testing.T) {
	s := New(nil, Options{})
	seed := []*pb.Op{
		{Action: pb.Action_ACTION_CREATE, Object: &pb.Op_Port{Port: &pb.Port{Name: "a", Devargs: "net_null0",
			Kind: pb.PortKind_PORT_KIND_POD, Vrf: 1, Mac: "02:00:00:00:00:0a", Ipv4: []string{"10.0.0.10"}}}},
		{Action: pb.Action_ACTION_CREATE, Object: &pb.Op_NextHop{NextHop: &pb.NextHop{Id: 1,
			Type: pb.NextHopType_NEXT_HOP_TYPE_INTERFACE, Port: "a", DstMac: "02:00:00:00:00:0a"}}},
		{Action: pb.Action_ACTION_CREATE, Object: &pb.Op_NextHop{NextHop: &pb.NextHop{Id: 2,
			Type: pb.NextHopType_NEXT_HOP_TYPE_DISCARD}}},
		routeOp(pb.Action_ACTION_CREATE, 1, "10.2.0.0/16", 1),
		routeOp(pb.Action_ACTION_CREATE, 2, "10.3.0.0/16", 2),
		routeOp(pb.Action_ACTION_CREATE, 2, "10.4.0.0/16", 1),
	}
	if err := s.Seed(seed, map[string]fastpath.PortID{"a": 0}); err != nil {
		t.Fatal(err)
	}
	// Port b takes port a's device, so a goes first, after next-hop 1,
	// after the routes to it moved; the route to next-hop 3 (on b) waits.
	ops := []*pb.Op{
		routeOp(pb.Action_ACTION_REPLACE, 2, "10.5.0.0/16", 3),
		routeOp(pb.Action_ACTION_REPLACE, 1, "10.2.0.0/16", 2),
		routeOp(pb.Action_ACTION_DELETE, 2, "10.3.0.0/16", 0),
		routeOp(pb.Action_ACTION_REPLACE, 2, "10.4.0.0/16", 2),
		{Action: pb.Action_ACTION_DELETE, Object: &pb.Op_NextHop{NextHop: &pb.NextHop{Id: 1}}},
		{Action: pb.Action_ACTION_DELETE, Object: &pb.Op_Port{Port: &pb.Port{Name: "a"}}},
		{Action: pb.Action_ACTION_CREATE, Object: &pb.Op_Port{Port: &pb.Port{Name: "b", Devargs: "net_null0,no-rx=1",
			Kind: pb.PortKind_PORT_KIND_POD, Vrf: 2, Mac: "02:00:00:00:00:0b", Ipv4: []string{"10.0.0.11"}}}},
		{Action: pb.Action_ACTION_CREATE, Object: &pb.Op_NextHop{NextHop: &pb.NextHop{Id: 3,
			Type: pb.NextHopType_NEXT_HOP_TYPE_INTERFACE, Port: "b", DstMac: "02:00:00:00:00:0b"}}},
	}
	sm := s.simulate(s.st, ops)
	if len(sm.errs) > 0 {
		t.Fatal(sm.refusal())
	}
	if sm.out != (outcome{created: 3, updated: 2, deleted: 3}) {
		t.Errorf("outcome %+v", sm.out)
	}
	plan, stuck := order(s.st, sm.diff())
	if stuck != nil {
		t.Fatalf("stuck: %v", stuck)
	}
	got := fmt.Sprint(plan)
	want := "[route 10.2.0.0/16 in VRF 1 to next-hop 2 " +
		"2 routes in VRF 2 (1 set, 1 deleted) " +
		"delete next-hop 1 delete port a add port b (net_null0,no-rx=1) add next-hop 3 (interface) " +
		"route 10.5.0.0/16 in VRF 2 to next-hop 3]"
	if got != want {
		t.Errorf("plan\n got %s\nwant %s", got, want)
	}
	// The routes' references follow in the model.
	sim := s.st.child()
	for _, c := range plan {
		c.apply(sim)
	}
	if sim.nhRoutes.get(1) != 0 || sim.nhRoutes.get(2) != 2 || sim.nhRoutes.get(3) != 1 ||
		sim.vrfRoutes.get(1) != 1 || sim.vrfRoutes.get(2) != 2 || sim.routes.len() != 3 {
		t.Errorf("references: next-hops 1, 2, 3: %d, %d, %d routes; VRFs 1, 2: %d, %d routes; %d routes",
			sim.nhRoutes.get(1), sim.nhRoutes.get(2), sim.nhRoutes.get(3), sim.vrfRoutes.get(1), sim.vrfRoutes.get(2), sim.routes.len())
	}
	// The inverses, in reverse, give the state back.
	for i := len(plan) - 1; i >= 0; i-- {
		inv := plan[i].inverse()
		if !inv.ready(sim) {
			t.Errorf("undo %s not ready", inv)
		}
		inv.apply(sim)
	}
	if sim.routes.len() != 3 || sim.nhRoutes.get(1) != 2 || sim.nhRoutes.get(2) != 1 || sim.nhs.len() != 2 {
		t.Errorf("undoing the plan does not give the base state back")
	}
	if nh, ok := sim.routes.get(newRouteKey(2, netip.MustParsePrefix("10.3.0.0/16"))); !ok || nh != 2 {
		t.Errorf("10.3.0.0/16 in VRF 2 after the undo: %d %v", nh, ok)
	}
}

// TestRouteErrors: a batch of many bad routes is refused with the first
// errors and a count of the others, not a message per route.
func TestRouteErrors(t *testing.T) {
	s := New(nil, Options{Config: fastpath.Config{NextHops: 16, VRFs: 4}})
	var ops []*pb.Op
	for i := range 1000 {
		ops = append(ops, routeOp(pb.Action_ACTION_CREATE, 1, fmt.Sprintf("10.%d.%d.0/24", i/256, i%256), 7))
	}
	ops = append(ops, routeOp(pb.Action_ACTION_CREATE, 9, "10.0.0.0/24", 99), routeOp(pb.Action_ACTION_DELETE, 1, "10.0.0.0/24", 0))
	sm := s.simulate(s.st, ops)
	msg := sm.refusal().Error()
	for _, w := range []string{"ops[0].route.next_hop: next-hop 7 does not exist", "ops[9].route.next_hop",
		"(and 993 more)"} {
		if !strings.Contains(msg, w) {
			t.Errorf("refusal %q does not say %q", msg, w)
		}
	}
	if strings.Contains(msg, "ops[10]") || len(sm.errs) > 2*maxBatchErrs {
		t.Errorf("refusal %q (%d errors kept)", msg, len(sm.errs))
	}
	// Phase one: fields, duplicates.
	ops = []*pb.Op{routeOp(pb.Action_ACTION_CREATE, 9, "10.0.0.0/24", 99), routeOp(pb.Action_ACTION_DELETE, 1, "10.0.0.0/24", 0),
		routeOp(pb.Action_ACTION_CREATE, 1, "10.0.0.0/24", 1)}
	msg = s.simulate(s.st, ops).refusal().Error()
	want := "batch refused, nothing changed: ops[0].route.vrf: VRF 9 out of range 0..3; ops[0].route.next_hop: 99 out of range 0..15; " +
		"ops[2].route: route 10.0.0.0/24 in VRF 1 is also ops[1]: one op per object in a batch"
	if !strings.Contains(msg, want) {
		t.Errorf("refusal %q, want %q", msg, want)
	}
}

func routeOp(a pb.Action, vrf uint32, prefix string, nh uint32) *pb.Op {
	return &pb.Op{Action: a, Object: &pb.Op_Route{Route: &pb.Route{Vrf: vrf, Prefix: prefix, NextHop: nh}}}
}
