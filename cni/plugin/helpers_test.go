package plugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filament-net/filament/agent/cniapi"
)

// pluginBin is the built filament-cni, in pluginDir (a CNI_PATH).
var pluginBin, pluginDir string

func TestMain(m *testing.M) {
	code, err := buildAndRun(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func buildAndRun(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "filament-cni-bin")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	pluginDir, pluginBin = dir, filepath.Join(dir, "filament-cni")
	cmd := exec.Command(goBin, "build", "-o", pluginBin, "github.com/filament-net/filament/cni/cmd/filament-cni")
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("building filament-cni: %v\n%s", err, out)
	}
	return m.Run(), nil
}

// shortDir is a temporary directory with a short path: a unix socket path
// has at most 107 bytes, and t.TempDir() paths carry the test's name.
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "fc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

type recorded struct {
	Path string
	Req  cniapi.Request
}

// fakeAgent speaks the cniapi contract (through cniapi.Handler, so every
// request the plugin sends is checked by Validate) and records requests.
type fakeAgent struct {
	Socket string // unix mode
	Addr   string // tcp mode: 127.0.0.1:port

	mu     sync.Mutex
	reqs   []recorded
	handle func(n int, path string, req *cniapi.Request) *cniapi.Response
}

func (a *fakeAgent) serve(ctx context.Context, path string, req *cniapi.Request) *cniapi.Response {
	a.mu.Lock()
	a.reqs = append(a.reqs, recorded{path, *req})
	n := len(a.reqs)
	h := a.handle
	a.mu.Unlock()
	if h != nil {
		if r := h(n, path, req); r != nil {
			return r
		}
	}
	return defaultAnswer(path, req)
}

func (a *fakeAgent) requests() []recorded {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]recorded(nil), a.reqs...)
}

// only returns the single recorded request, failing otherwise.
func (a *fakeAgent) only(t *testing.T, path string) cniapi.Request {
	t.Helper()
	rs := a.requests()
	if len(rs) != 1 || rs[0].Path != path {
		t.Fatalf("agent saw %d requests %v, want one %s", len(rs), paths(rs), path)
	}
	return rs[0].Req
}

func paths(rs []recorded) []string {
	var p []string
	for _, r := range rs {
		p = append(p, r.Path)
	}
	return p
}

// agentResult is what the fake agent attaches: an IPv4 and an IPv6 address.
func agentResult(req *cniapi.Request) *cniapi.Result {
	return &cniapi.Result{
		Interfaces: []cniapi.Interface{{Name: req.IfName, MAC: "02:fe:00:00:00:05", MTU: 1450, Sandbox: req.Netns}},
		IPs: []cniapi.IP{
			{Interface: 0, Address: netip.MustParsePrefix("10.1.0.5/24"), Gateway: netip.MustParseAddr("10.1.0.1")},
			{Interface: 0, Address: netip.MustParsePrefix("fd00:1::5/64"), Gateway: netip.MustParseAddr("fd00:1::1")},
		},
		Routes: []cniapi.Route{
			{Dst: netip.MustParsePrefix("0.0.0.0/0"), GW: netip.MustParseAddr("10.1.0.1")},
			{Dst: netip.MustParsePrefix("::/0")},
		},
	}
}

func defaultAnswer(path string, req *cniapi.Request) *cniapi.Response {
	switch path {
	case cniapi.PathAdd:
		return &cniapi.Response{Result: agentResult(req)}
	case cniapi.PathCheck:
		return &cniapi.Response{Result: req.Prev}
	}
	return &cniapi.Response{}
}

func startAgent(t *testing.T, network string, handle func(n int, path string, req *cniapi.Request) *cniapi.Response) *fakeAgent {
	t.Helper()
	a := &fakeAgent{handle: handle}
	var l net.Listener
	var err error
	if network == "unix" {
		a.Socket = filepath.Join(shortDir(t), "cni.sock")
		l, err = net.Listen("unix", a.Socket)
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			a.Addr = l.Addr().String()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: cniapi.Handler(a.serve)}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return a
}

// staleSocket is a unix socket file nobody listens on (an agent that died).
func staleSocket(t *testing.T) string {
	t.Helper()
	p := filepath.Join(shortDir(t), "cni.sock")
	l, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	return p
}

// freePort is a TCP port on 127.0.0.1 nobody listens on (probably).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// netconf builds a network configuration.
func netconf(t *testing.T, cniVersion string, section map[string]any, extra map[string]any) []byte {
	t.Helper()
	c := map[string]any{"cniVersion": cniVersion, "name": "filament-net", "type": "filament-cni"}
	if section != nil {
		c["filament"] = section
	}
	for k, v := range extra {
		c[k] = v
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// unixSection is a "filament" section for agent a, logging into dir.
func unixSection(t *testing.T, socket string, more map[string]any) map[string]any {
	s := map[string]any{
		"socket":       socket,
		"poll-timeout": 0.2,
		"poll-retries": 3,
		"log-file":     filepath.Join(t.TempDir(), "cni.log"),
		"log-level":    "debug",
	}
	for k, v := range more {
		s[k] = v
	}
	return s
}

// invocation is one run of the plugin as kubelet runs it.
type invocation struct {
	Command, ContainerID, Netns, IfName, Args string
	Stdin                                     []byte
}

type outcome struct {
	Stdout, Stderr []byte
	Exit           int
	Took           time.Duration
}

// cniError is the JSON error a plugin prints on failure.
type cniError struct {
	CNIVersion string `json:"cniVersion"`
	Code       uint   `json:"code"`
	Msg        string `json:"msg"`
	Details    string `json:"details"`
}

func (o outcome) err(t *testing.T) cniError {
	t.Helper()
	if o.Exit == 0 {
		t.Fatalf("plugin succeeded, want an error; stdout %s", o.Stdout)
	}
	var e cniError
	if err := json.Unmarshal(o.Stdout, &e); err != nil {
		t.Fatalf("plugin error is not JSON: %v: %s (stderr %s)", err, o.Stdout, o.Stderr)
	}
	return e
}

func (o outcome) ok(t *testing.T) {
	t.Helper()
	if o.Exit != 0 {
		t.Fatalf("plugin failed (exit %d): %s\nstderr: %s", o.Exit, o.Stdout, o.Stderr)
	}
}

func run(t *testing.T, inv invocation) outcome {
	t.Helper()
	cmd := exec.Command(pluginBin)
	cmd.Env = []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"CNI_COMMAND=" + inv.Command,
		"CNI_CONTAINERID=" + inv.ContainerID,
		"CNI_NETNS=" + inv.Netns,
		"CNI_IFNAME=" + inv.IfName,
		"CNI_ARGS=" + inv.Args,
		"CNI_PATH=" + pluginDir,
	}
	cmd.Stdin = bytes.NewReader(inv.Stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	o := outcome{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		o.Exit = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return o
}

// podNetns is a stand-in for a pod's netns path: a file that exists (the
// plugin passes the path on; the agent opens it).
func podNetns(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "netns")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const podArgs = "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=c0ffee;K8S_POD_UID=6f1e4c2a-0000-4000-8000-000000000001"

func addInvocation(t *testing.T, conf []byte) invocation {
	return invocation{Command: "ADD", ContainerID: "c0ffee", Netns: podNetns(t), IfName: "eth0", Args: podArgs, Stdin: conf}
}

func contains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s %q does not contain %q", what, s, sub)
		}
	}
}
