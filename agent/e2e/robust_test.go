package e2e

// Robustness: the agent and the dataplane killed (SIGKILL) and restarted
// under traffic, 50 concurrent ADDs and DELs, bad input. Each case asserts
// on bytes, counters and states, and that nothing leaked.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/dpdk/apiclient"
	"github.com/filament-net/filament/internal/testnet"
)

// kill ends a process with SIGKILL and waits for it.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

// nodeState is what the agent persisted: addresses given and attachments.
func nodeState(t *testing.T, n *node) (allocations, attachments int) {
	t.Helper()
	var ip struct {
		Allocations []json.RawMessage `json:"allocations"`
	}
	var ag struct {
		Attachments []json.RawMessage `json:"attachments"`
	}
	for f, v := range map[string]any{"ipam.json": &ip, "agent.json": &ag} {
		b, err := os.ReadFile(filepath.Join(n.dir, "state", f))
		if os.IsNotExist(err) {
			continue // nothing saved yet
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	return len(ip.Allocations), len(ag.Attachments)
}

// hostEnds lists the agent's veth host ends in the node.
func hostEnds(t *testing.T, tn *testnet.Net, n *node) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(tn.MustIn(n.ns, "ip", "-o", "link", "show"), "\n") {
		if f := strings.Fields(l); len(f) > 1 && strings.HasPrefix(f[1], "fil") {
			out = append(out, strings.TrimSuffix(strings.Split(f[1], "@")[0], ":"))
		}
	}
	return out
}

// podObjects counts the pod ports, interface next-hops and pod routes
// (inside a node's block) in a dataplane dump.
func podObjects(s *apiclient.State) (ports, nextHops, routes int) {
	ports = len(podPorts(s))
	for _, h := range s.NextHops {
		if h.Type == pb.NextHopType_NEXT_HOP_TYPE_INTERFACE {
			nextHops++
		}
	}
	for _, r := range s.Routes {
		if p, err := netip.ParsePrefix(r.Prefix); err == nil && p.Bits() == 32 && p.Addr() != netip.MustParseAddr("10.20.0.1") {
			routes++
		}
	}
	return
}

// assertClean: no attachment left on the node, anywhere.
func assertClean(t *testing.T, tn *testnet.Net, n *node, c *apiclient.Client) {
	t.Helper()
	if h := hostEnds(t, tn, n); len(h) > 0 {
		t.Errorf("%s: host ends left: %v", n.name, h)
	}
	if p, h, r := podObjects(dump(t, c)); p+h+r > 0 {
		t.Errorf("%s: dataplane keeps %d pod ports, %d interface next-hops, %d pod routes", n.name, p, h, r)
	}
	if al, at := nodeState(t, n); al+at > 0 {
		t.Errorf("%s: state keeps %d addresses and %d attachments", n.name, al, at)
	}
}

// cniErrorOf is the CNI error the plugin printed (code 0: none).
func cniErrorOf(out []byte) (code int, msg string) {
	var e struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	}
	_ = json.Unmarshal(out, &e)
	return e.Code, e.Msg
}

// cniRaw runs filament-cni with stdin as given.
func (n *node) cniRaw(command, cid, netns, ifName string, stdin []byte) ([]byte, error) {
	cmd := exec.Command(filepath.Join(binDir, "filament-cni"))
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND=" + command, "CNI_CONTAINERID=" + cid,
		"CNI_NETNS=" + netns, "CNI_IFNAME=" + ifName, "CNI_PATH=" + binDir}
	cmd.Stdin = bytes.NewReader(stdin)
	return cmd.Output()
}

// udpStream is a numbered UDP stream from one pod to another.
type udpStream struct {
	send, recv *helper
	latest     int // the receiver's last "got N"
}

func startUDPStream(t *testing.T, from, to pod, every time.Duration) *udpStream {
	t.Helper()
	s := &udpStream{recv: runHelper(t, to.ns, "udp-recv", "0.0.0.0:5300")}
	s.send = runHelper(t, from.ns, "udp-send", to.ip.String()+":5300", every.String())
	s.waitMore(t, 100)
	return s
}

// waitMore polls the receiver until it counted n more datagrams than the
// latest count read so far (reading what is already there first).
func (s *udpStream) waitMore(t *testing.T, n int) {
	t.Helper()
	drain := true
	for drain {
		select {
		case l, ok := <-s.recv.lines:
			if !ok {
				t.Fatalf("udp receiver ended: %s", s.recv.stderr())
			}
			s.parse(l)
		default:
			drain = false
		}
	}
	target := s.latest + n
	for s.latest < target {
		s.parse(s.recv.result(t, "got ", 20*time.Second))
	}
}

func (s *udpStream) parse(l string) {
	if v, ok := strings.CutPrefix(l, "got "); ok {
		s.latest, _ = strconv.Atoi(v)
	}
}

// stop ends the stream and returns how many were sent and received.
func (s *udpStream) stop(t *testing.T) (sent, got int) {
	t.Helper()
	s.send.stdin.Close()
	l := s.recv.result(t, "done ", 10*time.Second)
	var dup int
	if _, err := fmt.Sscanf(l, "done sent=%d got=%d dup=%d", &sent, &got, &dup); err != nil {
		t.Fatalf("udp receiver: %q: %v", l, err)
	}
	return sent, got
}

// TestAgentKill: node1's agent is killed (SIGKILL) while a pod of node1
// streams UDP to a pod of node2 (500 datagrams/s), a peer leaves its
// configuration while it is down, and a new agent starts: not one
// datagram lost, the dataplane untouched by the death, and the gone
// peer's tunnel and route swept by the resync while the rest stays.
func TestAgentKill(t *testing.T) {
	tn := testnet.New(t)
	ns1, ns2 := tn.NS("n1"), tn.NS("n2")
	tn.Veth(tn.Name("f1"), ns1, tn.Name("f2"), ns2)
	n1 := startNode(t, tn, 1, ns1, tn.Name("f1"), "vxlan",
		[]peer{{"node2", "192.168.100.2", "10.20.2.0/24"}, {"node9", "192.168.100.9", "10.20.9.0/24"}})
	n2 := startNode(t, tn, 2, ns2, tn.Name("f2"), "vxlan", []peer{{"node1", "192.168.100.1", "10.20.1.0/24"}})
	c1 := dial(t, n1)
	p1, p2 := n1.add(t, tn, "p1"), n2.add(t, tn, "p2")
	ping(t, tn, p1, p2.ip)
	if s := dump(t, c1); !hasRoute(s, 1, "10.20.9.0/24") {
		t.Fatalf("no route to node9's block: %v", s.Routes)
	}

	stream := startUDPStream(t, p1, p2, 2*time.Millisecond)
	before := dump(t, c1)
	n1.agent.kill(t)
	if after := dump(t, c1); !before.Equal(after) {
		t.Fatalf("the agent's death changed the dataplane:\nbefore %v\nafter  %v", before, after)
	}
	stream.waitMore(t, 100) // forwarding with no agent at all

	cfg, err := os.ReadFile(n1.agentCfg)
	if err != nil {
		t.Fatal(err)
	}
	node9 := "  - name: node9\n    underlay_ip: 192.168.100.9\n    pod_blocks: {red: 10.20.9.0/24}\n"
	if !strings.Contains(string(cfg), node9) {
		t.Fatalf("agent config lacks node9:\n%s", cfg)
	}
	if err := os.WriteFile(n1.agentCfg, []byte(strings.Replace(string(cfg), node9, "", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	restart := time.Now()
	n1.startAgent(t)
	t.Logf("agent ready %v after its start", time.Since(restart).Round(time.Millisecond))
	stream.waitMore(t, 300) // and on after the resync
	sent, got := stream.stop(t)
	t.Logf("UDP across the agent's SIGKILL and restart: sent %d, received %d", sent, got)
	if sent == 0 || got != sent {
		t.Errorf("UDP across the agent's SIGKILL and restart: sent %d, received %d", sent, got)
	}

	s := dump(t, c1)
	if hasRoute(s, 1, "10.20.9.0/24") {
		t.Errorf("the resync kept the route to node9, gone from the config")
	}
	for _, h := range s.NextHops {
		if h.TunnelDst == "192.168.100.9" {
			t.Errorf("the resync kept the tunnel to node9: %v", h)
		}
	}
	if !hasRoute(s, 1, "10.20.2.0/24") || !hasRoute(s, 1, p1.ip.String()+"/32") || len(podPorts(s)) != 1 {
		t.Errorf("the resync lost node2's route or p1: %v %v", s.Routes, podPorts(s))
	}
	ping(t, tn, p2, p1.ip)
}

// TestDataplaneKill: the dataplane is killed (SIGKILL) and the test,
// playing the supervisor, starts it again: the pods keep their interface
// and address throughout, and traffic resumes within 5 s of the new
// process starting, with no manual step (the agent reconnects and
// resyncs).
func TestDataplaneKill(t *testing.T) {
	tn := testnet.New(t)
	nodeNS, other := tn.NS("n1"), tn.NS("x")
	tn.Veth(tn.Name("f1"), nodeNS, tn.Name("f1x"), other)
	n := startNode(t, tn, 1, nodeNS, tn.Name("f1"), "vxlan", nil)
	p1, p2 := n.add(t, tn, "p1"), n.add(t, tn, "p2")
	ping(t, tn, p1, p2.ip)
	podIf := func(p pod) string {
		out, err := tn.Output(p.ns, "ip", "-o", "-4", "addr", "show", "dev", "eth0")
		if err != nil {
			return err.Error()
		}
		return out
	}
	want := map[string]string{p1.ns: podIf(p1), p2.ns: podIf(p2)}
	for _, p := range []pod{p1, p2} {
		if !strings.Contains(want[p.ns], p.ip.String()+"/16") {
			t.Fatalf("%s before: %s", p.ns, want[p.ns])
		}
	}

	n.dataplane.kill(t)
	waitFor(t, "STATUS not ready", 10*time.Second, func() bool {
		_, err := n.cni(t, "STATUS", "", "", "")
		return err != nil
	})
	for _, p := range []pod{p1, p2} {
		if got := podIf(p); got != want[p.ns] {
			t.Errorf("%s without a dataplane: %s, want %s", p.ns, got, want[p.ns])
		}
	}

	started := time.Now()
	n.dataplane = start(t, filepath.Join(n.dir, "dataplane-2.log"), n.dpArgs...)
	var resumed time.Duration
	waitFor(t, "traffic again", 30*time.Second, func() bool {
		err := tn.In(p1.ns, "ping", "-c", "1", "-W", "0.2", p2.ip.String())
		resumed = time.Since(started)
		return err == nil
	})
	t.Logf("traffic resumed %v after the new dataplane process started", resumed.Round(10*time.Millisecond))
	if resumed > 5*time.Second {
		t.Errorf("traffic resumed %v after the dataplane restarted, want within 5s", resumed)
	}
	for _, p := range []pod{p1, p2} {
		if got := podIf(p); got != want[p.ns] {
			t.Errorf("%s after: %s, want %s", p.ns, got, want[p.ns])
		}
	}
	s := dump(t, dial(t, n))
	if !hasRoute(s, 1, p1.ip.String()+"/32") || !hasRoute(s, 1, p2.ip.String()+"/32") || len(podPorts(s)) != 2 {
		t.Errorf("after the dataplane's restart: %v %v", s.Routes, podPorts(s))
	}
	ping(t, tn, p2, p1.ip)
}

// TestConcurrentCNI: 50 pods (25 per node: a dataplane has at most 32
// ports, DPDK's RTE_MAX_ETHPORTS) added by 50 filament-cni processes at
// once, then deleted the same way, twice: every ADD succeeds with a
// distinct address, and after the DELs nothing is left: no host end, no
// pod port, next-hop or route, no address or attachment in the state, no
// interface in the pods, no netns the test did not make.
func TestConcurrentCNI(t *testing.T) {
	const perNode = 25
	tn := testnet.New(t)
	ns1, ns2 := tn.NS("n1"), tn.NS("n2")
	tn.Veth(tn.Name("f1"), ns1, tn.Name("f2"), ns2)
	nodes := []*node{
		startNode(t, tn, 1, ns1, tn.Name("f1"), "vxlan", nil),
		startNode(t, tn, 2, ns2, tn.Name("f2"), "vxlan", nil),
	}
	clients := []*apiclient.Client{dial(t, nodes[0]), dial(t, nodes[1])}
	type podRef struct {
		n     *node
		ns    string
		netns string
	}
	var pods []podRef
	for i := range 2 * perNode {
		ns := tn.NS(fmt.Sprintf("p%d", i))
		pods = append(pods, podRef{nodes[i%2], ns, "/var/run/netns/" + ns})
	}
	netnsBefore := tn.Must("ip", "netns", "list")

	for round := 1; round <= 2; round++ {
		cid := func(i int) string { return fmt.Sprintf("cid-r%d-%d", round, i) }
		addrs := make([]string, len(pods))
		errs := make([]error, len(pods))
		var wg sync.WaitGroup
		start := time.Now()
		for i, p := range pods {
			wg.Go(func() {
				out, err := p.n.cni(t, "ADD", cid(i), p.netns, "eth0")
				errs[i] = err
				var res struct{ IPs []struct{ Address string } }
				if err == nil && json.Unmarshal(out, &res) == nil && len(res.IPs) == 1 {
					addrs[i] = res.IPs[0].Address
				}
			})
		}
		wg.Wait()
		took := time.Since(start)
		t.Logf("round %d: %d concurrent ADDs in %v", round, len(pods), took.Round(time.Millisecond))
		seen := map[string]int{}
		for i := range pods {
			if errs[i] != nil || addrs[i] == "" {
				t.Fatalf("round %d: ADD %d: %v (address %q)", round, i, errs[i], addrs[i])
			}
			if j, dup := seen[addrs[i]]; dup {
				t.Fatalf("round %d: pods %d and %d both got %s", round, j, i, addrs[i])
			}
			seen[addrs[i]] = i
		}
		for k, n := range nodes {
			if p, h, r := podObjects(dump(t, clients[k])); p != perNode || h != perNode || r != perNode {
				t.Errorf("round %d: %s has %d pod ports, %d next-hops, %d routes, want %d", round, n.name, p, h, r, perNode)
			}
			if al, at := nodeState(t, n); al != perNode || at != perNode {
				t.Errorf("round %d: %s's state has %d addresses, %d attachments, want %d", round, n.name, al, at, perNode)
			}
		}
		// Same node, first and last pod of node1: the pods forward.
		ping(t, tn, pod{ns: pods[0].ns}, netip.MustParsePrefix(addrs[len(pods)-2]).Addr())

		start = time.Now()
		for i, p := range pods {
			wg.Go(func() { _, errs[i] = p.n.cni(t, "DEL", cid(i), p.netns, "eth0") })
		}
		wg.Wait()
		t.Logf("round %d: %d concurrent DELs in %v", round, len(pods), time.Since(start).Round(time.Millisecond))
		for i := range pods {
			if errs[i] != nil {
				t.Fatalf("round %d: DEL %d: %v", round, i, errs[i])
			}
		}
		for k, n := range nodes {
			assertClean(t, tn, n, clients[k])
		}
		for _, p := range pods {
			if out, err := tn.Output(p.ns, "ip", "-o", "link", "show", "eth0"); err == nil {
				t.Errorf("round %d: %s keeps eth0: %s", round, p.ns, out)
			}
		}
		if after := tn.Must("ip", "netns", "list"); after != netnsBefore {
			t.Errorf("round %d: netns list changed:\nbefore %s\nafter  %s", round, netnsBefore, after)
		}
	}

	// A DEL racing the ADD of the same container: whichever wins, a
	// final DEL leaves nothing.
	var wg sync.WaitGroup
	race := pods[:10]
	for i, p := range race {
		cid := fmt.Sprintf("cid-race-%d", i)
		wg.Go(func() { _, _ = p.n.cni(t, "ADD", cid, p.netns, "eth0") })
		wg.Go(func() { _, _ = p.n.cni(t, "DEL", cid, p.netns, "eth0") })
	}
	wg.Wait()
	for i, p := range race {
		if _, err := p.n.cni(t, "DEL", fmt.Sprintf("cid-race-%d", i), p.netns, "eth0"); err != nil {
			t.Errorf("DEL after the race: %v", err)
		}
	}
	for k, n := range nodes {
		assertClean(t, tn, n, clients[k])
	}
}

// TestBadInput: each refusal has its CNI error code and leaves nothing
// behind; the agent keeps serving.
func TestBadInput(t *testing.T) {
	tn := testnet.New(t)
	nodeNS, other := tn.NS("n1"), tn.NS("x")
	tn.Veth(tn.Name("f1"), nodeNS, tn.Name("f1x"), other)
	n := startNode(t, tn, 1, nodeNS, tn.Name("f1"), "vxlan", nil)
	c := dial(t, n)
	podNS := tn.NS("p")
	netns := "/var/run/netns/" + podNS
	podLinks := func() string { return tn.MustIn(podNS, "ip", "-o", "link", "show") }
	bare := podLinks()
	nothingLeft := func(t *testing.T) {
		t.Helper()
		assertClean(t, tn, n, c)
		if l := podLinks(); l != bare {
			t.Errorf("pod netns changed:\n%s", l)
		}
	}

	t.Run("malformed stdin", func(t *testing.T) {
		out, err := n.cniRaw("ADD", "c1", netns, "eth0", []byte(`{"cniVersion": "1.1.0", "name": `))
		if code, msg := cniErrorOf(out); err == nil || code != 6 {
			t.Errorf("ADD with malformed config: %v: code %d %q, want 6 (decoding failure)", err, code, msg)
		}
		nothingLeft(t)
	})

	t.Run("malformed request to the agent", func(t *testing.T) {
		hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", n.cniSock)
		}}, Timeout: 10 * time.Second}
		defer hc.CloseIdleConnections()
		for _, body := range []string{`{"version": "1", "containerID": `, "\x00\xff garbage", `[1, 2, 3]`} {
			r, err := hc.Post("http://agent/v1/cni/add", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatalf("POST %q: %v", body, err)
			}
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			var resp struct{ Error *struct{ Code int } }
			if err := json.Unmarshal(b, &resp); err != nil || resp.Error == nil || resp.Error.Code != 6 {
				t.Errorf("POST %q: HTTP %d %s, want a decoding failure (code 6)", body, r.StatusCode, b)
			}
		}
		if _, err := n.cni(t, "STATUS", "", "", ""); err != nil {
			t.Errorf("the agent stopped serving after malformed requests: %v", err)
		}
		nothingLeft(t)
	})

	t.Run("unknown netns", func(t *testing.T) {
		out, err := n.cni(t, "ADD", "c1", "/var/run/netns/"+tn.Name("nope"), "eth0")
		if code, msg := cniErrorOf(out); err == nil || code != 4 || !strings.Contains(msg, "netns not found") {
			t.Errorf("ADD into a missing netns: %v: code %d %q, want 4 (netns not found)", err, code, msg)
		}
		nothingLeft(t)
	})

	t.Run("ifname too long", func(t *testing.T) {
		out, err := n.cni(t, "ADD", "c1", netns, "eth0123456789abc") // 16 bytes
		if code, msg := cniErrorOf(out); err == nil || code != 4 || !strings.Contains(msg, "too long") {
			t.Errorf("ADD with a 16-byte ifname: %v: code %d %q, want 4 (too long)", err, code, msg)
		}
		nothingLeft(t)
	})

	t.Run("duplicate ADD", func(t *testing.T) {
		first, err := n.cni(t, "ADD", "c1", netns, "eth0")
		if err != nil {
			t.Fatal(err)
		}
		before := dump(t, c)
		again, err := n.cni(t, "ADD", "c1", netns, "eth0")
		if err != nil || !bytes.Equal(first, again) {
			t.Errorf("ADD again: %v\n%s\nwant\n%s", err, again, first)
		}
		if after := dump(t, c); !before.Equal(after) {
			t.Errorf("ADD again changed the dataplane")
		}
		links := podLinks()
		out, err := n.cni(t, "ADD", "c2", netns, "eth0")
		if code, msg := cniErrorOf(out); err == nil || code != 100 || !strings.Contains(msg, "has that interface") {
			t.Errorf("ADD of eth0 into the same netns for another container: %v: code %d %q, want 100", err, code, msg)
		}
		if al, at := nodeState(t, n); al != 1 || at != 1 {
			t.Errorf("after the refused ADD: %d addresses, %d attachments, want 1", al, at)
		}
		if h := hostEnds(t, tn, n); !slices.Equal(h, []string{hostIf(pod{cid: "c1"})}) {
			t.Errorf("host ends %v, want c1's only", h)
		}
		if after := dump(t, c); !before.Equal(after) {
			t.Errorf("the refused ADD changed the dataplane")
		}
		if l := podLinks(); l != links {
			t.Errorf("the refused ADD changed the pod:\n%s\nwant\n%s", l, links)
		}
		if _, err := n.cni(t, "DEL", "c1", netns, "eth0"); err != nil {
			t.Fatal(err)
		}
		nothingLeft(t)
	})

	t.Run("CHECK of a deleted interface, then DEL", func(t *testing.T) {
		out, err := n.cni(t, "ADD", "c3", netns, "eth0")
		if err != nil {
			t.Fatal(err)
		}
		tn.MustIn(podNS, "ip", "link", "del", "eth0") // the host end goes with it
		out, err = n.cniConf(t, "CHECK", "c3", netns, "eth0", map[string]any{"prevResult": json.RawMessage(out)})
		if code, msg := cniErrorOf(out); err == nil || code != 5 || !strings.Contains(err.Error(), "no interface eth0") {
			t.Errorf("CHECK of a deleted interface: %v: code %d %q, want 5 (no interface eth0)", err, code, msg)
		}
		if _, err := n.cni(t, "DEL", "c3", netns, "eth0"); err != nil {
			t.Fatal(err)
		}
		nothingLeft(t)
		if a := tn.MustIn(podNS, "ip", "-o", "-4", "addr"); strings.Contains(a, "10.20.") {
			t.Errorf("address left in the pod: %s", a)
		}
	})

	t.Run("agent down", func(t *testing.T) {
		n.agent.kill(t) // its socket file stays: connection refused
		fast := map[string]any{"filament": map[string]any{"socket": n.cniSock, "poll-timeout": 0.5, "poll-retries": 3,
			"log-file": filepath.Join(n.dir, "cni.log")}}
		budget := 1500 * time.Millisecond
		start := time.Now()
		out, err := n.cniConf(t, "ADD", "c4", netns, "eth0", fast)
		took := time.Since(start)
		t.Logf("ADD with the agent down: error after %v (poll-timeout x poll-retries %v)", took.Round(time.Millisecond), budget)
		if code, msg := cniErrorOf(out); err == nil || code != 11 || !strings.Contains(msg, "not running") {
			t.Errorf("ADD with the agent down: %v: code %d %q, want 11 (not running)", err, code, msg)
		}
		// Every attempt made (the last one's failure ends the call at
		// once, at 2 x poll-timeout), and never over the budget.
		if took < time.Second-100*time.Millisecond || took > budget+500*time.Millisecond {
			t.Errorf("ADD with the agent down answered after %v, want 1s..%v (poll-timeout x poll-retries + 0.5s)", took, budget+500*time.Millisecond)
		}
		if l := podLinks(); l != bare {
			t.Errorf("pod netns changed:\n%s", l)
		}
		if h := hostEnds(t, tn, n); len(h) > 0 {
			t.Errorf("host ends left: %v", h)
		}
		n.startAgent(t)
		nothingLeft(t)
	})
}
