package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"

	"github.com/filament-net/filament/internal/testnet"
)

// TestCNIConfig: the agent publishes the CNI configuration only while it
// serves ADD (agent/cniconf): written once it is ready, a conflist libcni
// reads and whose STATUS reaches this agent; removed at SIGTERM; kept
// through a dataplane outage shorter than the grace, removed after it,
// back when the dataplane is; absent while a new agent has no dataplane.
// /healthz and /readyz follow the same states.
func TestCNIConfig(t *testing.T) {
	tn := testnet.New(t)
	nodeNS, other := tn.NS("n1"), tn.NS("x")
	tn.Veth(tn.Name("f1"), nodeNS, tn.Name("f1x"), other)
	n := startNode(t, tn, 1, nodeNS, tn.Name("f1"), "vxlan", nil)
	conf := filepath.Join(n.dir, "net.d", "10-filament.conflist")
	present := func() bool { _, err := os.Stat(conf); return err == nil }
	ready := func() bool { _, err := n.cni(t, "STATUS", "", "", ""); return err == nil }
	probe := func(path string) string {
		out, _ := tn.Output(n.ns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "http://127.0.0.1:9464"+path)
		return strings.TrimSpace(out)
	}

	// Ready (startNode waited for STATUS): the file is there within a poll.
	waitFor(t, "the CNI configuration", 5*time.Second, present)
	list, err := libcni.ConfListFromFile(conf)
	if err != nil {
		t.Fatalf("libcni: %v", err)
	}
	if list.Name != "filament" || len(list.Plugins) != 1 || list.Plugins[0].Network.Type != "filament-cni" {
		t.Fatalf("conflist: name %q, plugins %d", list.Name, len(list.Plugins))
	}
	// STATUS through libcni with the file's configuration reaches this
	// agent (its socket); only the plugin's log goes to the test's directory.
	var raw map[string]any
	if err := json.Unmarshal(list.Bytes, &raw); err != nil {
		t.Fatal(err)
	}
	plugin := raw["plugins"].([]any)[0].(map[string]any)["filament"].(map[string]any)
	if plugin["socket"] != n.cniSock {
		t.Errorf("conflist socket %v, want the agent's %s", plugin["socket"], n.cniSock)
	}
	plugin["log-file"] = filepath.Join(n.dir, "cni.log")
	b, _ := json.Marshal(raw)
	status, err := libcni.ConfListFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := libcni.NewCNIConfig([]string{binDir}, nil).GetStatusNetworkList(context.Background(), status); err != nil {
		t.Errorf("libcni STATUS with the published configuration: %v", err)
	}
	if h, r := probe("/healthz"), probe("/readyz"); h != "200" || r != "200" {
		t.Errorf("ready agent: /healthz %s, /readyz %s; want 200 both", h, r)
	}

	// SIGTERM: gone by the time the agent has exited.
	if err := n.agent.stop(); err != nil {
		t.Fatalf("agent exit: %v", err)
	}
	if present() {
		t.Fatal("the CNI configuration outlived the agent's SIGTERM")
	}

	// A dataplane outage: kept through the grace, then removed.
	const grace = 2 * time.Second
	n.agentFlags = append(n.agentFlags, "--cni-conf-grace", grace.String())
	n.startAgent(t)
	waitFor(t, "the CNI configuration again", 5*time.Second, present)
	if err := n.dataplane.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-n.dataplane.done
	waitFor(t, "STATUS not ready", 20*time.Second, func() bool { return !ready() })
	notReady := time.Now()
	if !present() {
		t.Error("the CNI configuration went at once, not after the grace")
	}
	if r := probe("/readyz"); r != "503" {
		t.Errorf("agent without a dataplane: /readyz %s, want 503", r)
	}
	if h := probe("/healthz"); h != "200" {
		t.Errorf("agent without a dataplane: /healthz %s, want 200", h)
	}
	waitFor(t, "the CNI configuration removed", grace+5*time.Second, func() bool { return !present() })
	t.Logf("removed %v after STATUS first said not ready (grace %v)", time.Since(notReady).Round(time.Millisecond), grace)

	// The dataplane back: the file is back, and whenever it is, STATUS
	// is ready.
	n.dataplane = start(t, filepath.Join(n.dir, "dataplane-2.log"), n.dpArgs...)
	waitFor(t, "the CNI configuration back", 60*time.Second, present)
	if !ready() {
		t.Error("the CNI configuration is back but STATUS is not ready")
	}

	// A new agent with no dataplane: no file while it is not ready.
	if err := n.agent.stop(); err != nil {
		t.Fatalf("agent exit: %v", err)
	}
	if err := n.dataplane.stop(); err != nil {
		t.Fatalf("dataplane exit: %v", err)
	}
	args := append([]string{"ip", "netns", "exec", n.ns, filepath.Join(binDir, "filament-agent"), "--config", n.agentCfg}, n.agentFlags...)
	n.agent = start(t, filepath.Join(n.dir, "agent-nodp.log"), args...)
	waitFor(t, "the new agent's CNI socket answering", 10*time.Second, func() bool {
		_, err := n.cni(t, "STATUS", "", "", "")
		return err != nil && strings.Contains(err.Error(), `"code": 50`)
	})
	for range 10 { // two seconds of polls by the agent: still nothing
		if present() {
			t.Fatal("the CNI configuration was written by an agent that is not ready")
		}
		time.Sleep(200 * time.Millisecond)
	}
	n.dataplane = start(t, filepath.Join(n.dir, "dataplane-3.log"), n.dpArgs...)
	waitFor(t, "the CNI configuration once ready", 60*time.Second, present)
	if !ready() {
		t.Error("the CNI configuration appeared before STATUS was ready")
	}
}

// TestCNIConfigHandover: with --cni-conf-keep-on-exit (the agent's
// DaemonSet), an agent's restart never leaves the runtime without the
// CNI configuration: the stopping agent leaves it, the next keeps it
// while it gets ready and writes its own, STATUS ready again.
func TestCNIConfigHandover(t *testing.T) {
	tn := testnet.New(t)
	nodeNS, other := tn.NS("n1"), tn.NS("x")
	tn.Veth(tn.Name("f1"), nodeNS, tn.Name("f1x"), other)
	n := startNode(t, tn, 1, nodeNS, tn.Name("f1"), "vxlan", nil)
	conf := filepath.Join(n.dir, "net.d", "10-filament.conflist")
	present := func() bool { _, err := os.Stat(conf); return err == nil }
	if err := n.agent.stop(); err != nil {
		t.Fatalf("agent exit: %v", err)
	}
	n.agentFlags = append(n.agentFlags, "--cni-conf-keep-on-exit")
	n.startAgent(t)
	waitFor(t, "the CNI configuration", 5*time.Second, present)
	first, err := os.Stat(conf)
	if err != nil {
		t.Fatal(err)
	}

	// Sampled every 5 ms from before the SIGTERM until the next agent is
	// ready (startAgent waits for STATUS) and has written its own file.
	var absent int
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				if !present() {
					absent++
				}
			}
		}
	}()
	if err := n.agent.stop(); err != nil {
		t.Fatalf("agent exit: %v", err)
	}
	if !present() {
		t.Fatal("the CNI configuration went with the agent's SIGTERM despite --cni-conf-keep-on-exit")
	}
	n.startAgent(t)
	waitFor(t, "the new agent's own CNI configuration", 5*time.Second, func() bool {
		fi, err := os.Stat(conf)
		return err == nil && !os.SameFile(fi, first) // written again: a new file renamed over it
	})
	close(stop)
	<-sampled
	if absent != 0 {
		t.Errorf("the CNI configuration was absent in %d samples across the agent's restart", absent)
	}
	if _, err := libcni.ConfListFromFile(conf); err != nil {
		t.Errorf("libcni: %v", err)
	}
}
