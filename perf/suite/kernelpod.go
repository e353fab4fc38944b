package suite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/filament-net/filament/perf/cpupin"
)

// KernelPod is filament-dataplane forwarding through a kernel pod: the
// generator's port A (memif) -> VRF 1 -> port P1, a kernel interface of a
// "router pod" -> the pod's kernel forwards -> port P2 -> VRF 2 -> memif B.
// P1 and P2 are veths whose host ends the dataplane polls with Driver
// (af_xdp or af_packet, as the agent attaches pods), or TAPs it creates
// that the suite moves into the pod (tap). Every packet crosses the
// kernel pod path twice, out of and back into the dataplane, plus the
// kernel's own forwarding: the rate is the kernel's, far below memif's.
//
// The dataplane runs in a namespace of its own holding the host ends, so
// nothing of the row touches the machine's namespace; both namespaces are
// named after the suite's PID and deleted when the row stops.
type KernelPod struct {
	Driver string // af_xdp, af_packet or tap
	Routes int
}

// The router pod's addresses: P1 is in 10.1.1.0/24, P2 in 10.1.2.0/24, the
// vRouter (the pod's gateway on both) is .1 of each.
const (
	RouterMAC1 = "02:00:0a:01:01:02"
	RouterIP1  = "10.1.1.2"
	RouterGW1  = "10.1.1.1"
	RouterMAC2 = "02:00:0a:01:02:02"
	RouterIP2  = "10.1.2.2"
	RouterGW2  = "10.1.2.1"
)

// KernelPodNDRFlags bound the search of the kernel pod rows: the kernel
// forwards well under 1 Mpps on one core, so searching down from memif's
// 10+ Mpps would spend most trials on rates that lose everything: the
// search runs between twice and a 40th of what came back from a flat-out
// trial; and the kernel's rate varies by more than 2% from trial to
// trial, so a finer resolution only adds trials (and failed
// confirmations).
var KernelPodNDRFlags = []string{"--max-rate", "received", "--resolution", "0.02"}

func (k KernelPod) Name() string {
	return "filament-kernelpod-" + strings.ReplaceAll(k.Driver, "_", "")
}

// kernelPodNet is the two namespaces of a row and the interface names in
// them: P1 and P2's host ends (polled by the dataplane) in dp, their pod
// ends in router.
type kernelPodNet struct {
	dp, router   string
	host, pod    [2]string
	driver       string
	createdNetns []string
}

func newKernelPodNet(driver string) *kernelPodNet {
	id := os.Getpid()
	return &kernelPodNet{
		dp: fmt.Sprintf("fil-kp%d-dp", id), router: fmt.Sprintf("fil-kp%d-rt", id),
		host: [2]string{"kp1h", "kp2h"}, pod: [2]string{"kp1r", "kp2r"}, driver: driver,
	}
}

// runTool runs a command (ip, ethtool, sysctl) and returns its output in
// the error.
func runTool(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// create makes the namespaces and, for veth drivers, the pairs: what must
// exist before the dataplane probes its ports.
func (n *kernelPodNet) create(ctx context.Context) error {
	for _, ns := range []string{n.dp, n.router} {
		if err := runTool(ctx, "ip", "netns", "add", ns); err != nil {
			return err
		}
		n.createdNetns = append(n.createdNetns, ns)
		// No IPv6: router solicitations and DAD would reach the
		// dataplane as foreign frames and drops.
		for _, c := range [][]string{
			{"sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"},
			{"sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"},
			{"ip", "link", "set", "lo", "up"},
		} {
			if err := runTool(ctx, append([]string{"ip", "netns", "exec", ns}, c...)...); err != nil {
				return err
			}
		}
	}
	if n.driver == "tap" {
		return nil // the dataplane creates the TAPs
	}
	for i := range n.host {
		if err := runTool(ctx, "ip", "-n", n.dp, "link", "add", n.host[i], "type", "veth",
			"peer", "name", n.pod[i], "netns", n.router); err != nil {
			return err
		}
		if err := n.offloadsOff(ctx, n.dp, n.host[i]); err != nil {
			return err
		}
		if err := runTool(ctx, "ip", "-n", n.dp, "link", "set", n.host[i], "up"); err != nil {
			return err
		}
	}
	return nil
}

// offloadsOff turns off what the fast path does not do (complete partial
// checksums, segment) and GRO, which would hand the kernel or the PMD
// coalesced frames, as the agent does for pods (agent/attach).
func (n *kernelPodNet) offloadsOff(ctx context.Context, ns, dev string) error {
	return runTool(ctx, "ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off")
}

// plumb makes the router pod: its two interfaces (TAPs moved in first),
// addresses, forwarding, routes and the gateway's MAC.
func (n *kernelPodNet) plumb(ctx context.Context) error {
	in := func(args ...string) error {
		return runTool(ctx, append([]string{"ip", "netns", "exec", n.router}, args...)...)
	}
	if n.driver == "tap" {
		for _, p := range n.pod {
			if err := runTool(ctx, "ip", "-n", n.dp, "link", "set", p, "netns", n.router); err != nil {
				return err
			}
		}
	}
	macs, ips, gws := [2]string{RouterMAC1, RouterMAC2}, [2]string{RouterIP1, RouterIP2}, [2]string{RouterGW1, RouterGW2}
	for i, p := range n.pod {
		if err := in("ip", "link", "set", p, "address", macs[i]); err != nil {
			return err
		}
		if err := in("ip", "addr", "add", ips[i]+"/24", "dev", p); err != nil {
			return err
		}
		if err := n.offloadsOff(ctx, n.router, p); err != nil {
			return err
		}
		if err := in("ip", "link", "set", p, "up"); err != nil {
			return err
		}
		// The gateway's MAC is static: no ARP exchange at the start of
		// every trial (its first frames would be lost) and none in the
		// measurement.
		if err := in("ip", "neigh", "replace", gws[i], "lladdr", VRouterMAC, "dev", p, "nud", "permanent"); err != nil {
			return err
		}
	}
	for _, c := range [][]string{
		{"sysctl", "-qw", "net.ipv4.ip_forward=1"},
		// The way back to the generator is via P1: the reverse path
		// check passes, but the row does not depend on it.
		{"sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"},
		{"ip", "route", "add", "10.0.0.0/24", "via", RouterGW1, "dev", n.pod[0]},
		{"ip", "route", "add", "16.0.0.0/8", "via", RouterGW2, "dev", n.pod[1]},
	} {
		if err := in(c...); err != nil {
			return err
		}
	}
	return nil
}

// remove deletes the veths (their XDP programs with them, should the
// dataplane not have detached them) and the namespaces; everything is
// tried, the first error returned.
func (n *kernelPodNet) remove() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	if n.driver != "tap" && len(n.createdNetns) > 0 {
		for _, h := range n.host {
			if err := runTool(ctx, "ip", "-n", n.dp, "link", "del", h); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
				errs = append(errs, err)
			}
		}
	}
	for _, ns := range n.createdNetns {
		if err := runTool(ctx, "ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	n.createdNetns = nil
	return errors.Join(errs...)
}

func (k KernelPod) devargs(n *kernelPodNet, i int) string {
	switch k.Driver {
	case "af_xdp":
		// A veth has one queue.
		return fmt.Sprintf("net_af_xdp%d,iface=%s,start_queue=0,queue_count=1", i, n.host[i])
	case "af_packet":
		return fmt.Sprintf("net_af_packet%d,iface=%s,qpairs=1", i, n.host[i])
	}
	return fmt.Sprintf("net_tap%d,iface=%s", i, n.pod[i])
}

func (k KernelPod) config(env *Env, n *kernelPodNet, a, b string) string {
	var c strings.Builder
	fmt.Fprintf(&c, `eal:
  lcores: "0,%d"
  no_huge: false
  file_prefix: fil-suite-kp-%d
  extra: ["--single-file-segments"]
tables: {next_hops: 64, vrfs: 4, mbufs: 16383}
vrouter_mac: "%s"
idle_sleep_max_us: 0
api: {socket: %s}
ports:
  - {name: a, devargs: "net_memif0,role=server,id=0,socket-abstract=no,socket=%s", kind: pod, vrf: 1, mac: "%s", ipv4: [%s]}
  - {name: p1, devargs: "%s", kind: pod, vrf: 1, mac: "%s", ipv4: [%s]}
  # The router pod forwards the generator's frames: P2 must let them in
  # with their source, 10.0.0.1, besides the pod's own address.
  - {name: p2, devargs: "%s", kind: pod, vrf: 2, mac: "%s", ipv4: [%s, %s]}
  - {name: b, devargs: "net_memif1,role=server,id=0,socket-abstract=no,socket=%s", kind: pod, vrf: 2, mac: "%s", ipv4: [%s]}
next_hops:
  - {id: 1, type: interface, port: a, dst_mac: "%s"}
  - {id: 2, type: interface, port: b, dst_mac: "%s"}
  - {id: 3, type: interface, port: p1, dst_mac: "%s"}
  - {id: 4, type: interface, port: p2, dst_mac: "%s"}
routes:
  - {vrf: 1, prefix: %s/32, next_hop: 1}
  - {vrf: 2, prefix: 10.0.0.0/24, next_hop: 4}
`, env.DUTCPU, os.Getpid(), VRouterMAC, filepath.Join(env.Dir, "dp.sock"),
		a, GenMACA, PodA,
		k.devargs(n, 0), RouterMAC1, RouterIP1,
		k.devargs(n, 1), RouterMAC2, RouterIP2, PodA,
		b, GenMACB, PodB,
		GenMACA, GenMACB, RouterMAC1, RouterMAC2, PodA)
	// VRF 1 sends the far side's routes into the router pod, VRF 2 (where
	// it sends them back) to the generator's port B.
	for i := range max(k.Routes, 1) {
		fmt.Fprintf(&c, "  - {vrf: 1, prefix: %s, next_hop: 3}\n  - {vrf: 2, prefix: %s, next_hop: 2}\n", routePrefix(i), routePrefix(i))
	}
	return c.String()
}

func (k KernelPod) Start(ctx context.Context, env *Env, a, b string) (stop func() error, err error) {
	switch k.Driver {
	case "af_xdp", "af_packet", "tap":
	default:
		return nil, fmt.Errorf("kernel pod row: unknown driver %q (af_xdp, af_packet, tap)", k.Driver)
	}
	if k.Routes > 1000 {
		return nil, errors.New("kernel pod row: at most 1000 routes (they go in the YAML file)")
	}
	if env.DUTCPU < 1 {
		return nil, errors.New("kernel pod rows: the device's CPU must not be 0 (the EAL puts its main lcore there before the suite moves it)")
	}
	n := newKernelPodNet(k.Driver)
	fail := func(p *process, err error) (func() error, error) {
		if p != nil {
			_ = p.stop()
			err = fmt.Errorf("%w\n%s", err, p.tail())
		}
		if rerr := n.remove(); rerr != nil {
			err = fmt.Errorf("%w (and cleaning up: %v)", err, rerr)
		}
		return nil, err
	}
	if err := n.create(ctx); err != nil {
		return fail(nil, err)
	}
	conf := filepath.Join(env.Dir, k.Name()+".yaml")
	if err := os.WriteFile(conf, []byte(k.config(env, n, a, b)), 0o644); err != nil {
		return fail(nil, err)
	}
	// ip netns exec execs the dataplane: the process stopped is the
	// dataplane itself.
	p, err := startProcess(env, k.Name(), "ip", "netns", "exec", n.dp, env.Dataplane, "--config", conf)
	if err != nil {
		return fail(nil, err)
	}
	if err := waitSockets(ctx, p, a, b, filepath.Join(env.Dir, "dp.sock")); err != nil {
		return fail(p, err)
	}
	// As the filament rows: every thread of the dataplane on the device's
	// CPU (the kernel's softirqs forward the router pod's packets where
	// they run).
	if err := cpupin.Process(p.cmd.Process.Pid, env.DUTCPU); err != nil {
		return fail(p, err)
	}
	if err := n.plumb(ctx); err != nil {
		return fail(p, err)
	}
	return func() error {
		// The dataplane first: it detaches its XDP programs and closes
		// its TAPs; then the interfaces and namespaces go.
		err := errors.Join(p.stop(), n.remove())
		// As for the filament rows: left behind by a dataplane that crashed.
		_ = os.RemoveAll(fmt.Sprintf("/var/run/dpdk/fil-suite-kp-%d", os.Getpid()))
		return err
	}, nil
}
