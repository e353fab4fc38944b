package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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
			"EAL arguments: -l 0,1 --file-prefix fil-node1 --no-pci --in-memory (1 forwarding lcores)", ""},
		{[]string{"--check", "--config", "../../../deploy/demo/node2.yaml"}, 0,
			"configuration OK: 2 ports, 1 VRF addresses, 3 next-hops, 3 routes", ""},
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
vrfs: [{vrf: 1, address: 10.1.0.1}]
next_hops: [{id: 1, type: discard}]
routes: [{vrf: 1, prefix: 0.0.0.0/0, next_hop: 1}]
vnis: [{vni: 7, vrf: 1}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	done := make(chan int, 1)
	go func() { done <- run([]string{"--config", cfg, "--stats-interval", "50ms"}, &logs, &logs) }()
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
	time.Sleep(120 * time.Millisecond) // a stats tick or two
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
	for _, want := range []string{"signal received, shutting down", `"signal": "terminated"`,
		"final drops", "final lcore counters", `"worker": 0`, "dataplane closed"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log does not say %q:\n%s", want, logs.String())
		}
	}
}
