package apiserver

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/filament-net/filament/dpdk/fastpath"
)

// TestOrderPlan: the plan's order, without a fast path.
func TestOrderPlan(t *testing.T) {
	base := newState()
	a := &port{name: "a", devargs: "net_null0", kind: fastpath.PortPod}
	base.setPort(a)
	b := &port{name: "b", devargs: "net_null0,no-rx=1", kind: fastpath.PortPod}
	nh := &nextHop{id: 1, typ: fastpath.NHIface, port: "b"}
	rt := routeKey{1, netip.MustParsePrefix("10.0.0.0/8")}
	neigh := &neighChange{idx: 0, ip: netip.MustParseAddr("192.0.2.1"), new: net.HardwareAddr{2, 0, 0, 0, 0, 1}}
	changes := []change{
		neigh,
		&routeChange{idx: 1, key: rt, new: 1, hasNew: true},
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
