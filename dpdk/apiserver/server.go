// Package apiserver serves the dataplane's gRPC API (dpdk/api/dataplane/v1)
// over a running fast path. It owns the desired state the API (and the
// startup configuration, see Seed) programmed: ports by name, next-hops by
// id, routes per VRF, VNI and label maps, static neighbours and the
// vRouter's VRF addresses. Lists answer from that model, writes go through
// it:
//
//   - Apply validates a whole batch (one op per object, in any order): each
//     op against the state the whole batch leads to; any error refuses the
//     batch and nothing changes (INVALID_ARGUMENT naming the op and field).
//   - The batch's net effect is then applied in an order the fast path
//     accepts (ports, addresses, next-hops, ECMP groups, routes, maps, then
//     deletes in reverse), and if the fast path refuses a step (a full table
//     is RESOURCE_EXHAUSTED) the steps already done are undone in reverse.
//     Routes go in bulk: one fast path call (UpdateRoutes4, all or none)
//     per VRF for a batch's route changes, however many.
//   - CREATE of an identical object and DELETE of a missing one succeed
//     without change; REPLACE upserts.
//
// Writes are serialised; reads run concurrently with each other.
package apiserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/dpdk/fastpath"
)

// Dataplane is what the server programs and reads: a *fastpath.Dataplane.
type Dataplane interface {
	AddPort(devargs string, pc fastpath.PortConfig) (fastpath.PortID, error)
	UpdatePort(id fastpath.PortID, pc fastpath.PortConfig) error
	DelPort(id fastpath.PortID) error
	PortMAC(id fastpath.PortID) (net.HardwareAddr, error)
	PortLinkUp(id fastpath.PortID) (bool, error)
	SetNextHop(id uint32, nh fastpath.NextHop) error
	DelNextHop(id uint32) error
	// UpdateRoutes4 adds, repoints or (NextHop fastpath.NoNextHop)
	// deletes a batch of routes of one VRF, all or none.
	UpdateRoutes4(vrf uint16, rs []fastpath.Route4) error
	// UpdateRoutes6 is the same for the VRF's IPv6 FIB.
	UpdateRoutes6(vrf uint16, rs []fastpath.Route6) error
	SetVRFAddress(vrf uint16, addr netip.Addr) error
	SetVRFAddress6(vrf uint16, addr netip.Addr) error
	SetVNI(vni uint32, vrf uint16) error
	DelVNI(vni uint32) error
	SetLabel(label uint32, vrf uint16) error
	DelLabel(label uint32) error
	SetNeighbor(ip netip.Addr, mac net.HardwareAddr) error
	Neighbor(ip netip.Addr) (net.HardwareAddr, bool, error)
	Drops() map[string]uint64
	PortStats(id fastpath.PortID) (fastpath.PortStats, error)
	LcoreStats(w int) (fastpath.LcoreStats, error)
	Workers() int
	MbufsInUse() int
	Trace(ctx context.Context, o fastpath.TraceOptions) ([]fastpath.TraceRecord, error)
	Capture(ctx context.Context, o fastpath.CaptureOptions, w io.Writer) (int, error)
}

var _ Dataplane = (*fastpath.Dataplane)(nil)

// Options configure a Server.
type Options struct {
	// Config is what the fast path was started with: the table sizes ops
	// are checked against and Hello reports, and the vRouter MAC.
	Config fastpath.Config
	// Version is the server's build, for Hello.
	Version string
	Log     *zap.Logger
}

// Limits are the table sizes ops are checked against.
type Limits struct {
	NextHops, VRFs, FIB4Routes, FIB4Tbl8s, Mbufs uint32
}

// Server implements pb.DataplaneServer.
type Server struct {
	pb.UnimplementedDataplaneServer
	dp         Dataplane
	log        *zap.Logger
	limits     Limits
	vrouterMAC net.HardwareAddr
	version    string

	mu  sync.RWMutex // writes (Apply, Seed) exclusive, reads shared
	st  *state
	gen uint64 // incremented by every batch that changes something
}

// New serves dp. Its state starts empty: Seed it with what was programmed
// before.
func New(dp Dataplane, o Options) *Server {
	def := fastpath.DefaultConfig()
	or := func(v, d uint32) uint32 {
		if v == 0 {
			return d
		}
		return v
	}
	c := o.Config
	s := &Server{
		dp:  dp,
		log: o.Log,
		limits: Limits{
			NextHops: or(c.NextHops, def.NextHops), VRFs: or(c.VRFs, def.VRFs),
			FIB4Routes: or(c.FIB4Rules, def.FIB4Rules), FIB4Tbl8s: or(c.FIB4Tbl8s, def.FIB4Tbl8s),
			Mbufs: or(c.Mbufs, def.Mbufs),
		},
		vrouterMAC: c.VRouterMAC,
		version:    o.Version,
		st:         newState(),
	}
	if s.vrouterMAC == nil {
		s.vrouterMAC = def.VRouterMAC
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.version == "" {
		s.version = "dev"
	}
	return s
}

// Register adds the service to a gRPC server.
func (s *Server) Register(g *grpc.Server) { pb.RegisterDataplaneServer(g, s) }

// Seed records state that is already programmed (the startup
// configuration, which config.Apply programmed): ops are validated like a
// batch but not sent to the fast path, and ports get the ids they have.
func (s *Server) Seed(ops []*pb.Op, portIDs map[string]fastpath.PortID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sm := s.simulate(s.st, ops)
	if len(sm.errs) > 0 {
		return errors.New(status.Convert(sm.refusal()).Message())
	}
	plan, stuck := order(s.st, sm.diff())
	if stuck != nil {
		return fmt.Errorf("ops[%d] (%s): cannot be ordered", stuck[0].op(), stuck[0])
	}
	for _, c := range plan {
		c.apply(s.st)
	}
	var missing []string
	s.st.ports.each(func(name string, p *port) {
		id, ok := portIDs[name]
		if !ok {
			missing = append(missing, name)
			return
		}
		q := *p
		q.id = id
		s.st.setPort(&q)
	})
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("no port id for ports %s", strings.Join(missing, ", "))
	}
	if len(plan) > 0 {
		s.gen++
	}
	return nil
}

// PortRef names a port of the state.
type PortRef struct {
	Name string
	Kind fastpath.PortKind
	ID   fastpath.PortID
}

// Ports lists the ports of the state, by name.
func (s *Server) Ports() []PortRef {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []PortRef
	s.st.ports.each(func(name string, p *port) { out = append(out, PortRef{name, p.kind, p.id}) })
	slices.SortFunc(out, func(a, b PortRef) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// ---- handshake --------------------------------------------------------------

// Capabilities lists what this server supports beyond the base API.
func (s *Server) Capabilities() []string {
	c := []string{"ipv4", "ipv6", "vxlan", "mplsoudp", "mplsogre", "ecmp", "vrf-address", "static-neighbors", "trace", "capture"}
	if _, ok := s.dp.(neighborDeleter); ok {
		c = append(c, "neighbor-delete")
	}
	return c
}

func (s *Server) Hello(ctx context.Context, req *pb.HelloRequest) (*pb.HelloResponse, error) {
	v := req.GetApiVersion()
	if v.GetMajor() != pb.APIMajor {
		s.log.Warn("client of another API major refused", zap.String("client", req.GetClient()),
			zap.Uint32("client_major", v.GetMajor()), zap.Int("server_major", pb.APIMajor))
		return nil, status.Errorf(codes.FailedPrecondition,
			"API version mismatch: the client speaks v%d.%d, this filament-dataplane speaks v%d.%d: use a client built for API v%d",
			v.GetMajor(), v.GetMinor(), pb.APIMajor, pb.APIMinor, pb.APIMajor)
	}
	s.log.Debug("hello", zap.String("client", req.GetClient()), zap.Uint32("client_minor", v.GetMinor()))
	return &pb.HelloResponse{
		ServerVersion: s.version,
		ApiVersion:    pb.Version(),
		Capabilities:  s.Capabilities(),
		Workers:       uint32(s.dp.Workers()),
		Tables: &pb.TableSizes{
			NextHops: s.limits.NextHops, Vrfs: s.limits.VRFs, Fib4Routes: s.limits.FIB4Routes,
			Fib4Tbl8S: s.limits.FIB4Tbl8s, Mbufs: s.limits.Mbufs, Ports: fastpath.MaxPorts,
			EcmpMembers: fastpath.MaxECMP, Neighbors: fastpath.MaxNeighbors, PortAddresses: fastpath.MaxPodAddrs,
		},
		VrouterMac: s.vrouterMAC.String(),
	}, nil
}

// ---- writes -------------------------------------------------------------------

func (s *Server) Apply(ctx context.Context, req *pb.ApplyRequest) (*pb.ApplyResponse, error) {
	start := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	ops := req.GetOps()
	refuse := func(err error) error {
		s.log.Warn("batch refused", zap.Int("ops", len(ops)),
			zap.Stringer("code", status.Code(err)), zap.String("reason", status.Convert(err).Message()))
		return err
	}
	sm := s.simulate(s.st, ops)
	if len(sm.errs) > 0 {
		return nil, refuse(sm.refusal())
	}
	plan, stuck := order(s.st, sm.diff())
	if stuck != nil {
		return nil, refuse(status.Errorf(codes.InvalidArgument,
			"batch refused, nothing changed: ops[%d] (%s): the fast path accepts its changes in no order "+
				"(e.g. a tunnel moved to a new fabric port while the old one exists): split the batch",
			stuck[0].op(), stuck[0]))
	}
	changes := 0
	for i, c := range plan {
		err := c.exec(s.dp, s.st)
		if err == nil {
			changes += size(c)
			continue
		}
		code := codeOf(err)
		idx, what := c.op(), c.String()
		if rb, ok := c.(*routeBatch); ok {
			idx, what = rb.culprit(err)
		}
		rbErrs := s.rollback(plan[:i])
		if len(rbErrs) > 0 {
			s.gen++ // the state is not what it was
			msg := fmt.Sprintf("batch failed at ops[%d] (%s): %v; rollback incomplete, the state is what the List RPCs show: %s",
				idx, what, err, strings.Join(rbErrs, "; "))
			s.log.Error("batch failed, rollback incomplete", zap.Int("ops", len(ops)), zap.String("reason", msg))
			return nil, status.Error(codes.Internal, msg)
		}
		msg := fmt.Sprintf("batch failed at ops[%d] (%s): %v; the %d changes made before it were rolled back, nothing changed",
			idx, what, err, changes)
		s.log.Error("batch failed, rolled back", zap.Int("ops", len(ops)), zap.Stringer("code", code),
			zap.String("reason", msg), zap.Duration("duration", time.Since(start)))
		return nil, status.Error(code, msg)
	}
	if len(plan) > 0 {
		s.gen++
	}
	resp := &pb.ApplyResponse{
		Created: uint32(sm.out.created), Updated: uint32(sm.out.updated),
		Deleted: uint32(sm.out.deleted), Unchanged: uint32(sm.out.unchanged), Generation: s.gen,
	}
	s.log.Info("batch applied", zap.Int("ops", len(ops)), zap.Int("created", sm.out.created),
		zap.Int("updated", sm.out.updated), zap.Int("deleted", sm.out.deleted),
		zap.Int("unchanged", sm.out.unchanged), zap.Int("changes", changes), zap.Int("fastpath_calls", len(plan)),
		zap.Uint64("generation", s.gen), zap.Duration("duration", time.Since(start)))
	return resp, nil
}

// rollback undoes done, last first; it returns what it could not undo.
func (s *Server) rollback(done []change) []string {
	var errs []string
	for i := len(done) - 1; i >= 0; i-- {
		inv := done[i].inverse()
		if err := inv.exec(s.dp, s.st); err != nil {
			errs = append(errs, fmt.Sprintf("undo %s: %v", inv, err))
		}
	}
	return errs
}

// ---- reads ----------------------------------------------------------------------

func (s *Server) ListPorts(ctx context.Context, _ *pb.ListPortsRequest) (*pb.ListPortsResponse, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	resp := &pb.ListPortsResponse{Generation: s.gen}
	s.st.ports.each(func(_ string, p *port) {
		e := &pb.PortEntry{Port: p.toPB(), Id: uint32(p.id)}
		if mac, err := s.dp.PortMAC(p.id); err == nil {
			e.DeviceMac = mac.String()
		}
		e.LinkUp, _ = s.dp.PortLinkUp(p.id)
		resp.Ports = append(resp.Ports, e)
	})
	slices.SortFunc(resp.Ports, func(a, b *pb.PortEntry) int { return strings.Compare(a.Port.Name, b.Port.Name) })
	return resp, nil
}

func (s *Server) ListNextHops(ctx context.Context, _ *pb.ListNextHopsRequest) (*pb.ListNextHopsResponse, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	resp := &pb.ListNextHopsResponse{Generation: s.gen}
	s.st.nhs.each(func(id uint32, n *nextHop) {
		resp.NextHops = append(resp.NextHops, &pb.NextHopEntry{
			NextHop: n.toPB(), Routes: uint32(s.st.nhRoutes.get(id)), EcmpGroups: uint32(s.st.nhGroups.get(id)),
		})
	})
	slices.SortFunc(resp.NextHops, func(a, b *pb.NextHopEntry) int { return int(a.NextHop.Id) - int(b.NextHop.Id) })
	return resp, nil
}

// routesPerMessage bounds a ListRoutes message (about 30 bytes a route).
const routesPerMessage = 1024

// ListRoutes streams the routes the API programmed, from the server's
// record (what the FIB holds: every route change reaches the record only
// once the fast path took it; see docs/architecture.md).
func (s *Server) ListRoutes(req *pb.ListRoutesRequest, stream grpc.ServerStreamingServer[pb.ListRoutesResponse]) error {
	type route struct {
		k  routeKey
		nh uint32
	}
	if req.Vrf != nil && req.GetVrf() >= s.limits.VRFs {
		return status.Errorf(codes.InvalidArgument, "vrf: VRF %d out of range 0..%d", req.GetVrf(), s.limits.VRFs-1)
	}
	s.mu.RLock()
	gen := s.gen
	n := s.st.routes.len()
	if req.Vrf != nil {
		n = s.st.vrfRoutes.get(uint16(req.GetVrf()))
	}
	rs := make([]route, 0, n)
	for k, nh := range s.st.routes.m {
		if req.Vrf == nil || uint32(k.vrf) == req.GetVrf() {
			rs = append(rs, route{k, nh})
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(rs, func(a, b route) int { return a.k.less(b.k) })
	// At least one message, which carries the generation.
	for first := true; first || len(rs) > 0; first = false {
		n := min(len(rs), routesPerMessage)
		msg := &pb.ListRoutesResponse{Generation: gen, Routes: make([]*pb.Route, n)}
		for i, r := range rs[:n] {
			msg.Routes[i] = &pb.Route{Vrf: uint32(r.k.vrf), Prefix: r.k.prefix().String(), NextHop: r.nh}
		}
		if err := stream.Send(msg); err != nil {
			return err
		}
		rs = rs[n:]
	}
	return nil
}

func (s *Server) ListVNIs(ctx context.Context, _ *pb.ListVNIsRequest) (*pb.ListVNIsResponse, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	resp := &pb.ListVNIsResponse{Generation: s.gen}
	s.st.vnis.each(func(k uint32, vrf uint16) { resp.Vnis = append(resp.Vnis, &pb.VniMap{Vni: k, Vrf: uint32(vrf)}) })
	slices.SortFunc(resp.Vnis, func(a, b *pb.VniMap) int { return int(a.Vni) - int(b.Vni) })
	return resp, nil
}

func (s *Server) ListLabels(ctx context.Context, _ *pb.ListLabelsRequest) (*pb.ListLabelsResponse, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	resp := &pb.ListLabelsResponse{Generation: s.gen}
	s.st.labels.each(func(k uint32, vrf uint16) {
		resp.Labels = append(resp.Labels, &pb.LabelMap{Label: k, Vrf: uint32(vrf)})
	})
	slices.SortFunc(resp.Labels, func(a, b *pb.LabelMap) int { return int(a.Label) - int(b.Label) })
	return resp, nil
}

func (s *Server) ListNeighbors(ctx context.Context, _ *pb.ListNeighborsRequest) (*pb.ListNeighborsResponse, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	byIP := map[netip.Addr]*pb.NeighborEntry{}
	entry := func(ip netip.Addr) *pb.NeighborEntry {
		e := byIP[ip]
		if e == nil {
			e = &pb.NeighborEntry{Ip: ip.String()}
			byIP[ip] = e
		}
		return e
	}
	s.st.neigh.each(func(ip netip.Addr, mac net.HardwareAddr) {
		e := entry(ip)
		e.Static, e.Resolved, e.Mac = true, true, mac.String()
	})
	s.st.nhs.each(func(id uint32, n *nextHop) {
		if ip, ok := n.neighbor(); ok {
			e := entry(ip)
			e.NextHops = append(e.NextHops, id)
		}
	})
	resp := &pb.ListNeighborsResponse{Generation: s.gen}
	for ip, e := range byIP {
		if !e.Static {
			if mac, ok, err := s.dp.Neighbor(ip); err == nil && ok {
				e.Mac, e.Resolved = mac.String(), true
			}
		}
		slices.Sort(e.NextHops)
		resp.Neighbors = append(resp.Neighbors, e)
	}
	slices.SortFunc(resp.Neighbors, func(a, b *pb.NeighborEntry) int {
		return netip.MustParseAddr(a.Ip).Compare(netip.MustParseAddr(b.Ip))
	})
	return resp, nil
}

func (s *Server) ListVRFs(ctx context.Context, _ *pb.ListVRFsRequest) (*pb.ListVRFsResponse, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	byID := map[uint16]*pb.VrfEntry{}
	entry := func(vrf uint16) *pb.VrfEntry {
		e := byID[vrf]
		if e == nil {
			e = &pb.VrfEntry{Vrf: uint32(vrf), Routes: uint32(s.st.vrfRoutes.get(vrf))}
			byID[vrf] = e
		}
		return e
	}
	s.st.ports.each(func(name string, p *port) {
		if p.kind != fastpath.PortFabric {
			e := entry(p.vrf)
			e.Ports = append(e.Ports, name)
		}
	})
	for vrf := range s.st.vrfRoutes.m {
		entry(vrf)
	}
	s.st.vnis.each(func(k uint32, vrf uint16) { e := entry(vrf); e.Vnis = append(e.Vnis, k) })
	s.st.labels.each(func(k uint32, vrf uint16) { e := entry(vrf); e.Labels = append(e.Labels, k) })
	s.st.vrfAddr.each(func(vrf uint16, a vrfAddrs) {
		e := entry(vrf)
		e.Address = a.v4.String()
		if a.v6.IsValid() {
			e.Address6 = a.v6.String()
		}
	})
	resp := &pb.ListVRFsResponse{Generation: s.gen}
	for _, e := range byID {
		slices.Sort(e.Ports)
		slices.Sort(e.Vnis)
		slices.Sort(e.Labels)
		resp.Vrfs = append(resp.Vrfs, e)
	}
	slices.SortFunc(resp.Vrfs, func(a, b *pb.VrfEntry) int { return int(a.Vrf) - int(b.Vrf) })
	return resp, nil
}

// ---- counters -------------------------------------------------------------------

func (s *Server) GetCounters(ctx context.Context, _ *pb.GetCountersRequest) (*pb.GetCountersResponse, error) {
	resp := &pb.GetCountersResponse{}
	drops := s.dp.Drops()
	for _, name := range fastpath.DropReasons() {
		resp.Drops = append(resp.Drops, &pb.DropCounter{Reason: name, Packets: drops[name]})
	}
	for _, p := range s.Ports() {
		st, err := s.dp.PortStats(p.ID)
		if err != nil {
			continue // deleted meanwhile
		}
		resp.Ports = append(resp.Ports, &pb.PortCounters{
			Name: p.Name, Id: uint32(p.ID),
			RxPackets: st.RxPackets, RxBytes: st.RxBytes, TxPackets: st.TxPackets, TxBytes: st.TxBytes,
			Drops: st.Drops, DevMissed: st.DevMissed, DevRxNombuf: st.DevRxNoMbuf,
			DevRxErrors: st.DevRxErrors, DevTxErrors: st.DevTxErrors,
		})
	}
	for w := 0; w < s.dp.Workers(); w++ {
		l, err := s.dp.LcoreStats(w)
		if err != nil {
			return nil, status.Errorf(codeOf(err), "lcore %d: %v", w, err)
		}
		resp.Lcores = append(resp.Lcores, &pb.LcoreCounters{
			Worker: uint32(w), Polls: l.Polls, BusyPolls: l.BusyPolls, Sleeps: l.Sleeps,
			RxPackets: l.RxPackets, TxPackets: l.TxPackets, Drops: l.Drops,
			BusyCycles: l.BusyCycles, Consumed: l.Consumed, RouterAdverts: l.RouterAdverts,
		})
	}
	resp.MbufsInUse = uint64(s.dp.MbufsInUse())
	return resp, nil
}

// ---- troubleshooting ------------------------------------------------------------

// Defaults of Trace.
const (
	traceDefaultCount   = 10
	traceDefaultTimeout = 10 * time.Second
)

// portID finds a port of the state by name.
func (s *Server) portID(field, name string) (fastpath.PortID, error) {
	if name == "" {
		return 0, status.Errorf(codes.InvalidArgument, "%s: required: a port's name", field)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.st.ports.get(name)
	if !ok {
		return 0, status.Errorf(codes.NotFound, "%s: %q is not a port", field, name)
	}
	return p.id, nil
}

// portNames maps the ports' ids to their names.
func (s *Server) portNames() map[fastpath.PortID]string {
	m := map[fastpath.PortID]string{}
	for _, p := range s.Ports() {
		m[p.ID] = p.Name
	}
	return m
}

// Trace records what the fast path does with the next packets.
func (s *Server) Trace(ctx context.Context, req *pb.TraceRequest) (*pb.TraceResponse, error) {
	o := fastpath.TraceOptions{Count: int(req.Count)}
	if o.Count == 0 {
		o.Count = traceDefaultCount
	}
	if o.Count > fastpath.MaxTrace {
		return nil, status.Errorf(codes.InvalidArgument, "count: %d: at most %d", req.Count, fastpath.MaxTrace)
	}
	if req.Port != nil {
		id, err := s.portID("port", req.GetPort())
		if err != nil {
			return nil, err
		}
		o.Port = &id
	}
	timeout := traceDefaultTimeout
	if req.TimeoutMs > 0 {
		timeout = time.Duration(req.TimeoutMs) * time.Millisecond
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	recs, err := s.dp.Trace(tctx, o)
	resp := &pb.TraceResponse{Complete: err == nil}
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil, status.FromContextError(ctx.Err()).Err()
	case errors.Is(err, context.DeadlineExceeded):
		// The timeout: what was traced so far.
	default:
		return nil, status.Errorf(codeOf(err), "%v", err)
	}
	names := s.portNames()
	for _, r := range recs {
		t := &pb.TraceRecord{
			TimeUnixNano: r.Time.UnixNano(), Worker: uint32(r.Worker), Lcore: uint32(r.Lcore),
			InPort: names[r.InPort], InPortId: uint32(r.InPort), InQueue: uint32(r.InQueue),
			InLen: uint32(r.InLen), In: r.In, Verdict: r.Verdict.String(), DropReason: r.DropReason,
			Summary: r.Summary(),
		}
		if r.Out != nil {
			t.OutPort, t.OutPortId, t.OutLen, t.Out = names[r.OutPort], uint32(r.OutPort), uint32(r.OutLen), r.Out
		} else if r.Verdict == fastpath.VerdictSent {
			t.OutPort, t.OutPortId = names[r.OutPort], uint32(r.OutPort)
		}
		resp.Records = append(resp.Records, t)
	}
	s.log.Info("trace", zap.Int("count", o.Count), zap.Int("records", len(recs)), zap.Bool("complete", resp.Complete))
	return resp, nil
}

// chunkWriter sends what Capture writes as CaptureChunks.
type chunkWriter struct {
	stream grpc.ServerStreamingServer[pb.CaptureChunk]
}

func (w chunkWriter) Write(p []byte) (int, error) {
	if err := w.stream.Send(&pb.CaptureChunk{Pcap: append([]byte(nil), p...)}); err != nil {
		return 0, err
	}
	return len(p), nil
}

var directions = map[pb.Direction]fastpath.Direction{
	pb.Direction_DIRECTION_BOTH: fastpath.DirBoth,
	pb.Direction_DIRECTION_RX:   fastpath.DirRx,
	pb.Direction_DIRECTION_TX:   fastpath.DirTx,
}

// Capture streams a pcap of a port's frames.
func (s *Server) Capture(req *pb.CaptureRequest, stream grpc.ServerStreamingServer[pb.CaptureChunk]) error {
	id, err := s.portID("port", req.Port)
	if err != nil {
		return err
	}
	dir, ok := directions[req.Direction]
	if !ok {
		return status.Errorf(codes.InvalidArgument, "direction: %v: DIRECTION_BOTH, DIRECTION_RX or DIRECTION_TX", req.Direction)
	}
	ctx := stream.Context()
	cctx := ctx
	if req.TimeoutMs > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMs)*time.Millisecond)
		defer cancel()
	}
	var st fastpath.CaptureStats
	_, err = s.dp.Capture(cctx, fastpath.CaptureOptions{
		Port: id, Count: int(req.Count), Direction: dir, Snaplen: int(req.Snaplen), Stats: &st,
	}, chunkWriter{stream})
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return status.FromContextError(ctx.Err()).Err()
	case errors.Is(err, context.DeadlineExceeded):
		// The timeout ended it: the pcap holds what came before.
	default:
		return status.Errorf(codeOf(err), "%v", err)
	}
	s.log.Info("capture", zap.String("port", req.Port), zap.Int("written", st.Written),
		zap.Uint64("captured", st.Captured), zap.Uint64("dropped", st.Dropped))
	return stream.Send(&pb.CaptureChunk{Stats: &pb.CaptureStats{
		Written: uint64(st.Written), Captured: st.Captured, Dropped: st.Dropped,
	}})
}
