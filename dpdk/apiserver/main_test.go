package apiserver_test

// The API's tests run the real fast path (one EAL per test process, on
// hugepages if there are free ones, else --no-huge) behind the real server
// on a real unix socket, through the real client. Ports are DPDK null
// devices that receive nothing (net_nullN,no-rx=1). Tests share the
// dataplane: each starts from the empty state and leaves it empty (static
// neighbours aside: the fast path cannot delete them yet).

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/dpdk/apiclient"
	"github.com/filament-net/filament/dpdk/apiserver"
	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/dpdk/hugepages"
)

var (
	dp       *fastpath.Dataplane
	fpConfig fastpath.Config
	cl       *apiclient.Client
	sock     string
	logs     syncBuffer
)

// Table sizes small enough to fill: 16 routes per VRF.
const (
	testNextHops = 256
	testVRFs     = 16
	testRoutes   = 16
)

// syncBuffer collects the server's logs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("apiserver tests: skipped, DPDK needs root here")
		os.Exit(0)
	}
	cfg := fastpath.DefaultConfig()
	cfg.NextHops, cfg.VRFs, cfg.FIB4Rules, cfg.FIB4Tbl8s, cfg.Mbufs = testNextHops, testVRFs, testRoutes, 8, 2047
	mem, huge := hugepages.EALArgs(512)
	prefix := fmt.Sprintf("fil-apisrv-%d", os.Getpid())
	cfg.EALArgs = append([]string{"-l", "0,1", "--no-pci", "--log-level=*:notice", "--file-prefix", prefix}, mem...)
	log.Printf("apiserver tests: DPDK with %s (hugepages %v)", strings.Join(mem, " "), huge)
	d, err := fastpath.Start(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: cannot start the fast path: %v\n", err)
		os.Exit(1)
	}
	dp, fpConfig = d, cfg

	dir, err := os.MkdirTemp("", "fil-apisrv")
	if err != nil {
		log.Fatal(err)
	}
	sock = filepath.Join(dir, "dp.sock")
	zl := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&logs), zap.DebugLevel))
	srv := apiserver.New(d, apiserver.Options{Config: cfg, Version: "test-1", Log: zl})
	lis, err := net.Listen("unix", sock)
	if err != nil {
		log.Fatal(err)
	}
	gs := grpc.NewServer()
	srv.Register(gs)
	go gs.Serve(lis) //nolint:errcheck // stopped below
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	cl, err = apiclient.Dial(ctx, sock, apiclient.WithName("apiserver-test"))
	cancel()
	if err != nil {
		log.Fatal(err)
	}

	code := m.Run()
	cl.Close()
	gs.Stop()
	d.Close()
	os.RemoveAll(dir)
	os.RemoveAll("/var/run/dpdk/" + prefix)
	os.Exit(code)
}

// ---- objects ------------------------------------------------------------------

const nullRx = ",no-rx=1" // null devices that receive nothing

func fabricPort() *pb.Port {
	return &pb.Port{Name: "fabric", Devargs: "net_null0" + nullRx, Kind: pb.PortKind_PORT_KIND_FABRIC,
		Ipv4: []string{"192.168.100.1"}, Mac: "02:fa:00:00:00:01"}
}

// podPort n is in vrf, at 10.<vrf>.0.<n+1> and 02:00:00:00:<vrf>:<n>.
func podPort(n int, vrf uint32) *pb.Port {
	return &pb.Port{Name: fmt.Sprintf("pod%d", n), Devargs: fmt.Sprintf("net_null%d%s", n, nullRx),
		Kind: pb.PortKind_PORT_KIND_POD, Vrf: vrf, Mac: fmt.Sprintf("02:00:00:00:%02x:%02x", vrf, n),
		Ipv4: []string{fmt.Sprintf("10.%d.0.%d", vrf, n+1)}}
}

func ifaceNH(id uint32, port, mac string) *pb.NextHop {
	return &pb.NextHop{Id: id, Type: pb.NextHopType_NEXT_HOP_TYPE_INTERFACE, Port: port, DstMac: mac}
}

func vxlanNH(id uint32, dst string, vni uint32) *pb.NextHop {
	return &pb.NextHop{Id: id, Type: pb.NextHopType_NEXT_HOP_TYPE_TUNNEL, Port: "fabric",
		Encap: pb.Encap_ENCAP_VXLAN, TunnelDst: dst, Vni: vni}
}

func mplsNH(id uint32, dst, gw string, label uint32) *pb.NextHop {
	return &pb.NextHop{Id: id, Type: pb.NextHopType_NEXT_HOP_TYPE_TUNNEL, Port: "fabric",
		Encap: pb.Encap_ENCAP_MPLSOUDP, TunnelDst: dst, TunnelGw: gw, Label: label}
}

func greNH(id uint32, dst string, label uint32) *pb.NextHop {
	return &pb.NextHop{Id: id, Type: pb.NextHopType_NEXT_HOP_TYPE_TUNNEL, Port: "fabric",
		Encap: pb.Encap_ENCAP_MPLSOGRE, TunnelDst: dst, Label: label}
}

func ecmpNH(id uint32, members ...uint32) *pb.NextHop {
	return &pb.NextHop{Id: id, Type: pb.NextHopType_NEXT_HOP_TYPE_ECMP, Members: members}
}

func discardNH(id uint32) *pb.NextHop {
	return &pb.NextHop{Id: id, Type: pb.NextHopType_NEXT_HOP_TYPE_DISCARD}
}

func receiveNH(id uint32) *pb.NextHop {
	return &pb.NextHop{Id: id, Type: pb.NextHopType_NEXT_HOP_TYPE_RECEIVE}
}

func route(vrf uint32, prefix string, nh uint32) *pb.Route {
	return &pb.Route{Vrf: vrf, Prefix: prefix, NextHop: nh}
}

// baseBatch is a node with every kind of object: a fabric, two pods in
// VRF 1, every next-hop type, routes, maps, a neighbour, a VRF address.
func baseBatch() *apiclient.Batch {
	return (&apiclient.Batch{}).Create(
		fabricPort(), podPort(1, 1), podPort(2, 1),
		&pb.VrfAddress{Vrf: 1, Address: "10.1.0.254", Address6: "fd00:1::fe"},
		&pb.Neighbor{Ip: "192.168.100.254", Mac: "02:fe:00:00:00:01"},
		ifaceNH(1, "pod1", "02:00:00:00:01:01"), ifaceNH(2, "pod2", "02:00:00:00:01:02"),
		vxlanNH(3, "192.168.100.2", 100), mplsNH(4, "192.168.100.3", "192.168.100.254", 200),
		ecmpNH(5, 3, 4), receiveNH(6), discardNH(7),
		route(1, "10.1.0.254/32", 6), route(1, "10.1.0.2/32", 1), route(1, "10.1.0.3/32", 2),
		route(1, "10.2.0.0/16", 5), route(1, "0.0.0.0/0", 7),
		&pb.VniMap{Vni: 100, Vrf: 1}, &pb.LabelMap{Label: 200, Vrf: 1},
	)
}

// ---- helpers ------------------------------------------------------------------------

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func apply(t *testing.T, b *apiclient.Batch) (*pb.ApplyResponse, error) {
	t.Helper()
	return cl.ApplyBatch(ctx(t), b)
}

func mustApply(t *testing.T, b *apiclient.Batch) *pb.ApplyResponse {
	t.Helper()
	r, err := apply(t, b)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return r
}

func dump(t *testing.T) *apiclient.State {
	t.Helper()
	s, err := cl.Dump(ctx(t))
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	return s
}

// deleteAll deletes everything but static neighbours (the fast path
// cannot delete those yet).
func deleteAll(t *testing.T) {
	t.Helper()
	s := dump(t)
	s.Neighbors = nil
	mustApply(t, s.Batch(pb.Action_ACTION_DELETE))
	if s := dump(t); len(s.Ports)+len(s.NextHops)+len(s.Routes)+len(s.VNIs)+len(s.Labels)+len(s.VRFAddresses) != 0 {
		t.Fatalf("state not empty after deleting everything: %v", s)
	}
}

// fresh starts a test from the empty state and empties it at the end.
func fresh(t *testing.T) {
	t.Helper()
	deleteAll(t)
	t.Cleanup(func() { deleteAll(t) })
}

// wantCode checks an error's gRPC code and that its message has each want.
func wantCode(t *testing.T, err error, code codes.Code, want ...string) {
	t.Helper()
	st := status.Convert(err)
	if err == nil || st.Code() != code {
		t.Fatalf("err %v, want %v", err, code)
	}
	for _, w := range want {
		if !strings.Contains(st.Message(), w) {
			t.Errorf("message %q does not say %q", st.Message(), w)
		}
	}
}

// lookup is the next-hop the fast path uses for addr in vrf (-1: none).
func lookup(vrf uint16, addr string) int {
	a := netip.MustParseAddr(addr)
	if a.Is6() {
		nh, ok := dp.LookupRoute6(vrf, a)
		if !ok {
			return -1
		}
		return int(nh)
	}
	nh, ok := dp.LookupRoute4(vrf, a)
	if !ok {
		return -1
	}
	return int(nh)
}

func sameState(t *testing.T, what string, a, b *apiclient.State) {
	t.Helper()
	if !a.Equal(b) {
		t.Errorf("%s: state changed:\nbefore %v\nafter  %v", what, a, b)
	}
}
