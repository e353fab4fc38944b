// Package e2e runs whole nodes: the real filament-dataplane, filament-agent
// and filament-cni binaries, network namespaces as nodes and pods, a veth as
// the fabric; pods are added and deleted by running filament-cni as kubelet
// does (environment and network configuration on stdin). Needs root.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/dpdk/apiclient"
	"github.com/filament-net/filament/internal/testnet"
)

var binDir string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("agent/e2e: skipped, needs root (network namespaces, DPDK)")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "filament-e2e-bin")
	if err != nil {
		panic(err)
	}
	binDir = dir
	cmd := exec.Command("go", "build", "-o", dir+"/",
		"github.com/filament-net/filament/dpdk/cmd/filament-dataplane",
		"github.com/filament-net/filament/agent/cmd/filament-agent",
		"github.com/filament-net/filament/cni/cmd/filament-cni")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	rc := m.Run()
	os.RemoveAll(dir)
	os.Exit(rc)
}

// node is one node: a namespace with a dataplane and an agent in it.
type node struct {
	name, ns        string
	dir             string // run directory: configs, sockets, state, logs
	dpSock, cniSock string
	agentPID        int
	agentCfg        string
	underlay        string
}

func hugepagesFree() bool {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "HugePages_Free:" {
			n, _ := strconv.Atoi(f[1])
			return n >= 256
		}
	}
	return false
}

// start runs a process by PID and stops it (SIGTERM, then SIGKILL) in
// t.Cleanup; its output goes to log.
func start(t *testing.T, log string, args ...string) *exec.Cmd {
	t.Helper()
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(log)
			t.Logf("---- %s ----\n%s", log, tail(string(b), 40))
		}
	})
	return cmd
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type peer struct {
	name, underlay, block string
}

// startNode starts node idx's dataplane (fabric port on fabricIf, in ns)
// and agent (network "red": 10.20.0.0/16, this node's block
// 10.20.<idx>.0/24, VNI 100, label 100).
func startNode(t *testing.T, tn *testnet.Net, idx int, ns, fabricIf, encap string, peers []peer) *node {
	t.Helper()
	n := &node{name: fmt.Sprintf("node%d", idx), ns: ns, dir: t.TempDir(), underlay: fmt.Sprintf("192.168.100.%d", idx)}
	n.dpSock = filepath.Join(n.dir, "dp.sock")
	n.cniSock = filepath.Join(n.dir, "cni.sock")
	noHuge := !hugepagesFree()
	dpCfg := fmt.Sprintf(`eal:
  lcores: "0,1"
  no_huge: %v
  memory_mb: 512
  file_prefix: %s
tables: {next_hops: 1024, vrfs: 16, fib4_routes: 1024, fib4_tbl8s: 64, mbufs: 8191}
idle_sleep_max_us: 200
ports:
  - name: fabric
    devargs: net_af_packet0,iface=%s
    kind: fabric
    mac: "02:fe:c0:a8:64:%02x"
    ipv4: [%s]
    mtu: 1500
`, noHuge, tn.Name(fmt.Sprintf("dp%d", idx)), fabricIf, idx, n.underlay)
	dpPath := filepath.Join(n.dir, "dataplane.yaml")
	if err := os.WriteFile(dpPath, []byte(dpCfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll("/var/run/dpdk/" + tn.Name(fmt.Sprintf("dp%d", idx))) })
	start(t, filepath.Join(n.dir, "dataplane.log"), "ip", "netns", "exec", ns,
		filepath.Join(binDir, "filament-dataplane"), "--config", dpPath, "--socket", n.dpSock)

	var ps strings.Builder
	for _, p := range peers {
		fmt.Fprintf(&ps, "  - name: %s\n    underlay_ip: %s\n    pod_blocks: {red: %s}\n", p.name, p.underlay, p.block)
	}
	agentCfg := fmt.Sprintf(`node: %s
sockets: {dataplane: %s, cni: %s}
state_dir: %s
fabric: {underlay_ip: %s, mtu: 1500}
networks:
  - name: red
    vrf: 1
    vni: 100
    label: 100
    subnet: 10.20.0.0/16
    gateway: 10.20.0.1
    encap: %s
    pod_block: 10.20.%d.0/24
peers:
%s`, n.name, n.dpSock, n.cniSock, filepath.Join(n.dir, "state"), n.underlay, encap, idx, ps.String())
	if len(peers) == 0 {
		agentCfg = strings.Replace(agentCfg, "peers:\n", "", 1)
	}
	n.agentCfg = filepath.Join(n.dir, "agent.yaml")
	if err := os.WriteFile(n.agentCfg, []byte(agentCfg), 0o600); err != nil {
		t.Fatal(err)
	}
	n.startAgent(t)
	return n
}

func (n *node) startAgent(t *testing.T) {
	t.Helper()
	cmd := start(t, filepath.Join(n.dir, fmt.Sprintf("agent-%d.log", time.Now().UnixNano())), "ip", "netns", "exec", n.ns,
		filepath.Join(binDir, "filament-agent"), "--config", n.agentCfg, "--log-level", "debug")
	n.agentPID = cmd.Process.Pid
	// ready: STATUS answers success
	waitFor(t, n.name+"'s agent ready", 60*time.Second, func() bool {
		_, err := n.cni(t, "STATUS", "", "", "")
		return err == nil
	})
}

// cni runs filament-cni as kubelet does.
func (n *node) cni(t *testing.T, command, cid, netns, ifName string) ([]byte, error) {
	t.Helper()
	conf, _ := json.Marshal(map[string]any{
		"cniVersion": "1.1.0", "name": "filament-net", "type": "filament-cni",
		"filament": map[string]any{"socket": n.cniSock, "poll-timeout": 2, "poll-retries": 5,
			"log-file": filepath.Join(n.dir, "cni.log"), "log-level": "debug"},
	})
	cmd := exec.Command(filepath.Join(binDir, "filament-cni"))
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND=" + command, "CNI_CONTAINERID=" + cid,
		"CNI_NETNS=" + netns, "CNI_IFNAME=" + ifName, "CNI_PATH=" + binDir,
		"CNI_ARGS=K8S_POD_NAMESPACE=default;K8S_POD_NAME=" + cid}
	cmd.Stdin = bytes.NewReader(conf)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %v: %s %s", command, cid, err, out.String(), errb.String())
	}
	return out.Bytes(), nil
}

type pod struct {
	ns, netns, cid string
	ip             netip.Addr
	mac            string
}

func (n *node) add(t *testing.T, tn *testnet.Net, name string) pod {
	t.Helper()
	ns := tn.NS(name)
	p := pod{ns: ns, netns: "/var/run/netns/" + ns, cid: "cid-" + ns}
	out, err := n.cni(t, "ADD", p.cid, p.netns, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Interfaces []struct{ Name, Mac, Sandbox string }
		IPs        []struct{ Address, Gateway string }
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("ADD result %s: %v", out, err)
	}
	if len(res.IPs) != 1 || len(res.Interfaces) != 1 {
		t.Fatalf("ADD result %s", out)
	}
	p.ip = netip.MustParsePrefix(res.IPs[0].Address).Addr()
	p.mac = res.Interfaces[0].Mac
	t.Cleanup(func() { _, _ = n.cni(t, "DEL", p.cid, p.netns, "eth0") })
	return p
}

func ping(t *testing.T, tn *testnet.Net, from pod, to netip.Addr) {
	t.Helper()
	var out string
	var err error
	for try := 0; try < 3; try++ { // the first packets may wait for ARP
		out, err = tn.Output(from.ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", to.String())
		if err == nil && strings.Contains(out, "3 received") {
			return
		}
	}
	t.Fatalf("ping %v from %s (%v): %v\n%s", to, from.ns, from.ip, err, out)
}

func dial(t *testing.T, n *node) *apiclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := apiclient.Dial(ctx, n.dpSock, apiclient.WithName("e2e"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func dump(t *testing.T, c *apiclient.Client) *apiclient.State {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hasRoute(s *apiclient.State, vrf uint32, prefix string) bool {
	for _, r := range s.Routes {
		if r.Vrf == vrf && r.Prefix == prefix {
			return true
		}
	}
	return false
}

func podPorts(s *apiclient.State) []string {
	var out []string
	for _, p := range s.Ports {
		if p.Kind == pb.PortKind_PORT_KIND_POD {
			out = append(out, p.Name)
		}
	}
	return out
}

// TestOneNode: two pods on one node reach each other and the gateway; ADD
// is idempotent; DEL removes the interface, the port, the route and the
// address.
func TestOneNode(t *testing.T) {
	tn := testnet.New(t)
	nodeNS, other := tn.NS("n1"), tn.NS("x")
	tn.Veth(tn.Name("f1"), nodeNS, tn.Name("f1x"), other)
	n := startNode(t, tn, 1, nodeNS, tn.Name("f1"), "vxlan", nil)
	c := dial(t, n)

	s := dump(t, c)
	if !hasRoute(s, 1, "10.20.0.1/32") {
		t.Fatalf("gateway route missing: %v", s.Routes)
	}

	p1 := n.add(t, tn, "p1")
	p2 := n.add(t, tn, "p2")
	if p1.ip == p2.ip || !netip.MustParsePrefix("10.20.1.0/24").Contains(p1.ip) {
		t.Fatalf("addresses %v %v", p1.ip, p2.ip)
	}
	ping(t, tn, p1, p2.ip)
	ping(t, tn, p2, p1.ip)
	ping(t, tn, p1, netip.MustParseAddr("10.20.0.1"))

	// MTU and offloads in the pod
	out := tn.MustIn(p1.ns, "ip", "-o", "link", "show", "eth0")
	if !strings.Contains(out, "mtu 1450") {
		t.Errorf("pod eth0: %s, want mtu 1450", out)
	}

	// ADD again: same answer, nothing new in the dataplane.
	before := dump(t, c)
	again, err := n.cni(t, "ADD", p1.cid, p1.netns, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(again), p1.ip.String()+"/16") {
		t.Errorf("second ADD gave %s, want %v", again, p1.ip)
	}
	after := dump(t, c)
	if !before.Equal(after) {
		t.Errorf("second ADD changed the dataplane:\n%v\n%v", before, after)
	}
	ping(t, tn, p1, p2.ip)

	// CHECK
	if _, err := n.cni(t, "CHECK", p1.cid, p1.netns, "eth0"); err != nil {
		t.Logf("CHECK: %v", err) // the plugin needs prevResult: covered when run through libcni
	}

	// DEL p2: its interface, port, next-hop and route go; p1 keeps working.
	if _, err := n.cni(t, "DEL", p2.cid, p2.netns, "eth0"); err != nil {
		t.Fatal(err)
	}
	s = dump(t, c)
	if hasRoute(s, 1, p2.ip.String()+"/32") || len(podPorts(s)) != 1 {
		t.Errorf("after DEL: routes %v ports %v", s.Routes, podPorts(s))
	}
	if out, err := tn.Output(p2.ns, "ip", "link", "show", "eth0"); err == nil {
		t.Errorf("eth0 still in %s after DEL: %s", p2.ns, out)
	}
	// DEL again is fine.
	if _, err := n.cni(t, "DEL", p2.cid, p2.netns, "eth0"); err != nil {
		t.Fatal(err)
	}
	// The address is free again: the next pod gets it.
	p3 := n.add(t, tn, "p3")
	if p3.ip != p2.ip {
		t.Errorf("p3 got %v, want p2's released %v", p3.ip, p2.ip)
	}
	ping(t, tn, p3, p1.ip)
}

// TestTwoNodes: one pod per node, ping across VXLAN and MPLSoUDP.
func TestTwoNodes(t *testing.T) {
	for _, encap := range []string{"vxlan", "mplsoudp"} {
		t.Run(encap, func(t *testing.T) {
			tn := testnet.New(t)
			ns1, ns2 := tn.NS("n1"), tn.NS("n2")
			tn.Veth(tn.Name("f1"), ns1, tn.Name("f2"), ns2)
			n1 := startNode(t, tn, 1, ns1, tn.Name("f1"), encap, []peer{{"node2", "192.168.100.2", "10.20.2.0/24"}})
			n2 := startNode(t, tn, 2, ns2, tn.Name("f2"), encap, []peer{{"node1", "192.168.100.1", "10.20.1.0/24"}})
			p1 := n1.add(t, tn, "p1")
			p2 := n2.add(t, tn, "p2")
			ping(t, tn, p1, p2.ip)
			ping(t, tn, p2, p1.ip)
			want := "mtu 1450"
			if encap == "mplsoudp" {
				want = "mtu 1468"
			}
			if out := tn.MustIn(p2.ns, "ip", "-o", "link", "show", "eth0"); !strings.Contains(out, want) {
				t.Errorf("pod eth0: %s, want %s", out, want)
			}
		})
	}
}
