package apiclient

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
)

// hello is a server that only shakes hands (the real one is tested in
// dpdk/apiserver): it accepts major 1.
type hello struct {
	pb.UnimplementedDataplaneServer
	client chan string
}

func (h *hello) Hello(_ context.Context, req *pb.HelloRequest) (*pb.HelloResponse, error) {
	h.client <- req.Client
	if req.GetApiVersion().GetMajor() != pb.APIMajor {
		return nil, status.Error(codes.FailedPrecondition, "API version mismatch")
	}
	return &pb.HelloResponse{ServerVersion: "fake", ApiVersion: pb.Version(), Capabilities: []string{"trace"}}, nil
}

func TestDial(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	missing := filepath.Join(dir, "missing.sock")
	_, err := Dial(ctx, missing)
	if !errors.Is(err, ErrNotRunning) || err.Error() != "filament-dataplane is not running: no socket at "+missing {
		t.Errorf("no socket: %v", err)
	}

	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Dial(ctx, file); err == nil || !strings.Contains(err.Error(), "is not a unix socket") {
		t.Errorf("regular file: %v", err)
	}

	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	_, err = Dial(ctx, stale)
	if !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "connection refused at "+stale) {
		t.Errorf("stale socket: %v", err)
	}

	sock := filepath.Join(dir, "dp.sock")
	l, err = net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	h := &hello{client: make(chan string, 4)}
	g := grpc.NewServer()
	pb.RegisterDataplaneServer(g, h)
	go g.Serve(l) //nolint:errcheck // stopped below
	defer g.Stop()
	c, err := Dial(ctx, sock, WithName("tester"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := <-h.client; got != "tester" || c.Server.ServerVersion != "fake" || !c.Has("trace") || c.Has("capture") {
		t.Errorf("handshake: client %q, server %v", got, c.Server)
	}
	// A batch over MaxMessage is refused before it is sent (the fake
	// server would answer UNIMPLEMENTED).
	huge := (&Batch{}).Create(&pb.Route{Prefix: strings.Repeat("x", MaxMessage)})
	if _, err := c.ApplyBatch(ctx, huge); status.Code(err) != codes.ResourceExhausted ||
		!strings.Contains(err.Error(), "larger than max") {
		t.Errorf("a batch over %d bytes: %v", MaxMessage, err)
	}
	_, err = Dial(ctx, sock, WithAPIVersion(7, 0))
	<-h.client
	if err == nil || err.Error() != "filament-dataplane at "+sock+" refused the handshake: API version mismatch" {
		t.Errorf("other major: %v", err)
	}
}

func TestStateBatch(t *testing.T) {
	s := &State{
		Ports:        []*pb.Port{{Name: "p"}},
		VRFAddresses: []*pb.VrfAddress{{Vrf: 1}},
		NextHops: []*pb.NextHop{{Id: 3, Type: pb.NextHopType_NEXT_HOP_TYPE_ECMP, Members: []uint32{1}},
			{Id: 1, Type: pb.NextHopType_NEXT_HOP_TYPE_INTERFACE}},
		Routes: []*pb.Route{{Prefix: "0.0.0.0/0"}},
		VNIs:   []*pb.VniMap{{Vni: 5}},
	}
	c := s.Batch(pb.Action_ACTION_CREATE)
	d := s.Batch(pb.Action_ACTION_DELETE)
	if len(c.Ops) != 6 || c.Ops[0].GetPort() == nil || c.Ops[1].GetVrfAddress() == nil ||
		c.Ops[2].GetNextHop().GetId() != 1 || c.Ops[3].GetNextHop().GetId() != 3 || c.Ops[4].GetRoute() == nil ||
		c.Ops[5].GetVni() == nil || c.Ops[0].Action != pb.Action_ACTION_CREATE {
		t.Errorf("create: %v", c.Ops)
	}
	if len(d.Ops) != 6 || d.Ops[0].GetVni() == nil || d.Ops[1].GetRoute() == nil || d.Ops[2].GetNextHop().GetId() != 3 ||
		d.Ops[3].GetNextHop().GetId() != 1 || d.Ops[5].GetPort() == nil || d.Ops[0].Action != pb.Action_ACTION_DELETE {
		t.Errorf("delete: %v", d.Ops)
	}
	if !s.Equal(s) || s.Equal(&State{}) {
		t.Error("Equal")
	}
	defer func() {
		if recover() == nil {
			t.Error("Op of a non-object did not panic")
		}
	}()
	Op(pb.Action_ACTION_CREATE, &pb.HelloRequest{})
}
