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

	"github.com/filament-net/filament/agent/attach"
	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/dpdk/apiclient"
	"github.com/filament-net/filament/internal/testnet"
)

var binDir string

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" { // a traffic endpoint in a pod (helper_test.go)
		os.Exit(helperMain())
	}
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
		"github.com/filament-net/filament/cni/cmd/filament-cni",
		"github.com/filament-net/filament/kubemanager/cmd/filament-kube-manager")
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
	agent           *proc
	dataplane       *proc
	dpArgs          []string
	agentCfg        string
	underlay        string
	dual            bool // network red is dual stack: pods have ip6 too
	agentFlags      []string
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
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // after done
}

// stop sends SIGTERM and waits (SIGKILL after 15 s); it returns the exit error.
func (p *proc) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return p.err
}

func start(t *testing.T, log string, args ...string) *proc {
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
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.stop()
		if t.Failed() {
			b, _ := os.ReadFile(log)
			t.Logf("---- %s ----\n%s", log, tail(string(b), 40))
		}
	})
	return p
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
// 10.20.<idx>.0/24, VNI 100, label 100); agentExtra is appended to the
// agent's configuration.
func startNode(t *testing.T, tn *testnet.Net, idx int, ns, fabricIf, encap string, peers []peer, agentExtra ...string) *node {
	t.Helper()
	return startNodeWith(t, tn, nodeOpts{idx: idx, ns: ns, fabricIf: fabricIf, encap: encap, peers: peers}, agentExtra...)
}

// nodeOpts are startNode's arguments, and dual: network "red" is dual
// stack (subnet6 fd00:20::/64, this node's block fd00:20::<idx>:0/112,
// each peer's fd00:20::<its idx>:0/112, its idx read from its name
// "node<idx>"). underlay6: the fabric port has the IPv6
// address fd00:100::<idx> too, in the dataplane's and the agent's
// configurations, and each peer fd00:100::<its idx> (tunnels are IPv6).
type nodeOpts struct {
	idx                 int
	ns, fabricIf, encap string
	peers               []peer
	dual, underlay6     bool
	// kubeconfig: the agent runs in Kubernetes mode with it (no networks
	// or peers in its file: the API server's).
	kubeconfig string
}

func startNodeWith(t *testing.T, tn *testnet.Net, o nodeOpts, agentExtra ...string) *node {
	t.Helper()
	idx, ns, fabricIf, encap, peers := o.idx, o.ns, o.fabricIf, o.encap, o.peers
	n := &node{name: fmt.Sprintf("node%d", idx), ns: ns, dir: t.TempDir(), underlay: fmt.Sprintf("192.168.100.%d", idx), dual: o.dual}
	n.dpSock = filepath.Join(n.dir, "dp.sock")
	n.cniSock = filepath.Join(n.dir, "cni.sock")
	noHuge := !hugepagesFree()
	dpCfg := fmt.Sprintf(`eal:
  lcores: "0,1"
  no_huge: %v
  memory_mb: 512
  file_prefix: %s
tables: {next_hops: 1024, vrfs: 16, fib4_routes: 1024, fib4_tbl8s: 64, mbufs: 32767}
idle_sleep_max_us: 200
ports:
  - name: fabric
    devargs: net_af_packet0,iface=%s
    kind: fabric
    mac: "02:fe:c0:a8:64:%02x"
    ipv4: [%s]
    mtu: 1500
`, noHuge, tn.Name(fmt.Sprintf("dp%d", idx)), fabricIf, idx, n.underlay)
	if o.underlay6 {
		dpCfg += fmt.Sprintf("    ipv6: [\"fd00:100::%d\"]\n", idx)
	}
	dpPath := filepath.Join(n.dir, "dataplane.yaml")
	if err := os.WriteFile(dpPath, []byte(dpCfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll("/var/run/dpdk/" + tn.Name(fmt.Sprintf("dp%d", idx))) })
	n.dpArgs = []string{"ip", "netns", "exec", ns, filepath.Join(binDir, "filament-dataplane"), "--config", dpPath, "--socket", n.dpSock}
	n.dataplane = start(t, filepath.Join(n.dir, "dataplane.log"), n.dpArgs...)

	var ps strings.Builder
	for _, p := range peers {
		fmt.Fprintf(&ps, "  - name: %s\n    underlay_ip: %s\n    pod_blocks: {red: %s}\n", p.name, p.underlay, p.block)
		if o.underlay6 {
			fmt.Fprintf(&ps, "    underlay_ipv6: \"fd00:100::%s\"\n", strings.TrimPrefix(p.name, "node"))
		}
		if o.dual {
			fmt.Fprintf(&ps, "    pod_blocks6: {red: \"fd00:20::%s:0/112\"}\n", strings.TrimPrefix(p.name, "node"))
		}
	}
	dual := ""
	if o.dual {
		dual = fmt.Sprintf("    subnet6: \"fd00:20::/64\"\n    pod_block6: \"fd00:20::%d:0/112\"\n", idx)
	}
	fabric6 := ""
	if o.underlay6 {
		fabric6 = fmt.Sprintf(", underlay_ipv6: \"fd00:100::%d\"", idx)
	}
	agentCfg := fmt.Sprintf(`node: %s
sockets: {dataplane: %s, cni: %s}
state_dir: %s
fabric: {underlay_ip: %s%s, mtu: 1500}
metrics: {listen: "127.0.0.1:9464"}
networks:
  - name: red
    vrf: 1
    vni: 100
    label: 100
    subnet: 10.20.0.0/16
    gateway: 10.20.0.1
    encap: %s
    pod_block: 10.20.%d.0/24
%speers:
%s`, n.name, n.dpSock, n.cniSock, filepath.Join(n.dir, "state"), n.underlay, fabric6, encap, idx, dual, ps.String())
	if len(peers) == 0 {
		agentCfg = strings.Replace(agentCfg, "peers:\n", "", 1)
	}
	if o.kubeconfig != "" {
		agentCfg = agentCfg[:strings.Index(agentCfg, "networks:\n")] + "mode: kubernetes\n"
		n.agentFlags = []string{"--kubeconfig", o.kubeconfig, "--node-name", n.name}
	}
	// The CNI configuration in the node's directory, never the host's.
	n.agentFlags = append(n.agentFlags, "--cni-conf-dir", filepath.Join(n.dir, "net.d"))
	agentCfg += strings.Join(agentExtra, "")
	n.agentCfg = filepath.Join(n.dir, "agent.yaml")
	if err := os.WriteFile(n.agentCfg, []byte(agentCfg), 0o600); err != nil {
		t.Fatal(err)
	}
	n.startAgent(t)
	return n
}

func (n *node) startAgent(t *testing.T) {
	t.Helper()
	args := append([]string{"ip", "netns", "exec", n.ns, filepath.Join(binDir, "filament-agent"), "--config", n.agentCfg,
		"--log-level", "debug"}, n.agentFlags...)
	n.agent = start(t, filepath.Join(n.dir, fmt.Sprintf("agent-%d.log", time.Now().UnixNano())), args...)
	// ready: STATUS answers success
	waitFor(t, n.name+"'s agent ready", 60*time.Second, func() bool {
		_, err := n.cni(t, "STATUS", "", "", "")
		return err == nil
	})
}

// cni runs filament-cni as kubelet does.
func (n *node) cni(t *testing.T, command, cid, netns, ifName string) ([]byte, error) {
	return n.cniConf(t, command, cid, netns, ifName, nil)
}

// cniConf is cni with more keys in the network configuration (prevResult,
// cni.dev/valid-attachments).
func (n *node) cniConf(t *testing.T, command, cid, netns, ifName string, more map[string]any) ([]byte, error) {
	t.Helper()
	c := map[string]any{
		"cniVersion": "1.1.0", "name": "filament-net", "type": "filament-cni",
		"filament": map[string]any{"socket": n.cniSock, "poll-timeout": 2, "poll-retries": 5,
			"log-file": filepath.Join(n.dir, "cni.log"), "log-level": "debug"},
	}
	for k, v := range more {
		c[k] = v
	}
	conf, _ := json.Marshal(c)
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
	ip6            netip.Addr // on a dual-stack node
	mac            string
	result         json.RawMessage // ADD's stdout
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
	if want := map[bool]int{false: 1, true: 2}[n.dual]; len(res.IPs) != want || len(res.Interfaces) != 1 {
		t.Fatalf("ADD result %s: want %d IPs", out, want)
	}
	p.result = out
	p.ip = netip.MustParsePrefix(res.IPs[0].Address).Addr()
	if n.dual {
		p.ip6 = netip.MustParsePrefix(res.IPs[1].Address).Addr()
		if !p.ip.Is4() || !p.ip6.Is6() {
			t.Fatalf("ADD result %s: want an IPv4 address, then an IPv6 one", out)
		}
	}
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

	// Metrics, served in the node's namespace.
	metrics := tn.MustIn(nodeNS, "curl", "-sf", "http://127.0.0.1:9464/metrics")
	for _, want := range []string{
		"filament_agent_dataplane_ready 1",
		`filament_agent_attachments{network="red"} 2`,
		`filament_agent_ipam_allocated{family="ipv4",network="red"} 2`,
		`filament_agent_ipam_capacity{family="ipv4",network="red"} 254`,
		`filament_agent_cni_requests_total{code="0",command="add"} 2`,
		`filament_agent_resyncs_total{result="ok"} 1`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", metrics)
	}

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

	// CHECK: fine, then fails once the pod's address is gone.
	prev := map[string]any{"prevResult": p1.result}
	if _, err := n.cniConf(t, "CHECK", p1.cid, p1.netns, "eth0", prev); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	tn.MustIn(p1.ns, "ip", "addr", "flush", "dev", "eth0")
	if _, err := n.cniConf(t, "CHECK", p1.cid, p1.netns, "eth0", prev); err == nil || !strings.Contains(err.Error(), "does not have address") {
		t.Errorf("CHECK of a pod without its address: %v", err)
	}
	// ADD again repairs it.
	if _, err := n.cni(t, "ADD", p1.cid, p1.netns, "eth0"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.cniConf(t, "CHECK", p1.cid, p1.netns, "eth0", prev); err != nil {
		t.Errorf("CHECK after repair: %v", err)
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
	if out := tn.MustIn(nodeNS, "ip", "-o", "link", "show"); strings.Contains(out, hostIf(p2)) {
		t.Errorf("host end %s still in the node after DEL: %s", hostIf(p2), out)
	}
	for _, h := range s.NextHops {
		if h.Type == pb.NextHopType_NEXT_HOP_TYPE_INTERFACE && h.DstMac == p2.mac {
			t.Errorf("next-hop to p2 still there after DEL: %v", h)
		}
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

func hostIf(p pod) string { return attach.HostIfName(p.cid, "eth0") }

// TestTwoNodes: one pod per node, ping across VXLAN, MPLSoUDP and MPLSoGRE;
// the pods' MTU is the fabric's minus the encapsulation's overhead.
func TestTwoNodes(t *testing.T) {
	for _, encap := range []string{"vxlan", "mplsoudp", "mplsogre"} {
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
			// The ping went over the encapsulation asked for: node1's
			// one tunnel next-hop is of it (vxlan would carry it too).
			var tunnels []string
			for _, nh := range dump(t, dial(t, n1)).NextHops {
				if nh.Type == pb.NextHopType_NEXT_HOP_TYPE_TUNNEL {
					tunnels = append(tunnels, strings.ToLower(strings.TrimPrefix(nh.Encap.String(), "ENCAP_")))
				}
			}
			if len(tunnels) != 1 || tunnels[0] != encap {
				t.Errorf("node1's tunnel next-hops: %v, want one %s", tunnels, encap)
			}
			want := map[string]string{"vxlan": "mtu 1450", "mplsoudp": "mtu 1468", "mplsogre": "mtu 1472"}[encap]
			if out := tn.MustIn(p2.ns, "ip", "-o", "link", "show", "eth0"); !strings.Contains(out, want) {
				t.Errorf("pod eth0: %s, want %s", out, want)
			}
		})
	}
}

// TestRestart: the agent stops (SIGTERM: exit 0) without deleting anything,
// pods keep forwarding while it is away, and the new agent resyncs without
// a lost packet: what it owns and no longer wants is swept, what it does not
// own is left alone, its attachments are kept and can be deleted.
func TestRestart(t *testing.T) {
	tn := testnet.New(t)
	nodeNS, other := tn.NS("n1"), tn.NS("x")
	tn.Veth(tn.Name("f1"), nodeNS, tn.Name("f1x"), other)
	n := startNode(t, tn, 1, nodeNS, tn.Name("f1"), "vxlan", []peer{{"node9", "192.168.100.9", "10.20.9.0/24"}})
	c := dial(t, n)
	p1 := n.add(t, tn, "p1")
	p2 := n.add(t, tn, "p2")
	ping(t, tn, p1, p2.ip)
	if s := dump(t, c); !hasRoute(s, 1, "10.20.9.0/24") {
		t.Fatalf("no route to peer node9's block: %v", s.Routes)
	}

	// Not the agent's: next-hop 5 (below its range) and its route. The
	// agent's but stale: next-hop 1000 (in its range, 512..1023) and its
	// route, VNI 999 into the agent's VRF 1.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recv := pb.NextHopType_NEXT_HOP_TYPE_RECEIVE
	if _, err := c.ApplyBatch(ctx, (&apiclient.Batch{}).Create(
		&pb.NextHop{Id: 5, Type: recv}, &pb.Route{Vrf: 1, Prefix: "10.99.0.0/24", NextHop: 5},
		&pb.NextHop{Id: 1000, Type: recv}, &pb.Route{Vrf: 1, Prefix: "10.98.0.0/24", NextHop: 1000},
		&pb.VniMap{Vni: 999, Vrf: 1})); err != nil {
		t.Fatal(err)
	}
	before := dump(t, c)

	// A ping across the whole restart: not one packet lost.
	pingOut := make(chan string, 1)
	go func() {
		out, _ := tn.Output(p1.ns, "ping", "-c", "40", "-i", "0.1", "-W", "2", p2.ip.String())
		pingOut <- out
	}()
	time.Sleep(500 * time.Millisecond) // an interval: some pings before the agent goes
	if err := n.agent.stop(); err != nil {
		t.Fatalf("agent did not exit 0 on SIGTERM: %v", err)
	}
	if after := dump(t, c); !before.Equal(after) {
		t.Fatalf("the agent's exit changed the dataplane:\nbefore %v\nafter  %v", before, after)
	}
	// An ADD that died between the address and the attachment record.
	ipamFile := filepath.Join(n.dir, "state", "ipam.json")
	b, err := os.ReadFile(ipamFile)
	if err != nil {
		t.Fatal(err)
	}
	ghost := `"allocations": [
    {"network": "red", "key": {"containerID": "ghost", "ifName": "eth0"}, "address": "10.20.1.200"},`
	if err := os.WriteFile(ipamFile, []byte(strings.Replace(string(b), `"allocations": [`, ghost, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	// node9 leaves the configuration: its tunnel and route go in the sweep.
	cfg, err := os.ReadFile(n.agentCfg)
	if err != nil {
		t.Fatal(err)
	}
	head, _, _ := strings.Cut(string(cfg), "peers:\n")
	if err := os.WriteFile(n.agentCfg, []byte(head), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // an interval: pings flow with no agent at all
	n.startAgent(t)
	if b, _ := os.ReadFile(ipamFile); strings.Contains(string(b), "ghost") || !strings.Contains(string(b), p1.cid) {
		t.Errorf("after restart, ipam.json:\n%s", b)
	}
	out := <-pingOut
	if !strings.Contains(out, " 0% packet loss") {
		t.Errorf("ping across the restart lost packets:\n%s", out)
	}

	s := dump(t, c)
	has := func(id uint32) bool {
		for _, h := range s.NextHops {
			if h.Id == id {
				return true
			}
		}
		return false
	}
	if !has(5) || !hasRoute(s, 1, "10.99.0.0/24") {
		t.Errorf("the sweep removed what the agent does not own: %v %v", s.NextHops, s.Routes)
	}
	if has(1000) || hasRoute(s, 1, "10.98.0.0/24") {
		t.Errorf("the sweep kept the agent's stale next-hop 1000 and its route")
	}
	if hasRoute(s, 1, "10.20.9.0/24") {
		t.Errorf("the sweep kept the route to the removed peer's block")
	}
	for _, h := range s.NextHops {
		if h.TunnelDst == "192.168.100.9" {
			t.Errorf("the sweep kept the tunnel to the removed peer: %v", h)
		}
	}
	for _, v := range s.VNIs {
		if v.Vni == 999 {
			t.Errorf("the sweep kept VNI 999 in the agent's VRF")
		}
	}
	if !hasRoute(s, 1, p1.ip.String()+"/32") || !hasRoute(s, 1, p2.ip.String()+"/32") || len(podPorts(s)) != 2 {
		t.Errorf("pods lost in the resync: %v %v", s.Routes, podPorts(s))
	}
	ping(t, tn, p2, p1.ip)

	// The new agent knows the attachments: ADD gives the same address,
	// DEL removes them.
	out2, err := n.cni(t, "ADD", p1.cid, p1.netns, "eth0")
	if err != nil || !strings.Contains(string(out2), p1.ip.String()+"/16") {
		t.Errorf("ADD after restart: %v %s", err, out2)
	}
	if _, err := n.cni(t, "DEL", p2.cid, p2.netns, "eth0"); err != nil {
		t.Fatal(err)
	}
	if s := dump(t, c); hasRoute(s, 1, p2.ip.String()+"/32") || len(podPorts(s)) != 1 {
		t.Errorf("DEL after restart: %v %v", s.Routes, podPorts(s))
	}
}

// TestGC: GC removes the attachments of its CNI network that are not in
// the valid list.
func TestGC(t *testing.T) {
	tn := testnet.New(t)
	nodeNS, other := tn.NS("n1"), tn.NS("x")
	tn.Veth(tn.Name("f1"), nodeNS, tn.Name("f1x"), other)
	n := startNode(t, tn, 1, nodeNS, tn.Name("f1"), "vxlan", nil)
	c := dial(t, n)
	p1 := n.add(t, tn, "p1")
	p2 := n.add(t, tn, "p2")
	valid := map[string]any{"cni.dev/valid-attachments": []map[string]string{{"containerID": p1.cid, "ifname": "eth0"}}}
	if _, err := n.cniConf(t, "GC", "", "", "", valid); err != nil {
		t.Fatal(err)
	}
	s := dump(t, c)
	if !hasRoute(s, 1, p1.ip.String()+"/32") || hasRoute(s, 1, p2.ip.String()+"/32") || len(podPorts(s)) != 1 {
		t.Errorf("after GC: %v %v", s.Routes, podPorts(s))
	}
	if _, err := tn.Output(p2.ns, "ip", "link", "show", "eth0"); err == nil {
		t.Errorf("p2's eth0 survived GC")
	}
	ping(t, tn, p1, netip.MustParseAddr("10.20.0.1"))
}

// TestNotReady: without a dataplane the agent answers STATUS "not ready"
// and ADD "try again later".
func TestNotReady(t *testing.T) {
	tn := testnet.New(t)
	nodeNS := tn.NS("n1")
	n := &node{name: "node1", ns: nodeNS, dir: t.TempDir()}
	n.dpSock, n.cniSock = filepath.Join(n.dir, "dp.sock"), filepath.Join(n.dir, "cni.sock")
	n.agentCfg = filepath.Join(n.dir, "agent.yaml")
	cfg := fmt.Sprintf(`node: node1
sockets: {dataplane: %s, cni: %s}
state_dir: %s
fabric: {underlay_ip: 192.168.100.1}
networks: [{name: red, vrf: 1, vni: 100, subnet: 10.20.0.0/16, gateway: 10.20.0.1, pod_block: 10.20.1.0/24}]
`, n.dpSock, n.cniSock, filepath.Join(n.dir, "state"))
	if err := os.WriteFile(n.agentCfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	start(t, filepath.Join(n.dir, "agent.log"), "ip", "netns", "exec", n.ns,
		filepath.Join(binDir, "filament-agent"), "--config", n.agentCfg)
	waitFor(t, "the CNI socket", 10*time.Second, func() bool { _, err := os.Stat(n.cniSock); return err == nil })
	if fi, _ := os.Stat(n.cniSock); fi.Mode().Perm() != 0o600 {
		t.Errorf("CNI socket mode %v, want 0600", fi.Mode().Perm())
	}
	_, err := n.cni(t, "STATUS", "", "", "")
	if err == nil || !strings.Contains(err.Error(), `"code": 50`) {
		t.Errorf("STATUS without a dataplane: %v", err)
	}
	ns := tn.NS("p1")
	fast := map[string]any{"filament": map[string]any{"socket": n.cniSock, "poll-timeout": 0.5, "poll-retries": 1,
		"log-file": filepath.Join(n.dir, "cni.log")}}
	_, err = n.cniConf(t, "ADD", "c1", "/var/run/netns/"+ns, "eth0", fast)
	if err == nil || !strings.Contains(err.Error(), `"code": 11`) {
		t.Errorf("ADD without a dataplane: %v", err)
	}
}

// TestDataplaneRestart: the dataplane restarts with only its own config;
// the agent notices, resyncs, and the pods (whose veths outlived the
// dataplane) forward again.
func TestDataplaneRestart(t *testing.T) {
	tn := testnet.New(t)
	nodeNS, other := tn.NS("n1"), tn.NS("x")
	tn.Veth(tn.Name("f1"), nodeNS, tn.Name("f1x"), other)
	n := startNode(t, tn, 1, nodeNS, tn.Name("f1"), "vxlan", nil)
	p1 := n.add(t, tn, "p1")
	p2 := n.add(t, tn, "p2")
	p3 := n.add(t, tn, "p3")
	ping(t, tn, p1, p2.ip)

	if err := n.dataplane.stop(); err != nil {
		t.Fatalf("dataplane exit: %v", err)
	}
	// DEL succeeds without a dataplane (most likely before the agent's
	// check noticed it is gone: either way it must succeed).
	if _, err := n.cni(t, "DEL", p3.cid, p3.netns, "eth0"); err != nil {
		t.Fatalf("DEL without a dataplane: %v", err)
	}
	if _, err := tn.Output(p3.ns, "ip", "link", "show", "eth0"); err == nil {
		t.Errorf("p3's eth0 survived DEL")
	}
	waitFor(t, "STATUS not ready", 20*time.Second, func() bool {
		_, err := n.cni(t, "STATUS", "", "", "")
		return err != nil
	})
	n.dataplane = start(t, filepath.Join(n.dir, "dataplane-2.log"), n.dpArgs...)
	waitFor(t, "STATUS ready again", 60*time.Second, func() bool {
		_, err := n.cni(t, "STATUS", "", "", "")
		return err == nil
	})
	s := dump(t, dial(t, n))
	if !hasRoute(s, 1, p1.ip.String()+"/32") || !hasRoute(s, 1, p2.ip.String()+"/32") || len(podPorts(s)) != 2 {
		t.Fatalf("after the dataplane's restart: %v %v", s.Routes, podPorts(s))
	}
	ping(t, tn, p1, p2.ip)
	ping(t, tn, p2, netip.MustParseAddr("10.20.0.1"))
}

// TestDriverSwitch: pods attached with af_packet, then the agent restarts
// configured for af_xdp: their ports are recreated on the new driver (the
// devargs cannot be replaced in place) and forward again; a new pod gets
// af_xdp from the start.
func TestDriverSwitch(t *testing.T) {
	tn := testnet.New(t)
	nodeNS, other := tn.NS("n1"), tn.NS("x")
	tn.Veth(tn.Name("f1"), nodeNS, tn.Name("f1x"), other)
	n := startNode(t, tn, 1, nodeNS, tn.Name("f1"), "vxlan", nil)
	c := dial(t, n)
	p1 := n.add(t, tn, "p1")
	p2 := n.add(t, tn, "p2")
	ping(t, tn, p1, p2.ip)

	cfg, err := os.ReadFile(n.agentCfg)
	if err != nil {
		t.Fatal(err)
	}
	// switchTo restarts the agent with the veth driver and checks every pod
	// port uses it and whether the veths carry an XDP program.
	switchTo := func(driver, devargs string, xdp bool, pods ...pod) {
		t.Helper()
		if err := n.agent.stop(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(n.agentCfg, append(cfg, "attach:\n  veth: {driver: "+driver+"}\n"...), 0o600); err != nil {
			t.Fatal(err)
		}
		n.startAgent(t)
		for _, p := range dump(t, c).Ports {
			if p.Kind == pb.PortKind_PORT_KIND_POD && !strings.HasPrefix(p.Devargs, devargs) {
				t.Errorf("port %s: devargs %s, want %s", p.Name, p.Devargs, devargs)
			}
		}
		for _, p := range pods {
			out, _ := exec.Command("ip", "-n", nodeNS, "link", "show", hostIf(p)).CombinedOutput()
			if strings.Contains(string(out), "prog/xdp") != xdp {
				t.Fatalf("%s with %s: XDP program %v expected:\n%s", hostIf(p), driver, xdp, out)
			}
		}
	}
	switchTo("af_xdp", "net_af_xdp_", true, p1, p2)
	ping(t, tn, p1, p2.ip)
	p3 := n.add(t, tn, "p3")
	ping(t, tn, p3, p1.ip)
	ping(t, tn, p2, netip.MustParseAddr("10.20.0.1"))

	// And back: DPDK leaves its XDP program on each veth when the af_xdp
	// port closes; the agent removes it before the af_packet port comes.
	switchTo("af_packet", "net_af_packet", false, p1, p2, p3)
	ping(t, tn, p1, p2.ip)
	ping(t, tn, p3, p1.ip)
}
