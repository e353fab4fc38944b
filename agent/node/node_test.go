package node

import (
	"context"
	"sort"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"

	"github.com/filament-net/filament/agent/cniapi"
	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/dpdk/apiclient"
)

// The sweep deletes only what the agent owns and does not want.
func TestStaleOwnership(t *testing.T) {
	n := &Node{nhBase: 512, nhEnd: 1024, st: state{VRFs: []uint32{1, 3}}}
	recv := pb.NextHopType_NEXT_HOP_TYPE_RECEIVE
	pod := pb.PortKind_PORT_KIND_POD
	cur := &apiclient.State{
		Ports: []*pb.Port{
			{Name: "fabric", Kind: pb.PortKind_PORT_KIND_FABRIC},
			{Name: "pod1", Kind: pod},           // the dataplane config's: kept
			{Name: "filaaaaaaaaaaa", Kind: pod}, // wanted
			{Name: "filbbbbbbbbbbb", Kind: pod}, // stale
		},
		NextHops: []*pb.NextHop{{Id: 5, Type: recv}, {Id: 512, Type: recv}, {Id: 600, Type: recv}},
		Routes: []*pb.Route{
			{Vrf: 1, Prefix: "10.0.0.0/24", NextHop: 5},   // not ours: kept
			{Vrf: 1, Prefix: "10.0.1.1/32", NextHop: 512}, // wanted
			{Vrf: 1, Prefix: "10.0.2.0/24", NextHop: 600}, // stale
			{Vrf: 7, Prefix: "10.7.0.0/24", NextHop: 600}, // stale (points to ours), any VRF
		},
		VNIs:         []*pb.VniMap{{Vni: 100, Vrf: 1}, {Vni: 300, Vrf: 3}, {Vni: 700, Vrf: 7}},
		Labels:       []*pb.LabelMap{{Label: 100, Vrf: 1}, {Label: 700, Vrf: 7}},
		VRFAddresses: []*pb.VrfAddress{{Vrf: 1, Address: "10.0.0.1"}, {Vrf: 3, Address: "10.3.0.1"}, {Vrf: 7, Address: "10.7.0.1"}},
	}
	want := &apiclient.State{
		Ports:        []*pb.Port{{Name: "filaaaaaaaaaaa", Kind: pod}},
		NextHops:     []*pb.NextHop{{Id: 512, Type: recv}},
		Routes:       []*pb.Route{{Vrf: 1, Prefix: "10.0.1.1/32", NextHop: 512}},
		VNIs:         []*pb.VniMap{{Vni: 100, Vrf: 1}},
		Labels:       []*pb.LabelMap{{Label: 100, Vrf: 1}},
		VRFAddresses: []*pb.VrfAddress{{Vrf: 1, Address: "10.0.0.1"}},
	}
	var got []string
	for _, op := range n.stale(cur, want).Ops {
		if op.Action != pb.Action_ACTION_DELETE {
			t.Errorf("not a delete: %v", op)
		}
		got = append(got, prototext.MarshalOptions{}.Format(op))
	}
	sort.Strings(got)
	wantDeleted := map[string]bool{
		"port filbbbbbbbbbbb": true, "nh 600": true, "route 1 10.0.2.0/24": true, "route 7 10.7.0.0/24": true,
		"vni 300": true, "addr 3": true,
	}
	seen := map[string]bool{}
	for _, op := range n.stale(cur, want).Ops {
		var k string
		switch o := op.Object.(type) {
		case *pb.Op_Port:
			k = "port " + o.Port.Name
		case *pb.Op_NextHop:
			k = "nh " + itoa(o.NextHop.Id)
		case *pb.Op_Route:
			k = "route " + itoa(o.Route.Vrf) + " " + o.Route.Prefix
		case *pb.Op_Vni:
			k = "vni " + itoa(o.Vni.Vni)
		case *pb.Op_Label:
			k = "label " + itoa(o.Label.Label)
		case *pb.Op_VrfAddress:
			k = "addr " + itoa(o.VrfAddress.Vrf)
		}
		seen[k] = true
	}
	for k := range wantDeleted {
		if !seen[k] {
			t.Errorf("%s not swept", k)
		}
	}
	for k := range seen {
		if !wantDeleted[k] {
			t.Errorf("%s swept, but it is not the agent's or still wanted", k)
		}
	}
	if t.Failed() {
		t.Logf("ops: %v", got)
	}
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

// A command that cannot start within 80% of the plugin's timeout answers
// "try again later".
func TestLockFor(t *testing.T) {
	n := &Node{sem: make(chan struct{}, 1)}
	ctx := context.Background()
	if !n.lockFor(ctx, 0) {
		t.Fatal("free lock not taken")
	}
	start := time.Now()
	if n.lockFor(ctx, 100) {
		t.Fatal("held lock taken")
	}
	if d := time.Since(start); d < 70*time.Millisecond || d > 2*time.Second {
		t.Errorf("gave up after %v, want about 80ms", d)
	}
	r := n.Del(ctx, &cniapi.Request{ContainerID: "c", IfName: "eth0", TimeoutMillis: 50})
	if r == nil || r.Error == nil || r.Error.Code != cniapi.CodeTryAgainLater {
		t.Errorf("DEL while busy: %+v", r)
	}
	n.unlock()
	if !n.lockFor(ctx, 100) {
		t.Error("released lock not taken")
	}
}
