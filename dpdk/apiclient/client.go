// Package apiclient is the Go client of filament-dataplane's API
// (dpdk/api/dataplane/v1): Dial connects over the unix socket and does the
// version handshake, Batch builds writes, Dump reads the whole state back
// (for resync, or to copy a dataplane's state to another).
package apiclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
)

// DefaultSocket is where filament-dataplane serves its API by default
// (config.DefaultSocket, not imported: this package needs no DPDK).
const DefaultSocket = "/run/filament/dataplane.sock"

// ErrNotRunning is wrapped by Dial's error when no daemon listens on the
// socket.
var ErrNotRunning = errors.New("filament-dataplane is not running")

// MaxMessage bounds the messages the client sends and receives, as
// filament-dataplane bounds its requests: 64 MiB, an Apply of about two
// million route ops (about 32 bytes each on the wire). A bigger batch is
// refused here (RESOURCE_EXHAUSTED, "trying to send message larger than
// max") before it is sent: split it, at the cost of its atomicity. Batches
// of 10,000 to 100,000 routes program fastest (docs/benchmarks/dataplane-api.md).
const MaxMessage = 64 << 20

// Client is a connection to filament-dataplane after the handshake.
type Client struct {
	pb.DataplaneClient
	// Server is the server's answer to Hello: its version, capabilities,
	// table sizes.
	Server *pb.HelloResponse
	Socket string
	conn   *grpc.ClientConn
}

type options struct {
	name    string
	version *pb.ApiVersion
}

// Option changes how Dial connects.
type Option func(*options)

// WithName tells the server who calls (its logs show it).
func WithName(name string) Option { return func(o *options) { o.name = name } }

// WithAPIVersion announces another API version than this package's (for
// tests of the handshake).
func WithAPIVersion(major, minor uint32) Option {
	return func(o *options) { o.version = &pb.ApiVersion{Major: major, Minor: minor} }
}

// Dial connects to the daemon's socket ("" is DefaultSocket) and does the
// handshake. ctx bounds the handshake. Its errors are one line, meant for
// operators: "filament-dataplane is not running: no socket at ...".
func Dial(ctx context.Context, socket string, opts ...Option) (*Client, error) {
	o := options{name: filepath.Base(os.Args[0]), version: pb.Version()}
	for _, f := range opts {
		f(&o)
	}
	if socket == "" {
		socket = DefaultSocket
	}
	fi, err := os.Stat(socket)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: no socket at %s", ErrNotRunning, socket)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("cannot reach filament-dataplane's socket %s: permission denied (it is root's, mode 0600)", socket)
	case err != nil:
		return nil, fmt.Errorf("cannot reach filament-dataplane's socket: %w", err)
	case fi.Mode()&fs.ModeSocket == 0:
		return nil, fmt.Errorf("%s is not a unix socket (filament-dataplane's --socket)", socket)
	}
	abs, err := filepath.Abs(socket)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient("unix://"+abs,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessage), grpc.MaxCallSendMsgSize(MaxMessage)))
	if err != nil {
		return nil, fmt.Errorf("filament-dataplane at %s: %w", socket, err)
	}
	c := &Client{DataplaneClient: pb.NewDataplaneClient(conn), Socket: socket, conn: conn}
	c.Server, err = c.Hello(ctx, &pb.HelloRequest{ApiVersion: o.version, Client: o.name})
	if err != nil {
		conn.Close()
		return nil, dialError(socket, err)
	}
	return c, nil
}

func dialError(socket string, err error) error {
	st := status.Convert(err)
	msg := st.Message()
	switch {
	case st.Code() == codes.Unavailable && strings.Contains(msg, "connection refused"):
		return fmt.Errorf("%w: connection refused at %s (a stale socket: nothing listens on it)", ErrNotRunning, socket)
	case st.Code() == codes.Unavailable && strings.Contains(msg, "permission denied"):
		return fmt.Errorf("cannot connect to filament-dataplane at %s: permission denied (the socket is root's, mode 0600)", socket)
	case st.Code() == codes.FailedPrecondition:
		return fmt.Errorf("filament-dataplane at %s refused the handshake: %s", socket, msg)
	case st.Code() == codes.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("filament-dataplane at %s did not answer the handshake in time", socket)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: connection refused at %s", ErrNotRunning, socket)
	}
	return fmt.Errorf("filament-dataplane at %s: %s: %s", socket, st.Code(), msg)
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Has reports whether the server announced a capability ("trace", ...).
func (c *Client) Has(capability string) bool {
	return slices.Contains(c.Server.GetCapabilities(), capability)
}

// ---- writes ------------------------------------------------------------------

// Batch is a list of ops, applied atomically by ApplyBatch: at most one op
// per object, in any order (the server checks each against the state the
// whole batch leads to, and orders the changes itself).
type Batch struct {
	Ops []*pb.Op
}

// Op wraps an object (*pb.Port, *pb.NextHop, *pb.Route, *pb.VniMap,
// *pb.LabelMap, *pb.Neighbor or *pb.VrfAddress) in an op. It panics on
// another type: a programming error.
func Op(a pb.Action, obj proto.Message) *pb.Op {
	op := &pb.Op{Action: a}
	switch o := obj.(type) {
	case *pb.Port:
		op.Object = &pb.Op_Port{Port: o}
	case *pb.NextHop:
		op.Object = &pb.Op_NextHop{NextHop: o}
	case *pb.Route:
		op.Object = &pb.Op_Route{Route: o}
	case *pb.VniMap:
		op.Object = &pb.Op_Vni{Vni: o}
	case *pb.LabelMap:
		op.Object = &pb.Op_Label{Label: o}
	case *pb.Neighbor:
		op.Object = &pb.Op_Neighbor{Neighbor: o}
	case *pb.VrfAddress:
		op.Object = &pb.Op_VrfAddress{VrfAddress: o}
	default:
		panic(fmt.Sprintf("apiclient.Op: %T is not an API object", obj))
	}
	return op
}

// Create adds create ops (an identical existing object is no change).
func (b *Batch) Create(objs ...proto.Message) *Batch { return b.add(pb.Action_ACTION_CREATE, objs) }

// Replace adds create-or-update ops.
func (b *Batch) Replace(objs ...proto.Message) *Batch { return b.add(pb.Action_ACTION_REPLACE, objs) }

// Delete adds delete ops (by key; a missing object is no change).
func (b *Batch) Delete(objs ...proto.Message) *Batch { return b.add(pb.Action_ACTION_DELETE, objs) }

func (b *Batch) add(a pb.Action, objs []proto.Message) *Batch {
	for _, o := range objs {
		b.Ops = append(b.Ops, Op(a, o))
	}
	return b
}

// ApplyBatch applies b atomically.
func (c *Client) ApplyBatch(ctx context.Context, b *Batch) (*pb.ApplyResponse, error) {
	return c.Apply(ctx, &pb.ApplyRequest{Ops: b.Ops})
}

// ---- the whole state -------------------------------------------------------------

// State is everything Apply can write, as the List RPCs return it.
type State struct {
	Ports        []*pb.Port
	VRFAddresses []*pb.VrfAddress
	Neighbors    []*pb.Neighbor // static ones only
	NextHops     []*pb.NextHop
	Routes       []*pb.Route
	VNIs         []*pb.VniMap
	Labels       []*pb.LabelMap
	Generation   uint64
}

// Dump lists the whole state. The lists are read one after the other; if
// a batch changed the state meanwhile, Dump reads again (a few times).
func (c *Client) Dump(ctx context.Context) (*State, error) {
	for try := 0; ; try++ {
		s, consistent, err := c.dump(ctx)
		if err != nil || consistent || try == 4 {
			return s, err
		}
	}
}

func (c *Client) dump(ctx context.Context) (*State, bool, error) {
	s := &State{}
	var gens []uint64
	ports, err := c.ListPorts(ctx, &pb.ListPortsRequest{})
	if err != nil {
		return nil, false, err
	}
	gens = append(gens, ports.Generation)
	for _, p := range ports.Ports {
		s.Ports = append(s.Ports, p.Port)
	}
	vrfs, err := c.ListVRFs(ctx, &pb.ListVRFsRequest{})
	if err != nil {
		return nil, false, err
	}
	gens = append(gens, vrfs.Generation)
	for _, v := range vrfs.Vrfs {
		if v.Address != "" {
			s.VRFAddresses = append(s.VRFAddresses, &pb.VrfAddress{Vrf: v.Vrf, Address: v.Address, Address6: v.Address6})
		}
	}
	neigh, err := c.ListNeighbors(ctx, &pb.ListNeighborsRequest{})
	if err != nil {
		return nil, false, err
	}
	gens = append(gens, neigh.Generation)
	for _, n := range neigh.Neighbors {
		if n.Static {
			s.Neighbors = append(s.Neighbors, &pb.Neighbor{Ip: n.Ip, Mac: n.Mac})
		}
	}
	nhs, err := c.ListNextHops(ctx, &pb.ListNextHopsRequest{})
	if err != nil {
		return nil, false, err
	}
	gens = append(gens, nhs.Generation)
	for _, n := range nhs.NextHops {
		s.NextHops = append(s.NextHops, n.NextHop)
	}
	routes, gen, err := c.Routes(ctx, nil)
	if err != nil {
		return nil, false, err
	}
	gens = append(gens, gen)
	s.Routes = routes
	vnis, err := c.ListVNIs(ctx, &pb.ListVNIsRequest{})
	if err != nil {
		return nil, false, err
	}
	gens = append(gens, vnis.Generation)
	s.VNIs = vnis.Vnis
	labels, err := c.ListLabels(ctx, &pb.ListLabelsRequest{})
	if err != nil {
		return nil, false, err
	}
	gens = append(gens, labels.Generation)
	s.Labels = labels.Labels
	s.Generation = gens[0]
	for _, g := range gens {
		if g != s.Generation {
			return s, false, nil
		}
	}
	return s, true, nil
}

// Routes reads the routes (of one VRF if vrf is not nil) and the state's
// generation.
func (c *Client) Routes(ctx context.Context, vrf *uint32) ([]*pb.Route, uint64, error) {
	stream, err := c.ListRoutes(ctx, &pb.ListRoutesRequest{Vrf: vrf})
	if err != nil {
		return nil, 0, err
	}
	var out []*pb.Route
	var gen uint64
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, gen, nil
		}
		if err != nil {
			return nil, 0, err
		}
		gen = m.Generation
		out = append(out, m.Routes...)
	}
}

// Batch turns the state into one batch of ops of one action: create
// (program it on an empty dataplane), replace (resync) or delete. The ops
// come in dependency order (for delete, the reverse), which the server does
// not need but makes the batch easier to read.
func (s *State) Batch(a pb.Action) *Batch {
	var groups, others []proto.Message
	for _, n := range s.NextHops {
		if n.Type == pb.NextHopType_NEXT_HOP_TYPE_ECMP {
			groups = append(groups, n)
		} else {
			others = append(others, n)
		}
	}
	var objs []proto.Message
	add := func(l ...[]proto.Message) {
		for _, x := range l {
			objs = append(objs, x...)
		}
	}
	ports, addrs, neigh, routes, vnis, labels := msgs(s.Ports), msgs(s.VRFAddresses), msgs(s.Neighbors),
		msgs(s.Routes), msgs(s.VNIs), msgs(s.Labels)
	if a == pb.Action_ACTION_DELETE {
		add(labels, vnis, routes, groups, others, neigh, addrs, ports)
	} else {
		add(ports, addrs, neigh, others, groups, routes, vnis, labels)
	}
	return (&Batch{}).add(a, objs)
}

func msgs[T proto.Message](l []T) []proto.Message {
	out := make([]proto.Message, len(l))
	for i, m := range l {
		out[i] = m
	}
	return out
}

// Equal compares two states (not their generations).
func (s *State) Equal(o *State) bool {
	return eq(s.Ports, o.Ports) && eq(s.VRFAddresses, o.VRFAddresses) && eq(s.Neighbors, o.Neighbors) &&
		eq(s.NextHops, o.NextHops) && eq(s.Routes, o.Routes) && eq(s.VNIs, o.VNIs) && eq(s.Labels, o.Labels)
}

func eq[T proto.Message](a, b []T) bool {
	return slices.EqualFunc(a, b, func(x, y T) bool { return proto.Equal(x, y) })
}
