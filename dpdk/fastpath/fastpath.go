// Package fastpath starts the C forwarding core (DPDK) and programs its
// tables through cgo. Per-packet work never crosses into Go: every call here
// is a control operation, serialised by a mutex, that returns once no
// forwarding lcore can still see what it replaced.
package fastpath

/*
#cgo pkg-config: libdpdk
#cgo LDFLAGS: -lrte_net_ring
#cgo CFLAGS: -O3 -Wall -Wno-address-of-packed-member -DALLOW_EXPERIMENTAL_API
#include <stdlib.h>
#include "fp.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/filament-net/filament/dpdk/hugepages"
)

// Error is a refused control operation: Errno says which kind (EINVAL for
// bad input, ENOENT, EBUSY, ENOSPC for full tables), Msg says what.
type Error struct {
	Op    string
	Errno syscall.Errno
	Msg   string
}

func (e *Error) Error() string { return e.Op + ": " + e.Msg }

// Unwrap lets errors.Is(err, syscall.EINVAL) work.
func (e *Error) Unwrap() error { return e.Errno }

func cerr(op string, ret C.int, buf *C.char) error {
	if ret >= 0 {
		return nil
	}
	msg := C.GoString(buf)
	errno := syscall.Errno(-ret)
	if msg == "" {
		msg = errno.Error()
	}
	return &Error{Op: op, Errno: errno, Msg: msg}
}

// Limits of the C core.
const (
	MaxPorts     = C.FP_MAX_PORTS
	MaxVRFs      = C.FP_MAX_VRFS
	MaxPodAddrs  = C.FP_MAX_POD_ADDRS
	MaxECMP      = C.FP_MAX_ECMP
	MaxWorkers   = C.FP_MAX_WORKERS
	MaxRxQueues  = C.FP_MAX_RXQ
	MaxNeighbors = C.FP_MAX_NEIGH
	// VXLANOverhead, MPLSoUDPOverhead and MPLSoGREOverhead are what each
	// encapsulation adds to an inner IPv4 packet: a pod's MTU is the
	// fabric MTU minus this.
	VXLANOverhead    = C.FP_VXLAN_OVERHEAD
	MPLSoUDPOverhead = C.FP_MPLSOUDP_OVERHEAD
	MPLSoGREOverhead = C.FP_MPLSOGRE_OVERHEAD
	// Outer6Extra is what an IPv6 outer header adds to each of them.
	Outer6Extra = C.FP_OUTER6_EXTRA
	// IPv6MinMTU is IPv6's smallest link MTU (RFC 8200): a port with IPv6
	// addresses needs at least that.
	IPv6MinMTU = C.FP_IP6_MIN_MTU
)

// Config sizes the tables and the packet pool.
type Config struct {
	EALArgs      []string // rte_eal_init arguments, without argv[0]
	NextHops     uint32
	VRFs         uint32
	FIB4Rules    uint32 // IPv4 routes per VRF
	FIB4Tbl8s    uint32 // IPv4 FIB groups of 256 entries (1 KiB), one pool for all VRFs
	FIB6Rules    uint32 // IPv6 routes per VRF
	FIB6Groups   uint32 // IPv6 FIB groups of 256 entries (1 KiB), one pool for all VRFs
	Mbufs        uint32
	IdleSleepMax time.Duration // adaptive polling: longest idle sleep (0 = never sleep)
	VRouterMAC   net.HardwareAddr
}

// DefaultConfig returns the C core's defaults.
func DefaultConfig() Config {
	var c C.struct_fp_config
	C.fp_config_defaults(&c)
	return Config{
		NextHops:     uint32(c.nh_max),
		VRFs:         uint32(c.vrf_max),
		FIB4Rules:    uint32(c.fib4_rules),
		FIB4Tbl8s:    uint32(c.fib4_tbl8s),
		FIB6Rules:    uint32(c.fib6_rules),
		FIB6Groups:   uint32(c.fib6_groups),
		Mbufs:        uint32(c.mbufs),
		IdleSleepMax: time.Duration(c.idle_sleep_max_us) * time.Microsecond,
		VRouterMAC:   net.HardwareAddr(C.GoBytes(unsafe.Pointer(&c.vrouter_mac[0]), 6)),
	}
}

// Dataplane is the running fast path. There is at most one per process
// (DPDK's EAL is process-wide and cannot be started twice).
type Dataplane struct {
	mu      sync.Mutex
	closed  bool
	workers int
}

var started sync.Mutex // held for the life of the process once Start succeeds

// Start initialises DPDK with cfg.EALArgs and launches a forwarding loop on
// every worker lcore. It refuses to run without hugepages unless the EAL
// arguments say --no-huge: the caller decides, never a silent fallback.
func Start(cfg Config) (*Dataplane, error) {
	if !started.TryLock() {
		return nil, errors.New("fastpath: already started in this process (DPDK's EAL starts once)")
	}
	if err := hugepages.Check(cfg.EALArgs); err != nil {
		started.Unlock()
		return nil, fmt.Errorf("fastpath: %w", err)
	}
	var c C.struct_fp_config
	C.fp_config_defaults(&c)
	c.nh_max = C.uint32_t(cfg.NextHops)
	c.vrf_max = C.uint32_t(cfg.VRFs)
	c.fib4_rules = C.uint32_t(cfg.FIB4Rules)
	c.fib4_tbl8s = C.uint32_t(cfg.FIB4Tbl8s)
	c.fib6_rules = C.uint32_t(cfg.FIB6Rules)
	c.fib6_groups = C.uint32_t(cfg.FIB6Groups)
	c.mbufs = C.uint32_t(cfg.Mbufs)
	c.idle_sleep_max_us = C.uint32_t(cfg.IdleSleepMax / time.Microsecond)
	if len(cfg.VRouterMAC) == 6 {
		for i, b := range cfg.VRouterMAC {
			c.vrouter_mac[i] = C.uint8_t(b)
		}
	} else if cfg.VRouterMAC != nil {
		started.Unlock()
		return nil, fmt.Errorf("fastpath: vRouter MAC %q is not 6 bytes", cfg.VRouterMAC)
	}

	argv := append([]string{"filament-dataplane"}, cfg.EALArgs...)
	cargv := make([]*C.char, len(argv))
	for i, a := range argv {
		cargv[i] = C.CString(a)
	}
	// EAL keeps pointers into argv: never freed.
	carr := (**C.char)(C.malloc(C.size_t(len(cargv)) * C.size_t(unsafe.Sizeof(cargv[0]))))
	copy(unsafe.Slice(carr, len(cargv)), cargv)

	var buf [C.FP_ERRLEN]C.char
	if ret := C.fp_init(C.int(len(argv)), carr, &c, &buf[0]); ret < 0 {
		// The EAL cannot be started again in this process.
		return nil, cerr("fastpath: start", ret, &buf[0])
	}
	return &Dataplane{workers: int(C.fp_worker_count())}, nil
}

// Workers is the number of forwarding lcores.
func (d *Dataplane) Workers() int { return d.workers }

// Close stops the workers, closes every port and releases DPDK.
func (d *Dataplane) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.closed = true
	C.fp_fini()
}

// call runs one control operation under the lock with an error buffer.
func (d *Dataplane) call(op string, f func(err *C.char) C.int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return &Error{Op: op, Errno: syscall.ENODEV, Msg: "dataplane closed"}
	}
	var buf [C.FP_ERRLEN]C.char
	return cerr(op, f(&buf[0]), &buf[0])
}

// PortKind says what a port connects to.
type PortKind uint8

const (
	PortFabric PortKind = C.FP_PORT_FABRIC // the underlay NIC
	PortPod    PortKind = C.FP_PORT_POD    // a pod or VM interface
	PortHost   PortKind = C.FP_PORT_HOST   // the node's TAP (TF's vhost0)
)

func (k PortKind) String() string {
	switch k {
	case PortFabric:
		return "fabric"
	case PortPod:
		return "pod"
	case PortHost:
		return "host"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// PortConfig describes a port. For a pod port, MAC, IPv4 and IPv6 are the
// pod's: the fast path drops anything it routes from other addresses (the
// link-local IPv6 address derived from MAC is allowed for ND and echo to
// the vRouter, never routed). For the fabric port, IPv4[0] is the node's
// underlay address, and IPv6[0] (optional) its IPv6 underlay address.
type PortConfig struct {
	Kind     PortKind
	RxQueues int
	MTU      int
	VRF      uint16
	MAC      net.HardwareAddr
	IPv4     []netip.Addr
	IPv6     []netip.Addr
	// XConnect, when set, sends everything received to that port untouched.
	XConnect *PortID
}

func (pc PortConfig) toC() (C.struct_fp_port_conf, error) {
	var c C.struct_fp_port_conf
	if pc.RxQueues < 0 || pc.RxQueues > 0xffff || pc.MTU < 0 || pc.MTU > 0xffff {
		return c, &Error{Op: "port", Errno: syscall.EINVAL, Msg: "rx queues or MTU out of range"}
	}
	c.kind = C.uint8_t(pc.Kind)
	c.nb_rxq = C.uint16_t(pc.RxQueues)
	c.mtu = C.uint16_t(pc.MTU)
	c.vrf = C.uint16_t(pc.VRF)
	if pc.MAC != nil {
		if len(pc.MAC) != 6 {
			return c, &Error{Op: "port", Errno: syscall.EINVAL, Msg: fmt.Sprintf("MAC %s is not 6 bytes", pc.MAC)}
		}
		for i, b := range pc.MAC {
			c.mac[i] = C.uint8_t(b)
		}
	}
	if len(pc.IPv4) > MaxPodAddrs {
		return c, &Error{Op: "port", Errno: syscall.EINVAL, Msg: fmt.Sprintf("%d IPv4 addresses: at most %d", len(pc.IPv4), MaxPodAddrs)}
	}
	for i, a := range pc.IPv4 {
		v, err := ip4(a)
		if err != nil {
			return c, err
		}
		c.ip4[i] = v
	}
	c.nb_ip4 = C.uint8_t(len(pc.IPv4))
	if len(pc.IPv6) > MaxPodAddrs {
		return c, &Error{Op: "port", Errno: syscall.EINVAL, Msg: fmt.Sprintf("%d IPv6 addresses: at most %d", len(pc.IPv6), MaxPodAddrs)}
	}
	for i, a := range pc.IPv6 {
		if !a.Is6() || a.Is4In6() || a.Zone() != "" {
			return c, &Error{Op: "port", Errno: syscall.EINVAL, Msg: fmt.Sprintf("%v is not an IPv6 address", a)}
		}
		b := a.As16()
		for j := range b {
			c.ip6[i][j] = C.uint8_t(b[j])
		}
	}
	c.nb_ip6 = C.uint8_t(len(pc.IPv6))
	if pc.XConnect != nil {
		c.xconnect = C.uint16_t(*pc.XConnect) + 1
	}
	return c, nil
}

// ip4 converts to the C core's network-byte-order uint32.
func ip4(a netip.Addr) (C.uint32_t, error) {
	if !a.Is4() {
		return 0, &Error{Op: "address", Errno: syscall.EINVAL, Msg: fmt.Sprintf("%v is not an IPv4 address", a)}
	}
	b := a.As4()
	return *(*C.uint32_t)(unsafe.Pointer(&b[0])), nil
}

// ip6 converts to the C core's 16 bytes in network order.
func ip6(a netip.Addr, out *[16]C.uint8_t) error {
	if !a.Is6() || a.Is4In6() || a.Zone() != "" {
		return &Error{Op: "address", Errno: syscall.EINVAL, Msg: fmt.Sprintf("%v is not an IPv6 address", a)}
	}
	b := a.As16()
	for i := range b {
		out[i] = C.uint8_t(b[i])
	}
	return nil
}

// PortID is a DPDK port id.
type PortID uint16

// AddPort probes a DPDK device from devargs (e.g. "net_af_packet0,iface=veth1"),
// starts it and polls it.
func (d *Dataplane) AddPort(devargs string, pc PortConfig) (PortID, error) {
	c, err := pc.toC()
	if err != nil {
		return 0, err
	}
	cs := C.CString(devargs)
	defer C.free(unsafe.Pointer(cs))
	var id C.int
	err = d.call("add port "+devargs, func(e *C.char) C.int {
		id = C.fp_port_add(cs, &c, e)
		return id
	})
	return PortID(id), err
}

// AddRingPort adds a port over in-memory rings: Inject feeds its RX, Drain
// reads its TX. For tests and benchmarks.
func (d *Dataplane) AddRingPort(name string, pc PortConfig) (PortID, error) {
	c, err := pc.toC()
	if err != nil {
		return 0, err
	}
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	var id C.int
	err = d.call("add ring port "+name, func(e *C.char) C.int {
		id = C.fp_port_add_ring(cs, &c, e)
		return id
	})
	return PortID(id), err
}

// UpdatePort changes a port's VRF, addresses or MTU while it forwards.
func (d *Dataplane) UpdatePort(id PortID, pc PortConfig) error {
	c, err := pc.toC()
	if err != nil {
		return err
	}
	return d.call(fmt.Sprintf("update port %d", id), func(e *C.char) C.int {
		return C.fp_port_update(C.uint16_t(id), &c, e)
	})
}

// DelPort stops polling a port and closes it. Next-hops must not use it.
func (d *Dataplane) DelPort(id PortID) error {
	return d.call(fmt.Sprintf("delete port %d", id), func(e *C.char) C.int {
		return C.fp_port_del(C.uint16_t(id), e)
	})
}

// PortMAC is the device's MAC address.
func (d *Dataplane) PortMAC(id PortID) (net.HardwareAddr, error) {
	var mac [6]C.uint8_t
	err := d.call(fmt.Sprintf("port %d mac", id), func(e *C.char) C.int {
		return C.fp_port_mac(C.uint16_t(id), &mac[0])
	})
	if err != nil {
		return nil, err
	}
	return net.HardwareAddr(C.GoBytes(unsafe.Pointer(&mac[0]), 6)), nil
}

// PortLinkUp reports the device's link state (memif and vhost-user ports are
// down until their peer connects; a memif port is up once the workers use
// the connection, within 1 ms of it).
func (d *Dataplane) PortLinkUp(id PortID) (bool, error) {
	var ret C.int
	err := d.call(fmt.Sprintf("port %d link", id), func(*C.char) C.int {
		ret = C.fp_port_link(C.uint16_t(id))
		return ret
	})
	return ret == 1, err
}

// NHType is a next-hop's action.
type NHType uint8

const (
	NHDiscard NHType = C.FP_NH_DISCARD
	NHReceive NHType = C.FP_NH_RECEIVE
	NHIface   NHType = C.FP_NH_IFACE
	NHTunnel  NHType = C.FP_NH_TUNNEL
	NHECMP    NHType = C.FP_NH_ECMP
)

// Encap is a tunnel encapsulation.
type Encap uint8

const (
	EncapVXLAN    Encap = C.FP_ENCAP_VXLAN
	EncapMPLSoUDP Encap = C.FP_ENCAP_MPLSOUDP
	EncapMPLSoGRE Encap = C.FP_ENCAP_MPLSOGRE
)

// Overhead is what a tunnel of this encapsulation puts in front of the
// inner packet, over an IPv6 underlay if outer6: a tunnel next-hop sends
// inner packets of its port's MTU less this (fp_encap_overhead).
func (e Encap) Overhead(outer6 bool) int {
	o := VXLANOverhead
	switch e {
	case EncapMPLSoUDP:
		o = MPLSoUDPOverhead
	case EncapMPLSoGRE:
		o = MPLSoGREOverhead
	}
	if outer6 {
		o += Outer6Extra
	}
	return o
}

// NextHop is what a route points to.
type NextHop struct {
	Type NHType
	// Iface and Tunnel: the out port.
	Port PortID
	// Iface: the destination MAC written on the frame.
	DstMAC net.HardwareAddr
	// Tunnel: encapsulation, the remote vRouter, the underlay next hop
	// (zero: the remote itself is on the fabric's L2), and the VNI (VXLAN)
	// or MPLS label (MPLSoUDP, MPLSoGRE). An IPv6 TunnelDst (and
	// TunnelGW) makes the outer header IPv6, from the fabric port's IPv6[0].
	Encap     Encap
	TunnelDst netip.Addr
	TunnelGW  netip.Addr
	VNI       uint32
	// ECMP: member next-hop ids (interface or tunnel next-hops).
	Members []uint32
}

// SetNextHop creates or atomically replaces next-hop id.
func (d *Dataplane) SetNextHop(id uint32, nh NextHop) error {
	op := fmt.Sprintf("set next-hop %d", id)
	c := (*C.struct_fp_nh_conf)(C.calloc(1, C.size_t(unsafe.Sizeof(C.struct_fp_nh_conf{}))))
	defer C.free(unsafe.Pointer(c))
	c._type = C.uint8_t(nh.Type)
	c.port = C.uint16_t(nh.Port)
	if nh.DstMAC != nil {
		if len(nh.DstMAC) != 6 {
			return &Error{Op: op, Errno: syscall.EINVAL, Msg: "destination MAC is not 6 bytes"}
		}
		for i, b := range nh.DstMAC {
			c.dst_mac[i] = C.uint8_t(b)
		}
	}
	c.encap = C.uint8_t(nh.Encap)
	var err error
	if nh.Type == NHTunnel && nh.TunnelDst.Is6() {
		// an IPv6 underlay: the outer header is IPv6
		c.tun_ip6 = 1
		if err := ip6(nh.TunnelDst, &c.tun_dst6); err != nil {
			return err
		}
		if nh.TunnelGW.IsValid() {
			if err := ip6(nh.TunnelGW, &c.tun_gw6); err != nil {
				return err
			}
		}
	} else if nh.Type == NHTunnel {
		if c.tun_dst, err = ip4(nh.TunnelDst); err != nil {
			return err
		}
		if nh.TunnelGW.IsValid() {
			if c.tun_gw, err = ip4(nh.TunnelGW); err != nil {
				return err
			}
		}
	}
	c.vni = C.uint32_t(nh.VNI)
	if len(nh.Members) > MaxECMP {
		return &Error{Op: op, Errno: syscall.EINVAL, Msg: fmt.Sprintf("%d ECMP members: at most %d", len(nh.Members), MaxECMP)}
	}
	for i, m := range nh.Members {
		c.members[i] = C.uint32_t(m)
	}
	c.nb_members = C.uint32_t(len(nh.Members))
	return d.call(op, func(e *C.char) C.int { return C.fp_nh_set(C.uint32_t(id), c, e) })
}

// DelNextHop removes a next-hop no route or ECMP group uses.
func (d *Dataplane) DelNextHop(id uint32) error {
	return d.call(fmt.Sprintf("delete next-hop %d", id), func(e *C.char) C.int {
		return C.fp_nh_del(C.uint32_t(id), e)
	})
}

func prefix4(p netip.Prefix) (C.uint32_t, C.uint8_t, error) {
	if !p.IsValid() || !p.Addr().Is4() {
		return 0, 0, &Error{Op: "route", Errno: syscall.EINVAL, Msg: fmt.Sprintf("%v is not an IPv4 prefix", p)}
	}
	a, _ := ip4(p.Addr())
	return a, C.uint8_t(p.Bits()), nil
}

// AddRoute4 adds (or repoints) an IPv4 route in a VRF.
func (d *Dataplane) AddRoute4(vrf uint16, p netip.Prefix, nh uint32) error {
	a, l, err := prefix4(p)
	if err != nil {
		return err
	}
	return d.call(fmt.Sprintf("add route %v vrf %d", p, vrf), func(e *C.char) C.int {
		return C.fp_route4_add(C.uint16_t(vrf), a, l, C.uint32_t(nh), e)
	})
}

// DelRoute4 removes an IPv4 route.
func (d *Dataplane) DelRoute4(vrf uint16, p netip.Prefix) error {
	a, l, err := prefix4(p)
	if err != nil {
		return err
	}
	return d.call(fmt.Sprintf("delete route %v vrf %d", p, vrf), func(e *C.char) C.int {
		return C.fp_route4_del(C.uint16_t(vrf), a, l, e)
	})
}

// LookupRoute4 is the next-hop the fast path would use for addr.
func (d *Dataplane) LookupRoute4(vrf uint16, addr netip.Addr) (uint32, bool) {
	a, err := ip4(addr)
	if err != nil {
		return 0, false
	}
	var nh C.uint32_t
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, false
	}
	return uint32(nh), C.fp_route4_lookup(C.uint16_t(vrf), a, &nh) == 0
}

// SetVRFAddress sets the vRouter's own address in a VRF (the networks'
// gateway): the source of the ICMP errors it sends there. An invalid
// netip.Addr{} clears it, and the VRF then gets no ICMP errors.
func (d *Dataplane) SetVRFAddress(vrf uint16, addr netip.Addr) error {
	var a C.uint32_t
	if addr.Is6() && !addr.Is4In6() {
		return d.SetVRFAddress6(vrf, addr)
	}
	if addr.IsValid() {
		var err error
		if a, err = ip4(addr); err != nil {
			return err
		}
	}
	return d.call(fmt.Sprintf("set VRF %d address", vrf), func(e *C.char) C.int {
		return C.fp_vrf_addr_set(C.uint16_t(vrf), a, e)
	})
}

// SetVRFAddress6 sets the vRouter's own IPv6 address in a VRF: the source
// of the ICMPv6 errors (time exceeded, packet too big) it sends there.
// netip.Addr{} clears it.
func (d *Dataplane) SetVRFAddress6(vrf uint16, addr netip.Addr) error {
	var a [16]byte
	if addr.IsValid() {
		if !addr.Is6() || addr.Is4In6() {
			return &Error{Op: "address", Errno: syscall.EINVAL, Msg: fmt.Sprintf("%v is not an IPv6 address", addr)}
		}
		a = addr.As16()
	}
	return d.call(fmt.Sprintf("set VRF %d IPv6 address", vrf), func(e *C.char) C.int {
		return C.fp_vrf_addr6_set(C.uint16_t(vrf), (*C.uint8_t)(unsafe.Pointer(&a[0])), e)
	})
}

// SetVNI maps a VXLAN VNI to the VRF its decapsulated packets are routed in.
func (d *Dataplane) SetVNI(vni uint32, vrf uint16) error {
	return d.call(fmt.Sprintf("set VNI %d", vni), func(e *C.char) C.int {
		return C.fp_vni_set(C.uint32_t(vni), C.uint16_t(vrf), e)
	})
}

// DelVNI removes a VNI mapping.
func (d *Dataplane) DelVNI(vni uint32) error {
	return d.call(fmt.Sprintf("delete VNI %d", vni), func(e *C.char) C.int {
		return C.fp_vni_del(C.uint32_t(vni), e)
	})
}

// SetLabel maps an MPLS label (one per network) to a VRF.
func (d *Dataplane) SetLabel(label uint32, vrf uint16) error {
	return d.call(fmt.Sprintf("set label %d", label), func(e *C.char) C.int {
		return C.fp_label_set(C.uint32_t(label), C.uint16_t(vrf), e)
	})
}

// DelLabel removes a label mapping.
func (d *Dataplane) DelLabel(label uint32) error {
	return d.call(fmt.Sprintf("delete label %d", label), func(e *C.char) C.int {
		return C.fp_label_del(C.uint32_t(label), e)
	})
}

// SetNeighbor pins an underlay neighbour's MAC (otherwise learnt by ARP,
// or by neighbour discovery for an IPv6 one).
func (d *Dataplane) SetNeighbor(ip netip.Addr, mac net.HardwareAddr) error {
	if len(mac) != 6 {
		return &Error{Op: "set neighbour", Errno: syscall.EINVAL, Msg: "MAC is not 6 bytes"}
	}
	var m [6]C.uint8_t
	for i, b := range mac {
		m[i] = C.uint8_t(b)
	}
	if ip.Is6() {
		var a [16]C.uint8_t
		if err := ip6(ip, &a); err != nil {
			return err
		}
		return d.call(fmt.Sprintf("set neighbour %v", ip), func(e *C.char) C.int {
			return C.fp_neigh6_set(&a[0], &m[0], e)
		})
	}
	a, err := ip4(ip)
	if err != nil {
		return err
	}
	return d.call(fmt.Sprintf("set neighbour %v", ip), func(e *C.char) C.int {
		return C.fp_neigh_set(a, &m[0], e)
	})
}

// DelNeighbor unpins a static neighbour: it is removed, or learnt again by
// ARP (ND) while tunnels use it. ENOENT if it is not a static neighbour.
func (d *Dataplane) DelNeighbor(ip netip.Addr) error {
	if ip.Is6() {
		var a [16]C.uint8_t
		if err := ip6(ip, &a); err != nil {
			return err
		}
		return d.call(fmt.Sprintf("delete neighbour %v", ip), func(e *C.char) C.int {
			return C.fp_neigh6_del(&a[0], e)
		})
	}
	a, err := ip4(ip)
	if err != nil {
		return err
	}
	return d.call(fmt.Sprintf("delete neighbour %v", ip), func(e *C.char) C.int {
		return C.fp_neigh_del(a, e)
	})
}

// Neighbor reports an underlay neighbour's MAC and whether it is resolved.
func (d *Dataplane) Neighbor(ip netip.Addr) (net.HardwareAddr, bool, error) {
	var m [6]C.uint8_t
	var ret C.int
	var get func() C.int
	if ip.Is6() {
		var a [16]C.uint8_t
		if err := ip6(ip, &a); err != nil {
			return nil, false, err
		}
		get = func() C.int { return C.fp_neigh6_get(&a[0], &m[0]) }
	} else {
		a, err := ip4(ip)
		if err != nil {
			return nil, false, err
		}
		get = func() C.int { return C.fp_neigh_get(a, &m[0]) }
	}
	err := d.call(fmt.Sprintf("neighbour %v", ip), func(e *C.char) C.int {
		ret = get()
		return ret
	})
	if err != nil || ret == 0 {
		return nil, false, err
	}
	return net.HardwareAddr(C.GoBytes(unsafe.Pointer(&m[0]), 6)), true, nil
}
