package node

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/filament-net/filament/agent/config"
	"github.com/filament-net/filament/agent/hostnet"
	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/dpdk/apiclient"
)

// The host port (Tungsten Fabric's vhost0, docs/agent.md "Host port"):
// with cfg.Host, the agent has the dataplane make a TAP (a port of kind
// host) in VRF config.HostVRF, and programs:
//
//   - the host VRF: a copy of every route that leads to a pod (local pods'
//     /32s and /128s, peers' blocks through their tunnels) and a discard
//     route for each network's subnet and subnet6 (the rest of a network
//     does not leak onto the fabric);
//   - each network's VRF: the node's underlay address through the host
//     port, each peer's through its tunnel (the peer delivers it to its
//     own host port); with host.prefix_len6, the same for the IPv6
//     underlay addresses in dual-stack networks;
//
// then the TAP's kernel side (agent/hostnet). The host port is never
// deleted by a restart: a resync replaces it with itself.

// hostFabric is what the host port copies from the dataplane's fabric
// port, read at each resync.
type hostFabric struct {
	mac    string // the fabric port's MAC: the TAP's, what peers send to
	kernel string // the kernel interface it polls (af_packet, af_xdp), or ""
}

// learnFabric reads the fabric port's MAC and kernel interface.
func (n *Node) learnFabric(ctx context.Context, cur *apiclient.State) error {
	n.hostFab = hostFabric{}
	if !n.cfg.Host.Enabled() {
		return nil
	}
	if n.fabric == "" {
		return fmt.Errorf("host port %s: the dataplane has no fabric port (its config must have one)", n.cfg.Host.Interface)
	}
	for _, p := range cur.Ports {
		if p.Kind == pb.PortKind_PORT_KIND_HOST && p.Name != n.cfg.Host.Interface && p.Name != n.st.HostPort {
			return fmt.Errorf("the dataplane has a host port %q of its own (its config): remove it, or the agent's host section", p.Name)
		}
		if p.Name == n.fabric {
			n.hostFab.mac = p.Mac
			n.hostFab.kernel = kernelIf(p.Devargs)
		}
	}
	if n.hostFab.mac == "" { // the device's own MAC
		ports, err := n.dp.ListPorts(ctx, &pb.ListPortsRequest{})
		if err != nil {
			return fmt.Errorf("list ports: %w", err)
		}
		for _, p := range ports.Ports {
			if p.Port.GetName() == n.fabric {
				n.hostFab.mac = p.DeviceMac
			}
		}
	}
	if n.hostFab.mac == "" {
		return fmt.Errorf("host port: the fabric port %q has no MAC", n.fabric)
	}
	return nil
}

// kernelIf is the kernel interface of an af_packet or af_xdp device
// ("net_af_packet0,iface=fab1": fab1), "" for other devices.
func kernelIf(devargs string) string {
	dev, args, _ := strings.Cut(devargs, ",")
	if !strings.HasPrefix(dev, "net_af_packet") && !strings.HasPrefix(dev, "net_af_xdp") {
		return ""
	}
	for _, kv := range strings.Split(args, ",") {
		if v, ok := strings.CutPrefix(kv, "iface="); ok {
			return v
		}
	}
	return ""
}

// addHost adds the host port and its routes to the desired state s (from
// desiredState: the networks, peers and pods).
func (n *Node) addHost(s *apiclient.State) error {
	if !n.cfg.Host.Enabled() {
		return nil
	}
	h := n.cfg.Host
	n.st.HostPort = h.Interface
	toNode, err := n.nextHopID("host/" + h.Interface)
	if err != nil {
		return err
	}
	discard, err := n.nextHopID("host/discard")
	if err != nil {
		return err
	}
	tunnels, podNHs := map[uint32]bool{}, map[uint32]bool{}
	pods := map[string]bool{}
	for _, p := range s.Ports {
		pods[p.Name] = p.Kind == pb.PortKind_PORT_KIND_POD
	}
	for _, nh := range s.NextHops {
		switch {
		case nh.Type == pb.NextHopType_NEXT_HOP_TYPE_TUNNEL:
			tunnels[nh.Id] = true
		case nh.Type == pb.NextHopType_NEXT_HOP_TYPE_INTERFACE && pods[nh.Port]:
			podNHs[nh.Id] = true
		}
	}
	var hostRoutes []*pb.Route
	for _, r := range s.Routes {
		if tunnels[r.NextHop] || podNHs[r.NextHop] {
			hostRoutes = append(hostRoutes, hostCopy(r))
		}
	}
	port := &pb.Port{
		Name:    h.Interface,
		Devargs: fmt.Sprintf("net_tap_%s,iface=%s", h.Interface, h.Interface),
		Kind:    pb.PortKind_PORT_KIND_HOST,
		Vrf:     config.HostVRF,
		Mac:     n.hostFab.mac,
		Ipv4:    []string{n.cfg.Fabric.UnderlayIP.String()},
		Mtu:     uint32(n.cfg.Fabric.MTU),
	}
	under6 := n.cfg.Underlay6()
	if under6.IsValid() {
		port.Ipv6 = []string{under6.Addr().String()}
	}
	s.Ports = append(s.Ports, port)
	s.NextHops = append(s.NextHops,
		&pb.NextHop{Id: toNode, Type: pb.NextHopType_NEXT_HOP_TYPE_INTERFACE, Port: h.Interface, DstMac: n.hostFab.mac},
		&pb.NextHop{Id: discard, Type: pb.NextHopType_NEXT_HOP_TYPE_DISCARD})
	s.Routes = append(s.Routes, hostRoutes...)
	for i := range n.cfg.Networks {
		nw := &n.cfg.Networks[i]
		if nw.DualStack() {
			s.Routes = append(s.Routes, &pb.Route{Vrf: config.HostVRF, Prefix: nw.Subnet6.String(), NextHop: discard})
		}
		s.Routes = append(s.Routes,
			&pb.Route{Vrf: config.HostVRF, Prefix: nw.Subnet.String(), NextHop: discard},
			&pb.Route{Vrf: nw.VRF, Prefix: netip.PrefixFrom(n.cfg.Fabric.UnderlayIP, 32).String(), NextHop: toNode})
		// An IPv6 host port: a dual-stack network's pods reach the node's
		// IPv6 underlay address, and the peers' through their tunnels.
		v6 := under6.IsValid() && nw.DualStack()
		if v6 {
			s.Routes = append(s.Routes, &pb.Route{Vrf: nw.VRF, Prefix: hostPrefix(under6.Addr()), NextHop: toNode})
		}
		for i := range n.cfg.Peers {
			p := &n.cfg.Peers[i]
			if !hasTunnel(p, nw) {
				continue
			}
			id, err := n.nextHopID("tun/" + nw.Name + "/" + p.Name)
			if err != nil {
				return err
			}
			if p.UnderlayIP.IsValid() {
				s.Routes = append(s.Routes, &pb.Route{Vrf: nw.VRF, Prefix: netip.PrefixFrom(p.UnderlayIP, 32).String(), NextHop: id})
			}
			if v6 && p.UnderlayIPv6.IsValid() {
				s.Routes = append(s.Routes, &pb.Route{Vrf: nw.VRF, Prefix: hostPrefix(p.UnderlayIPv6), NextHop: id})
			}
		}
	}
	return nil
}

// hostCopy is r in the host VRF.
func hostCopy(r *pb.Route) *pb.Route {
	return &pb.Route{Vrf: config.HostVRF, Prefix: r.Prefix, NextHop: r.NextHop}
}

// hostRoutes is the host VRF's copy of a pod's route, if the node has a
// host port: ADD and DEL change it with the pod's.
func (n *Node) hostRoutes(podRoute *pb.Route) []proto.Message {
	if !n.cfg.Host.Enabled() {
		return nil
	}
	return []proto.Message{hostCopy(podRoute)}
}

// ownsHostPort reports whether p is a host port the agent made.
func (n *Node) ownsHostPort(p *pb.Port) bool {
	return p.Kind == pb.PortKind_PORT_KIND_HOST && p.Name != "" &&
		(p.Name == n.st.HostPort || p.Name == n.cfg.Host.Interface)
}

// hostPortFixed reports whether the dataplane's host port p must be
// deleted before the desired state is applied: a field fixed at creation
// changed (the fabric's MAC), or it has another name than the wanted one
// (there is one host port per dataplane).
func (n *Node) hostPortFixed(p, want *pb.Port) bool {
	if !n.ownsHostPort(p) {
		return false
	}
	if want == nil {
		return n.cfg.Host.Enabled()
	}
	return p.Devargs != want.Devargs || p.Mac != want.Mac || p.RxQueues != want.RxQueues
}

// setupHostKernel makes the TAP's kernel side and quiets the fabric
// interface, after the host port is programmed.
func (n *Node) setupHostKernel(ctx context.Context) error {
	if !n.cfg.Host.Enabled() {
		if n.st.HostPort != "" { // the sweep deleted it
			n.st.HostPort = ""
			return n.saveState()
		}
		return nil
	}
	h := n.cfg.Host
	mac, err := net.ParseMAC(n.hostFab.mac)
	if err != nil {
		return fmt.Errorf("host port: fabric MAC %q: %w", n.hostFab.mac, err)
	}
	rmac, err := net.ParseMAC(n.dp.Server.GetVrouterMac())
	if err != nil {
		return fmt.Errorf("host port: vRouter MAC %q: %w", n.dp.Server.GetVrouterMac(), err)
	}
	c := hostnet.Config{IfName: h.Interface, MAC: mac, Address: n.cfg.Underlay(), Address6: n.cfg.Underlay6(),
		MTU: n.cfg.Fabric.MTU, Gateway: h.Gateway, RouterMAC: rmac}
	for _, nw := range n.cfg.Networks {
		c.Routes = append(c.Routes, hostnet.Route{Dst: nw.Subnet, Via: nw.Gateway, MTU: n.cfg.PodMTU(&nw)})
		if c.Address6.IsValid() && nw.DualStack() {
			c.Routes = append(c.Routes, hostnet.Route{Dst: nw.Subnet6, Via: nw.Gateway6, MTU: n.cfg.PodMTU(&nw)})
		}
	}
	if n.hostFab.kernel != "" {
		warning, err := hostnet.QuietFabric(n.hostFab.kernel)
		if err != nil {
			return err
		}
		if warning != "" {
			n.log.Warn("fabric interface not quiet", zap.String("interface", n.hostFab.kernel), zap.String("problem", warning))
		}
	}
	res, err := hostnet.Setup(ctx, c)
	if err != nil {
		return err
	}
	for _, from := range res.AddressMovedFrom {
		n.log.Warn("underlay address moved to the host port", zap.String("from", from),
			zap.String("to", h.Interface), zap.Stringer("address", c.Address))
	}
	n.log.Info("host port ready", zap.String("interface", h.Interface), zap.Stringer("address", c.Address),
		zap.String("fabric_interface", n.hostFab.kernel))
	return nil
}
