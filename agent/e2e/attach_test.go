package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filament-net/filament/agent/attach"
	"github.com/filament-net/filament/agent/cniapi"
	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/internal/testnet"
)

// modePod is a pod attached in a given mode.
type modePod struct {
	pod
	mode   string
	socket string // vhost-user, memif: the socketPath of the result
}

// addMode runs ADD with the plugin's "mode".
func (n *node) addMode(t *testing.T, tn *testnet.Net, name, mode string) modePod {
	t.Helper()
	ns := tn.NS(name)
	p := modePod{pod: pod{ns: ns, netns: "/var/run/netns/" + ns, cid: "cid-" + ns}, mode: mode}
	out, err := n.cniConf(t, "ADD", p.cid, p.netns, "eth0", n.modeConf(mode))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Interfaces []struct{ Name, Mac, Sandbox, SocketPath string }
		IPs        []struct{ Address, Gateway string }
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("ADD result %s: %v", out, err)
	}
	if len(res.IPs) != 1 || len(res.Interfaces) != 1 || res.Interfaces[0].Sandbox != p.netns {
		t.Fatalf("ADD %s result %s", mode, out)
	}
	p.result = out
	p.ip = netip.MustParsePrefix(res.IPs[0].Address).Addr()
	p.mac = res.Interfaces[0].Mac
	p.socket = res.Interfaces[0].SocketPath
	t.Cleanup(func() { _, _ = n.cniConf(t, "DEL", p.cid, p.netns, "eth0", n.modeConf(mode)) })
	return p
}

// modeConf is the network configuration's filament section with mode.
func (n *node) modeConf(mode string) map[string]any {
	return map[string]any{"filament": map[string]any{"socket": n.cniSock, "poll-timeout": 2, "poll-retries": 5,
		"log-file": filepath.Join(n.dir, "cni.log"), "log-level": "debug", "mode": mode}}
}

// testpmd is dpdk-testpmd run as a DPDK pod: interactive, so that the test
// can restart its port as a pod's application would.
type testpmd struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	done   chan struct{}
	err    error // after done
	prefix string
	log    string
}

// startTestpmd runs testpmd in icmpecho mode on one vdev, in the pod's
// netns, pinned to CPU 0 (the dataplane's worker has CPU 1), with its own
// hugepage file prefix (from name, at most 7 bytes); everything is removed
// at cleanup.
func startTestpmd(t *testing.T, tn *testnet.Net, dir, ns, name, vdev string) *testpmd {
	t.Helper()
	if !hugepagesFree() {
		t.Fatal("DPDK pods (testpmd over vhost-user or memif) need hugepages: run scripts/hugepages.sh as root (make test does)")
	}
	tp := &testpmd{prefix: tn.Name("tp" + name), log: filepath.Join(dir, "testpmd-"+name+".log"), done: make(chan struct{})}
	f, err := os.Create(tp.log)
	if err != nil {
		t.Fatal(err)
	}
	// stdbuf: testpmd's output goes to a file, line by line.
	tp.cmd = exec.Command("ip", "netns", "exec", ns, "stdbuf", "-oL", "dpdk-testpmd",
		"--lcores=0@0,1@0", "--no-pci", "--file-prefix", tp.prefix, "--single-file-segments", "-m", "256",
		"--log-level", "*:notice", "--vdev="+vdev,
		"--", "-i", "--forward-mode=icmpecho", "--total-num-mbufs=2048", "--auto-start")
	tp.cmd.Stdout, tp.cmd.Stderr = f, f
	if tp.stdin, err = tp.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := tp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { tp.err = tp.cmd.Wait(); f.Close(); close(tp.done) }()
	t.Cleanup(func() {
		_ = tp.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-tp.done:
		case <-time.After(10 * time.Second):
			_ = tp.cmd.Process.Kill()
			<-tp.done
		}
		files, _ := filepath.Glob("/dev/hugepages/" + tp.prefix + "*")
		for _, f := range files {
			_ = os.Remove(f)
		}
		_ = os.RemoveAll("/var/run/dpdk/" + tp.prefix)
		if t.Failed() {
			b, _ := os.ReadFile(tp.log)
			t.Logf("---- %s ----\n%s", tp.log, tail(string(b), 30))
		}
	})
	return tp
}

// exited reports whether testpmd is gone, and how.
func (tp *testpmd) exited() (bool, error) {
	select {
	case <-tp.done:
		return true, tp.err
	default:
		return false, nil
	}
}

// send types testpmd commands.
func (tp *testpmd) send(t *testing.T, cmds ...string) {
	t.Helper()
	select {
	case <-tp.done:
		b, _ := os.ReadFile(tp.log)
		t.Fatalf("testpmd (%s) exited: %v\n%s", tp.prefix, tp.err, tail(string(b), 40))
	default:
	}
	if _, err := io.WriteString(tp.stdin, strings.Join(cmds, "\n")+"\n"); err != nil {
		t.Fatalf("testpmd: %v", err)
	}
}

// pings sends n pings and reports whether all came back from to.
func pings(tn *testnet.Net, from pod, to netip.Addr, n int) (bool, string) {
	out, err := tn.Output(from.ns, "ping", "-c", fmt.Sprint(n), "-i", "0.2", "-W", "1", to.String())
	return err == nil && strings.Contains(out, fmt.Sprintf("%d received", n)) &&
		strings.Contains(out, "from "+to.String()+":"), out
}

// waitPing polls until n pings in a row come back, and returns how long it
// took.
func waitPing(t *testing.T, tn *testnet.Net, from pod, to netip.Addr, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var out string
	for time.Since(start) < d {
		var ok bool
		if ok, out = pings(tn, from, to, 1); ok {
			if ok, out = pings(tn, from, to, 3); ok {
				return time.Since(start)
			}
		}
		time.Sleep(100 * time.Millisecond) // an interval between tries: a failed ping already waited 1 s
	}
	t.Fatalf("no ping %v -> %v within %v:\n%s", from.ip, to, d, out)
	return 0
}

func offloadsOff(t *testing.T, tn *testnet.Net, ns string) {
	t.Helper()
	out := tn.MustIn(ns, "ethtool", "-k", "eth0")
	for _, want := range []string{"tx-checksumming: off", "tcp-segmentation-offload: off"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("%s eth0: %q missing in ethtool -k:\n%s", ns, want, out)
		}
	}
	if on, err := attach.ActiveOffloads("/var/run/netns/"+ns, "eth0"); err != nil || len(on) > 0 {
		t.Errorf("%s eth0: offloads still on: %v %v", ns, on, err)
	}
}

func podPortDevargs(t *testing.T, n *node) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range dump(t, dial(t, n)).Ports {
		if p.Kind == pb.PortKind_PORT_KIND_POD {
			out[p.Name] = p.Devargs
		}
	}
	return out
}

// TestAttachModes: one node with a pod of each mode. The tap pod and the
// veth pod ping each other; DPDK pods (testpmd in icmpecho mode) on
// vhost-user and memif answer the veth pod's pings; the dataplane is
// killed and started again: the TAP comes back into its pod, vhost-user
// reconnects by itself, memif once the pod restarts its port; DEL removes
// each mode's interface, socket directory and port.
func TestAttachModes(t *testing.T) {
	if !hugepagesFree() {
		t.Fatal("DPDK pods (testpmd over vhost-user or memif) need hugepages: run scripts/hugepages.sh as root (make test does)")
	}
	tn := testnet.New(t)
	nodeNS, other := tn.NS("n1"), tn.NS("x")
	tn.Veth(tn.Name("f1"), nodeNS, tn.Name("f1x"), other)
	n := startNode(t, tn, 1, nodeNS, tn.Name("f1"), "vxlan", nil)
	// The pods' socket directories under the test's directory.
	sockBase := filepath.Join(n.dir, "pods")
	if err := n.agent.stop(); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(n.agentCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.agentCfg, append(cfg, "attach: {socket_dir: "+sockBase+"}\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	n.startAgent(t)

	v := n.add(t, tn, "v1")
	tp := n.addMode(t, tn, "t1", cniapi.ModeTap)
	vu := n.addMode(t, tn, "d1", cniapi.ModeVhostUser)
	mf := n.addMode(t, tn, "m1", cniapi.ModeMemif)

	// The dataplane's ports, by mode.
	devargs := podPortDevargs(t, n)
	for _, c := range []struct {
		p    modePod
		want string
	}{
		{tp, "net_tap_" + hostIf(tp.pod) + ",iface=" + hostIf(tp.pod)},
		{vu, "net_vhost_" + hostIf(vu.pod) + ",iface=" + vu.socket + ",client=1,queues=1"},
		{mf, "net_memif_" + hostIf(mf.pod) + ",role=server,id=0,socket=" + mf.socket + ",socket-abstract=no"},
	} {
		if got := devargs[hostIf(c.p.pod)]; got != c.want {
			t.Errorf("%s port: devargs %q, want %q", c.p.mode, got, c.want)
		}
	}
	if len(devargs) != 4 {
		t.Errorf("pod ports %v, want 4", devargs)
	}

	// TAP: the pod's eth0, configured like a veth's pod end.
	if tp.socket != "" {
		t.Errorf("tap result has a socketPath %q", tp.socket)
	}
	out := tn.MustIn(tp.ns, "ip", "-o", "link", "show", "eth0")
	if !strings.Contains(out, "mtu 1450") || !strings.Contains(out, tp.mac) {
		t.Errorf("tap pod eth0: %s, want mtu 1450 and %s", out, tp.mac)
	}
	if out := tn.MustIn(tp.ns, "ip", "route", "show", "default"); !strings.Contains(out, "via 10.20.0.1 dev eth0") {
		t.Errorf("tap pod default route: %s", out)
	}
	offloadsOff(t, tn, tp.ns)
	offloadsOff(t, tn, v.ns)
	ping(t, tn, tp.pod, v.ip)
	ping(t, tn, v, tp.ip)

	// vhost-user and memif: the socket directory and the pod's file.
	for _, p := range []modePod{vu, mf} {
		dir := filepath.Dir(p.socket)
		if filepath.Dir(dir) != sockBase || filepath.Base(dir) != hostIf(p.pod) {
			t.Errorf("%s socket %s: not in %s/<host name>/", p.mode, p.socket, sockBase)
		}
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o777 {
			t.Errorf("%s socket directory %s: %v %v, want mode 0777", p.mode, dir, fi.Mode(), err)
		}
		pi, err := attach.ReadPodInterface(dir)
		if err != nil {
			t.Fatal(err)
		}
		if pi.Mode != p.mode || pi.Socket != p.socket || pi.MAC != p.mac || pi.Address.Addr() != p.ip ||
			pi.Address.Bits() != 16 || pi.Gateway.String() != "10.20.0.1" || pi.MTU != 1450 || pi.ContainerID != p.cid {
			t.Errorf("%s: %s says %+v", p.mode, attach.InterfaceFile, pi)
		}
		if out, err := tn.Output(p.ns, "ip", "-o", "link", "show"); err != nil || strings.Count(out, "\n") != 1 {
			t.Errorf("%s pod's netns has more than lo: %s %v", p.mode, out, err)
		}
	}
	if fi, err := os.Stat(mf.socket); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o666 {
		t.Errorf("memif socket %s: %v %v, want a socket of mode 0666", mf.socket, fi, err)
	}

	// The DPDK pods: testpmd answers ARP and pings with the MAC the agent chose.
	startTestpmd(t, tn, n.dir, vu.ns, "vu", fmt.Sprintf("net_virtio_user0,path=%s,server=1,queues=1,mac=%s", vu.socket, vu.mac))
	mfVdev := fmt.Sprintf("net_memif0,role=client,socket=%s,socket-abstract=no,mac=%s", mf.socket, mf.mac)
	mfPMD := startTestpmd(t, tn, n.dir, mf.ns, "mf", mfVdev)
	t.Logf("vhost-user pod answers after %v", waitPing(t, tn, v, vu.ip, 30*time.Second))
	t.Logf("memif pod answers after %v", waitPing(t, tn, v, mf.ip, 30*time.Second))

	for _, p := range []modePod{tp, vu, mf} {
		if _, err := n.cniConf(t, "CHECK", p.cid, p.netns, "eth0", map[string]any{"prevResult": p.result,
			"filament": n.modeConf(p.mode)["filament"]}); err != nil {
			t.Errorf("CHECK %s: %v", p.mode, err)
		}
	}

	// The dataplane dies and comes back with only its own config.
	if err := n.dataplane.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-n.dataplane.done
	waitFor(t, "the TAP gone with the dataplane", 10*time.Second, func() bool {
		return tn.In(tp.ns, "ip", "link", "show", "eth0") != nil
	})
	waitFor(t, "STATUS not ready", 20*time.Second, func() bool {
		_, err := n.cni(t, "STATUS", "", "", "")
		return err != nil
	})
	restart := time.Now()
	n.dataplane = start(t, filepath.Join(n.dir, "dataplane-2.log"), n.dpArgs...)
	waitFor(t, "STATUS ready again", 60*time.Second, func() bool {
		_, err := n.cni(t, "STATUS", "", "", "")
		return err == nil
	})
	ready := time.Since(restart)
	t.Logf("agent ready %v after the dataplane's start", ready)
	ping(t, tn, v, tp.ip)
	ping(t, tn, tp.pod, v.ip)
	offloadsOff(t, tn, tp.ns)
	vuBack := waitPing(t, tn, v, vu.ip, 30*time.Second)
	t.Logf("vhost-user pod answers again %v after the agent's resync (%v after the dataplane's start)", vuBack, ready+vuBack)
	// DPDK 22.11's memif client connects only when its port starts: the
	// pod's application restarts its port when it sees the link down. Its
	// client may also have crashed when the server went (its interrupt
	// thread unmaps the rings the forwarding lcore polls): the pod then
	// restarts, as kubelet would restart its container.
	if gone, err := mfPMD.exited(); gone {
		t.Logf("memif testpmd died with the dataplane (%v): DPDK 22.11's memif client races its disconnect; started again", err)
		startTestpmd(t, tn, n.dir, mf.ns, "mf2", mfVdev)
	} else {
		mfPMD.send(t, "stop", "port stop 0", "port start 0", "start")
	}
	mfBack := waitPing(t, tn, v, mf.ip, 30*time.Second)
	t.Logf("memif pod answers again %v after the agent's resync and its port's (or its own) restart", mfBack)

	// DEL: each mode's interface, directory and port go.
	for _, p := range []modePod{tp, vu, mf} {
		if _, err := n.cniConf(t, "DEL", p.cid, p.netns, "eth0", n.modeConf(p.mode)); err != nil {
			t.Fatalf("DEL %s: %v", p.mode, err)
		}
	}
	if err := tn.In(tp.ns, "ip", "link", "show", "eth0"); err == nil {
		t.Errorf("tap pod's eth0 survived DEL")
	}
	for _, p := range []modePod{vu, mf} {
		if _, err := os.Stat(filepath.Dir(p.socket)); !os.IsNotExist(err) {
			t.Errorf("%s socket directory after DEL: %v", p.mode, err)
		}
	}
	s := dump(t, dial(t, n))
	if got := podPorts(s); len(got) != 1 || got[0] != hostIf(v) {
		t.Errorf("pod ports after DEL: %v, want only the veth pod's", got)
	}
	for _, p := range []modePod{tp, vu, mf} {
		if hasRoute(s, 1, p.ip.String()+"/32") {
			t.Errorf("%s pod's route after DEL", p.mode)
		}
	}
	ping(t, tn, v, netip.MustParseAddr("10.20.0.1"))
}
