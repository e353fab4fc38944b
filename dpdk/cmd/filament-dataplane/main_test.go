package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/dpdk/apiclient"
	"github.com/filament-net/filament/dpdk/config"
)

func TestFlagsAndCheck(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("eal: {lcores: \"0\"}\nports: [{name: p, kind: pod, devargs: x}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A configuration of before the vrfs section: its port gateway is refused
	// with a pointer to where it went.
	old := filepath.Join(t.TempDir(), "old.yaml")
	if err := os.WriteFile(old, []byte(`ports:
  - {name: pod1, devargs: "net_af_packet1,iface=p1h", kind: pod, vrf: 1,
     mac: "02:00:0a:0a:01:02", ipv4: [10.10.1.2], gateway: 10.10.1.1}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args         []string
		code         int
		stdout, errs string
	}{
		{[]string{"--help"}, 0, "", "Usage: filament-dataplane --config FILE"},
		{nil, 2, "", "--config FILE is required"},
		{[]string{"--config", "x", "more"}, 2, "", `unexpected arguments ["more"]`},
		{[]string{"--bogus"}, 2, "", "flag provided but not defined"},
		{[]string{"--config", "x", "--stats-interval", "-1s"}, 2, "", "must not be negative"},
		{[]string{"--check", "--config", "../../../deploy/demo/node1.yaml"}, 0,
			"EAL arguments: -l 0,1 --file-prefix fil-node1 --no-pci --in-memory (1 forwarding lcores)\nAPI socket: /run/filament/dataplane.sock", ""},
		{[]string{"--check", "--config", "../../../deploy/demo/node1.yaml", "--socket", "/tmp/x/dp.sock"}, 0,
			"API socket: /tmp/x/dp.sock", ""},
		{[]string{"--config", "x", "--socket", "/run/" + strings.Repeat("s", 103)}, 2, "",
			"--socket: \"/run/sss"},
		{[]string{"--config", "x", "--socket", ""}, 2, "", "--socket: required"},
		{[]string{"--check", "--config", "../../../deploy/demo/node2.yaml"}, 0,
			"configuration OK: 2 ports, 1 VRF addresses, 3 next-hops, 6 routes", ""},
		{[]string{"--check", "--config", old}, 1, "",
			"ports[0].gateway: unknown key (line 3): ports no longer take a gateway: use the top-level vrfs section instead, " +
				"which sets the vRouter's address in a VRF (the pods' gateway, source of its ICMP errors), " +
				"e.g. vrfs: [{vrf: 1, address: 10.10.1.1}]"},
		{[]string{"--check", "--config", bad}, 1, "",
			"eal.lcores: need at least two lcores (one control, one forwarding)\nports[0].mac: required for a pod port"},
		{[]string{"--config", bad}, 1, "", `"errors": ["` + bad + `: eal.lcores: need at least two lcores`},
		{[]string{"--config", bad, "--log-format", "xml"}, 2, "", `--log-format "xml"`},
	} {
		var out, errs bytes.Buffer
		code := run(tc.args, &out, &errs)
		if code != tc.code || !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errs.String(), tc.errs) {
			t.Errorf("%q: exit %d, want %d\nstdout: %s\nstderr: %s", tc.args, code, tc.code, out.String(), errs.String())
		}
	}
}

// syncBuffer is written by the logger while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLifecycle starts the real fast path (no hugepages, no ports), waits
// for "dataplane ready", sends SIGTERM and expects the final counters, a
// clean close and exit 0. DPDK starts once per process: the only such test.
func TestLifecycle(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("DPDK needs root here")
	}
	const prefix = "fil-cmd-test"
	t.Cleanup(func() { os.RemoveAll("/var/run/dpdk/" + prefix) })
	cfg := filepath.Join(t.TempDir(), "node.yaml")
	if err := os.WriteFile(cfg, []byte(`eal: {lcores: "0,1", no_huge: true, memory_mb: 256, file_prefix: `+prefix+`}
tables: {next_hops: 64, vrfs: 4, fib4_routes: 64, fib4_tbl8s: 8, mbufs: 2047}
ports: [{name: pod0, devargs: "net_null1,no-rx=1", kind: pod, vrf: 1, mac: "02:00:00:00:00:09", ipv6: ["fd00:1::9"]}]
vrfs: [{vrf: 1, address: 10.1.0.1, address6: "fd00:1::1"}]
next_hops: [{id: 1, type: discard}]
routes: [{vrf: 1, prefix: 0.0.0.0/0, next_hop: 1}, {vrf: 1, prefix: "::/0", next_hop: 1}]
vnis: [{vni: 7, vrf: 1}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	// The socket's directory does not exist: it is created 0700.
	sock := filepath.Join(t.TempDir(), "run", "dp.sock")
	var logs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"--config", cfg, "--stats-interval", "50ms", "--socket", sock}, &logs, &logs)
	}()
	deadline := time.After(60 * time.Second)
	for !strings.Contains(logs.String(), "dataplane ready") {
		select {
		case code := <-done:
			t.Fatalf("exited %d before ready:\n%s", code, logs.String())
		case <-deadline:
			t.Fatalf("not ready after 60 s:\n%s", logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	checkAPI(t, sock)
	// The periodic counters follow the ports the API added.
	for !strings.Contains(logs.String(), "INFO\tport counters\t{\"port\": \"pod1\"") {
		select {
		case code := <-done:
			t.Fatalf("exited %d:\n%s", code, logs.String())
		case <-deadline:
			t.Fatalf("no counters of the API's port after 60 s:\n%s", logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after SIGTERM", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30 s after SIGTERM:\n%s", logs.String())
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left behind after exit: %v", err)
	}
	for _, want := range []string{"signal received, shutting down", `"signal": "terminated"`, "API serving",
		"api\tbatch applied", "API stopped", "final port counters\t{\"port\": \"pod1\"", "final drops", "final lcore counters", `"worker": 0`,
		"dataplane closed"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log does not say %q:\n%s", want, logs.String())
		}
	}
}

// checkAPI talks to the daemon's API: the socket and its directory are
// private, the configuration is the API's state, a batch changes it.
func checkAPI(t *testing.T, sock string) {
	t.Helper()
	for path, want := range map[string]fs.FileMode{sock: fs.ModeSocket | 0o600, filepath.Dir(sock): fs.ModeDir | 0o700} {
		if fi, err := os.Stat(path); err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v (%v), want %v", path, fi.Mode(), err, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := apiclient.Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Routes) != 2 || s.Routes[0].Prefix != "0.0.0.0/0" || s.Routes[1].Prefix != "::/0" || len(s.NextHops) != 1 || len(s.VNIs) != 1 ||
		len(s.VRFAddresses) != 1 || s.VRFAddresses[0].Address != "10.1.0.1" || s.VRFAddresses[0].Address6 != "fd00:1::1" {
		t.Errorf("the configuration as the API lists it: %v", s)
	}
	if len(s.Ports) != 1 || s.Ports[0].Name != "pod0" || len(s.Ports[0].Ipv4) != 0 || !slices.Equal(s.Ports[0].Ipv6, []string{"fd00:1::9"}) {
		t.Errorf("the configuration's IPv6-only pod port as the API lists it: %v", s.Ports)
	}
	if _, err := c.ApplyBatch(ctx, (&apiclient.Batch{}).Create(&pb.Port{Name: "pod1", Devargs: "net_null0,no-rx=1",
		Kind: pb.PortKind_PORT_KIND_POD, Vrf: 1, Mac: "02:00:00:00:00:01", Ipv4: []string{"10.1.0.2"}},
		&pb.NextHop{Id: 2, Type: pb.NextHopType_NEXT_HOP_TYPE_INTERFACE, Port: "pod1", DstMac: "02:00:00:00:00:01"},
		&pb.Route{Vrf: 1, Prefix: "10.1.0.2/32", NextHop: 2})); err != nil {
		t.Fatal(err)
	}
	ps, err := c.ListPorts(ctx, &pb.ListPortsRequest{})
	if err != nil || len(ps.Ports) != 2 {
		t.Fatalf("ports: %v %v", ps, err)
	}
	for _, p := range ps.Ports {
		if !p.LinkUp {
			t.Errorf("port %s is down: %v", p.Port.GetName(), p)
		}
	}
}

func TestPrepareSocket(t *testing.T) {
	if config.DefaultSocket != apiclient.DefaultSocket {
		t.Errorf("the daemon's default socket %q is not the client's %q", config.DefaultSocket, apiclient.DefaultSocket)
	}
	dir := t.TempDir()
	// Missing directories are created 0700.
	sock := filepath.Join(dir, "a", "b", "dp.sock")
	if err := prepareSocket(sock); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Dir(sock)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory: %v %v", fi.Mode(), err)
	}
	// A stale socket (nothing listens) is removed.
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if fi, err := os.Lstat(sock); err != nil || fi.Mode()&fs.ModeSocket == 0 {
		t.Fatalf("stale socket: %v %v", fi, err)
	}
	if err := prepareSocket(sock); err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale socket not removed: %v", err)
	}
	// A live one is left alone and refused.
	l, err = listenSocket(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v %v, want 0600", fi.Mode(), err)
	}
	if err := prepareSocket(sock); err == nil || !strings.Contains(err.Error(), "another process listens on it") {
		t.Errorf("live socket: %v", err)
	}
	if _, err := os.Lstat(sock); err != nil {
		t.Errorf("live socket removed: %v", err)
	}
	// A file that is not a socket is not removed.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := prepareSocket(file); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("regular file: %v", err)
	}
	if err := prepareSocket("/tmp/" + strings.Repeat("x", 110)); err == nil || !strings.Contains(err.Error(), "at most 107") {
		t.Errorf("long path: %v", err)
	}
}
