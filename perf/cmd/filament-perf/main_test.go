package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/filament-net/filament/dpdk/hugepages"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "filament-perf-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "filament-perf")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build filament-perf: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// profile writes a --profile file and returns its path.
func profile(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "profile.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func perf(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func TestUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Commands:"},
		{[]string{"--help"}, 0, "ndr"},
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{"run", "--help"}, 0, "-rate"},
		{[]string{"run"}, 2, "give at least one --port"},
		{[]string{"run", "--port", "x", "--src", "10.0.0.300"}, 2, "--src"},
		{[]string{"run", "--port", "x", "--rate", "fast"}, 2, `rate "fast"`},
		{[]string{"run", "--port", "x", "--size", "abc"}, 2, "--size"},
		{[]string{"run", "--port", "x", "--tx-port", "3"}, 2, "--tx-port 3: there are 1 ports"},
		{[]string{"run", "--port", "x", "--reverse"}, 2, "--reverse needs --rx-port"},
		{[]string{"run", "--port", "x", "--rx-queues", "0"}, 2, "--rx-queues 0: want 1 to 16"},
		{[]string{"run", "--port", "net_af_xdp0,iface=eth0", "--size", "64,2053"}, 2, "frame of 2053 bytes: the generator's mbufs hold frames of at most 2052 bytes with an af_xdp port"},
		{[]string{"run", "--port", "x", "--rx-bursts", "0"}, 2, "--rx-bursts 0: want 1 to 64"},
		{[]string{"run", "--port", "x", "--stamp-every", "0"}, 2, "--stamp-every 0: want 1 or more"},
		{[]string{"run", "--port", "x", "--templates", "-1"}, 2, "--templates -1: want 0 or more"},
		{[]string{"ndr", "--port", "x", "--pdr-loss", "2"}, 2, "--pdr-loss"},
		{[]string{"run", "--port", "x", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"run", "--port", "x", "--size", "63"}, 2, `--size: size "63": want bytes (64..9022) or imix`},
		{[]string{"run", "--port", "x", "--size", "64,9023"}, 2, `size "9023": want bytes (64..9022)`},
		{[]string{"run", "--port", "x", "--size", "64", "--encap", "vxlan"}, 2, "frame size 64: must be 112..9022"},
		{[]string{"run", "--port", "x", "--profile", "/nonexistent/p.yaml"}, 2, "--profile: open /nonexistent/p.yaml"},
		{[]string{"run", "--port", "x", "--profile", profile(t, "streams:\n  - {dst: 16.0.0.1, flow: 10}\n")}, 2, "line 2: field flow not found in a stream (keys: tx_port, smac,"},
		{[]string{"run", "--port", "x", "--profile", profile(t, "streams:\n  - {flows: many}\n")}, 2, "cannot unmarshal !!str `many`"},
		{[]string{"run", "--port", "x", "--profile", profile(t, "streams: []\n")}, 2, "no streams"},
		{[]string{"run", "--port", "x", "--profile", profile(t, "streams:\n  - {size: 64}\n  - {proto: tcp, size: 64}\n")}, 2, "stream 1: frame size 64: must be 74..9022"},
		{[]string{"run", "--port", "x", "--rx-port", "1", "--reverse", "--profile", profile(t, "streams:\n  - {}\n")}, 2, "--reverse with --profile"},
		{[]string{"run", "--port", "net_bogus0", "--duration", "1s"}, 2, `no DPDK driver knows device "net_bogus0"`},
		{[]string{"run", "--port", "x", "--mtu", "9005"}, 2, "--mtu 9005: want 0 (each device's own) or 68..9004"},
		{[]string{"run", "--port", "net_null0", "--size", "64,1519"}, 2, "stream 0: frame size 1519 needs an MTU of 1501 on port 0, whose MTU is 1500: give --mtu"},
		{[]string{"run", "--port", "net_null0", "--size", "114,1568", "--encap", "vxlan", "--mtu", "1549"}, 2, "frame size 1568 needs an MTU of 1550 on port 0, whose MTU is 1549"},
		{[]string{"suite", "--rounds", "0", "--dry-run"}, 2, "--rounds 0: want 1 or more"},
		{[]string{"suite", "--budget", "-1s", "--dry-run"}, 2, "--budget -1s: want 0 (no bound) or more"},
		{[]string{"suite", "--gen-cpu", "1", "--dut-cpu", "1", "--dry-run"}, 2, "--gen-cpu 1, --dut-cpu 1: want two different CPUs"},
		{[]string{"suite", "--dut-cpu", "4096", "--dry-run"}, 2, "--dut-cpu 4096: want two different CPUs"},
		{[]string{"suite", "--sizes", "65000", "--dry-run"}, 2, `--sizes: size "65000": want bytes (64..9022)`},
		{[]string{"suite", "--candidate", "/nonexistent/filament-dataplane"}, 2, "--candidate: stat /nonexistent/filament-dataplane"},
		{[]string{"suite", "--min-baseline", "-1", "--dry-run"}, 2, "--min-baseline -1: want 0 (no check) or Mpps"},
		{[]string{"suite", "--candidate", "/bin/true", "--rows", "^testpmd-5tswap$", "--dry-run"}, 2, "--candidate: no filament row selected"},
	} {
		_, stderr, code := perf(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("filament-perf %v: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}
}

// dut is a dpdk-testpmd under test.
type dut struct {
	Sock string
	Proc *os.Process
	stop func() string
}

// Stop ends testpmd by PID (once) and returns what it printed, its
// forwarding statistics at the end.
func (d *dut) Stop() string { return d.stop() }

// testpmd starts dpdk-testpmd on CPU 1 forwarding (io) between its memif
// server port and itself, the simplest device under test; it is stopped by
// PID when the test ends, if not before.
func testpmd(t *testing.T) *dut {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "dut.sock")
	return testpmdWith(t, sock, "net_memif0,role=server,id=0,socket-abstract=no,socket="+sock)
}

// testpmdWith is testpmd with the given port (vdev devargs), which serves
// the unix socket sock once it is up.
func testpmdWith(t *testing.T, sock, vdev string) *dut {
	t.Helper()
	if _, huge := hugepages.EALArgs(0); !huge {
		t.Fatal("memif and vhost-user need hugepages: run scripts/hugepages.sh as root (make test does)")
	}
	prefix := fmt.Sprintf("fil-perftest-dut-%d", os.Getpid())
	var log bytes.Buffer
	cmd := exec.Command("dpdk-testpmd", "--lcores", "0@1,1@1", "--no-pci", "--in-memory", "--single-file-segments",
		"--file-prefix", prefix, "--log-level", "*:notice", "--vdev", vdev,
		"--", "--forward-mode=io", "--nb-cores=1", "--stats-period=60")
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("dpdk-testpmd: %v", err)
	}
	var once sync.Once
	d := &dut{Sock: sock, Proc: cmd.Process}
	d.stop = func() string {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			var err error
			go func() { err = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			if err != nil {
				fmt.Fprintf(&log, "dpdk-testpmd: %v\n", err)
			}
			_ = os.RemoveAll(filepath.Join("/var/run/dpdk", prefix)) // EAL leaves it behind
		})
		return log.String()
	}
	t.Cleanup(func() {
		if out := d.stop(); t.Failed() {
			t.Logf("testpmd:\n%s", out)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("testpmd made no socket %s in 20s:\n%s", sock, d.stop())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func port(sock string) string {
	return "net_memif0,role=client,id=0,socket-abstract=no,zero-copy=yes,socket=" + sock
}

// At a rate any device keeps, every frame sent comes back: counts exact,
// the JSON report parses, the progress line shows.
func TestRunThroughTestpmd(t *testing.T) {
	sock := testpmd(t).Sock
	stdout, stderr, code := perf(t, "run", "--port", port(sock), "--rate", "100k", "--duration", "1500ms",
		"--flows", "64", "--sport", "1024-1087", "--size", "imix", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	var rep struct {
		Result struct {
			TxPackets, RxPackets, Due, Held uint64
			Streams                         []struct {
				Lost, Late, Gaps int64
				Clones           uint64
				Latency          struct{ Samples uint64 }
			}
		}
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("JSON: %v\n%s", err, stdout)
	}
	r := rep.Result
	// 150000 due at 100 kpps for 1.5 s, all sent (a device this slow does
	// not push back), all back. A generator whose CPU another process
	// took (reproduced with a busy loop on it: 98061 sent) sends less and
	// says so in Due - TxPackets: what it sent must still all come back.
	if r.Due < 149000 || r.Due > 151000 || r.Held != 0 || r.TxPackets > r.Due || r.TxPackets < r.Due/2 ||
		r.RxPackets != r.TxPackets {
		t.Fatalf("due %d, held %d, tx %d, rx %d: want 150000 due at 100 kpps for 1.5 s, none held back, most sent, all back",
			r.Due, r.Held, r.TxPackets, r.RxPackets)
	}
	if r.TxPackets < r.Due*99/100 {
		t.Logf("the generator sent %d of %d due: its CPU was taken", r.TxPackets, r.Due)
	}
	// --stamp-every 16 (the default): 1 frame in 16 built and stamped,
	// the rest clones of the 64 flows x 12 IMIX slots' templates.
	stamped := (r.TxPackets + 15) / 16
	if s := r.Streams[0]; s.Lost != 0 || s.Late != 0 || s.Gaps != 0 || s.Latency.Samples != stamped ||
		s.Clones != r.TxPackets-stamped {
		t.Fatalf("stream %+v: want %d latency samples and %d clones", s, stamped, r.TxPackets-stamped)
	}
	if !strings.Contains(stderr, "1.0s  tx") {
		t.Fatalf("no progress line:\n%s", stderr)
	}
	// A second generator on the same device (memif reconnects), Markdown.
	stdout, stderr, code = perf(t, "run", "--port", port(sock), "--rate", "100k", "--duration", "200ms", "-o", "markdown")
	if code != 0 || !strings.HasPrefix(stdout, "| stream | tx | rx | lost |") || !strings.Contains(stdout, "\n| 0 | ") {
		t.Fatalf("markdown (exit %d):\n%s\n%s", code, stdout, stderr)
	}
}

// The search finds a confirmed NDR at or below PDR, and measures latency at
// three fractions of PDR.
func TestNDRThroughTestpmd(t *testing.T) {
	sock := testpmd(t).Sock
	out := filepath.Join(t.TempDir(), "ndr.json")
	pngFile := filepath.Join(t.TempDir(), "latency.png")
	stdout, stderr, code := perf(t, "ndr", "--port", port(sock), "--trial", "200ms", "--search-trial", "100ms", "--latency-trial", "200ms",
		"--resolution", "0.05", "--max-rate", "2M", "--json", out, "--b2b", "20000", "--plot", pngFile)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	// The latency CDF: a PNG of the plot's size.
	if f, err := os.Open(pngFile); err != nil {
		t.Fatalf("--plot: %v", err)
	} else {
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width < 500 || cfg.Height < 300 {
			t.Fatalf("--plot: %+v %v", cfg, err)
		}
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep ndrReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.NDR.Confirmed || rep.NDR.PPS <= 0 || rep.PDR.PPS < rep.NDR.PPS || rep.MaxPPS != 2e6 {
		t.Fatalf("NDR %+v PDR %+v max %v", rep.NDR, rep.PDR, rep.MaxPPS)
	}
	if rep.NDR.Result == nil || rep.NDR.Result.Lost != 0 {
		t.Fatalf("NDR's confirming trial: %+v", rep.NDR.Result)
	}
	// Confirmations are --trial long, the search's trials --search-trial.
	confirmations := 0
	for _, tr := range append(rep.NDR.Each, rep.PDR.Each...) {
		if tr.Confirming {
			confirmations++
		}
		if long := tr.Length > 150*time.Millisecond; long != tr.Confirming {
			t.Fatalf("trial %+v: %v long, confirming %v", tr, tr.Length, tr.Confirming)
		}
	}
	if confirmations == 0 {
		t.Fatalf("no confirmation trial in %+v", rep.NDR.Each)
	}
	if len(rep.Latency) != 3 || rep.Latency[2].PercentOfPDR != 90 || rep.Latency[0].Result.Streams[0].Latency.P50 <= 0 {
		t.Fatalf("latency %+v", rep.Latency)
	}
	// testpmd io takes a burst of 20000 frames at memif speed without loss
	// on a quiet machine; on a busy one it may drop some: the search then
	// settles lower, but never at 0.
	if rep.BackToBack.Frames == 0 || rep.BackToBack.Frames > 20000 || rep.BackToBack.Trials == 0 {
		t.Fatalf("back-to-back %+v", rep.BackToBack)
	}
	if !strings.Contains(stdout, "NDR (loss <= 0.00%)") || !strings.Contains(stdout, "back-to-back:") {
		t.Fatalf("text report:\n%s", stdout)
	}
}

// TestSuiteCandidatePlan: --candidate puts each selected filament row's
// candidate right after it, and only filament rows get one.
func TestSuiteCandidatePlan(t *testing.T) {
	stdout, stderr, code := perf(t, "suite", "--dry-run", "--rounds", "1", "--candidate", "/bin/true",
		"--rows", "^(filament-vxlan-encap-10|ovs-dpdk-vxlan-encap-10)$")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rows []string
	for _, l := range strings.Split(stdout, "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "64" {
			rows = append(rows, f[1])
		}
	}
	want := []string{"testpmd-io", "filament-vxlan-encap-10", "filament-vxlan-encap-10+cand", "ovs-dpdk-vxlan-encap-10"}
	if strings.Join(rows, " ") != strings.Join(want, " ") {
		t.Fatalf("plan rows %v, want %v:\n%s", rows, want, stdout)
	}
}

// A run whose baseline stayed under --min-baseline: the report is written
// and says the machine was unfit, and the command fails; at or above it,
// neither (rendered from samples: --from-json runs nothing).
func TestSuiteUnfit(t *testing.T) {
	dir := t.TempDir()
	samples := filepath.Join(dir, "samples.json")
	if err := os.WriteFile(samples, []byte(`[
  {"Row": "testpmd-io", "Size": "64", "Round": 1, "NDR": 6070000, "PDR": 6070000, "TSCHz": 2600000000, "Place": "near"},
  {"Row": "testpmd-io", "Size": "64", "Round": 2, "NDR": 5250000, "PDR": 5250000, "TSCHz": 2600000000, "Place": "far"}
]`), 0o644); err != nil {
		t.Fatal(err)
	}
	doc := filepath.Join(dir, "perf.md")
	args := []string{"suite", "--from-json", samples, "--doc", doc, "--img", dir, "--rows", "^testpmd-io$"}
	_, stderr, code := perf(t, append(args, "--min-baseline", "30")...)
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	if code != 1 || !strings.Contains(stderr, "machine unfit for numbers: `testpmd-io` reached at most 6.07 Mpps") ||
		!strings.Contains(string(b), "**Not fit for numbers:") {
		t.Fatalf("exit %d, stderr %q; report:\n%s", code, stderr, b)
	}
	if _, stderr, code = perf(t, append(args, "--min-baseline", "6")...); code != 0 {
		t.Fatalf("--min-baseline 6: exit %d: %s", code, stderr)
	}
	if b, _ = os.ReadFile(doc); strings.Contains(string(b), "Not fit") {
		t.Fatalf("--min-baseline 6: the report says unfit:\n%s", b)
	}
}
