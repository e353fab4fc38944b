package main

// filamentctl's tests build the real filament-dataplane and filamentctl,
// run the daemon (DPDK on --no-huge memory, null ports that receive
// nothing) and parse what each command prints with -o json.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/filament-net/filament/dpdk/apiclient"
)

const nodeConfig = `eal: {lcores: "0,1", no_huge: true, memory_mb: 512, file_prefix: %s}
tables: {next_hops: 64, vrfs: 8, fib4_routes: 64, fib4_tbl8s: 8, mbufs: 2047}
ports:
  - {name: fabric, devargs: "net_null0,no-rx=1", kind: fabric, ipv4: [192.168.100.1], mac: "02:fa:00:00:00:01"}
  - {name: pod1, devargs: "net_null1,no-rx=1", kind: pod, vrf: 1, mac: "02:00:0a:0a:01:02", ipv4: [10.10.1.2], mtu: 1450}
vrfs: [{vrf: 1, address: 10.10.1.1}]
next_hops:
  - {id: 1, type: interface, port: pod1, dst_mac: "02:00:0a:0a:01:02"}
  - {id: 2, type: tunnel, port: fabric, encap: vxlan, tunnel_dst: 192.168.100.2, vni: 100}
  - {id: 3, type: tunnel, port: fabric, encap: mplsoudp, tunnel_dst: 192.168.100.3, tunnel_gw: 192.168.100.254, label: 200}
  - {id: 4, type: ecmp, members: [2, 3]}
  - {id: 5, type: receive}
  - {id: 6, type: tunnel, port: fabric, encap: mplsogre, tunnel_dst: 192.168.100.4, tunnel_gw: 192.168.100.254, label: 300}
routes:
  - {vrf: 1, prefix: 10.10.1.2/32, next_hop: 1}
  - {vrf: 1, prefix: 10.10.2.0/24, next_hop: 4}
  - {vrf: 1, prefix: 10.10.1.1/32, next_hop: 5}
vnis: [{vni: 100, vrf: 1}]
labels: [{label: 200, vrf: 1}]
neighbors: [{ip: 192.168.100.254, mac: "02:fb:00:00:00:fe"}]
`

// syncBuffer is written by a process while the test reads it.
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

// build compiles both commands into a temporary directory.
func build(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	dir := t.TempDir()
	cmd := exec.Command(goBin, "build", "-o", dir+"/",
		"github.com/filament-net/filament/dpdk/cmd/filament-dataplane",
		"github.com/filament-net/filament/dpdk/cmd/filamentctl")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

type result struct {
	code           int
	stdout, stderr string
}

func ctl(t *testing.T, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "filamentctl"), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("filamentctl %q: %v", args, err)
	}
	return r
}

// jsonOf runs a command with -o json and decodes its output into v.
func jsonOf(t *testing.T, bin, sock string, v any, args ...string) {
	t.Helper()
	r := ctl(t, bin, append([]string{"--socket", sock, "-o", "json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("filamentctl %q: exit %d: %s", args, r.code, r.stderr)
	}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("filamentctl %q: %v\n%s", args, err, r.stdout)
	}
}

func TestCLI(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("DPDK needs root here")
	}
	bin := build(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "run", "dp.sock")
	prefix := fmt.Sprintf("fil-ctl-test-%d", os.Getpid())
	t.Cleanup(func() { os.RemoveAll("/var/run/dpdk/" + prefix) })
	cfg := filepath.Join(dir, "node.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(nodeConfig, prefix)), 0o644); err != nil {
		t.Fatal(err)
	}

	// Not running yet: no socket.
	r := ctl(t, bin, "--socket", sock, "ports")
	if r.code != 1 || r.stdout != "" || r.stderr != "filamentctl: filament-dataplane is not running: no socket at "+sock+"\n" {
		t.Errorf("no daemon: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	var logs syncBuffer
	daemon := exec.Command(filepath.Join(bin, "filament-dataplane"), "--config", cfg, "--socket", sock, "--stats-interval", "0")
	daemon.Stdout, daemon.Stderr = &logs, &logs
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = daemon.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			daemon.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := apiclient.Dial(ctx, sock)
		cancel()
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("daemon exited (%v):\n%s", waitErr, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not serving after 60 s (%v):\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	t.Run("version", func(t *testing.T) {
		var v versionJSON
		jsonOf(t, bin, sock, &v, "version")
		if v.APIVersion != "1.0" || v.Workers != 1 || v.Tables.NextHops != 64 || v.Tables.VRFs != 8 ||
			v.VRouterMAC != "00:00:5e:00:01:00" || len(v.Capabilities) == 0 || v.Socket != sock {
			t.Errorf("%+v", v)
		}
	})
	t.Run("ports", func(t *testing.T) {
		var v struct{ Ports []portJSON }
		jsonOf(t, bin, sock, &v, "ports")
		if len(v.Ports) != 2 {
			t.Fatalf("%+v", v)
		}
		f, p := v.Ports[0], v.Ports[1]
		if f.Name != "fabric" || f.Kind != "fabric" || f.DeviceMAC != "02:fa:00:00:00:01" || f.IPv4[0] != "192.168.100.1" ||
			f.MTU != 1500 || !f.LinkUp || f.Devargs != "net_null0,no-rx=1" {
			t.Errorf("fabric: %+v", f)
		}
		if p.Name != "pod1" || p.Kind != "pod" || p.VRF != 1 || p.MAC != "02:00:0a:0a:01:02" || p.MTU != 1450 ||
			strings.Join(p.IPv4, ",") != "10.10.1.2" {
			t.Errorf("pod1: %+v", p)
		}
	})
	t.Run("vrfs", func(t *testing.T) {
		var v struct{ VRFs []vrfJSON }
		jsonOf(t, bin, sock, &v, "vrfs")
		if len(v.VRFs) != 1 || v.VRFs[0].VRF != 1 || v.VRFs[0].Address != "10.10.1.1" || v.VRFs[0].Routes != 3 ||
			fmt.Sprint(v.VRFs[0].Ports, v.VRFs[0].VNIs, v.VRFs[0].Labels) != "[pod1] [100] [200]" {
			t.Errorf("%+v", v)
		}
	})
	t.Run("routes", func(t *testing.T) {
		var v struct{ Routes []routeJSON }
		jsonOf(t, bin, sock, &v, "routes")
		if fmt.Sprint(v.Routes) != "[{1 10.10.1.1/32 5} {1 10.10.1.2/32 1} {1 10.10.2.0/24 4}]" {
			t.Errorf("%+v", v)
		}
		jsonOf(t, bin, sock, &v, "routes", "--vrf", "2")
		if len(v.Routes) != 0 {
			t.Errorf("VRF 2: %+v", v)
		}
	})
	t.Run("nexthops", func(t *testing.T) {
		var v struct {
			NextHops []nextHopJSON `json:"next_hops"`
		}
		jsonOf(t, bin, sock, &v, "nexthops")
		if len(v.NextHops) != 6 {
			t.Fatalf("%+v", v)
		}
		tun := v.NextHops[2]
		if tun.Type != "tunnel" || tun.Encap != "mplsoudp" || tun.Label == nil || *tun.Label != 200 || tun.VNI != nil ||
			tun.TunnelGW != "192.168.100.254" || tun.ECMPGroups != 1 {
			t.Errorf("next-hop 3: %+v", tun)
		}
		if g := v.NextHops[3]; g.Type != "ecmp" || fmt.Sprint(g.Members) != "[2 3]" || g.Routes != 1 {
			t.Errorf("next-hop 4: %+v", g)
		}
		if gre := v.NextHops[5]; gre.Type != "tunnel" || gre.Encap != "mplsogre" || gre.Label == nil || *gre.Label != 300 ||
			gre.VNI != nil || gre.TunnelDst != "192.168.100.4" || gre.TunnelGW != "192.168.100.254" {
			t.Errorf("next-hop 6: %+v", gre)
		}
	})
	t.Run("vnis and labels", func(t *testing.T) {
		var v struct{ VNIs []struct{ VNI, VRF uint32 } }
		jsonOf(t, bin, sock, &v, "vnis")
		if fmt.Sprint(v.VNIs) != "[{100 1}]" {
			t.Errorf("vnis: %+v", v)
		}
		var l struct{ Labels []struct{ Label, VRF uint32 } }
		jsonOf(t, bin, sock, &l, "labels")
		if fmt.Sprint(l.Labels) != "[{200 1}]" {
			t.Errorf("labels: %+v", l)
		}
	})
	t.Run("neighbors", func(t *testing.T) {
		var v struct{ Neighbors []neighborJSON }
		jsonOf(t, bin, sock, &v, "neighbors")
		if len(v.Neighbors) != 2 {
			t.Fatalf("%+v", v)
		}
		if n := v.Neighbors[0]; n.IP != "192.168.100.2" || n.Static || n.Resolved || n.MAC != "" || fmt.Sprint(n.NextHops) != "[2]" {
			t.Errorf("tunnel endpoint: %+v", n)
		}
		if n := v.Neighbors[1]; n.IP != "192.168.100.254" || !n.Static || n.MAC != "02:fb:00:00:00:fe" || fmt.Sprint(n.NextHops) != "[3 6]" {
			t.Errorf("static neighbour: %+v", n)
		}
	})
	t.Run("drops and stats", func(t *testing.T) {
		var d struct{ Drops []dropJSON }
		jsonOf(t, bin, sock, &d, "drops", "--all")
		if len(d.Drops) < 20 || d.Drops[0].Reason != "eth_truncated" {
			t.Errorf("drops --all: %+v", d)
		}
		jsonOf(t, bin, sock, &d, "drops")
		if len(d.Drops) != 0 { // null ports receive nothing
			t.Errorf("drops: %+v", d)
		}
		var s struct {
			Ports      []portCountersJSON
			Lcores     []lcoreCountersJSON
			MbufsInUse uint64 `json:"mbufs_in_use"`
		}
		jsonOf(t, bin, sock, &s, "stats")
		if len(s.Ports) != 2 || s.Ports[1].Name != "pod1" || len(s.Lcores) != 1 || s.Lcores[0].Polls == 0 {
			t.Errorf("stats: %+v", s)
		}
	})
	t.Run("trace and capture", func(t *testing.T) {
		var tr struct {
			Records  []traceJSON
			Complete bool
		}
		jsonOf(t, bin, sock, &tr, "trace", "--count", "1", "--wait", "100ms")
		if len(tr.Records) != 0 || tr.Complete {
			t.Errorf("trace: %+v", tr)
		}
		file := filepath.Join(dir, "pod1.pcap")
		var c struct {
			File                             string
			Bytes, Frames, Captured, Dropped int
		}
		jsonOf(t, bin, sock, &c, "capture", "--port", "pod1", "--count", "1", "--duration", "100ms", "-w", file)
		b, err := os.ReadFile(file)
		if err != nil || c.Bytes != 24 || len(b) != 24 || !bytes.Equal(b[:4], []byte{0xd4, 0xc3, 0xb2, 0xa1}) {
			t.Errorf("capture: %+v, file %x %v", c, b, err)
		}
		r := ctl(t, bin, "--socket", sock, "capture", "--port", "nope", "-w", file)
		if r.code != 1 || !strings.Contains(r.stderr, `filamentctl capture: port: "nope" is not a port (NotFound)`) {
			t.Errorf("capture of a missing port: %+v", r)
		}
	})
	t.Run("tables", func(t *testing.T) {
		for cmd, want := range map[string]string{
			"version":   "API version               1.0 (filamentctl: 1.0)",
			"ports":     "NAME    ID  KIND    VRF  MAC                IPV4           IPV6  MTU   RXQ  LINK  DEVARGS",
			"vrfs":      "1    10.10.1.1  -         3       pod1   100   200",
			"routes":    "1    10.10.2.0/24  4   ecmp       members 2,3",
			"nexthops":  "3   tunnel     fabric  mplsoudp to 192.168.100.3 label 200 via 192.168.100.254",
			"vnis":      "100  1",
			"labels":    "200    1",
			"neighbors": "192.168.100.254  02:fb:00:00:00:fe  static      3,6",
			"drops":     "no drops",
			"stats":     "mbufs in use:",
		} {
			r := ctl(t, bin, "--socket", sock, cmd)
			if r.code != 0 || !strings.Contains(r.stdout, want) {
				t.Errorf("%s: exit %d, want a line with %q:\n%s%s", cmd, r.code, want, r.stdout, r.stderr)
			}
			if r := ctl(t, bin, cmd, "--help"); r.code != 0 || !strings.Contains(r.stderr, "Usage: filamentctl "+cmd) {
				t.Errorf("%s --help: %+v", cmd, r)
			}
		}
	})
	t.Run("mplsogre next-hop", func(t *testing.T) {
		want := "6   tunnel     fabric  mplsogre to 192.168.100.4 label 300 via 192.168.100.254"
		if r := ctl(t, bin, "--socket", sock, "nexthops"); r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("nexthops: exit %d, want a line with %q:\n%s%s", r.code, want, r.stdout, r.stderr)
		}
	})
	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{{}, {"bogus"}, {"-o", "xml", "ports"}, {"routes", "--vrf", "x"}, {"ports", "extra"}} {
			if r := ctl(t, bin, append([]string{"--socket", sock}, args...)...); r.code != 2 {
				t.Errorf("%q: exit %d, want 2: %s", args, r.code, r.stderr)
			}
		}
	})

	// SIGTERM: exit 0, socket removed.
	if err := daemon.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("daemon after SIGTERM: %v\n%s", waitErr, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon still running 30 s after SIGTERM:\n%s", logs.String())
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}

	// A stale socket: nothing listens.
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	r = ctl(t, bin, "--socket", sock, "routes")
	if r.code != 1 || r.stderr != "filamentctl: filament-dataplane is not running: connection refused at "+sock+
		" (a stale socket: nothing listens on it)\n" {
		t.Errorf("stale socket: exit %d, stderr %q", r.code, r.stderr)
	}
}
