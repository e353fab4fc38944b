package fastpath_test

// Golden packet tests: crafted frames in, exact bytes out, through the real
// fast path. One DPDK EAL per test process (TestMain), ring ports for every
// test, one worker lcore forwarding asynchronously: tests poll for what they
// expect, with deadlines, never sleep to synchronise.
//
// Tests never run in parallel: there is one fabric and one host port at a
// time, and drop counters are global.

import (
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/dpdk/frames"
	"github.com/filament-net/filament/dpdk/hugepages"
)

var (
	dp        *fastpath.Dataplane
	vrMAC     net.HardwareAddr // what pods send to, and what they get frames from
	baseMbufs int              // mbufs in use right after Start
)

const timeout = 5 * time.Second

func TestMain(m *testing.M) {
	cfg := fastpath.DefaultConfig()
	mem, huge := hugepages.EALArgs(1024)
	// Own runtime directory: test binaries may run side by side.
	cfg.EALArgs = append([]string{"-l", "0,1", "--no-pci", "--log-level=*:notice",
		"--file-prefix", fmt.Sprintf("fil-test-%d", os.Getpid())}, mem...)
	if huge {
		log.Printf("fastpath tests: DPDK on hugepages (%s)", strings.Join(mem, " "))
	} else {
		log.Printf("fastpath tests: no free hugepages, DPDK on anonymous memory (%s)", strings.Join(mem, " "))
	}
	d, err := fastpath.Start(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: cannot start the fast path: %v\n", err)
		os.Exit(1)
	}
	dp = d
	vrMAC = cfg.VRouterMAC
	baseMbufs = d.MbufsInUse()
	log.Printf("fastpath tests: %d worker(s), %d mbufs in use at start", d.Workers(), baseMbufs)
	code := m.Run()
	d.Close()
	os.Exit(code)
}

// ---- addresses shared by the tests ---------------------------------------

var (
	fabricMAC = frames.MustMAC("02:fa:00:00:00:01")
	underlay  = netip.MustParseAddr("192.168.100.1")
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// remote is another vRouter on the fabric's L2, pinned as a static
// neighbour: 192.168.100.<n> at 02:fb:00:00:00:<n>.
func remote(t *testing.T, n int) (netip.Addr, net.HardwareAddr) {
	t.Helper()
	a := netip.AddrFrom4([4]byte{192, 168, 100, byte(n)})
	m := net.HardwareAddr{0x02, 0xfb, 0, 0, 0, byte(n)}
	if err := dp.SetNeighbor(a, m); err != nil {
		t.Fatalf("SetNeighbor(%v): %v", a, err)
	}
	return a, m
}

// ---- the test environment: ports, tables and their cleanup ---------------

var (
	portSeq int
	nhSeq   uint32 = 100
)

type pod struct {
	id   fastpath.PortID
	name string
	vrf  uint16
	mac  net.HardwareAddr
	ip   netip.Addr
	gw   netip.Addr
}

type env struct {
	t *testing.T
	*envState
}

type envState struct {
	ports map[fastpath.PortID]string
	undo  []undo
}

type undo struct {
	what string
	f    func() error
}

// newEnv returns a test environment whose cleanup, in order: fails on any
// frame left on the test's ports, waits for every mbuf to return, deletes
// what the test created (routes, then next-hops, then ports, as they were
// added in the opposite order) and waits for the mbufs again.
func newEnv(t *testing.T) *env {
	e := &env{t: t, envState: &envState{ports: map[fastpath.PortID]string{}}}
	t.Cleanup(func() {
		e.expectNothing()
		waitMbufs(t)
		for i := len(e.undo) - 1; i >= 0; i-- {
			if err := e.undo[i].f(); err != nil {
				t.Errorf("cleanup: %s: %v", e.undo[i].what, err)
			}
		}
		waitMbufs(t)
	})
	return e
}

// with is e for a subtest: failures are reported on t; what it creates is
// still cleaned up with the parent.
func (e *env) with(t *testing.T) *env { return &env{t: t, envState: e.envState} }

func (e *env) onCleanup(what string, f func() error) { e.undo = append(e.undo, undo{what, f}) }

func (e *env) addPort(pc fastpath.PortConfig) (fastpath.PortID, string) {
	e.t.Helper()
	portSeq++
	name := fmt.Sprintf("t%d", portSeq)
	id, err := dp.AddRingPort(name, pc)
	if err != nil {
		e.t.Fatalf("AddRingPort %s (%v): %v", name, pc.Kind, err)
	}
	e.ports[id] = fmt.Sprintf("%s %s (port %d)", pc.Kind, name, id)
	// Port ids are reused: a new port's counters start from zero.
	if s, err := dp.PortStats(id); err != nil || s != (fastpath.PortStats{}) {
		e.t.Errorf("new %s: stats %+v, %v; want zero", e.ports[id], s, err)
	}
	e.onCleanup("delete "+e.ports[id], func() error {
		err := dp.DelPort(id)
		delete(e.ports, id)
		return err
	})
	return id, name
}

// pod adds a pod port in vrf with the pod's MAC and address; the gateway
// is the .1 of the address's /24.
func (e *env) pod(vrf uint16, mac, addr string) pod {
	e.t.Helper()
	a := ip(addr)
	b := a.As4()
	b[3] = 1
	p := pod{vrf: vrf, mac: frames.MustMAC(mac), ip: a, gw: netip.AddrFrom4(b)}
	p.id, p.name = e.addPort(fastpath.PortConfig{
		Kind: fastpath.PortPod, VRF: vrf, MAC: p.mac, IPv4: []netip.Addr{a},
	})
	return p
}

// fabric adds the fabric port: underlay 192.168.100.1, MAC 02:fa:00:00:00:01.
func (e *env) fabric(mtu int) fastpath.PortID {
	e.t.Helper()
	id, _ := e.addPort(fastpath.PortConfig{
		Kind: fastpath.PortFabric, MTU: mtu, MAC: fabricMAC, IPv4: []netip.Addr{underlay},
	})
	return id
}

func (e *env) host(vrf uint16) fastpath.PortID {
	e.t.Helper()
	id, _ := e.addPort(fastpath.PortConfig{Kind: fastpath.PortHost, VRF: vrf, MAC: frames.MustMAC("02:40:00:00:00:01")})
	return id
}

func (e *env) nh(nh fastpath.NextHop) uint32 {
	e.t.Helper()
	nhSeq++
	id := nhSeq
	if err := dp.SetNextHop(id, nh); err != nil {
		e.t.Fatalf("SetNextHop %d: %v", id, err)
	}
	e.onCleanup(fmt.Sprintf("delete next-hop %d", id), func() error { return dp.DelNextHop(id) })
	return id
}

// toPod is the interface next-hop to a pod, and its /32 route.
func (e *env) toPod(p pod) uint32 {
	e.t.Helper()
	id := e.nh(fastpath.NextHop{Type: fastpath.NHIface, Port: p.id, DstMAC: p.mac})
	e.route(p.vrf, p.ip.String()+"/32", id)
	return id
}

func (e *env) route(vrf uint16, prefix string, nh uint32) {
	e.t.Helper()
	p := netip.MustParsePrefix(prefix)
	if err := dp.AddRoute4(vrf, p, nh); err != nil {
		e.t.Fatalf("AddRoute4 %v vrf %d: %v", p, vrf, err)
	}
	e.onCleanup(fmt.Sprintf("delete route %v vrf %d", p, vrf), func() error { return dp.DelRoute4(vrf, p) })
}

func (e *env) vni(vni uint32, vrf uint16) {
	e.t.Helper()
	if err := dp.SetVNI(vni, vrf); err != nil {
		e.t.Fatalf("SetVNI %d: %v", vni, err)
	}
	e.onCleanup(fmt.Sprintf("delete VNI %d", vni), func() error { return dp.DelVNI(vni) })
}

func (e *env) label(label uint32, vrf uint16) {
	e.t.Helper()
	if err := dp.SetLabel(label, vrf); err != nil {
		e.t.Fatalf("SetLabel %d: %v", label, err)
	}
	e.onCleanup(fmt.Sprintf("delete label %d", label), func() error { return dp.DelLabel(label) })
}

// ---- traffic --------------------------------------------------------------

func (e *env) inject(port fastpath.PortID, fs ...[]byte) {
	e.t.Helper()
	n, err := dp.Inject(port, fs...)
	if err != nil || n != len(fs) {
		e.t.Fatalf("Inject on %s: %d of %d frames: %v", e.ports[port], n, len(fs), err)
	}
}

// expectFrames polls port until n frames came out (fails after d, or if
// more than n come).
func (e *env) expectFrames(port fastpath.PortID, n int, d time.Duration) [][]byte {
	e.t.Helper()
	var got [][]byte
	deadline := time.Now().Add(d)
	for len(got) < n {
		fs, err := dp.Drain(port, n+16-len(got))
		if err != nil {
			e.t.Fatalf("Drain %s: %v", e.ports[port], err)
		}
		got = append(got, fs...)
		if len(fs) > 0 {
			continue
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: %d of %d frames after %v; drops now %v", e.ports[port], len(got), n, d, nonZero(dp.Drops()))
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	if len(got) > n {
		for _, f := range got[n:] {
			e.t.Errorf("%s: unexpected extra frame: %s", e.ports[port], frames.Summary(f))
		}
		e.t.FailNow()
	}
	return got
}

// expectFrame is expectFrames for one frame, compared with want byte for byte.
func (e *env) expectFrame(port fastpath.PortID, want []byte) []byte {
	e.t.Helper()
	got := e.expectFrames(port, 1, timeout)[0]
	if d := frames.Diff(want, got); d != "" {
		e.t.Errorf("%s sent a different frame:\n%s", e.ports[port], d)
	}
	return got
}

// settle returns once every worker finished two more loop iterations:
// whatever it received before the call is then processed and flushed.
func settle(t *testing.T) {
	t.Helper()
	base := make([]uint64, dp.Workers())
	for w := range base {
		s, err := dp.LcoreStats(w)
		if err != nil {
			t.Fatal(err)
		}
		base[w] = s.Polls
	}
	waitFor(t, "workers to finish two loop iterations", func() bool {
		for w := range base {
			s, _ := dp.LcoreStats(w)
			if s.Polls < base[w]+3 {
				return false
			}
		}
		return true
	})
}

// expectNothing fails on any frame waiting on any port of the test.
func (e *env) expectNothing() {
	e.t.Helper()
	settle(e.t)
	for id, name := range e.ports {
		fs, err := dp.Drain(id, 64)
		if err != nil {
			e.t.Errorf("Drain %s: %v", name, err)
		}
		for _, f := range fs {
			e.t.Errorf("%s: unexpected frame: %s", name, frames.Summary(f))
		}
	}
}

// expectDrop injects frames on port and waits until drop counter reason grew
// by n; fails if any other counter moved or anything was sent.
func (e *env) expectDrop(reason string, n uint64, port fastpath.PortID, fs ...[]byte) {
	e.t.Helper()
	before := dp.Drops()
	if _, ok := before[reason]; !ok {
		e.t.Fatalf("no drop reason %q", reason)
	}
	e.inject(port, fs...)
	deadline := time.Now().Add(timeout)
	for dp.Drops()[reason] < before[reason]+n {
		if time.Now().After(deadline) {
			e.expectNothing()
			e.t.Fatalf("timed out after %v waiting for drop counter %s to grow by %d; counters that grew: %v",
				timeout, reason, n, dropDelta(before))
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	e.expectNothing()
	e.checkDrops(before, map[string]uint64{reason: n})
}

// dropDelta is how much each drop counter grew since before.
func dropDelta(before map[string]uint64) map[string]uint64 {
	d := map[string]uint64{}
	for r, v := range dp.Drops() {
		if v != before[r] {
			d[r] = v - before[r]
		}
	}
	return d
}

// checkDrops fails unless the drop counters moved from before by exactly want.
func (e *env) checkDrops(before map[string]uint64, want map[string]uint64) {
	e.t.Helper()
	after := dp.Drops()
	for r, v := range after {
		if d := v - before[r]; d != want[r] {
			e.t.Errorf("drop counter %s grew by %d, want %d", r, d, want[r])
		}
	}
}

func nonZero(m map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s (drops %v)", timeout, what, nonZero(dp.Drops()))
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// waitMbufs fails unless every mbuf is back in the pool.
func waitMbufs(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n := dp.MbufsInUse()
		if n == baseMbufs {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d mbufs in use, %d at start: leaked", n, baseMbufs)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// ---- frames ----------------------------------------------------------------

// pkt describes an IPv4 packet; ip4 builds it with a TTL.
type pkt struct {
	src, dst     netip.Addr
	proto        uint8
	sport, dport uint16
	tos          uint8
	id           uint16
	flags        uint8
	options      []byte
	payload      []byte
}

func (p pkt) ip4(ttl uint8) []byte {
	var l4 []byte
	switch p.proto {
	case frames.ProtoTCP:
		l4 = frames.TCP{SrcPort: p.sport, DstPort: p.dport, Seq: 1, Flags: frames.TCPSyn, Window: 1024}.Build(p.src, p.dst, p.payload)
	case frames.ProtoICMP:
		l4 = frames.ICMPEcho{Type: frames.ICMPEchoRequest, ID: p.sport, Seq: p.dport}.Build(p.payload)
	default:
		p.proto = frames.ProtoUDP
		l4 = frames.UDP{SrcPort: p.sport, DstPort: p.dport}.BuildChecksum(p.src, p.dst, p.payload)
	}
	return frames.IPv4{TOS: p.tos, ID: p.id, Flags: p.flags, TTL: ttl, Protocol: p.proto,
		Src: p.src, Dst: p.dst, Options: p.options}.Build(l4)
}

func eth(dst, src net.HardwareAddr, ipPkt []byte) []byte {
	return frames.Ethernet{Dst: dst, Src: src, Type: frames.EtherTypeIPv4}.Build(ipPkt)
}

// from is what a pod sends: to the vRouter MAC, from its own.
func (p pod) from(ipPkt []byte) []byte { return eth(vrMAC, p.mac, ipPkt) }

// to is what the vRouter sends a pod.
func (p pod) to(ipPkt []byte) []byte { return eth(p.mac, vrMAC, ipPkt) }

func arpFrame(dst, src net.HardwareAddr, a frames.ARP) []byte {
	return frames.Ethernet{Dst: dst, Src: src, Type: frames.EtherTypeARP}.Build(a.Build())
}

// vxlanIn is a VXLAN frame from remote vRouter n to this node.
func vxlanIn(t *testing.T, n int, flags uint8, vni uint32, innerEth []byte) []byte {
	ra, rm := remote(t, n)
	return eth(fabricMAC, rm, frames.IPv4{Flags: frames.IPv4DF, TTL: 64, Protocol: frames.ProtoUDP, Src: ra, Dst: underlay}.Build(
		frames.UDP{SrcPort: 51000, DstPort: frames.PortVXLAN}.Build(
			frames.VXLAN{Flags: flags, VNI: vni}.Build(innerEth))))
}

// mplsIn is an MPLSoUDP frame from remote vRouter n with one label entry.
func mplsIn(t *testing.T, n int, label frames.MPLS, innerIP []byte) []byte {
	ra, rm := remote(t, n)
	return eth(fabricMAC, rm, frames.IPv4{Flags: frames.IPv4DF, TTL: 64, Protocol: frames.ProtoUDP, Src: ra, Dst: underlay}.Build(
		frames.UDP{SrcPort: 51000, DstPort: frames.PortMPLSoUDP}.Build(label.Build(innerIP))))
}

// greIn is an MPLSoGRE frame from remote vRouter n: the GRE header as given,
// then one label entry.
func greIn(t *testing.T, n int, gre frames.GRE, label frames.MPLS, innerIP []byte) []byte {
	ra, rm := remote(t, n)
	return eth(fabricMAC, rm, frames.IPv4{Flags: frames.IPv4DF, TTL: 64, Protocol: frames.ProtoGRE, Src: ra, Dst: underlay}.Build(
		gre.Build(label.Build(innerIP))))
}
