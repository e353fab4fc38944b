// Package node is filament-agent's standalone node: it programs the
// dataplane for the configured networks and peers, attaches pods for the
// CNI server, and resynchronises with the dataplane at start by mark and
// sweep, never resetting it.
//
// What the agent owns in the dataplane (and so may delete in the sweep):
//   - pod ports whose name starts with attach.HostPrefix ("fil");
//   - next-hops whose id is in its range: the upper half of the table
//     (Hello's tables.next_hops/2 and up);
//   - routes that point to one of its next-hops;
//   - VNI and label maps and VRF addresses of the VRFs of its networks
//     (the configured ones and any it programmed before, persisted);
//   - the host port it made (config.Host, hostport.go).
//
// Everything else (the fabric port, a host port of the dataplane's own
// config, next-hops and routes from it or an operator) is left alone.
package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/filament-net/filament/agent/attach"
	"github.com/filament-net/filament/agent/cniapi"
	"github.com/filament-net/filament/agent/config"
	"github.com/filament-net/filament/agent/dpmetrics"
	"github.com/filament-net/filament/agent/ipam"
	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/dpdk/apiclient"
)

// Node is safe for concurrent use. Two locks: the state lock (sem) is
// held for what must be consistent across attachments and short (the
// state file, IPAM, next-hop ids, dataplane batches, the resync); the
// per-attachment lock (keys) is held for a whole command, so the slow
// per-pod work (the veth, in the pod's netns) runs outside the state lock
// and commands of different pods overlap, while an ADD and a DEL of the
// same (containerID, ifName) never interleave. Order: key, then state.
type Node struct {
	cfg  *config.Config
	log  *zap.Logger
	ipam *ipam.IPAM

	sem    chan struct{} // the state lock: one holder
	keys   keyLocks
	kick   chan struct{} // wakes Watch when a command finds the dataplane gone
	st     state
	dp     *apiclient.Client
	fabric string // the dataplane's fabric port name
	nhBase uint32
	nhEnd  uint32

	gen uint64 // the dataplane's generation after our last write or list

	hostFab hostFabric // what the host port copies from the fabric port

	portPods map[string]dpmetrics.Pod // pod port -> its pod, under countMu

	metrics     *Metrics
	countMu     sync.Mutex
	attachCount map[string]int // network -> attachments, for metrics

	readyMu sync.RWMutex
	ready   bool

	// Kubernetes mode: ports gives pods their Ports; netMu guards
	// cfg.Networks and cfg.Peers, which SetDesired replaces (with the
	// state lock held too, so code under the state lock reads them freely).
	ports PortSource
	netMu sync.RWMutex
	// portWaits: ADDs waiting for their pod's Port now (a gauge).
	portWaits atomic.Int64
}

// Assigned is a pod interface's Port in Kubernetes mode: its network and
// the addresses and MAC kube-manager gave it, used instead of the agent's
// own IPAM.
type Assigned struct {
	Network    string
	IPv4, IPv6 netip.Addr
	MAC        string
}

// PortSource finds pods' Ports (Kubernetes mode).
type PortSource interface {
	// Port is the request's pod's Port; false while there is none (yet).
	Port(req *cniapi.Request) (Assigned, bool)
	// Programmed: ADD with the request's pod's Port ended, attached and
	// programmed (failure nil) or not (why).
	Programmed(req *cniapi.Request, failure *PortFailure)
}

// PortFailure is why ADD could not program a pod's Port: the Reason of
// its Programmed=False condition (CamelCase) and a Message.
type PortFailure struct {
	Reason  string
	Message string
}

// Reasons of PortFailure, by the failed ADD's CNI error.
const (
	ReasonNetworkUnknown   = "NetworkUnknown" // the Port's network is not (yet) one of the node's
	ReasonInvalidConfig    = "InvalidConfig"  // the request does not fit the network (MTU)
	ReasonAddress          = "AddressNotInNetwork"
	ReasonAddressChanged   = "AddressChanged"   // the pod is attached with other addresses than its Port now gives
	ReasonAttachFailed     = "AttachFailed"     // the pod's interface could not be made
	ReasonDataplaneRefused = "DataplaneRefused" // the dataplane refused the pod's objects
	ReasonNotReady         = "NotReady"         // the dataplane unreachable or not programmed yet: kubelet retries
	ReasonInvalidRequest   = "InvalidRequest"
	ReasonNetnsNotFound    = "NetnsNotFound"
	ReasonAddFailed        = "AddFailed"
)

// hasTunnel: the node keeps a tunnel to peer p in network nw, because p
// has a pod block there (IPv6 only in a dual-stack network) or, in
// Kubernetes mode, host routes. desiredState makes the tunnel; the host
// port routes p's underlay addresses through it.
func hasTunnel(p *config.Peer, nw *config.Network) bool {
	_, ok := p.PodBlocks[nw.Name]
	_, ok6 := p.PodBlocks6[nw.Name]
	return ok || (ok6 && nw.DualStack()) || len(p.Hosts[nw.Name]) > 0
}

// msgUnknownNetwork is ADD's error for a network the node does not have.
const msgUnknownNetwork = "unknown network"

// msgBusy is the error of a command that found another command of the
// same attachment (or the agent's resync) holding it.
const msgBusy = "the agent is busy with other commands"

// portFailure is a failed ADD's error as a PortFailure (nil: success).
func portFailure(err error) *PortFailure {
	if err == nil {
		return nil
	}
	e := response(nil, err).Error
	f := &PortFailure{Reason: ReasonAddFailed, Message: e.Msg}
	if e.Details != "" {
		f.Message += ": " + e.Details
	}
	switch {
	case errors.Is(err, errUnknownNetwork):
		f.Reason = ReasonNetworkUnknown
	case errors.Is(err, errAddressChanged):
		f.Reason = ReasonAddressChanged
	case e.Code == cniapi.CodeInvalidConfig:
		f.Reason = ReasonInvalidConfig
	case e.Code == cniapi.CodeNoAddress:
		f.Reason = ReasonAddress
	case e.Code == cniapi.CodeIOFailure:
		f.Reason = ReasonAttachFailed
	case e.Code == cniapi.CodeDataplane:
		f.Reason = ReasonDataplaneRefused
	case e.Code == cniapi.CodeTryAgainLater:
		f.Reason = ReasonNotReady
	case e.Code == cniapi.CodeInvalidRequest:
		f.Reason = ReasonInvalidRequest
	case e.Code == cniapi.CodeInvalidEnvironment:
		f.Reason = ReasonNetnsNotFound
	}
	return f
}

// SetPortSource switches ADD to Kubernetes mode: addresses come from
// the pods' Ports. Call before Start.
func (n *Node) SetPortSource(s PortSource) { n.ports = s }

// SetDesired replaces the networks and peers (Kubernetes mode: from the
// API server) and, once the dataplane is programmed, resyncs it (mark and
// sweep, as at start). Networks without a VRF get one, kept in the state.
func (n *Node) SetDesired(ctx context.Context, networks []config.Network, peers []config.Peer) error {
	n.lock()
	defer n.unlock()
	if n.st.NetVRFs == nil {
		n.st.NetVRFs = map[string]uint32{}
	}
	n.releaseVRFs(networks)
	used := map[uint32]bool{}
	for _, v := range n.st.NetVRFs {
		used[v] = true
	}
	for i := range networks {
		nw := &networks[i]
		if nw.VRF != 0 {
			continue
		}
		v, ok := n.st.NetVRFs[nw.Name]
		if !ok {
			for v = 1; used[v]; v++ {
			}
		}
		n.st.NetVRFs[nw.Name], used[v] = v, true
		nw.VRF = v
	}
	n.netMu.Lock()
	n.cfg.Networks, n.cfg.Peers = networks, peers
	n.netMu.Unlock()
	if n.dp == nil || !n.Ready() {
		return n.saveState() // Start or the next probe programs it
	}
	if err := n.resync(ctx); err != nil {
		n.setReady(false) // the next probe reconnects and resyncs
		return fmt.Errorf("resync with the new networks and peers: %w", err)
	}
	return nil
}

// releaseVRFs forgets the VRF ids of networks that are gone (their
// VirtualNetwork deleted) and that no attachment still uses, so that a
// later network reuses the id; the resync sweeps what the old network had
// in that VRF. An id still used by a pod is kept until its DEL, so that a
// new network never shares a VRF with an old network's pods. State lock
// held.
func (n *Node) releaseVRFs(networks []config.Network) {
	wanted := map[string]bool{}
	for _, nw := range networks {
		wanted[nw.Name] = true
	}
	inUse, netInUse := map[uint32]bool{}, map[string]bool{}
	for _, a := range n.st.Attachments {
		inUse[a.VRF], netInUse[a.Network] = true, true // an older agent's record has VRF 0: its network tells
	}
	for name, v := range n.st.NetVRFs {
		if wanted[name] || inUse[v] || netInUse[name] {
			continue
		}
		delete(n.st.NetVRFs, name)
		n.log.Info("VRF id released: its network is gone and no pod uses it", zap.String("network", name), zap.Uint32("vrf", v))
	}
}

// network is a configured network (safe without the state lock).
func (n *Node) network(name string) (*config.Network, bool) {
	n.netMu.RLock()
	defer n.netMu.RUnlock()
	nw, ok := n.cfg.Network(name)
	if !ok {
		return nil, false
	}
	c := *nw
	return &c, true
}

func (n *Node) setReady(r bool) {
	n.readyMu.Lock()
	n.ready = r
	n.readyMu.Unlock()
	if !r {
		select {
		case n.kick <- struct{}{}:
		default:
		}
	}
}

// Reconnection back-off while the dataplane does not answer: short, so a
// restarted dataplane is programmed (and its pods forward) within moments
// of listening, and capped low for the same reason; one ListVRFs or a
// failed dial on a unix socket costs next to nothing.
const (
	reconnectMin = 50 * time.Millisecond
	reconnectMax = 500 * time.Millisecond
)

// Watch checks the dataplane every interval until ctx ends. When it stops
// answering the node is not ready (ADD: try again later; STATUS: not
// ready) and is checked again with a short back-off (reconnectMin doubling
// up to reconnectMax); when it answers again, or answers with a generation
// lower than the last one seen (it restarted with only its own config),
// the node resyncs, which is idempotent and hitless. A command that finds
// the dataplane gone wakes it at once.
func (n *Node) Watch(ctx context.Context, interval time.Duration) {
	wait := interval
	failing := false
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-n.kick:
			t.Stop()
		case <-t.C:
		}
		err := n.probe(ctx)
		select {
		case <-n.kick: // the probe's own setReady(false): the back-off decides
		default:
		}
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			if failing {
				n.log.Info("dataplane programmed again")
			}
			failing, wait = false, interval
		case !failing:
			n.log.Warn("dataplane check failed: retrying with back-off", zap.Error(err),
				zap.Duration("max", reconnectMax))
			failing, wait = true, reconnectMin
		default:
			n.log.Debug("dataplane check failed", zap.Error(err))
			wait = min(2*wait, reconnectMax)
		}
	}
}

func (n *Node) probe(ctx context.Context) error {
	n.lock()
	defer n.unlock()
	if n.dp != nil {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		r, err := n.dp.ListVRFs(pctx, &pb.ListVRFsRequest{})
		cancel()
		if err == nil && r.Generation >= n.gen && n.Ready() {
			n.gen = r.Generation
			return nil
		}
		if err == nil {
			n.log.Warn("dataplane restarted (its generation went back): resyncing",
				zap.Uint64("generation", r.Generation), zap.Uint64("last", n.gen))
		} else {
			n.log.Warn("dataplane unreachable", zap.Error(err))
		}
		n.setReady(false)
		// Reconnect: a restarted dataplane may have other workers.
		n.dp.Close()
		n.dp = nil
	}
	if err := n.connectAndSyncLocked(ctx); err != nil {
		return err
	}
	n.setReady(true)
	return nil
}

// New loads the state directory.
func New(cfg *config.Config, log *zap.Logger) (*Node, error) {
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, err
	}
	pools := map[string]ipam.Pool{}
	for _, nw := range cfg.Networks {
		pools[nw.Name] = poolOf(&nw)
	}
	im, err := ipam.Open(cfg.StateDir, pools)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: log, ipam: im, sem: make(chan struct{}, 1), kick: make(chan struct{}, 1),
		metrics: newMetrics()}
	if err := n.loadState(); err != nil {
		return nil, err
	}
	// An address with no attachment record comes from an ADD the agent
	// did not finish (it died in between): kubelet retries that ADD or
	// DELs it, so the address is free again.
	for _, al := range im.All() {
		if _, a := n.attachment(al.Key.ContainerID, al.Key.IfName); a == nil {
			log.Info("releasing an address of an unfinished ADD", zap.String("containerID", al.Key.ContainerID),
				zap.String("ifName", al.Key.IfName), zap.Stringer("address", al.Address))
			if _, err := im.Release(al.Key); err != nil {
				return nil, err
			}
		}
	}
	return n, nil
}

// dualStackNetworks names the configured networks with subnet6.
func (n *Node) dualStackNetworks() []string {
	var out []string
	for i := range n.cfg.Networks {
		if n.cfg.Networks[i].DualStack() {
			out = append(out, n.cfg.Networks[i].Name)
		}
	}
	return out
}

// poolOf is the network's IPAM pool.
func poolOf(nw *config.Network) ipam.Pool {
	return ipam.Pool{Subnet: nw.Subnet, Block: nw.PodBlock, Gateway: nw.Gateway,
		Subnet6: nw.Subnet6, Block6: nw.PodBlock6, Gateway6: nw.Gateway6}
}

// Ready reports whether the node programmed the dataplane and serves ADD.
func (n *Node) Ready() bool {
	n.readyMu.RLock()
	defer n.readyMu.RUnlock()
	return n.ready
}

// Start connects to the dataplane (retrying until ctx ends) and
// resynchronises it: what the node wants is applied with REPLACE, then what
// the agent owns and no longer wants is deleted.
func (n *Node) Start(ctx context.Context) error {
	wait := reconnectMin
	for {
		err := n.connectAndSync(ctx)
		if err == nil {
			n.setReady(true)
			return nil
		}
		if wait == reconnectMin {
			n.log.Warn("dataplane not ready, retrying with back-off", zap.Error(err), zap.Duration("max", reconnectMax))
		} else {
			n.log.Debug("dataplane not ready", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, reconnectMax)
	}
}

// Close closes the dataplane connection. It deletes nothing: pods keep
// forwarding while the agent is away.
func (n *Node) Close() {
	n.lock()
	defer n.unlock()
	if n.dp != nil {
		n.dp.Close()
		n.dp = nil
	}
}

func (n *Node) connectAndSync(ctx context.Context) error {
	n.lock()
	defer n.unlock()
	return n.connectAndSyncLocked(ctx)
}

func (n *Node) connectAndSyncLocked(ctx context.Context) error {
	if n.dp == nil {
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := apiclient.Dial(hctx, n.cfg.Sockets.Dataplane, apiclient.WithName("filament-agent"))
		cancel()
		if err != nil {
			return err
		}
		n.dp = c
		t := c.Server.GetTables().GetNextHops()
		if t < 4 {
			return fmt.Errorf("dataplane has only %d next-hops", t)
		}
		n.nhBase, n.nhEnd = t/2, t
		n.log.Info("dataplane connected", zap.String("version", c.Server.ServerVersion),
			zap.Uint32("workers", c.Server.Workers), zap.Uint32("next_hop_base", n.nhBase))
		if dual := n.dualStackNetworks(); len(dual) > 0 && !c.Has("ipv6") {
			// A hint only: the dataplane's answer to the IPv6 routes decides.
			n.log.Warn("dual-stack networks, but the dataplane does not announce the ipv6 capability: it may refuse their IPv6 routes and ports",
				zap.Strings("networks", dual), zap.Strings("capabilities", c.Server.GetCapabilities()))
		}
	}
	return n.resync(ctx)
}

func (n *Node) resync(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			n.metrics.resyncs.WithLabelValues("error").Inc()
		} else {
			n.metrics.resyncs.WithLabelValues("ok").Inc()
		}
	}()
	start := time.Now()
	cur, err := n.dp.Dump(ctx)
	if err != nil {
		return fmt.Errorf("list the dataplane: %w", err)
	}
	n.fabric = ""
	for _, p := range cur.Ports {
		if p.Kind == pb.PortKind_PORT_KIND_FABRIC {
			n.fabric = p.Name
			if u := n.cfg.Fabric.UnderlayIPv6; u.IsValid() && !slices.Contains(p.Ipv6, u.String()) {
				// Not fatal: IPv4 tunnels still work; IPv6 ones get no source.
				n.log.Warn("fabric.underlay_ipv6 is not the fabric port's IPv6 address (the dataplane's config)",
					zap.Stringer("underlay_ipv6", u), zap.Strings("fabric_port_ipv6", p.Ipv6))
			}
		}
	}
	if n.fabric == "" && len(n.cfg.Peers) > 0 {
		return errors.New("the dataplane has no fabric port (its config must have one)")
	}
	if err := n.learnFabric(ctx, cur); err != nil {
		return err
	}
	if err := n.reconcileIPv6(); err != nil {
		return err
	}
	want, err := n.desired()
	if err != nil {
		return err
	}
	if err := n.saveState(); err != nil {
		return err
	}
	n.beforeResync(cur)
	if fixed := n.fixedChanges(cur, want); len(fixed.Ops) > 0 {
		// Pod ports whose devargs (the driver, the workers) changed cannot
		// be replaced: they go first, with what points to them, and come
		// back in the replace below (a short gap for those pods only).
		if _, err := n.dp.ApplyBatch(ctx, fixed); err != nil {
			return fmt.Errorf("delete pod ports to recreate: %w", err)
		}
		for _, op := range fixed.Ops {
			if p := op.GetPort(); p != nil && op.Action == pb.Action_ACTION_DELETE {
				n.clearXDP(p.Name)
			}
		}
		n.log.Info("pod ports recreated (devargs changed)", zap.Int("ops", len(fixed.Ops)))
	}
	r, err := n.dp.ApplyBatch(ctx, want.Batch(pb.Action_ACTION_REPLACE))
	if err != nil {
		return fmt.Errorf("apply the desired state: %w", err)
	}
	n.gen = r.Generation
	n.log.Info("desired state applied", zap.Uint32("created", r.Created), zap.Uint32("updated", r.Updated),
		zap.Uint32("unchanged", r.Unchanged))
	n.afterResync()
	stale := n.stale(cur, want)
	if len(stale.Ops) > 0 {
		r, err := n.dp.ApplyBatch(ctx, stale)
		if err != nil {
			return fmt.Errorf("sweep: %w", err)
		}
		n.gen = r.Generation
		n.log.Info("stale state swept", zap.Uint32("deleted", r.Deleted))
	}
	if err := n.setupHostKernel(ctx); err != nil {
		return fmt.Errorf("host port: %w", err)
	}
	n.log.Info("resync done", zap.Duration("took", time.Since(start)), zap.Int("attachments", len(n.st.Attachments)))
	return nil
}

// desired is the node's state (config and attachments) in the dataplane's
// terms. Attachments whose host end is gone (a reboot) are left out.
func (n *Node) desired() (*apiclient.State, error) {
	s, err := n.desiredState()
	if err != nil {
		return nil, err
	}
	if err := n.addHost(s); err != nil {
		return nil, err
	}
	// Forget the next-hop ids of peers, networks and attachments that are
	// gone (their objects go in the sweep).
	keep := map[string]bool{}
	for _, a := range n.st.Attachments {
		keep["pod/"+a.ContainerID+"/"+a.IfName] = true
	}
	ids := map[uint32]bool{}
	for _, h := range s.NextHops {
		ids[h.Id] = true
	}
	for k, id := range n.st.NextHops {
		if !keep[k] && !ids[id] {
			delete(n.st.NextHops, k)
		}
	}
	return s, nil
}

func (n *Node) desiredState() (*apiclient.State, error) {
	s := &apiclient.State{}
	for i := range n.cfg.Networks {
		nw := &n.cfg.Networks[i]
		n.addVRF(nw.VRF)
		va := &pb.VrfAddress{Vrf: nw.VRF, Address: nw.Gateway.String()}
		if nw.DualStack() {
			// The source of the ICMPv6 errors (packet too big, time
			// exceeded) the vRouter sends to the network's pods.
			va.Address6 = nw.Gateway6.String()
		}
		s.VRFAddresses = append(s.VRFAddresses, va)
		if nw.VNI != 0 {
			s.VNIs = append(s.VNIs, &pb.VniMap{Vni: nw.VNI, Vrf: nw.VRF})
		}
		if nw.Label != 0 {
			s.Labels = append(s.Labels, &pb.LabelMap{Label: nw.Label, Vrf: nw.VRF})
		}
		recv, err := n.nextHopID("recv/" + nw.Name)
		if err != nil {
			return nil, err
		}
		s.NextHops = append(s.NextHops, &pb.NextHop{Id: recv, Type: pb.NextHopType_NEXT_HOP_TYPE_RECEIVE})
		s.Routes = append(s.Routes, &pb.Route{Vrf: nw.VRF, Prefix: hostPrefix(nw.Gateway), NextHop: recv})
		if nw.DualStack() {
			// The vRouter answers ND for gateway6 as for every address
			// on a pod port; this route makes it answer pings too.
			s.Routes = append(s.Routes, &pb.Route{Vrf: nw.VRF, Prefix: hostPrefix(nw.Gateway6), NextHop: recv})
		}
		for i := range n.cfg.Peers {
			p := &n.cfg.Peers[i]
			if !hasTunnel(p, nw) {
				continue
			}
			blk, ok := p.PodBlocks[nw.Name]
			blk6, ok6 := p.PodBlocks6[nw.Name]
			ok6 = ok6 && nw.DualStack()
			hosts := p.Hosts[nw.Name]
			id, err := n.nextHopID("tun/" + nw.Name + "/" + p.Name)
			if err != nil {
				return nil, err
			}
			// One tunnel carries both families (config.TunnelDst).
			nh := &pb.NextHop{Id: id, Type: pb.NextHopType_NEXT_HOP_TYPE_TUNNEL, Port: n.fabric,
				TunnelDst: n.cfg.TunnelDst(p).String()}
			switch nw.Encap {
			case config.EncapMPLSoUDP:
				nh.Encap, nh.Label = pb.Encap_ENCAP_MPLSOUDP, nw.Label
			case config.EncapMPLSoGRE:
				nh.Encap, nh.Label = pb.Encap_ENCAP_MPLSOGRE, nw.Label
			default:
				nh.Encap, nh.Vni = pb.Encap_ENCAP_VXLAN, nw.VNI
			}
			s.NextHops = append(s.NextHops, nh)
			if ok {
				s.Routes = append(s.Routes, &pb.Route{Vrf: nw.VRF, Prefix: blk.String(), NextHop: id})
			}
			if ok6 {
				s.Routes = append(s.Routes, &pb.Route{Vrf: nw.VRF, Prefix: blk6.String(), NextHop: id})
			}
			for _, h := range hosts {
				if h.Addr().Is6() && !nw.DualStack() {
					continue
				}
				s.Routes = append(s.Routes, &pb.Route{Vrf: nw.VRF, Prefix: h.String(), NextHop: id})
			}
		}
	}
	for _, a := range n.st.Attachments {
		if a.deleting {
			continue // a DEL is removing it: its objects are gone already
		}
		nw, ok := n.cfg.Network(a.Network)
		if !ok {
			n.log.Warn("attachment of a network no longer configured: not programmed",
				zap.String("containerID", a.ContainerID), zap.String("network", a.Network))
			continue
		}
		if !n.present(a) {
			n.log.Warn("attachment's interface is gone: not programmed", zap.String("containerID", a.ContainerID),
				zap.String("hostIf", a.HostIf), zap.String("mode", a.mode()))
			continue
		}
		port, nh, rts := n.podObjects(a, nw)
		s.Ports = append(s.Ports, port)
		s.NextHops = append(s.NextHops, nh)
		s.Routes = append(s.Routes, rts...)
	}
	return s, nil
}

// hostPrefix is the route to one address: a /32 or a /128.
func hostPrefix(a netip.Addr) string { return netip.PrefixFrom(a, a.BitLen()).String() }

// devargs is the DPDK device of a pod's host end: af_packet with one
// queue pair per worker (each worker has its own TX queue), or af_xdp on
// the veth's one queue (the workers share its TX queue).
func (n *Node) devargs(hostIf string) string {
	if n.cfg.Attach.Veth.Driver == config.DriverAFXDP {
		return fmt.Sprintf("net_af_xdp_%s,iface=%s,start_queue=0,queue_count=1", hostIf, hostIf)
	}
	return fmt.Sprintf("net_af_packet_%s,iface=%s,qpairs=%d", hostIf, hostIf, max(1, n.dp.Server.Workers))
}

// podObjects are a pod's port, next-hop and routes: its /32, and its /128
// in a dual-stack network.
func (n *Node) podObjects(a *Attachment, nw *config.Network) (*pb.Port, *pb.NextHop, []*pb.Route) {
	port := &pb.Port{
		Name:    a.HostIf,
		Devargs: n.portDevargs(a),
		Kind:    pb.PortKind_PORT_KIND_POD,
		Vrf:     nw.VRF,
		Mac:     a.MAC,
		Ipv4:    []string{a.Address.Addr().String()},
		Mtu:     uint32(cmp.Or(a.MTU, n.cfg.PodMTU(nw))),
	}
	nh := &pb.NextHop{Id: a.NextHop, Type: pb.NextHopType_NEXT_HOP_TYPE_INTERFACE, Port: a.HostIf, DstMac: a.MAC}
	rts := []*pb.Route{{Vrf: nw.VRF, Prefix: hostPrefix(a.Address.Addr()), NextHop: a.NextHop}}
	if has6(a, nw) {
		port.Ipv6 = []string{a.Address6.Addr().String()}
		rts = append(rts, &pb.Route{Vrf: nw.VRF, Prefix: hostPrefix(a.Address6.Addr()), NextHop: a.NextHop})
	}
	return port, nh, rts
}

// has6: the attachment has an IPv6 address of its network's subnet6 (a
// network whose subnet6 went from the configuration leaves its pods'
// IPv6 addresses unprogrammed: the sweep removes their /128s).
func has6(a *Attachment, nw *config.Network) bool {
	return a.Address6.IsValid() && nw.DualStack() && nw.Subnet6.Contains(a.Address6.Addr())
}

// podRoutes is the delete list of a pod's routes in the pod's VRF and
// their copies in the host VRF (the next-hop is not needed to delete).
func (n *Node) podRoutes(vrf uint32, a *Attachment) []proto.Message {
	var out []proto.Message
	for _, p := range []netip.Prefix{a.Address, a.Address6} {
		if p.IsValid() {
			rt := &pb.Route{Vrf: vrf, Prefix: hostPrefix(p.Addr())}
			out = append(append(out, rt), n.hostRoutes(rt)...)
		}
	}
	return out
}

// fixedChanges is the delete batch of the agent's pod ports whose fields
// fixed at creation differ from the wanted ones, with the next-hops that
// use them and the routes to those next-hops.
func (n *Node) fixedChanges(cur, want *apiclient.State) *apiclient.Batch {
	wantPorts := map[string]*pb.Port{}
	for _, p := range want.Ports {
		wantPorts[p.Name] = p
	}
	gone := map[string]bool{}
	var del []proto.Message
	for _, p := range cur.Ports {
		w, ok := wantPorts[p.Name]
		if ok && p.Kind == pb.PortKind_PORT_KIND_POD && strings.HasPrefix(p.Name, attach.HostPrefix) &&
			(p.Devargs != w.Devargs || p.Kind != w.Kind || p.RxQueues != w.RxQueues) {
			gone[p.Name] = true
			del = append(del, p)
		} else if n.hostPortFixed(p, w) {
			gone[p.Name] = true
			del = append(del, p)
		}
	}
	nhs := map[uint32]bool{}
	for _, h := range cur.NextHops {
		if gone[h.Port] {
			nhs[h.Id] = true
			del = append(del, h)
		}
	}
	for _, r := range cur.Routes {
		if nhs[r.NextHop] {
			del = append(del, r)
		}
	}
	return (&apiclient.Batch{}).Delete(del...)
}

// stale is the delete batch of what the dataplane has, the agent owns and
// does not want.
func (n *Node) stale(cur, want *apiclient.State) *apiclient.Batch {
	key := func(m proto.Message) string { return fmt.Sprintf("%T %v", m, keyOf(m)) }
	wanted := map[string]bool{}
	for _, l := range [][]proto.Message{msgs(want.Ports), msgs(want.NextHops), msgs(want.Routes),
		msgs(want.VNIs), msgs(want.Labels), msgs(want.VRFAddresses)} {
		for _, m := range l {
			wanted[key(m)] = true
		}
	}
	ownedVRF := map[uint32]bool{}
	for _, v := range n.st.VRFs {
		ownedVRF[v] = true
	}
	var del []proto.Message
	for _, r := range cur.Routes {
		if n.ownsNextHop(r.NextHop) && !wanted[key(r)] {
			del = append(del, r)
		}
	}
	for _, h := range cur.NextHops {
		if n.ownsNextHop(h.Id) && !wanted[key(h)] {
			del = append(del, h)
		}
	}
	for _, p := range cur.Ports {
		if p.Kind == pb.PortKind_PORT_KIND_POD && len(p.Name) > len(attach.HostPrefix) &&
			p.Name[:len(attach.HostPrefix)] == attach.HostPrefix && !wanted[key(p)] {
			del = append(del, p)
		} else if n.ownsHostPort(p) && !wanted[key(p)] {
			del = append(del, p)
		}
	}
	for _, v := range cur.VNIs {
		if ownedVRF[v.Vrf] && !wanted[key(v)] {
			del = append(del, v)
		}
	}
	for _, l := range cur.Labels {
		if ownedVRF[l.Vrf] && !wanted[key(l)] {
			del = append(del, l)
		}
	}
	for _, a := range cur.VRFAddresses {
		if ownedVRF[a.Vrf] && !wanted[key(a)] {
			del = append(del, a)
		}
	}
	return (&apiclient.Batch{}).Delete(del...)
}

func keyOf(m proto.Message) any {
	switch o := m.(type) {
	case *pb.Port:
		return o.Name
	case *pb.NextHop:
		return o.Id
	case *pb.Route:
		// Canonical text: an IPv6 prefix listed as "fd00:20:0::/64" is
		// the agent's "fd00:20::/64", not a stale route.
		prefix := o.Prefix
		if p, err := netip.ParsePrefix(prefix); err == nil {
			prefix = p.String()
		}
		return fmt.Sprint(o.Vrf, " ", prefix)
	case *pb.VniMap:
		return o.Vni
	case *pb.LabelMap:
		return o.Label
	case *pb.VrfAddress:
		return o.Vrf
	}
	return nil
}

func msgs[T proto.Message](l []T) []proto.Message {
	out := make([]proto.Message, len(l))
	for i, m := range l {
		out[i] = m
	}
	return out
}

// ---- CNI commands ---------------------------------------------------------------

func (n *Node) lock()   { n.sem <- struct{}{} }
func (n *Node) unlock() { <-n.sem }

// lockFor waits for the state lock, at most 80% of the plugin's timeout
// (when it says), so that the plugin hears "try again later" rather than
// time out.
func (n *Node) lockFor(ctx context.Context, timeoutMillis int64) bool {
	expire, stop := startTimer(timeoutMillis)
	defer stop()
	return n.lockWithin(ctx, expire)
}

// lockWithin waits for the state lock until ctx ends or expire fires.
func (n *Node) lockWithin(ctx context.Context, expire <-chan time.Time) bool {
	select {
	case n.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	case <-expire:
		return false
	}
}

// begin takes the attachment's lock, then the state lock, both within
// the start deadline; it returns the attachment's unlock (the caller
// releases the state lock itself, usually before the slow work).
func (n *Node) begin(ctx context.Context, key attachKey, expire <-chan time.Time) (func(), bool) {
	unlockKey, ok := n.keys.lock(ctx, key, expire)
	if !ok {
		return nil, false
	}
	if !n.lockWithin(ctx, expire) {
		unlockKey()
		return nil, false
	}
	return unlockKey, true
}

// validIfName is the kernel's rule for an interface name (dev_valid_name).
func validIfName(s string) error {
	if s == "" || len(s) > 15 || s == "." || s == ".." || strings.ContainsAny(s, "/: \t\n") {
		return fmt.Errorf("interface name %q: want 1..15 bytes, no '/', ':' or space, not . or ..", s)
	}
	return nil
}

// Add attaches a pod interface (idempotent). The address, the next-hop id
// and the attachment record are made under the state lock; the veth
// outside it (the attachment's own lock keeps other commands of this
// attachment out); the dataplane batch under it again. A failed first ADD
// undoes itself: no record, address or host end is left behind.
func (n *Node) Add(ctx context.Context, req *cniapi.Request) *cniapi.Response {
	if n.ports == nil {
		return response(n.add(ctx, req, nil))
	}
	as, ok := n.waitPort(ctx, req)
	if !ok {
		// filament-cni asks again within poll-timeout x poll-retries.
		return cniErr(cniapi.CodeTryAgainLater, "no Port for the pod yet",
			fmt.Errorf("pod %s/%s (uid %q) has no Port on node %s", req.PodNamespace, req.PodName, req.PodUID, n.cfg.Node))
	}
	r := *req
	r.Network = as.Network
	res, err := n.add(ctx, &r, &as)
	if errors.Is(err, errBusy) {
		// The command holding the attachment reports its own outcome; a
		// retry turned away meanwhile says nothing about the Port.
		return response(res, err)
	}
	n.ports.Programmed(&r, portFailure(err))
	return response(res, err)
}

// add is ADD with the pod's Port (given, Kubernetes mode) or the agent's
// IPAM (given nil). Its errors are *cmdError.
func (n *Node) add(ctx context.Context, req *cniapi.Request, given *Assigned) (*cniapi.Result, error) {
	nw, ok := n.network(req.Network)
	if !ok {
		return nil, &cmdError{code: cniapi.CodeInvalidConfig, msg: msgUnknownNetwork, kind: errUnknownNetwork,
			details: fmt.Errorf("network %q is not in the agent's configuration", req.Network)}
	}
	mtu := n.cfg.PodMTU(nw)
	if req.MTU > mtu {
		return nil, failed(cniapi.CodeInvalidConfig, "mtu too large",
			fmt.Errorf("mtu %d: network %q carries at most %d (fabric MTU %d minus %s overhead)", req.MTU, nw.Name, mtu, n.cfg.Fabric.MTU, nw.Encap))
	}
	if req.MTU > 0 {
		mtu = req.MTU
	}
	if err := validIfName(req.IfName); err != nil {
		return nil, failed(cniapi.CodeInvalidRequest, "invalid interface name", err)
	}
	if _, err := os.Stat(req.Netns); err != nil {
		return nil, failed(cniapi.CodeInvalidEnvironment, "pod netns not found", err)
	}
	if !n.Ready() {
		return nil, notReadyErr()
	}
	expire, stop := startTimer(req.TimeoutMillis)
	defer stop()
	unlockKey, ok := n.begin(ctx, attachKey{req.ContainerID, req.IfName}, expire)
	if !ok {
		return nil, busyErr()
	}
	defer unlockKey()
	a, made, err := n.record(req, nw, mtu, given)
	n.unlock()
	if err != nil {
		return nil, err
	}

	setupStart := time.Now()
	fresh, err := n.prepare(ctx, a, nw, made)
	setupTook := time.Since(setupStart)
	if err != nil {
		if made {
			n.undo(a)
		}
		if errors.Is(err, attach.ErrIfNameTaken) {
			return nil, failed(cniapi.CodeInvalidRequest, "the pod's netns has that interface already", err)
		}
		return nil, failed(cniapi.CodeIOFailure, "cannot make the pod's interface", err)
	}

	n.lock()
	defer n.unlock()
	if n.dp == nil {
		return nil, notReadyErr()
	}
	dpStart := time.Now()
	port, nh, rts := n.podObjects(a, nw)
	var routes []proto.Message
	for _, rt := range rts {
		routes = append(append(routes, rt), n.hostRoutes(rt)...)
	}
	if fresh {
		// A port polling an older host end of that name must go first.
		if _, err := n.dp.ApplyBatch(ctx, (&apiclient.Batch{}).Delete(routes...).Delete(nh, port)); status.Code(err) == codes.Unavailable {
			n.setReady(false)
			return nil, failed(cniapi.CodeTryAgainLater, "the dataplane is unreachable", err)
		} else if err != nil {
			return nil, failed(cniapi.CodeDataplane, "the dataplane refused", err)
		}
	}
	r, err := n.dp.ApplyBatch(ctx, (&apiclient.Batch{}).Replace(port, nh).Replace(routes...))
	if status.Code(err) == codes.Unavailable {
		n.setReady(false) // the next probe reconnects and resyncs
		return nil, failed(cniapi.CodeTryAgainLater, "the dataplane is unreachable", err)
	}
	if err != nil {
		return nil, failed(cniapi.CodeDataplane, "the dataplane refused the pod's port", err)
	}
	n.gen = max(n.gen, r.Generation)
	if err := n.finish(a, nw); err != nil {
		return nil, failed(cniapi.CodeIOFailure, "cannot make the pod's interface", err)
	}
	n.log.Info("ADD", zap.String("containerID", a.ContainerID), zap.String("ifName", a.IfName),
		zap.String("network", a.Network), zap.Stringer("address", a.Address), zap.Stringer("address6", a.Address6), zap.String("hostIf", a.HostIf),
		zap.String("mode", a.mode()), zap.String("socket", n.socketPath(a)),
		zap.Uint32("created", r.Created), zap.Uint32("unchanged", r.Unchanged),
		zap.Duration("interface", setupTook), zap.Duration("dataplane", time.Since(dpStart)))
	return n.result(a, nw, mtu), nil
}

// portPoll is how often ADD looks for a pod's Port in the watch's cache
// (memory only) while the Port is not there yet.
const portPoll = 20 * time.Millisecond

// waitPort waits for the request's pod's Port for most of the request's
// time slot (as the state lock is waited for), so that a Port arriving
// within it is used at once rather than at filament-cni's next attempt.
func (n *Node) waitPort(ctx context.Context, req *cniapi.Request) (Assigned, bool) {
	expire, stop := startTimer(req.TimeoutMillis / 2) // the rest: the attachment itself
	defer stop()
	if as, ok := n.ports.Port(req); ok || expire == nil {
		return as, ok
	}
	n.portWaits.Add(1)
	defer n.portWaits.Add(-1)
	t := time.NewTicker(portPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return Assigned{}, false
		case <-expire:
			return Assigned{}, false
		case <-t.C:
		}
		if as, ok := n.ports.Port(req); ok {
			return as, ok
		}
	}
}

// record finds or makes the attachment's record (address, next-hop id),
// saved before any interface exists so that a crash leaves nothing
// unaccounted for. Called with the state lock; made says it is new.
// given (Kubernetes mode) replaces the agent's IPAM.
func (n *Node) record(req *cniapi.Request, nw *config.Network, mtu int, given *Assigned) (a *Attachment, made bool, err error) {
	if n.dp == nil {
		return nil, false, notReadyErr()
	}
	_, a = n.attachment(req.ContainerID, req.IfName)
	if a != nil && a.Network != nw.Name {
		return nil, false, failed(cniapi.CodeInvalidRequest, "attachment exists in another network",
			fmt.Errorf("(%s, %s) is attached to %q", req.ContainerID, req.IfName, a.Network))
	}
	if a != nil && a.mode() != cmp.Or(req.Mode, cniapi.ModeVeth) {
		return nil, false, failed(cniapi.CodeInvalidRequest, "attachment exists in another mode",
			fmt.Errorf("(%s, %s) is attached as %s", req.ContainerID, req.IfName, a.mode()))
	}
	if a != nil && given != nil {
		if err := samePortAddresses(a, nw, given); err != nil {
			return nil, false, err
		}
	}
	if a == nil {
		key := ipam.Key{ContainerID: req.ContainerID, IfName: req.IfName}
		addrs, err := n.allocate(nw, key, given)
		if err != nil {
			return nil, false, err
		}
		addr := addrs.IPv4
		id, err := n.nextHopID("pod/" + req.ContainerID + "/" + req.IfName)
		if err != nil {
			_, _ = n.ipam.Release(key)
			return nil, false, failed(cniapi.CodeDataplane, "no next-hop id", err)
		}
		a = &Attachment{ContainerID: req.ContainerID, IfName: req.IfName, CNINetwork: req.CNINetwork,
			Network: nw.Name, Netns: req.Netns, HostIf: attach.HostIfName(req.ContainerID, req.IfName),
			MAC: attach.MAC(addr).String(), Address: netip.PrefixFrom(addr, nw.Subnet.Bits()),
			Address6: prefix6(addrs.IPv6, nw), NextHop: id, MTU: mtu,
			VRF:     nw.VRF,
			PodName: req.PodName, PodNS: req.PodNamespace}
		if given != nil && given.MAC != "" {
			a.MAC = given.MAC
		}
		n.newAttachmentMode(a, req.Mode)
		n.st.Attachments = append(n.st.Attachments, a)
		if err := n.saveState(); err != nil {
			n.forget(a)
			return nil, false, failed(cniapi.CodeIOFailure, "cannot save the agent's state", err)
		}
		return a, true, nil
	}
	changed := a.MTU != mtu || a.Netns != req.Netns
	if nw.DualStack() && !a.Address6.IsValid() {
		// Attached while its network was IPv4-only: it gets its IPv6
		// address now (ipam keeps its IPv4 one).
		addrs, err := n.allocate(nw, ipam.Key{ContainerID: a.ContainerID, IfName: a.IfName}, given)
		if err != nil {
			return nil, false, err
		}
		a.Address6, changed = prefix6(addrs.IPv6, nw), true
	}
	if changed {
		a.MTU, a.Netns = mtu, req.Netns
		if err := n.saveState(); err != nil {
			return nil, false, failed(cniapi.CodeIOFailure, "cannot save the agent's state", err)
		}
	}
	return a, false, nil
}

// samePortAddresses (Kubernetes mode): an attachment keeps the addresses
// of its first ADD, so a repeated ADD whose Port now gives others (the
// Port recreated with new ones) fails rather than leave the pod silently
// on addresses kube-manager may give another pod; kubelet then gives the
// pod a new sandbox, whose ADD attaches with the Port's addresses.
func samePortAddresses(a *Attachment, nw *config.Network, given *Assigned) error {
	var port6 netip.Addr
	if nw.DualStack() && nw.Subnet6.Contains(given.IPv6) {
		port6 = given.IPv6 // as allocate takes it
	}
	same := a.Address.Addr() == given.IPv4
	if a.Address6.IsValid() && nw.DualStack() {
		same = same && a.Address6.Addr() == port6
	}
	if same {
		return nil
	}
	return &cmdError{code: cniapi.CodeInvalidRequest, msg: "attachment exists with another address", kind: errAddressChanged,
		details: fmt.Errorf("(%s, %s) is attached with %s, its Port now gives %s: the pod needs a new sandbox to get them",
			a.ContainerID, a.IfName, addrList(a.Address.Addr(), a.Address6.Addr()), addrList(given.IPv4, port6))}
}

// addrList is the valid ones of an IPv4 and an IPv6 address, for messages.
func addrList(v4, v6 netip.Addr) string {
	var out []string
	for _, a := range []netip.Addr{v4, v6} {
		if a.IsValid() {
			out = append(out, a.String())
		}
	}
	if len(out) == 0 {
		return "no address"
	}
	return strings.Join(out, " and ")
}

// allocate gives (or finds) the attachment's addresses, one per family of
// the network; the Port's in Kubernetes mode.
func (n *Node) allocate(nw *config.Network, key ipam.Key, given *Assigned) (ipam.Addresses, error) {
	if given != nil {
		if !given.IPv4.Is4() || !nw.Subnet.Contains(given.IPv4) {
			return ipam.Addresses{}, failed(cniapi.CodeNoAddress, "the Port has no address of its network",
				fmt.Errorf("Port IPv4 %v not in %s's subnet %s", given.IPv4, nw.Name, nw.Subnet))
		}
		a := ipam.Addresses{IPv4: given.IPv4}
		if nw.DualStack() && nw.Subnet6.Contains(given.IPv6) {
			a.IPv6 = given.IPv6
		}
		return a, nil
	}
	addrs, err := n.ipam.Allocate(nw.Name, key)
	if errors.Is(err, ipam.ErrExhausted) {
		return addrs, failed(cniapi.CodeNoAddress, "no address", err)
	}
	if err != nil {
		return addrs, failed(cniapi.CodeIOFailure, "cannot allocate an address", err)
	}
	return addrs, nil
}

// prefix6 is an IPv6 address with subnet6's length (zero for none).
func prefix6(a netip.Addr, nw *config.Network) netip.Prefix {
	if !a.IsValid() {
		return netip.Prefix{}
	}
	return netip.PrefixFrom(a, nw.Subnet6.Bits())
}

// undo removes what a failed first ADD made: the host end (if the veth
// got that far), the record, the next-hop id and the address. Called with
// the attachment's lock, without the state lock.
func (n *Node) undo(a *Attachment) {
	if err := n.teardown(a); err != nil {
		n.log.Warn("failed ADD: cannot delete what it made", zap.String("hostIf", a.HostIf), zap.Error(err))
	}
	n.lock()
	defer n.unlock()
	n.forget(a)
	if err := n.saveState(); err != nil {
		n.log.Warn("failed ADD: cannot save the agent's state", zap.Error(err))
	}
}

// forget drops an attachment's record, next-hop id and address (state
// lock held; the caller saves the state).
func (n *Node) forget(a *Attachment) {
	if i, b := n.attachment(a.ContainerID, a.IfName); b != nil {
		n.st.Attachments = append(n.st.Attachments[:i], n.st.Attachments[i+1:]...)
	}
	delete(n.st.NextHops, "pod/"+a.ContainerID+"/"+a.IfName)
	if _, err := n.ipam.Release(ipam.Key{ContainerID: a.ContainerID, IfName: a.IfName}); err != nil {
		n.log.Warn("cannot release the address", zap.String("containerID", a.ContainerID), zap.Error(err))
	}
	n.countAttachments()
}

func (n *Node) result(a *Attachment, nw *config.Network, mtu int) *cniapi.Result {
	r := &cniapi.Result{
		Interfaces: []cniapi.Interface{{Name: a.IfName, MAC: a.MAC, MTU: mtu, Sandbox: a.Netns, SocketPath: n.socketPath(a)}},
		IPs:        []cniapi.IP{{Interface: 0, Address: a.Address, Gateway: nw.Gateway}},
	}
	if primary(a.IfName) {
		r.Routes = []cniapi.Route{{Dst: netip.MustParsePrefix("0.0.0.0/0"), GW: nw.Gateway}}
	}
	if has6(a, nw) {
		r.IPs = append(r.IPs, cniapi.IP{Interface: 0, Address: a.Address6, Gateway: nw.Gateway6})
		if primary(a.IfName) {
			r.Routes = append(r.Routes, cniapi.Route{Dst: netip.MustParsePrefix("::/0"), GW: nw.Gateway6})
		}
	}
	return r
}

// Del removes an attachment: route, next-hop, port, veth, address. An
// unknown attachment is success.
func (n *Node) Del(ctx context.Context, req *cniapi.Request) *cniapi.Response {
	expire, stop := startTimer(req.TimeoutMillis)
	defer stop()
	unlockKey, ok := n.begin(ctx, attachKey{req.ContainerID, req.IfName}, expire)
	if !ok {
		return busy()
	}
	defer unlockKey()
	return n.del(ctx, req.ContainerID, req.IfName)
}

// del removes an attachment, called with its lock and the state lock
// (which it releases). The dataplane's objects go first and the record is
// marked, so a resync while the veth is deleted (without the state lock)
// does not program it again; the record and the address go last.
//
// With the dataplane unreachable it still removes the veth, the address
// and the record, and leaves the pod's port, next-hop and route to the
// sweep of the resync that follows when the dataplane answers again (the
// node is not ready, so no ADD can reuse the address or next-hop id
// before): kubelet's DEL must be able to succeed.
func (n *Node) del(ctx context.Context, cid, ifName string) *cniapi.Response {
	_, a := n.attachment(cid, ifName)
	if a == nil {
		defer n.unlock()
		if _, err := n.ipam.Release(ipam.Key{ContainerID: cid, IfName: ifName}); err != nil {
			return cniErr(cniapi.CodeIOFailure, "cannot release the address", err)
		}
		return nil
	}
	vrf := a.VRF
	if vrf == 0 { // a record of an older agent: the VRF from the config
		if nw, ok := n.cfg.Network(a.Network); ok {
			vrf = nw.VRF
		}
	}
	b := (&apiclient.Batch{}).Delete(n.podRoutes(vrf, a)...)
	b.Delete(&pb.NextHop{Id: a.NextHop}, &pb.Port{Name: a.HostIf})
	var err error
	if n.dp != nil && n.Ready() {
		var r *pb.ApplyResponse
		r, err = n.dp.ApplyBatch(ctx, b)
		if err == nil {
			n.gen = max(n.gen, r.Generation)
		} else if status.Code(err) != codes.Unavailable {
			n.unlock()
			return cniErr(cniapi.CodeDataplane, "the dataplane refused to delete the pod's port", err)
		}
	}
	if n.dp == nil || !n.Ready() || err != nil {
		n.setReady(false) // the next probe reconnects and resyncs: the sweep removes the port
		n.log.Warn("DEL with the dataplane unreachable: its objects go at the next resync",
			zap.String("containerID", cid), zap.String("ifName", ifName), zap.Error(err))
	}
	a.deleting = true
	n.unlock()

	if err := n.teardown(a); err != nil {
		n.lock()
		a.deleting = false
		n.unlock()
		return cniErr(cniapi.CodeIOFailure, "cannot delete the pod's interface", err)
	}

	n.lock()
	defer n.unlock()
	n.forget(a)
	if err := n.saveState(); err != nil {
		return cniErr(cniapi.CodeIOFailure, "cannot save the agent's state", err)
	}
	n.log.Info("DEL", zap.String("containerID", cid), zap.String("ifName", ifName), zap.Stringer("address", a.Address),
		zap.Stringer("address6", a.Address6))
	return nil
}

// Check verifies the pod's interface has its address.
func (n *Node) Check(ctx context.Context, req *cniapi.Request) *cniapi.Response {
	expire, stop := startTimer(req.TimeoutMillis)
	defer stop()
	unlockKey, ok := n.begin(ctx, attachKey{req.ContainerID, req.IfName}, expire)
	if !ok {
		return busy()
	}
	defer unlockKey()
	_, a := n.attachment(req.ContainerID, req.IfName)
	n.unlock()
	if a == nil {
		return cniErr(cniapi.CodeUnknownContainer, "no such attachment", fmt.Errorf("(%s, %s)", req.ContainerID, req.IfName))
	}
	if err := checkPrev(req.Prev, a); err != nil {
		return cniErr(cniapi.CodeInvalidRequest, "prevResult is not what ADD gave", err)
	}
	if err := n.check(req.Netns, a); err != nil {
		return cniErr(cniapi.CodeIOFailure, "the pod's interface is not as made", err)
	}
	return nil
}

// checkPrev: CHECK's prevResult lists each of the attachment's addresses
// (both families in a dual-stack network).
func checkPrev(prev *cniapi.Result, a *Attachment) error {
	if prev == nil {
		return nil
	}
	for _, want := range []netip.Prefix{a.Address, a.Address6} {
		if !want.IsValid() {
			continue
		}
		found := false
		for _, ip := range prev.IPs {
			found = found || ip.Address == want
		}
		if !found {
			return fmt.Errorf("it lacks %s", want)
		}
	}
	return nil
}

// Status answers whether ADD can be served.
func (n *Node) Status(context.Context, *cniapi.Request) *cniapi.Response {
	if !n.Ready() {
		return cniErr(cniapi.CodeNotReady, "the agent has not programmed the dataplane yet", nil)
	}
	return nil
}

// GC removes the attachments of req.CNINetwork not in req.Valid.
func (n *Node) GC(ctx context.Context, req *cniapi.Request) *cniapi.Response {
	if !n.Ready() {
		return notReady()
	}
	if !n.lockFor(ctx, req.TimeoutMillis) {
		return busy()
	}
	valid := map[cniapi.Attachment]bool{}
	for _, v := range req.Valid {
		valid[v] = true
	}
	var gone []attachKey
	for _, a := range n.st.Attachments {
		if a.CNINetwork == req.CNINetwork && !valid[cniapi.Attachment{ContainerID: a.ContainerID, IfName: a.IfName}] {
			gone = append(gone, attachKey{a.ContainerID, a.IfName})
		}
	}
	n.unlock()
	for _, k := range gone {
		// Started: each removal waits for its attachment's command in
		// flight (bounded by ctx) rather than give up half-way.
		unlockKey, ok := n.begin(ctx, k, nil)
		if !ok {
			return busy()
		}
		r := n.del(ctx, k.containerID, k.ifName)
		unlockKey()
		if r != nil && r.Error != nil {
			return r
		}
		n.log.Info("GC removed", zap.String("containerID", k.containerID), zap.String("ifName", k.ifName))
	}
	return nil
}
