package apiserver

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"

	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/internal/netparse"
)

// Limits the API checks beyond the table sizes.
const (
	maxNameLen   = 64
	maxDevName   = 63 // RTE_DEV_NAME_MAX_LEN - 1
	maxRxQueues  = fastpath.MaxRxQueues
	minMTU       = 576
	maxMTU       = 9600
	maxVNI       = 1<<24 - 1
	minLabel     = 16
	maxLabel     = 1<<20 - 1
	maxBatchErrs = 10
)

const (
	defaultMTU = 1500 // a port's MTU 0
	// ipv6MinMTU is the smallest link MTU IPv6 allows (RFC 8200 5): hosts
	// ignore an RA's MTU or a packet too big's below it. A port with IPv6
	// addresses, and a next-hop IPv6 routes use, need at least that; an
	// IPv4-only one keeps minMTU.
	ipv6MinMTU = fastpath.IPv6MinMTU
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

func deviceName(devargs string) string {
	dev, _, _ := strings.Cut(devargs, ",")
	return dev
}

// fieldErrs collects the errors of one op, each with its field path.
type fieldErrs struct {
	errs []string
}

func (e *fieldErrs) add(path, format string, args ...any) {
	e.errs = append(e.errs, path+": "+fmt.Sprintf(format, args...))
}

var portKinds = map[pb.PortKind]fastpath.PortKind{
	pb.PortKind_PORT_KIND_FABRIC: fastpath.PortFabric,
	pb.PortKind_PORT_KIND_POD:    fastpath.PortPod,
	pb.PortKind_PORT_KIND_HOST:   fastpath.PortHost,
}

var nhTypes = map[pb.NextHopType]fastpath.NHType{
	pb.NextHopType_NEXT_HOP_TYPE_INTERFACE: fastpath.NHIface,
	pb.NextHopType_NEXT_HOP_TYPE_TUNNEL:    fastpath.NHTunnel,
	pb.NextHopType_NEXT_HOP_TYPE_ECMP:      fastpath.NHECMP,
	pb.NextHopType_NEXT_HOP_TYPE_RECEIVE:   fastpath.NHReceive,
	pb.NextHopType_NEXT_HOP_TYPE_DISCARD:   fastpath.NHDiscard,
}

var encaps = map[pb.Encap]fastpath.Encap{
	pb.Encap_ENCAP_VXLAN:    fastpath.EncapVXLAN,
	pb.Encap_ENCAP_MPLSOUDP: fastpath.EncapMPLSoUDP,
	pb.Encap_ENCAP_MPLSOGRE: fastpath.EncapMPLSoGRE,
}

// isMPLS: the encapsulation carries a label (MPLSoUDP, MPLSoGRE).
func isMPLS(e pb.Encap) bool {
	return e == pb.Encap_ENCAP_MPLSOUDP || e == pb.Encap_ENCAP_MPLSOGRE
}

func kindName(k fastpath.PortKind) string { return k.String() }

func typeName(t fastpath.NHType) string {
	for pt, ft := range nhTypes {
		if ft == t {
			return strings.ToLower(strings.TrimPrefix(pt.String(), "NEXT_HOP_TYPE_"))
		}
	}
	return fmt.Sprintf("type(%d)", t)
}

// ---- proto -> model: the checks that need no state ---------------------------

func (s *Server) checkVRF(e *fieldErrs, path string, vrf uint32) bool {
	if vrf >= s.limits.VRFs {
		e.add(path, "VRF %d out of range 0..%d", vrf, s.limits.VRFs-1)
		return false
	}
	return true
}

func (s *Server) portFromPB(e *fieldErrs, path string, p *pb.Port) *port {
	out := &port{name: p.Name, devargs: p.Devargs, vrf: uint16(p.Vrf), mtu: int(p.Mtu), rxq: int(p.RxQueues)}
	checkPortName(e, path+".name", p.Name)
	dev := deviceName(p.Devargs)
	switch {
	case p.Devargs == "":
		e.add(path+".devargs", "required (e.g. \"net_af_packet0,iface=veth0\")")
	case dev == "" || strings.ContainsAny(p.Devargs, " \t\r\n"):
		e.add(path+".devargs", "%q: expected <device>[,key=value...] without spaces", p.Devargs)
	case len(dev) > maxDevName:
		e.add(path+".devargs", "device name %q is longer than %d bytes", dev, maxDevName)
	}
	kind, ok := portKinds[p.Kind]
	if !ok {
		e.add(path+".kind", "%v: must be PORT_KIND_FABRIC, PORT_KIND_POD or PORT_KIND_HOST", p.Kind)
		return out
	}
	out.kind = kind
	if kind == fastpath.PortFabric && p.Vrf != 0 {
		e.add(path+".vrf", "a fabric port has no VRF (tunnels pick theirs by VNI or label)")
	} else {
		s.checkVRF(e, path+".vrf", p.Vrf)
	}
	switch {
	case p.Mac == "" && kind == fastpath.PortPod:
		e.add(path+".mac", "required for a pod port: the pod's MAC")
	case p.Mac != "":
		if m, err := netparse.UnicastMAC(p.Mac); err != nil {
			e.add(path+".mac", "%v", err)
		} else {
			out.mac = m
		}
	}
	seen := map[netip.Addr]bool{}
	for j, a := range p.Ipv4 {
		ip, err := netparse.HostIPv4(a)
		if err != nil {
			e.add(fmt.Sprintf("%s.ipv4[%d]", path, j), "%v", err)
			continue
		}
		if seen[ip] {
			e.add(fmt.Sprintf("%s.ipv4[%d]", path, j), "%s given twice", ip)
			continue
		}
		seen[ip] = true
		out.ipv4 = append(out.ipv4, ip)
	}
	for j, a := range p.Ipv6 {
		ip, err := netparse.HostIPv6(a)
		if err != nil {
			e.add(fmt.Sprintf("%s.ipv6[%d]", path, j), "%v", err)
			continue
		}
		if seen[ip] {
			e.add(fmt.Sprintf("%s.ipv6[%d]", path, j), "%s given twice", ip)
			continue
		}
		seen[ip] = true
		out.ipv6 = append(out.ipv6, ip)
	}
	switch {
	case len(p.Ipv4) > fastpath.MaxPodAddrs:
		e.add(path+".ipv4", "%d addresses: at most %d", len(p.Ipv4), fastpath.MaxPodAddrs)
	case kind == fastpath.PortFabric && len(p.Ipv4) != 1:
		e.add(path+".ipv4", "a fabric port needs exactly one address, the node's underlay address (has %d)", len(p.Ipv4))
	case kind == fastpath.PortPod && len(p.Ipv4) == 0 && len(p.Ipv6) == 0:
		e.add(path+".ipv4", "a pod port needs the pod's addresses, IPv4 or IPv6 (it may send from no other)")
	}
	switch {
	case len(p.Ipv6) > fastpath.MaxPodAddrs:
		e.add(path+".ipv6", "%d addresses: at most %d", len(p.Ipv6), fastpath.MaxPodAddrs)
	case kind != fastpath.PortPod && len(p.Ipv6) > 1:
		e.add(path+".ipv6", "%d addresses: a fabric or host port has at most one", len(p.Ipv6))
	}
	if p.Mtu != 0 && (p.Mtu < minMTU || p.Mtu > maxMTU) {
		e.add(path+".mtu", "%d: must be %d..%d (0: 1500)", p.Mtu, minMTU, maxMTU)
	} else if len(p.Ipv6) > 0 && out.linkMTU() < ipv6MinMTU {
		e.add(path+".mtu", "%d: a port with IPv6 addresses (ipv6) needs at least %d (RFC 8200)", p.Mtu, ipv6MinMTU)
	}
	if p.RxQueues > maxRxQueues {
		e.add(path+".rx_queues", "%d: must be 0..%d", p.RxQueues, maxRxQueues)
	}
	return out
}

func checkPortName(e *fieldErrs, path, name string) {
	switch {
	case name == "":
		e.add(path, "required")
	case len(name) > maxNameLen:
		e.add(path, "%d bytes: at most %d", len(name), maxNameLen)
	case !nameRE.MatchString(name):
		e.add(path, "%q: need letters, digits, '_', '.' or '-'", name)
	}
}

func (s *Server) checkNHID(e *fieldErrs, path string, id uint32) {
	if id >= s.limits.NextHops {
		e.add(path, "%d out of range 0..%d", id, s.limits.NextHops-1)
	}
}

// nextHopFromPB checks what needs no state (ports and members are checked
// against the state by the caller).
func (s *Server) nextHopFromPB(e *fieldErrs, path string, n *pb.NextHop) *nextHop {
	out := &nextHop{id: n.Id, port: n.Port, members: append([]uint32(nil), n.Members...)}
	s.checkNHID(e, path+".id", n.Id)
	typ, ok := nhTypes[n.Type]
	if !ok {
		e.add(path+".type", "%v: must be interface, tunnel, ecmp, receive or discard", n.Type)
		return nil
	}
	out.typ = typ
	// Fields that do not apply to the type are mistakes, not noise.
	for _, f := range []struct {
		name string
		set  bool
		ok   bool
	}{
		{"port", n.Port != "", isMemberType(typ)},
		{"dst_mac", n.DstMac != "", typ == fastpath.NHIface},
		{"encap", n.Encap != pb.Encap_ENCAP_UNSPECIFIED, typ == fastpath.NHTunnel},
		{"tunnel_dst", n.TunnelDst != "", typ == fastpath.NHTunnel},
		{"tunnel_gw", n.TunnelGw != "", typ == fastpath.NHTunnel},
		{"vni", n.Vni != 0, typ == fastpath.NHTunnel && n.Encap == pb.Encap_ENCAP_VXLAN},
		{"label", n.Label != 0, typ == fastpath.NHTunnel && isMPLS(n.Encap)},
		{"members", len(n.Members) > 0, typ == fastpath.NHECMP},
	} {
		if f.set && !f.ok {
			e.add(path+"."+f.name, "does not apply to a %s next-hop", describeNH(n))
		}
	}
	if isMemberType(typ) && n.Port == "" {
		e.add(path+".port", "required: the out port's name")
	}
	switch typ {
	case fastpath.NHIface:
		if n.DstMac == "" {
			e.add(path+".dst_mac", "required: the destination MAC written on frames")
		} else if m, err := netparse.UnicastMAC(n.DstMac); err != nil {
			e.add(path+".dst_mac", "%v", err)
		} else {
			out.dstMAC = m
		}
	case fastpath.NHTunnel:
		enc, ok := encaps[n.Encap]
		if !ok {
			e.add(path+".encap", "%v: must be ENCAP_VXLAN, ENCAP_MPLSOUDP or ENCAP_MPLSOGRE", n.Encap)
		}
		out.encap = enc
		if n.TunnelDst == "" {
			e.add(path+".tunnel_dst", "required: the remote vRouter's underlay address")
		} else if a, err := netparse.HostIP(n.TunnelDst); err != nil {
			e.add(path+".tunnel_dst", "%v", err)
		} else {
			out.tunDst = a
		}
		if n.TunnelGw != "" {
			if a, err := netparse.HostIP(n.TunnelGw); err != nil {
				e.add(path+".tunnel_gw", "%v", err)
			} else if out.tunDst.IsValid() && a.Is4() != out.tunDst.Is4() {
				e.add(path+".tunnel_gw", "%s and tunnel_dst %s: the underlay next hop must be of the tunnel's family", a, out.tunDst)
			} else {
				out.tunGW = a
			}
		}
		switch {
		case n.Encap == pb.Encap_ENCAP_VXLAN:
			if n.Vni > maxVNI {
				e.add(path+".vni", "%d out of range 0..%d", n.Vni, maxVNI)
			}
			out.tag = n.Vni
		case isMPLS(n.Encap):
			if n.Label < minLabel || n.Label > maxLabel {
				e.add(path+".label", "%d out of range %d..%d (required for %s)", n.Label, minLabel, maxLabel,
					strings.ToLower(strings.TrimPrefix(n.Encap.String(), "ENCAP_")))
			}
			out.tag = n.Label
		}
	case fastpath.NHECMP:
		if len(n.Members) == 0 || len(n.Members) > fastpath.MaxECMP {
			e.add(path+".members", "%d members: an ECMP group needs 1..%d", len(n.Members), fastpath.MaxECMP)
		}
	}
	return out
}

// encapName is an encapsulation as the API spells it: vxlan, mplsoudp,
// mplsogre.
func encapName(e fastpath.Encap) string {
	for pe, fe := range encaps {
		if fe == e {
			return strings.ToLower(strings.TrimPrefix(pe.String(), "ENCAP_"))
		}
	}
	return fmt.Sprintf("encap(%d)", e)
}

func describeNH(n *pb.NextHop) string {
	t := strings.ToLower(strings.TrimPrefix(n.Type.String(), "NEXT_HOP_TYPE_"))
	if n.Type == pb.NextHopType_NEXT_HOP_TYPE_TUNNEL && n.Encap != pb.Encap_ENCAP_UNSPECIFIED {
		t += " " + strings.ToLower(strings.TrimPrefix(n.Encap.String(), "ENCAP_"))
	}
	return t
}

// ---- model -> proto --------------------------------------------------------------

func kindToPB(k fastpath.PortKind) pb.PortKind {
	for pk, fk := range portKinds {
		if fk == k {
			return pk
		}
	}
	return pb.PortKind_PORT_KIND_UNSPECIFIED
}

func macString(m net.HardwareAddr) string {
	if m == nil {
		return ""
	}
	return m.String()
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func (p *port) toPB() *pb.Port {
	out := &pb.Port{
		Name: p.name, Devargs: p.devargs, Kind: kindToPB(p.kind), Vrf: uint32(p.vrf),
		Mac: macString(p.mac), Mtu: uint32(p.mtu), RxQueues: uint32(p.rxq),
	}
	for _, a := range p.ipv4 {
		out.Ipv4 = append(out.Ipv4, a.String())
	}
	for _, a := range p.ipv6 {
		out.Ipv6 = append(out.Ipv6, a.String())
	}
	return out
}

func (n *nextHop) toPB() *pb.NextHop {
	out := &pb.NextHop{Id: n.id, Port: n.port, DstMac: macString(n.dstMAC)}
	for pt, ft := range nhTypes {
		if ft == n.typ {
			out.Type = pt
		}
	}
	if n.typ == fastpath.NHTunnel {
		for pe, fe := range encaps {
			if fe == n.encap {
				out.Encap = pe
			}
		}
		out.TunnelDst = addrString(n.tunDst)
		out.TunnelGw = addrString(n.tunGW)
		if n.encap == fastpath.EncapVXLAN {
			out.Vni = n.tag
		} else {
			out.Label = n.tag
		}
	}
	if len(n.members) > 0 {
		out.Members = append([]uint32(nil), n.members...)
	}
	return out
}
