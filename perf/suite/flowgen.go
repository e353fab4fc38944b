package suite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Flat-out rows: at 64 B filament-perf (about 75 cycles a frame, most of them
// memif's) cannot outrun dpdk-testpmd io or 5tswap, so their NDR and PDR are
// the generator's. These rows take dpdk-testpmd flowgen as the generator
// instead (one frame built per FlowgenClones sent), flat out on both ports,
// and report the device's forwarding rate at maximum offered load (RFC 2285):
// what it forwarded, both directions summed, with no loss accounting.
//
// DPDK 22.11's flowgen writes fixed headers whatever --tx-ip and --eth-peer
// say: 00:01:02:03:04:00 -> 00:01:02:03:04:01, 10.254.0.0 -> 10.253.0.0 + the
// flow, UDP 1000 -> 1001, the same on both ports. filament's flat-out row is
// set up for them (FlowgenPodMAC, FlowgenVRouterMAC, two VRFs).
const (
	FlowgenSize   = "64"
	FlowgenClones = 16
	// FlowgenWarmup is left out of the rate: the memif links come up, the
	// device's rings fill. FlowgenPeriods are then measured, each over
	// testpmd's stats period of 1 s (1.2-2 s when it shares a CPU).
	FlowgenWarmup  = 2 * time.Second
	FlowgenPeriods = 5

	FlowgenPodMAC     = "00:01:02:03:04:00"
	FlowgenVRouterMAC = "00:01:02:03:04:01"
	FlowgenSrc        = "10.254.0.0"
	FlowgenDst        = "10.253.0.0"
)

// FlowgenRows are the flat-out rows: testpmd io (their baseline) and 5tswap,
// and filament IPv4 L3 with 10 routes.
func FlowgenRows(flows int) []Row {
	d := Filament{Mode: L3, Routes: 10, Flowgen: true}
	return []Row{
		{Name: FlowgenBaseline, DUT: Testpmd{"io"}, What: "dpdk-testpmd io, flat out (testpmd flowgen)", Flows: flows, Flowgen: true},
		{Name: "testpmd-5tswap-flowgen", DUT: Testpmd{"5tswap"}, What: "dpdk-testpmd 5tswap, flat out (testpmd flowgen)", Flows: flows, Flowgen: true},
		{Name: d.Name(), DUT: d, What: "IPv4 L3, 10 routes, flat out (testpmd flowgen; a VRF per direction)", Flows: flows, Flowgen: true},
	}
}

// FlowgenBaseline is the row the flat-out rates are compared with.
const FlowgenBaseline = "testpmd-io-flowgen"

// flowgenResult is a flat-out sample's reading of the generator.
type flowgenResult struct {
	Rate    float64 // pps forwarded back, both ports, median period
	Periods int
	// Refused is the share of the frames flowgen generated that the
	// device's RX rings did not take (testpmd's TX-dropped): near 0, the
	// generator and not the device set the rate.
	Refused float64
	// Back is what came back on each port over the whole run (its forward
	// statistics' RX-packets): a device forwarding one way only halves the
	// rate, and fails the sample.
	Back [2]float64
}

// runFlowgen runs dpdk-testpmd flowgen on the generator's CPU as the memif
// client of a and b until it has measured FlowgenPeriods stats periods
// after the warm-up, and reads its output. It keeps the output in log.
func runFlowgen(ctx context.Context, env *Env, row Row, a, b, log string) (flowgenResult, error) {
	prefix := fmt.Sprintf("fil-suite-flowgen-%d", os.Getpid())
	defer os.RemoveAll(filepath.Join("/var/run/dpdk", prefix))
	args := []string{"dpdk-testpmd", "--lcores", fmt.Sprintf("0@%d,1@%d", env.GenCPU, env.GenCPU),
		"--no-pci", "--in-memory", "--single-file-segments", "--file-prefix", prefix, "--log-level", "*:notice",
		"--vdev", "net_memif0,role=client,id=0,socket-abstract=no,zero-copy=yes,socket=" + a,
		"--vdev", "net_memif1,role=client,id=0,socket-abstract=no,zero-copy=yes,socket=" + b,
		"--", "--forward-mode=flowgen", fmt.Sprintf("--flowgen-clones=%d", FlowgenClones),
		fmt.Sprintf("--flowgen-flows=%d", max(row.Flows, 1)), "--txpkts=" + FlowgenSize,
		"--nb-cores=1", "--burst=32", "--stats-period=1"}
	genEnv := *env
	genEnv.Dir = filepath.Dir(log)
	p, err := startProcess(&genEnv, strings.TrimSuffix(filepath.Base(log), ".log"), args...)
	if err != nil {
		return flowgenResult{}, err
	}
	// testpmd prints a stats block per port each period: wait for the
	// warm-up's and the measured ones, then stop it (SIGTERM: it prints
	// its totals and exits).
	want := 2 * (FlowgenPeriods + int(FlowgenWarmup/time.Second))
	limit := FlowgenWarmup + 3*FlowgenPeriods*time.Second + 10*time.Second
	deadline := time.Now().Add(limit)
	for {
		b, _ := os.ReadFile(log)
		if strings.Count(string(b), "Rx-pps:") >= want {
			break
		}
		select {
		case <-p.done:
			return flowgenResult{}, fmt.Errorf("dpdk-testpmd flowgen exited:\n%s", p.tail())
		case <-ctx.Done():
			_ = p.stop()
			return flowgenResult{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = p.stop()
			return flowgenResult{}, fmt.Errorf("dpdk-testpmd flowgen printed %d of %d port stats in %v:\n%s",
				strings.Count(string(b), "Rx-pps:"), want, limit, p.tail())
		}
	}
	if err := p.stop(); err != nil {
		return flowgenResult{}, err
	}
	f, err := os.Open(log)
	if err != nil {
		return flowgenResult{}, err
	}
	defer f.Close()
	return parseFlowgen(bufio.NewScanner(f), int(FlowgenWarmup/time.Second))
}

var (
	rxPPS     = regexp.MustCompile(`^\s*Rx-pps:\s+(\d+)`)
	nicStats  = regexp.MustCompile(`NIC statistics for port (\d+)`)
	fwdStats  = regexp.MustCompile(`Forward statistics for port (\d+)`)
	txDropped = regexp.MustCompile(`TX-packets:\s+(\d+)\s+TX-dropped:\s+(\d+)`)
	rxBack    = regexp.MustCompile(`RX-packets:\s+(\d+)\s+RX-dropped:`)
)

// parseFlowgen reads testpmd's output: per stats period a NIC statistics
// block for port 0 and port 1, each with its Rx-pps; at exit the forward
// statistics of each port (RX-packets, then TX-packets and TX-dropped). The
// rate is the median over the periods after the first skip of port 0's plus
// port 1's Rx-pps. With the totals there, each port must have had frames
// back.
func parseFlowgen(sc *bufio.Scanner, skip int) (flowgenResult, error) {
	var sums []float64
	var period [2]float64
	var seen [2]bool
	port := -1
	fwdPort := -1
	var sent, dropped float64
	var back [2]float64
	totals := false
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if m := nicStats.FindStringSubmatch(line); m != nil {
			port, _ = strconv.Atoi(m[1])
			fwdPort = -1
			continue
		}
		if m := fwdStats.FindStringSubmatch(line); m != nil {
			fwdPort, _ = strconv.Atoi(m[1])
			port = -1
			continue
		}
		if m := rxPPS.FindStringSubmatch(line); m != nil && port >= 0 && port < 2 {
			v, _ := strconv.ParseFloat(m[1], 64)
			period[port], seen[port] = v, true
			if seen[0] && seen[1] {
				sums = append(sums, period[0]+period[1])
				seen = [2]bool{}
			}
			port = -1
			continue
		}
		if m := rxBack.FindStringSubmatch(line); m != nil && fwdPort >= 0 && fwdPort < 2 {
			back[fwdPort], _ = strconv.ParseFloat(m[1], 64)
			totals = true
			continue
		}
		if m := txDropped.FindStringSubmatch(line); m != nil && fwdPort >= 0 {
			s, _ := strconv.ParseFloat(m[1], 64)
			d, _ := strconv.ParseFloat(m[2], 64)
			sent, dropped = sent+s, dropped+d
			fwdPort = -1
		}
	}
	if err := sc.Err(); err != nil {
		return flowgenResult{}, err
	}
	if len(sums) <= skip {
		return flowgenResult{}, fmt.Errorf("dpdk-testpmd flowgen printed %d stats periods, want more than the %d of warm-up", len(sums), skip)
	}
	m := sums[skip:]
	sort.Float64s(m)
	r := flowgenResult{Rate: m[len(m)/2], Periods: len(m), Back: back}
	if len(m)%2 == 0 {
		r.Rate = (m[len(m)/2-1] + m[len(m)/2]) / 2
	}
	if sent+dropped > 0 {
		r.Refused = dropped / (sent + dropped)
	}
	if r.Rate == 0 {
		return r, errors.New("the device forwarded nothing back to dpdk-testpmd flowgen")
	}
	for port, n := range back {
		if totals && n == 0 {
			return r, fmt.Errorf("the device forwarded nothing back to dpdk-testpmd flowgen's port %d: one direction only", port)
		}
	}
	return r, nil
}

// summarizeFlat fills a flat-out row's summary from its samples.
func summarizeFlat(sm Summary, samples []Sample) Summary {
	var mol, refused []float64
	for _, s := range samples {
		if sm.take(s) {
			mol, refused = append(mol, s.MOL), append(refused, s.Refused)
		}
	}
	sm.MOL, sm.Refused = stat(mol), stat(refused)
	sm.MOLRatio = molRatios(sm.Row, FlowgenBaseline, sm.Size, samples)
	sm.MOL5tswap = molRatios(sm.Row, "testpmd-5tswap-flowgen", sm.Size, samples)
	return sm
}

// molRatios are row's flat-out rates over ref's (pairRatios).
func molRatios(row, ref, size string, samples []Sample) Stat {
	return pairRatios(row, ref, size, samples, func(s Sample) float64 { return s.MOL })[0]
}

// writeFlat adds the flat-out rows' table, if the run had them.
func writeFlat(w io.Writer, m Meta, sums []Summary) {
	var have []Summary
	for _, s := range sums {
		if s.Flowgen {
			have = append(have, s)
		}
	}
	if len(have) == 0 {
		return
	}
	p := func(f string, a ...any) { fmt.Fprintf(w, f, a...) }
	p("\n## Flat out: dpdk-testpmd flowgen as the generator (%s B)\n\n", FlowgenSize)
	p("At 64 B filament-perf cannot outrun `testpmd-io` and `testpmd-5tswap` (above, they meet at its rate). These rows take `dpdk-testpmd --forward-mode=flowgen --flowgen-clones=%d --txpkts=%s` as the generator instead, on the same CPU and memif links (zero-copy client), sending flat out on both ports: the rate is the device's forwarding rate at maximum offered load (RFC 2285), both directions summed, the median of testpmd's 1-s stats periods after %v of warm-up (%d periods), with no loss or latency accounting. *Refused* is the share of generated frames the device's RX rings did not take: well above 0, the device and not the generator set the rate. DPDK 22.11's flowgen sends the same fixed headers on both ports (%s -> %s, %s -> %s.x): `filament-l3-10-flowgen` gives each port a pod of that MAC and address in a VRF of its own, 10 routes in each leading to the other port. Cycles/packet = TSC Hz / rate: the device's core is saturated. Ratios round by round, same placement; medians with min-max.\n\n",
		FlowgenClones, FlowgenSize, FlowgenWarmup, FlowgenPeriods, FlowgenPodMAC, FlowgenVRouterMAC, FlowgenSrc, strings.TrimSuffix(FlowgenDst, ".0"))
	p("| row | what | Mpps (both ways) | / %s | / testpmd-5tswap-flowgen | cycles/pkt | refused | placement |\n|---|---|---|---|---|---|---|---|\n", FlowgenBaseline)
	for _, s := range have {
		if s.MOL.N == 0 {
			why := "not run"
			switch {
			case len(s.Errors) > 0:
				why = "failed: " + oneLine(s.Errors)
			case s.Mixed > 0:
				why = fmt.Sprintf("left out: the host moved the vCPUs during its %d sample(s) (mixed)", s.Mixed)
			}
			p("| %s | %s | %s | | | | | %s |\n", s.Row, s.What, why, places(s))
			continue
		}
		cyc := "-"
		if m.TSCHz > 0 {
			cyc = fmt.Sprintf("%.0f", float64(m.TSCHz)/s.MOL.Median)
		}
		p("| %s | %s | %s | %s | %s | %s | %.0f%% | %s |\n", s.Row, s.What, mpps(s.MOL), ratio(s.MOLRatio), ratio(s.MOL5tswap),
			cyc, 100*s.Refused.Median, places(s))
		if len(s.Errors) > 0 {
			p("|  | %d failed samples: %s | | | | | | |\n", len(s.Errors), oneLine(s.Errors))
		}
	}
}

// flatGoals are the IPv4 goals against testpmd, measured flat out.
var flatGoals = []goal{
	{"filament IPv4 >= 1.0x testpmd 5tswap (flat out)", "filament-l3-10-flowgen", "testpmd-5tswap-flowgen", 1.0},
	{"filament IPv4 >= 0.65x testpmd io (flat out)", "filament-l3-10-flowgen", FlowgenBaseline, 0.65},
}

// writeFlatGoals adds, under writeGoals' size, the goals measured flat out.
func writeFlatGoals(w io.Writer, m Meta, size string, sums []Summary, samples []Sample, verdict func(Stat, func(float64) bool) string) {
	if size != FlowgenSize {
		return // flat-out rows run at one size
	}
	var rows []string
	for _, g := range flatGoals {
		if !hasRow(samples, g.row) || !hasRow(samples, g.ref) {
			continue
		}
		r := molRatios(g.row, g.ref, size, samples)
		rows = append(rows, fmt.Sprintf("| %s | %s | %s |\n", g.what, ratio(r), verdict(r, func(v float64) bool { return v >= g.min })))
	}
	for _, s := range sums {
		if c := perPacket(m.TSCHz, s.MOL); s.Size == size && s.Row == "filament-l3-10-flowgen" && c.N > 0 {
			rows = append(rows, fmt.Sprintf("| IPv4 <= 90 cycles/packet (TSC / flat-out rate) | %s | %s |\n", cycles(c), verdict(c, func(v float64) bool { return v <= 90 })))
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "Flat out, with dpdk-testpmd flowgen as the generator (the section above):\n\n| goal | flat out | verdict |\n|---|---|---|\n%s\n", strings.Join(rows, ""))
}
