// Package suite runs filament-perf against devices under test side by side:
// dpdk-testpmd (the port pair's limit), filament-dataplane in its forwarding
// modes, each on its own CPU, connected to the generator by two memif links.
// Rows are interleaved over rounds so the machine's drifts hit all alike,
// and every figure is reported as a ratio to the baseline of the same run.
package suite

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/dpdk/apiclient"
	"github.com/filament-net/filament/perf/cpupin"
)

// Env is where a run happens: binaries, a scratch directory, CPUs.
type Env struct {
	Perf      string // filament-perf binary
	Dataplane string // filament-dataplane binary
	Dir       string // scratch: sockets, configs, logs
	GenCPU    int
	DUTCPU    int
	// Huge: hugepages are there (memif needs them).
	Huge bool
}

// The generator's and the devices' addresses. Port A of the generator is
// the "pod" side, port B the far side (another pod, or the fabric).
const (
	GenMACA    = "02:00:00:00:00:0a"
	GenMACB    = "02:00:00:00:00:0b"
	VRouterMAC = "00:00:5e:00:01:00"
	FabricMAC  = "02:fe:00:00:00:01"
	FabricIP   = "192.0.2.1"
	PeerIP     = "192.0.2.2" // the generator's port B, as a remote VTEP
	PodA       = "10.0.0.1"  // the generator behind port A
	PodB       = "10.0.1.1"  // the generator behind port B (L3 rows)
	VNI        = 100
	Label      = 200
	// FabricMTU is the fabric port's MTU in the tunnel rows, filament's
	// and OVS-DPDK's: the pod's 1500 bytes and the tunnel's outer headers
	// (VXLAN 50) fit, as an underlay carrying an overlay must (RFC 7348
	// section 4.3); at 1500 the 1518-byte frames of IMIX (1 in 12) were
	// too big for the tunnel and every encapsulation row failed there.
	FabricMTU = 1600
)

// DUT is a device under test serving memif sockets a and b on env.DUTCPU.
type DUT interface {
	Name() string
	// Start returns once the device serves both sockets; stop ends it.
	Start(ctx context.Context, env *Env, a, b string) (stop func() error, err error)
}

// process runs a command until stop, its output kept in a log file.
type process struct {
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

func startProcess(env *Env, name string, args ...string) (*process, error) {
	log, err := os.Create(filepath.Join(env.Dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	// Never outlive the suite, even if it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("%s: %w", args[0], err)
	}
	p := &process{cmd: cmd, log: log, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *process) stop() error {
	defer p.log.Close()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop on SIGTERM in 10s: killed", p.cmd.Path)
	}
}

func (p *process) tail() string {
	b, _ := os.ReadFile(p.log.Name())
	return tailLines(string(b), 15)
}

// waitSockets polls until both memif sockets exist or the process dies.
func waitSockets(ctx context.Context, p *process, socks ...string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok := true
		for _, s := range socks {
			if _, err := os.Stat(s); err != nil {
				ok = false
			}
		}
		if ok {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before serving its sockets:\n%s", p.cmd.Path, p.tail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s made no memif sockets in 60s:\n%s", p.cmd.Path, p.tail())
		}
	}
}

// Testpmd is dpdk-testpmd forwarding between its two memif ports: io (no
// header touched: the port pair's limit) or 5tswap (L2-L4 swapped).
type Testpmd struct{ Mode string }

func (t Testpmd) Name() string { return "testpmd-" + t.Mode }

func (t Testpmd) Start(ctx context.Context, env *Env, a, b string) (func() error, error) {
	prefix := fmt.Sprintf("fil-suite-testpmd-%d", os.Getpid())
	p, err := startProcess(env, t.Name(), "dpdk-testpmd",
		"--lcores", fmt.Sprintf("0@%d,1@%d", env.DUTCPU, env.DUTCPU), "--no-pci", "--in-memory",
		"--single-file-segments", "--file-prefix", prefix,
		"--log-level", "*:notice",
		"--vdev", "net_memif0,role=server,id=0,socket-abstract=no,socket="+a,
		"--vdev", "net_memif1,role=server,id=0,socket-abstract=no,socket="+b,
		"--", "--forward-mode="+t.Mode, "--nb-cores=1", "--stats-period=3600", "--burst=32")
	if err != nil {
		return nil, err
	}
	stop := func() error {
		err := p.stop()
		// EAL leaves its runtime directory behind.
		_ = os.RemoveAll(filepath.Join("/var/run/dpdk", prefix))
		return err
	}
	if err := waitSockets(ctx, p, a, b); err != nil {
		_ = stop()
		return nil, err
	}
	return stop, nil
}

// Mode is what a filament row measures.
type Mode string

const (
	L3            Mode = "l3"             // pod A -> route -> pod B, same VRF
	VXLANEncap    Mode = "vxlan-encap"    // pod A -> tunnel -> fabric B
	VXLANDecap    Mode = "vxlan-decap"    // fabric B -> VNI -> VRF -> pod A
	MPLSoUDPEncap Mode = "mplsoudp-encap" // pod A -> tunnel -> fabric B
	MPLSoUDPDecap Mode = "mplsoudp-decap" // fabric B -> label -> VRF -> pod A
)

// Filament is filament-dataplane with a configuration for one mode; Routes
// of them (/24s, the traffic spread over all) point to the far side.
type Filament struct {
	Mode   Mode
	Routes int
	// Flowgen: L3 set up for dpdk-testpmd flowgen's fixed headers
	// (flowgen.go), flat out both ways: pods on ports a and b with the
	// same MAC and address, each in a VRF of its own whose routes lead to
	// the other.
	Flowgen bool
	// Binary is the filament-dataplane to run; "" is Env.Dataplane
	// (WithCandidate sets it).
	Binary string
}

func (f Filament) Name() string {
	n := fmt.Sprintf("filament-%s-%d", f.Mode, f.Routes)
	if f.Routes >= 1000 {
		n = fmt.Sprintf("filament-%s-%dk", f.Mode, f.Routes/1000)
	}
	if f.Flowgen {
		n += "-flowgen"
	}
	return n
}

// RouteBase is the first route's /24; route i is RouteBase + i*256.
var RouteBase = netip.MustParseAddr("16.0.0.0")

func routePrefix(i int) netip.Prefix { return nth24(RouteBase, i) }

// nth24 is the i-th /24 from base's.
func nth24(base netip.Addr, i int) netip.Prefix {
	b := base.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8
	v += uint32(i) << 8
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), 0}), 24)
}

func (f Filament) encap() string {
	if f.Mode == MPLSoUDPEncap || f.Mode == MPLSoUDPDecap {
		return "mplsoudp"
	}
	return "vxlan"
}

func (f Filament) key() string {
	if f.encap() == "mplsoudp" {
		return fmt.Sprintf("label: %d", Label)
	}
	return fmt.Sprintf("vni: %d", VNI)
}

// flowgenRoute is the flat-out row's route i: flowgen's destination /24,
// then the ones after it.
func flowgenRoute(i int) netip.Prefix { return nth24(netip.MustParseAddr(FlowgenDst), i) }

func (f Filament) config(env *Env, a, b string) string {
	var c strings.Builder
	vrouter, macA, podA := VRouterMAC, GenMACA, PodA
	if f.Flowgen {
		// Both ports' frames come from FlowgenPodMAC and FlowgenSrc to
		// the vRouter MAC: a pod of that MAC and address on each, in VRFs
		// 1 and 2 (routes through the API, Start).
		vrouter, macA, podA = FlowgenVRouterMAC, FlowgenPodMAC, FlowgenSrc
	}
	fmt.Fprintf(&c, `eal:
  lcores: "0,%d"
  no_huge: false
  file_prefix: fil-suite-dp-%d
  extra: ["--single-file-segments"]
tables: {next_hops: 64, vrfs: 4, fib4_routes: %d, fib4_tbl8s: %d, mbufs: 16383}
vrouter_mac: "%s"
idle_sleep_max_us: 0   # busy polling, as testpmd does: a node tuned for throughput
api: {socket: %s}
ports:
  - {name: a, devargs: "net_memif0,role=server,id=0,socket-abstract=no,socket=%s", kind: pod, vrf: 1, mac: "%s", ipv4: [%s]}
`, env.DUTCPU, os.Getpid(), max(2*f.Routes, 1024), max(4096, f.Routes/128), vrouter, filepath.Join(env.Dir, "dp.sock"), a, macA, podA)
	switch {
	case f.Flowgen:
		fmt.Fprintf(&c, `  - {name: b, devargs: "net_memif1,role=server,id=0,socket-abstract=no,socket=%s", kind: pod, vrf: 2, mac: "%s", ipv4: [%s]}
next_hops:
  - {id: 1, type: interface, port: a, dst_mac: "%s"}
  - {id: 2, type: interface, port: b, dst_mac: "%s"}
`, b, FlowgenPodMAC, FlowgenSrc, FlowgenPodMAC, FlowgenPodMAC)
		return c.String()
	case f.Mode == L3:
		fmt.Fprintf(&c, `  - {name: b, devargs: "net_memif1,role=server,id=0,socket-abstract=no,socket=%s", kind: pod, vrf: 1, mac: "%s", ipv4: [%s]}
next_hops:
  - {id: 1, type: interface, port: a, dst_mac: "%s"}
  - {id: 2, type: interface, port: b, dst_mac: "%s"}
`, b, GenMACB, PodB, GenMACA, GenMACB)
	default:
		fmt.Fprintf(&c, `  - {name: b, devargs: "net_memif1,role=server,id=0,socket-abstract=no,socket=%s", kind: fabric, mac: "%s", ipv4: [%s], mtu: %d}
neighbors:
  - {ip: %s, mac: "%s"}
next_hops:
  - {id: 1, type: interface, port: a, dst_mac: "%s"}
  - {id: 2, type: tunnel, port: b, encap: %s, tunnel_dst: %s, %s}
vnis: [{vni: %d, vrf: 1}]
labels: [{label: %d, vrf: 1}]
`, b, FabricMAC, FabricIP, FabricMTU, PeerIP, GenMACB, GenMACA, f.encap(), PeerIP, f.key(), VNI, Label)
	}
	fmt.Fprintf(&c, "routes:\n  - {vrf: 1, prefix: %s/32, next_hop: 1}\n", PodA)
	return c.String()
}

func (f Filament) Start(ctx context.Context, env *Env, a, b string) (func() error, error) {
	if f.Routes < 1 {
		return nil, errors.New("filament row: at least one route")
	}
	if env.DUTCPU < 1 {
		return nil, errors.New("filament rows: the device's CPU must not be 0 (the EAL puts its main lcore there before the suite moves it)")
	}
	conf := filepath.Join(env.Dir, f.Name()+".yaml")
	if err := os.WriteFile(conf, []byte(f.config(env, a, b)), 0o644); err != nil {
		return nil, err
	}
	bin := env.Dataplane
	if f.Binary != "" {
		bin = f.Binary
	}
	p, err := startProcess(env, f.Name(), bin, "--config", conf)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (func() error, error) {
		_ = p.stop()
		return nil, fmt.Errorf("%w\n%s", err, p.tail())
	}
	if err := waitSockets(ctx, p, a, b, filepath.Join(env.Dir, "dp.sock")); err != nil {
		return fail(err)
	}
	// Every thread on the device's CPU, as testpmd's and OVS-DPDK's: its
	// control threads must not take the generator's.
	if err := cpupin.Process(p.cmd.Process.Pid, env.DUTCPU); err != nil {
		return fail(err)
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cl, err := apiclient.Dial(dctx, filepath.Join(env.Dir, "dp.sock"), apiclient.WithName("filament-perf suite"))
	if err != nil {
		return fail(err)
	}
	defer cl.Close()
	// The far side's routes go through the API in batches (1M routes in a
	// YAML file would be slow to parse and check).
	for off := 0; off < f.Routes; off += 65536 {
		b := &apiclient.Batch{}
		for i := off; i < min(off+65536, f.Routes); i++ {
			if f.Flowgen {
				// a's VRF leads to b, b's to a
				b.Create(&pb.Route{Vrf: 1, Prefix: flowgenRoute(i).String(), NextHop: 2})
				b.Create(&pb.Route{Vrf: 2, Prefix: flowgenRoute(i).String(), NextHop: 1})
				continue
			}
			b.Create(&pb.Route{Vrf: 1, Prefix: routePrefix(i).String(), NextHop: 2})
		}
		if _, err := cl.ApplyBatch(dctx, b); err != nil {
			return fail(fmt.Errorf("programming routes %d..: %w", off, err))
		}
	}
	return func() error {
		err := p.stop()
		// filament-dataplane removes its EAL runtime directory when it
		// exits cleanly; not when it crashed or was killed.
		_ = os.RemoveAll(fmt.Sprintf("/var/run/dpdk/fil-suite-dp-%d", os.Getpid()))
		return err
	}, nil
}

// Overhead is what the fabric side adds to a pod-side frame: the suite's
// sizes are the pod's frames, so decapsulation rows send frames this much
// bigger (VXLAN: outer Ethernet, IPv4, UDP, VXLAN; MPLSoUDP: the same with a
// label instead of VXLAN and the inner Ethernet).
func Overhead(m Mode) int {
	switch m {
	case VXLANDecap:
		return 14 + 20 + 8 + 8
	case MPLSoUDPDecap:
		return 14 + 20 + 8 + 4 - 14
	}
	return 0
}

// MaxTemplates is the generator's --templates in the suite: room for the
// largest row's flows (the 1M routes row's 65,536) at one frame size.
const MaxTemplates = 65536

// Traffic is the filament-perf flags of a row's stream for a mode, frame
// sizes and flows.
func Traffic(m Mode, routes int, flows int) []string {
	last := routePrefix(max(routes, 1) - 1).Addr().As4()
	dst := fmt.Sprintf("%s-%d.%d.%d.1", routePrefix(0).Addr().Next(), last[0], last[1], last[2])
	// Flow f goes to route f mod routes from source port 1024 + f mod
	// ports: with ports coprime to routes, flows up to routes x ports are
	// distinct 5-tuples. Fewer flows than routes go to every
	// (routes/flows)th route, spread over them all.
	ports := ports(flows, routes)
	step := 256 * max(1, max(routes, 1)/max(flows, 1))
	spread := []string{"--dst", dst, "--dst-step", fmt.Sprint(step), "--flows", fmt.Sprint(max(flows, 1)),
		"--sport", fmt.Sprintf("1024-%d", 1024+ports-1)}
	switch m {
	case VXLANDecap, MPLSoUDPDecap:
		kind := "vxlan"
		if m == MPLSoUDPDecap {
			kind = "mplsoudp"
		}
		// From the fabric: a remote VTEP's frames to the local pod.
		return []string{"--tx-port", "1", "--encap", kind, "--outer-src", PeerIP, "--outer-dst", FabricIP,
			"--outer-smac", GenMACB, "--outer-dmac", FabricMAC, "--inner-dmac", VRouterMAC,
			"--vni", fmt.Sprint(VNI), "--label", fmt.Sprint(Label),
			"--smac", GenMACB, "--dmac", VRouterMAC, "--src", dst, "--src-step", "256", "--dst", PodA,
			"--flows", fmt.Sprint(max(flows, 1)), "--sport", fmt.Sprintf("1024-%d", 1024+ports-1)}
	case "":
		// testpmd: any addresses do.
		return append([]string{"--smac", GenMACA, "--dmac", GenMACB, "--src", PodA}, spread...)
	}
	return append([]string{"--smac", GenMACA, "--dmac", VRouterMAC, "--src", PodA}, spread...)
}

// ports is how many source ports flows over routes need to be distinct:
// at least flows/routes, coprime to routes (at most 60000).
func ports(flows, routes int) int {
	routes = max(routes, 1)
	n := max((flows+routes-1)/routes, 1)
	for n > 1 && gcd(n, routes) != 1 && n < 60000 {
		n++
	}
	return min(n, 60000)
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
