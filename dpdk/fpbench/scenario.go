// Package fpbench is the in-process fast path benchmark: scenarios that each
// build their own ring ports, next-hops and routes on a running dataplane,
// feed them with the C generator (fastpath.Dataplane.Bench) and read the
// worker's cycles per packet; plus the interleaved multi-round runner and
// the Markdown report of filament-fpbench (docs/benchmarks/fastpath.md).
package fpbench

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/filament-net/filament/dpdk/fastpath"
)

// Goals of the fast path core issue, in cycles per packet over io-forward.
const (
	GoalRoute  = 35 // IPv4 route + rewrite
	GoalTunnel = 60 // VXLAN / MPLSoUDP / MPLSoGRE encap or decap
)

// Scenario is one forwarding path under test.
type Scenario struct {
	Name string
	// Goal is the allowed cost over the io baseline in cycles/packet; 0 for
	// the baseline itself.
	Goal  float64
	About string
	setup func(e *Env, s *Setup, flows, size int) error
}

// Baseline reports whether this is the io-forward scenario others compare to.
func (sc *Scenario) Baseline() bool { return sc.Name == "io" }

// Addresses of the scenarios: pod A and pod B on this node in VRF 1, a
// remote pod behind the remote vRouter reached over the fabric.
var (
	podAMAC    = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	podBMAC    = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
	remoteMAC  = net.HardwareAddr{0x02, 0, 0, 0, 1, 0x02}
	podA       = netip.MustParseAddr("10.1.0.10")
	podB       = netip.MustParseAddr("10.1.0.11")
	podGW      = netip.MustParseAddr("10.1.0.1")
	remotePod  = netip.MustParseAddr("10.2.0.20")
	underlayIP = netip.MustParseAddr("192.168.0.1")
	remoteVR   = netip.MustParseAddr("192.168.0.2")
	podA6      = netip.MustParseAddr("fd00:1::a")
	podB6      = netip.MustParseAddr("fd00:1::b")
	remotePod6 = netip.MustParseAddr("fd00:2::14")
	// the IPv6 underlay (the fabric port has both addresses)
	underlayIP6 = netip.MustParseAddr("fd00:100::1")
	remoteVR6   = netip.MustParseAddr("fd00:100::2")
)

const (
	vrf   = 1
	vni   = 100
	label = 100
	nhID  = 1
)

// Setup is a scenario built on the dataplane: frames go into In, come out
// of Out. Close removes everything it made, in reverse order.
type Setup struct {
	In, Out fastpath.PortID
	Frames  [][]byte
	undo    []func() error
}

func (s *Setup) push(f func() error) { s.undo = append(s.undo, f) }

// Close tears the scenario down.
func (s *Setup) Close() error {
	var errs []error
	for i := len(s.undo) - 1; i >= 0; i-- {
		if err := s.undo[i](); err != nil {
			errs = append(errs, err)
		}
	}
	s.undo = nil
	return errors.Join(errs...)
}

func (e *Env) ringPort(s *Setup, pc fastpath.PortConfig) (fastpath.PortID, error) {
	e.seq++
	id, err := e.DP.AddRingPort(fmt.Sprintf("fpb%d", e.seq), pc)
	if err != nil {
		return 0, err
	}
	s.push(func() error { return e.DP.DelPort(id) })
	return id, nil
}

func (e *Env) podPort(s *Setup, mac net.HardwareAddr, ip netip.Addr, xc *fastpath.PortID) (fastpath.PortID, error) {
	pc := fastpath.PortConfig{Kind: fastpath.PortPod, VRF: vrf, MAC: mac, XConnect: xc}
	if ip.Is6() {
		pc.IPv6 = []netip.Addr{ip}
	} else {
		pc.IPv4 = []netip.Addr{ip}
	}
	return e.ringPort(s, pc)
}

// fabricPort makes the underlay port and returns its id and MAC.
func (e *Env) fabricPort(s *Setup) (fastpath.PortID, net.HardwareAddr, error) {
	id, err := e.ringPort(s, fastpath.PortConfig{
		Kind: fastpath.PortFabric, IPv4: []netip.Addr{underlayIP}, IPv6: []netip.Addr{underlayIP6},
	})
	if err != nil {
		return 0, nil, err
	}
	mac, err := e.DP.PortMAC(id)
	return id, mac, err
}

func (e *Env) nextHop(s *Setup, nh fastpath.NextHop) error {
	if err := e.DP.SetNextHop(nhID, nh); err != nil {
		return err
	}
	s.push(func() error { return e.DP.DelNextHop(nhID) })
	return nil
}

func (e *Env) route(s *Setup, dst netip.Addr) error {
	if dst.Is6() {
		p := netip.PrefixFrom(dst, 128)
		if err := e.DP.AddRoute6(vrf, p, nhID); err != nil {
			return err
		}
		s.push(func() error { return e.DP.DelRoute6(vrf, p) })
		return nil
	}
	p := netip.PrefixFrom(dst, 32)
	if err := e.DP.AddRoute4(vrf, p, nhID); err != nil {
		return err
	}
	s.push(func() error { return e.DP.DelRoute4(vrf, p) })
	return nil
}

// flowPort spreads flows over UDP source ports.
func flowPort(i int) uint16 { return uint16(1024 + i) }

// fromPodA is what pod A sends to dst, one frame per flow (from its IPv6
// address to an IPv6 dst).
func (e *Env) fromPodA(dst netip.Addr, flows, size int) [][]byte {
	src := podA
	if dst.Is6() {
		src = podA6
	}
	out := make([][]byte, flows)
	for i := range out {
		out[i] = inner{dstMAC: e.VRouterMAC, srcMAC: podAMAC, src: src, dst: dst,
			sport: flowPort(i), dport: 5001, size: size}.frame()
	}
	return out
}

// fromRemote is what the remote vRouter sends to pod B over the fabric
// (over the IPv6 underlay if u6).
func (e *Env) fromRemote(fabMAC net.HardwareAddr, encap fastpath.Encap, u6 bool, flows, size int) [][]byte {
	out := make([][]byte, flows)
	for i := range out {
		in := inner{dstMAC: e.VRouterMAC, srcMAC: e.VRouterMAC, src: remotePod, dst: podB,
			sport: flowPort(i), dport: 5001, size: size}
		u := underlay{dstMAC: fabMAC, srcMAC: remoteMAC, src: remoteVR, dst: underlayIP,
			sport: uint16(0xc000 | i&0x3fff)}
		if u6 {
			u.src, u.dst = remoteVR6, underlayIP6
			out[i] = u.vxlan6(vni, in)
			continue
		}
		switch encap {
		case fastpath.EncapMPLSoUDP:
			out[i] = u.mplsoudp(label, in)
		case fastpath.EncapMPLSoGRE:
			out[i] = u.mplsogre(label, in)
		default:
			out[i] = u.vxlan(vni, in)
		}
	}
	return out
}

func setupIO(e *Env, s *Setup, flows, size int) error {
	b, err := e.podPort(s, podBMAC, podB, nil)
	if err != nil {
		return err
	}
	a, err := e.podPort(s, podAMAC, podA, &b)
	if err != nil {
		return err
	}
	s.In, s.Out = a, b
	s.Frames = e.fromPodA(podB, flows, size)
	return nil
}

func setupIPv4(e *Env, s *Setup, flows, size int) error {
	a, err := e.podPort(s, podAMAC, podA, nil)
	if err != nil {
		return err
	}
	b, err := e.podPort(s, podBMAC, podB, nil)
	if err != nil {
		return err
	}
	if err := e.nextHop(s, fastpath.NextHop{Type: fastpath.NHIface, Port: b, DstMAC: podBMAC}); err != nil {
		return err
	}
	if err := e.route(s, podB); err != nil {
		return err
	}
	s.In, s.Out = a, b
	s.Frames = e.fromPodA(podB, flows, size)
	return nil
}

// setupIPv6 is setupIPv4 over IPv6: a /128 in the VRF's IPv6 FIB.
func setupIPv6(e *Env, s *Setup, flows, size int) error {
	a, err := e.podPort(s, podAMAC, podA6, nil)
	if err != nil {
		return err
	}
	b, err := e.podPort(s, podBMAC, podB6, nil)
	if err != nil {
		return err
	}
	if err := e.nextHop(s, fastpath.NextHop{Type: fastpath.NHIface, Port: b, DstMAC: podBMAC}); err != nil {
		return err
	}
	if err := e.route(s, podB6); err != nil {
		return err
	}
	s.In, s.Out = a, b
	s.Frames = e.fromPodA(podB6, flows, size)
	return nil
}

func setupEncap(encap fastpath.Encap) func(e *Env, s *Setup, flows, size int) error {
	return setupEncapTo(encap, podA, remotePod, remoteVR)
}

// setupEncapTo: pod A (at src) sends to dst behind the remote vRouter at
// vr (an IPv6 vr: the tunnel's outer header is IPv6).
func setupEncapTo(encap fastpath.Encap, src, dst, vr netip.Addr) func(e *Env, s *Setup, flows, size int) error {
	return func(e *Env, s *Setup, flows, size int) error {
		a, err := e.podPort(s, podAMAC, src, nil)
		if err != nil {
			return err
		}
		f, _, err := e.fabricPort(s)
		if err != nil {
			return err
		}
		if err := e.DP.SetNeighbor(vr, remoteMAC); err != nil {
			return err
		}
		id := uint32(vni)
		if encap != fastpath.EncapVXLAN {
			id = label
		}
		if err := e.nextHop(s, fastpath.NextHop{Type: fastpath.NHTunnel, Port: f,
			Encap: encap, TunnelDst: vr, VNI: id}); err != nil {
			return err
		}
		if err := e.route(s, dst); err != nil {
			return err
		}
		s.In, s.Out = a, f
		s.Frames = e.fromPodA(dst, flows, size)
		return nil
	}
}

func setupDecap(encap fastpath.Encap) func(e *Env, s *Setup, flows, size int) error {
	return setupDecapOver(encap, false)
}

// setupDecapOver: the remote vRouter sends to pod B, over the IPv6
// underlay if u6 (VXLAN only).
func setupDecapOver(encap fastpath.Encap, u6 bool) func(e *Env, s *Setup, flows, size int) error {
	return func(e *Env, s *Setup, flows, size int) error {
		f, fmac, err := e.fabricPort(s)
		if err != nil {
			return err
		}
		b, err := e.podPort(s, podBMAC, podB, nil)
		if err != nil {
			return err
		}
		if encap != fastpath.EncapVXLAN {
			if err := e.DP.SetLabel(label, vrf); err != nil {
				return err
			}
			s.push(func() error { return e.DP.DelLabel(label) })
		} else {
			if err := e.DP.SetVNI(vni, vrf); err != nil {
				return err
			}
			s.push(func() error { return e.DP.DelVNI(vni) })
		}
		if err := e.nextHop(s, fastpath.NextHop{Type: fastpath.NHIface, Port: b, DstMAC: podBMAC}); err != nil {
			return err
		}
		if err := e.route(s, podB); err != nil {
			return err
		}
		s.In, s.Out = f, b
		s.Frames = e.fromRemote(fmac, encap, u6, flows, size)
		return nil
	}
}

// Scenarios returns every scenario, the io baseline first.
func Scenarios() []*Scenario {
	return []*Scenario{
		{Name: "io", setup: setupIO,
			About: "pod port cross-connected to another port: forwarded untouched (the io-forward baseline)"},
		{Name: "ipv4", Goal: GoalRoute, setup: setupIPv4,
			About: "pod -> VRF 1 FIB (/32) -> interface next-hop: TTL, checksum, MAC rewrite"},
		{Name: "vxlan-encap", Goal: GoalTunnel, setup: setupEncap(fastpath.EncapVXLAN),
			About: "pod -> FIB -> VXLAN tunnel next-hop out of the fabric port"},
		{Name: "vxlan-decap", Goal: GoalTunnel, setup: setupDecap(fastpath.EncapVXLAN),
			About: "VXLAN to the underlay address -> VNI -> VRF 1 FIB -> pod"},
		{Name: "mplsoudp-encap", Goal: GoalTunnel, setup: setupEncap(fastpath.EncapMPLSoUDP),
			About: "pod -> FIB -> MPLSoUDP tunnel next-hop out of the fabric port"},
		{Name: "mplsoudp-decap", Goal: GoalTunnel, setup: setupDecap(fastpath.EncapMPLSoUDP),
			About: "MPLSoUDP to the underlay address -> label -> VRF 1 FIB -> pod"},
		{Name: "mplsogre-encap", Goal: GoalTunnel, setup: setupEncap(fastpath.EncapMPLSoGRE),
			About: "pod -> FIB -> MPLSoGRE tunnel next-hop out of the fabric port"},
		{Name: "mplsogre-decap", Goal: GoalTunnel, setup: setupDecap(fastpath.EncapMPLSoGRE),
			About: "MPLSoGRE to the underlay address -> label -> VRF 1 FIB -> pod"},
		{Name: "ipv6", Goal: GoalRoute, setup: setupIPv6,
			About: "pod -> VRF 1 IPv6 FIB (/128) -> interface next-hop: hop limit, MAC rewrite"},
		{Name: "ipv6-vxlan-encap", Goal: GoalTunnel, setup: setupEncapTo(fastpath.EncapVXLAN, podA6, remotePod6, remoteVR),
			About: "pod -> IPv6 FIB -> VXLAN tunnel next-hop (IPv4 outer) out of the fabric port"},
		{Name: "vxlan-encap-u6", Goal: GoalTunnel, setup: setupEncapTo(fastpath.EncapVXLAN, podA, remotePod, remoteVR6),
			About: "vxlan-encap over the IPv6 underlay: IPv6 outer header, UDP checksum computed"},
		{Name: "vxlan-decap-u6", Goal: GoalTunnel, setup: setupDecapOver(fastpath.EncapVXLAN, true),
			About: "vxlan-decap over the IPv6 underlay: outer UDP checksum verified"},
	}
}

// ScenarioByName finds a scenario.
func ScenarioByName(name string) (*Scenario, error) {
	for _, sc := range Scenarios() {
		if sc.Name == name {
			return sc, nil
		}
	}
	return nil, fmt.Errorf("fpbench: no scenario %q", name)
}

// Build sets the scenario up on the dataplane. The caller must Close it.
func (e *Env) Build(sc *Scenario, flows, size int) (*Setup, error) {
	if flows < 1 || flows > 65536 {
		return nil, fmt.Errorf("fpbench: %d flows: need 1..65536", flows)
	}
	if size < 60 || size > 1514 {
		return nil, fmt.Errorf("fpbench: frame size %d: need 60..1514", size)
	}
	s := &Setup{}
	if err := sc.setup(e, s, flows, size); err != nil {
		if cerr := s.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, fmt.Errorf("fpbench: %s: %w", sc.Name, err)
	}
	return s, nil
}
