package suite

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The OVS-DPDK rows, as the suite runs them (one round, short trials), after
// a one-off look at each: every frame sent comes back on port B through the
// route flows, 64 B frames back as 64 B (L3) or 114 B (VXLAN: +50), and
// OVS's datapath did the rewrite (TTL 63, MACs) or the encapsulation (VNI
// 100, 192.0.2.1 -> 192.0.2.2, fabric MAC -> generator B's MAC).
func TestOVS(t *testing.T) {
	if _, err := os.Stat(OVSVswitchd); err != nil {
		t.Fatalf("OVS-DPDK is not installed: run scripts/ovs-dpdk.sh as root (make deps does): %v", err)
	}
	env := newTestEnv(t, testBins{perf: true})
	rows := OVSRows(64)
	if len(rows) != 2 || rows[0].Name != "ovs-dpdk-l3-10" || rows[1].Name != "ovs-dpdk-vxlan-encap-10" {
		t.Fatalf("rows %+v", rows)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	for _, c := range []struct {
		row      Row
		overhead uint64
		actions  []string // in the datapath flows' actions
	}{
		{rows[0], 0, []string{"set(eth(src=" + VRouterMAC + ",dst=" + GenMACB + "))", "ttl=63"}},
		{rows[1], 50, []string{"tnl_push(", "vni=0x64", "eth(dst=" + GenMACB + ",src=" + FabricMAC,
			"ipv4(src=" + FabricIP + ",dst=" + PeerIP, "udp(src=0,dst=4789"}},
	} {
		t.Run(c.row.Name, func(t *testing.T) {
			// DPDK 22.11's memif in ovs-vswitchd can crash when the
			// generator disconnects (docs/perf.md): the counters read
			// after it are then gone. Once more, at most twice.
			for attempt := 1; !checkOVSForwards(ctx, t, env, c.row, c.overhead, c.actions); attempt++ {
				if attempt == 3 {
					t.Fatal("ovs-vswitchd died when the generator disconnected, 3 times")
				}
			}
		})
	}

	plan := Plan{Rows: rows, Sizes: []string{"64"}, Rounds: 1, Progress: os.Stderr,
		NDRFlags: []string{"--trial", "200ms", "--latency-trial", "200ms", "--resolution", "0.05", "--max-rate", "1M"}}
	samples, err := Run(ctx, env, plan)
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 2 {
		t.Fatalf("%d samples, want 2", len(samples))
	}
	for _, s := range samples {
		// A device that forwards nothing fails its search (an error).
		if s.Err != "" || s.NDR <= 0 || s.PDR < s.NDR || s.PDR > 1e6 || s.P50 <= 0 || s.TSCHz == 0 {
			t.Fatalf("sample %+v", s)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(env.Dir, "ovs-dpdk-*")); len(left) != 0 {
		t.Fatalf("sample directories left: %v", left)
	}
}

// checkOVSForwards starts the row's OVS, sends 20k frames at 100 kpps and
// checks what came back and what OVS's datapath did to it. False: OVS died
// once the generator had gone, before its counters were read.
func checkOVSForwards(ctx context.Context, t *testing.T, env *Env, row Row, overhead uint64, actions []string) bool {
	sub := *env
	sub.Dir = t.TempDir()
	a, b := filepath.Join(sub.Dir, "a.sock"), filepath.Join(sub.Dir, "b.sock")
	stop, err := row.DUT.Start(ctx, &sub, a, b)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = stop()
		}
	}()
	args := append([]string{"run", "--cpu", "0",
		"--port", "net_memif0,role=client,id=0,socket-abstract=no,zero-copy=yes,socket=" + a,
		"--port", "net_memif1,role=client,id=0,socket-abstract=no,zero-copy=yes,socket=" + b,
		"--size", "64", "--rate", "100k", "--duration", "200ms", "-o", "json"}, row.Traffic...)
	out, err := exec.CommandContext(ctx, env.Perf, args...).Output()
	if err != nil {
		t.Fatalf("filament-perf %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var rep struct {
		Result struct {
			TxPackets, RxPackets uint64
			Streams              []struct{ TxPackets, TxBytes, RxPackets, RxBytes uint64 }
		}
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	r := rep.Result
	if r.TxPackets < 10000 || r.RxPackets != r.TxPackets || len(r.Streams) != 1 {
		t.Fatalf("sent %d, received %d (want all back): %s", r.TxPackets, r.RxPackets, out)
	}
	if s := r.Streams[0]; s.TxBytes != 60*s.TxPackets || s.RxBytes != (60+overhead)*s.RxPackets {
		t.Fatalf("bytes: sent %d in %d frames, received %d in %d (want +%d each)", s.TxBytes, s.TxPackets,
			s.RxBytes, s.RxPackets, overhead)
	}
	// Every frame went through one of the ten route flows (OpenFlow
	// counters follow the datapath's a revalidation later: polled).
	bridge := "br0"
	if overhead > 0 {
		bridge = "br-int"
	}
	route := regexp.MustCompile(`n_packets=(\d+),.*nw_dst=16\.0\.\d+\.0/24 actions=dec_ttl`)
	for deadline := time.Now().Add(10 * time.Second); ; {
		fl, err := exec.CommandContext(ctx, "ovs-ofctl", "dump-flows", "unix:"+filepath.Join(sub.Dir, bridge+".mgmt")).CombinedOutput()
		if err != nil && !vswitchdAlive(sub.Dir) {
			log, _ := os.ReadFile(filepath.Join(sub.Dir, "ovs-vswitchd.log"))
			t.Logf("ovs-vswitchd died after the generator disconnected; its log ends:\n%s", tailLines(string(log), 6))
			return false
		}
		if err != nil {
			t.Fatalf("dump-flows: %v: %s", err, fl)
		}
		var matched, flows uint64
		for _, m := range route.FindAllStringSubmatch(string(fl), -1) {
			n, _ := strconv.ParseUint(m[1], 10, 64)
			matched += n
			flows++
		}
		if flows == 10 && matched == r.TxPackets {
			break
		}
		if flows != 10 || matched > r.TxPackets || time.Now().After(deadline) {
			t.Fatalf("%d route flows matched %d frames, want 10 flows and %d:\n%s", flows, matched, r.TxPackets, fl)
		}
		time.Sleep(50 * time.Millisecond) // polling OVS's counters
	}
	dp, err := exec.CommandContext(ctx, "ovs-appctl", "-t", filepath.Join(sub.Dir, "ovs-vswitchd.ctl"), "dpctl/dump-flows").CombinedOutput()
	if err != nil {
		t.Fatalf("dpctl/dump-flows: %v: %s", err, dp)
	}
	for _, want := range actions {
		if !strings.Contains(string(dp), want) {
			t.Fatalf("datapath flows lack %q:\n%s", want, dp)
		}
	}
	stopped = true
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	return true
}

// vswitchdAlive says whether the ovs-vswitchd of a sample directory runs:
// its pidfile's process exists (the suite reaps it when it exits).
func vswitchdAlive(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "ovs-vswitchd.pid"))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return err == nil && pid > 0 && syscall.Kill(pid, 0) == nil
}

// Filament rows against their OVS-DPDK peers: round by round, only rounds
// both have, and the report's section.
func TestPeerRatios(t *testing.T) {
	plan := Plan{Rows: append(Headline(64)[2:3], OVSRows(64)[0]), Sizes: []string{"64"}}
	samples := []Sample{
		{Row: "filament-l3-10", Size: "64", Round: 1, NDR: 20e6, PDR: 24e6},
		{Row: "ovs-dpdk-l3-10", Size: "64", Round: 1, NDR: 10e6, PDR: 8e6},
		{Row: "filament-l3-10", Size: "64", Round: 2, NDR: 10e6, PDR: 12e6},
		{Row: "ovs-dpdk-l3-10", Size: "64", Round: 2, NDR: 2.5e6, PDR: 3e6},
		{Row: "filament-l3-10", Size: "64", Round: 3, NDR: 10e6, PDR: 12e6},
		{Row: "ovs-dpdk-l3-10", Size: "64", Round: 3, Err: "failed"},
	}
	sums := Summarize(plan, samples)
	if len(sums) != 2 || sums[0].Row != "filament-l3-10" || sums[0].Peer != "ovs-dpdk-l3-10" {
		t.Fatalf("summaries %+v", sums)
	}
	if n := sums[0].PeerNDRRatio; n.N != 2 || n.Min != 2 || n.Max != 4 || n.Median != 3 {
		t.Fatalf("NDR ratio %+v", n)
	}
	if p := sums[0].PeerPDRRatio; p.N != 2 || p.Min != 3 || p.Max != 4 {
		t.Fatalf("PDR ratio %+v", p)
	}
	if sums[1].Peer != "" || sums[1].PeerNDRRatio.N != 0 {
		t.Fatalf("the OVS row has no peer: %+v", sums[1])
	}
	var b strings.Builder
	Markdown(&b, Meta{Command: "test", TSCHz: 1e9, Rounds: 3, Flows: []int{64}}, sums)
	if !strings.Contains(b.String(), "## Filament against OVS-DPDK") ||
		!strings.Contains(b.String(), "| 64 | filament-l3-10 | ovs-dpdk-l3-10 | 3.00 (2.00-4.00) | 3.50 (3.00-4.00) |") {
		t.Fatalf("report:\n%s", b.String())
	}
	b.Reset()
	Markdown(&b, Meta{Command: "test"}, Summarize(Plan{Rows: Headline(64)[:1], Sizes: []string{"64"}}, nil))
	if strings.Contains(b.String(), "OVS-DPDK") {
		t.Fatalf("a run without OVS rows has no OVS section:\n%s", b.String())
	}
}
