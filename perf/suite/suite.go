package suite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/filament-net/filament/perf/placement"
	"github.com/filament-net/filament/perf/trafficgen"
)

// Row is one device under test with the traffic that exercises it.
type Row struct {
	Name    string
	DUT     DUT
	Traffic []string // filament-perf stream flags (without --size)
	What    string   // one line for the report
	// Overhead is added to every frame size (decapsulation rows send the
	// pod-side size plus the outer headers).
	Overhead int
	// NDRFlags come after the plan's (the last of a flag wins): what the
	// row's device needs, e.g. its own --max-rate.
	NDRFlags []string
	// Flows is how many distinct 5-tuples the traffic has.
	Flows int
	// PerFlows: the row's device works per flow (a cache, a hash), so it
	// is measured at every flow count of a run, not only the first.
	PerFlows bool
	// Flowgen: dpdk-testpmd flowgen is the generator, flat out both ways,
	// at 64 B only (flowgen.go): the row has a forwarding rate at maximum
	// offered load, no NDR or PDR, and Traffic is unused.
	Flowgen bool
}

// RunsAt says whether the row has a sample at a frame size: flat-out rows
// only at FlowgenSize.
func (r Row) RunsAt(size string) bool { return !r.Flowgen || size == FlowgenSize }

// Baseline is the row every ratio refers to.
const Baseline = "testpmd-io"

// Headline rows: testpmd's io and 5tswap on the same ports, then filament
// in each forwarding mode, OVS-DPDK doing filament's L3 and VXLAN
// encapsulation work, then through a kernel pod with each driver.
func Headline(flows int) []Row {
	rows := []Row{
		{Name: "testpmd-io", DUT: Testpmd{"io"}, Traffic: Traffic("", 1, flows), What: "dpdk-testpmd io: the port pair's limit", Flows: flows},
		{Name: "testpmd-5tswap", DUT: Testpmd{"5tswap"}, Traffic: Traffic("", 1, flows), What: "dpdk-testpmd 5tswap: L2-L4 headers touched", Flows: flows},
	}
	for _, f := range []struct {
		m        Mode
		routes   int
		what     string
		perFlows bool
	}{
		{L3, 10, "IPv4 L3: VRF lookup, TTL, MAC rewrite; 10 routes", true},
		{L3, 1 << 20, "IPv4 L3 with 1M /24 routes; 65,536 flows, one per 16 routes, touch every root-table line all 1M would", false},
		{VXLANEncap, 10, "pod -> VXLAN tunnel to a remote VTEP", true},
		{VXLANDecap, 10, "VXLAN from the fabric -> VNI -> VRF -> pod", true},
		{MPLSoUDPEncap, 10, "pod -> MPLSoUDP tunnel", false},
		{MPLSoUDPDecap, 10, "MPLSoUDP from the fabric -> label -> VRF -> pod", false},
	} {
		d := Filament{Mode: f.m, Routes: f.routes}
		fl := flows
		if !f.perFlows {
			// 1M routes: a flow per 16th route, whatever the flows. The
			// FIB's root entries are 4 bytes, 16 /24s a cache line: the
			// flows touch every line traffic to all 1M routes would,
			// and their templates fit the generator (MaxTemplates).
			fl = max(flows, f.routes/16)
		}
		rows = append(rows, Row{Name: d.Name(), DUT: d, Traffic: Traffic(f.m, f.routes, fl), What: f.what,
			Overhead: Overhead(f.m), Flows: fl, PerFlows: f.perFlows})
	}
	rows = append(rows, OVSRows(flows)...)
	rows = append(rows, FlowgenRows(flows)...)
	for _, drv := range []string{"af_xdp", "af_packet", "tap"} {
		d := KernelPod{Driver: drv, Routes: 10}
		rows = append(rows, Row{Name: d.Name(), DUT: d, Traffic: Traffic(L3, 10, flows),
			What:     "pod -> " + drv + " -> a kernel pod forwarding -> " + drv + " -> pod; 10 routes",
			NDRFlags: KernelPodNDRFlags, Flows: flows})
	}
	return rows
}

// Rows are the headline rows at the first flow count, then the rows that
// work per flow (filament L3 and VXLAN with 10 routes, OVS-DPDK: its
// exact-match and megaflow caches) again at each further count, named
// with it ("filament-l3-10-f10k").
func Rows(flows []int) []Row {
	if len(flows) == 0 {
		flows = []int{1}
	}
	rows := Headline(flows[0])
	for _, f := range flows[1:] {
		for _, r := range Headline(f) {
			if r.PerFlows {
				r.Name += FlowsSuffix(f)
				rows = append(rows, r)
			}
		}
	}
	return rows
}

// FlowsSuffix names a row's flow count: 10000 -> "-f10k".
func FlowsSuffix(flows int) string {
	if flows >= 1000 && flows%1000 == 0 {
		return fmt.Sprintf("-f%dk", flows/1000)
	}
	return fmt.Sprintf("-f%d", flows)
}

// Plan is an interleaved run: every round runs every (size, row) once.
type Plan struct {
	Rows   []Row
	Sizes  []string // filament-perf --size values: 64, 512, imix
	Rounds int
	// NDRFlags are passed to every `filament-perf ndr` (--trial ...).
	NDRFlags []string
	Progress io.Writer
	// Done, if set, gets the samples so far after each one (to keep them
	// on disk while the run goes on).
	Done func([]Sample)
	// Budget, if set, bounds the run's time: a round starts only if the
	// last one's duration still fits in it, a sample only if its estimate
	// does; Run then stops with ErrBudget.
	Budget time.Duration
	// Prior estimates a row's sample before one has run (Estimate);
	// later estimates are the row's own samples' mean duration.
	Prior func(Row) time.Duration
	// RetryMixed runs a sample during which the host moved the vCPUs
	// (placement Mixed: it pairs with no baseline) once more, budget
	// allowing; both stay in the samples.
	RetryMixed bool
	// Logs, if set, is a directory that keeps each sample's filament-perf
	// ndr output (every trial's accounting), as
	// <round>-<size>-<row>.log (a retry's -again.log): what a surprising
	// sample did.
	Logs string
}

// ErrBudget: the plan did not fit in its time budget; the samples run are
// returned.
var ErrBudget = errors.New("time budget reached")

// Sample is one row at one size in one round.
type Sample struct {
	Row, Size string
	Round     int
	NDR, PDR  float64 // pps
	// Latency at 50% of PDR (the first stream), ns.
	P50, P99, P999 float64
	// Hist is the latency histogram at 50% of PDR (for the CDF plot).
	Hist  []trafficgen.HistBin `json:",omitempty"`
	TSCHz uint64
	// ProbeNs are the generator-device CPU round trips before and after
	// the sample; Place labels it from them.
	ProbeNs [2]float64
	Place   placement.Label
	Err     string `json:",omitempty"`
	// Trials and Void count the search trials (NDR and PDR) and those
	// the generator spoiled and ran again.
	Trials, Void int
	// Elapsed is the sample's wall time; Setup the part before the
	// generator started (placement probe, the device's start, its routes).
	Elapsed, Setup time.Duration `json:",omitempty"`
	// MOL is a flat-out row's forwarding rate at maximum offered load
	// (pps, both directions); Refused the share of the generator's frames
	// the device's RX rings did not take (Row.Flowgen).
	MOL     float64 `json:",omitempty"`
	Refused float64 `json:",omitempty"`
}

// Run runs the plan; a sample that fails is recorded with its error and
// the run goes on.
func Run(ctx context.Context, env *Env, p Plan) ([]Sample, error) {
	if p.Rounds < 1 {
		p.Rounds = 1
	}
	var out []Sample
	start := time.Now()
	est := newETA(p)
	var lastRound time.Duration
	for round := 1; round <= p.Rounds; round++ {
		r0 := time.Now()
		// A round that cannot finish in the budget is not started: rounds
		// stay whole, every row interleaved with its baseline.
		if p.Budget > 0 && round > 1 && time.Since(start)+lastRound > p.Budget {
			return out, fmt.Errorf("%w: round %d would take about %v more, %v of %v used", ErrBudget, round,
				lastRound.Round(time.Second), time.Since(start).Round(time.Second), p.Budget)
		}
		for _, size := range p.Sizes {
			for _, row := range p.Rows {
				if ctx.Err() != nil {
					return out, ctx.Err()
				}
				if !row.RunsAt(size) {
					continue
				}
				for attempt := 0; ; attempt++ {
					if d := est.sample(row, size); p.Budget > 0 && time.Since(start)+d > p.Budget {
						return out, fmt.Errorf("%w: %s would take about %v, %v of %v used", ErrBudget, row.Name,
							d.Round(time.Second), time.Since(start).Round(time.Second), p.Budget)
					}
					s := runOne(ctx, env, p, row, size, round, attempt)
					s.Round = round
					out = append(out, s)
					est.done(s)
					if p.Done != nil {
						p.Done(out)
					}
					again := p.RetryMixed && attempt == 0 && s.Err == "" && s.Place == placement.Mixed
					if p.Progress != nil {
						p.progress(s, row, est.left(round, size, row.Name), time.Since(start), again)
					}
					if !again {
						break
					}
				}
			}
		}
		lastRound = time.Since(r0)
	}
	return out, nil
}

// progress prints sample s's line: its rates, or why it failed, then the
// ETA (left: the rest of the run), the budget used and whether it runs
// again.
func (p Plan) progress(s Sample, row Row, left, used time.Duration, again bool) {
	eta := fmt.Sprintf("ETA %s (%v left", time.Now().Add(left).UTC().Format("15:04:05"), left.Round(time.Second))
	if p.Budget > 0 {
		eta += fmt.Sprintf(", %v of %v budget used", used.Round(time.Second), p.Budget)
	}
	eta += ")"
	if again {
		eta += "; the placement changed during it: once more"
	}
	if s.Err != "" {
		fmt.Fprintf(p.Progress, "round %d %s %s: failed (%v): %s\n%s\n", s.Round, s.Size, row.Name,
			s.Elapsed.Round(time.Second), s.Err, eta)
		return
	}
	if row.Flowgen {
		fmt.Fprintf(p.Progress, "round %d %-5s %-28s flat out %7.3f Mpps, %4.1f%% refused  (%v)  %s\n",
			s.Round, s.Size, row.Name, s.MOL/1e6, 100*s.Refused, s.Elapsed.Round(time.Second), eta)
		return
	}
	fmt.Fprintf(p.Progress, "round %d %-5s %-28s NDR %7.3f  PDR %7.3f Mpps  p50 %6.1f us  (%v)  %s\n",
		s.Round, s.Size, row.Name, s.NDR/1e6, s.PDR/1e6, s.P50/1e3, s.Elapsed.Round(time.Second), eta)
}

func runOne(ctx context.Context, env *Env, p Plan, row Row, size string, round, attempt int) (s Sample) {
	s = Sample{Row: row.Name, Size: size}
	t0 := time.Now()
	defer func() { s.Elapsed = time.Since(t0) }()
	dir, err := os.MkdirTemp(env.Dir, row.Name+"-")
	if err != nil {
		s.Err = err.Error()
		return s
	}
	defer os.RemoveAll(dir)
	defer func() {
		// A failed sample says what the device under test logged.
		if s.Err == "" {
			return
		}
		logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		for _, l := range logs {
			if b, err := os.ReadFile(l); err == nil {
				s.Err += fmt.Sprintf("\n%s:\n%s", filepath.Base(l), tailLines(string(b), 8))
			}
		}
	}()
	// The placement is probed while neither side runs: both poll
	// without pause, and a probe sharing a CPU with them measures the
	// scheduler instead.
	s.ProbeNs[0], _ = placement.RoundTripNs(env.GenCPU, env.DUTCPU)
	defer func() {
		s.ProbeNs[1], _ = placement.RoundTripNs(env.GenCPU, env.DUTCPU)
		s.Place = placement.Of(s.ProbeNs[0], s.ProbeNs[1])
	}()
	a, b := filepath.Join(dir, "a.sock"), filepath.Join(dir, "b.sock")
	sub := *env
	sub.Dir = dir
	stop, err := row.DUT.Start(ctx, &sub, a, b)
	if err != nil {
		s.Err = fmt.Sprintf("start %s: %v", row.Name, err)
		return s
	}
	s.Setup = time.Since(t0)
	if row.Flowgen {
		return runFlat(ctx, env, p, row, s, stop, a, b, dir, round, attempt)
	}
	res := filepath.Join(dir, "ndr.json")
	wire := wireSizes(size, row.Overhead)
	args := []string{"ndr", "--cpu", fmt.Sprint(env.GenCPU),
		"--port", "net_memif0,role=client,id=0,socket-abstract=no,zero-copy=yes,socket=" + a,
		"--port", "net_memif1,role=client,id=0,socket-abstract=no,zero-copy=yes,socket=" + b,
		"--size", wire, "--mtu", fmt.Sprint(genMTU(wire)), "--json", res}
	args = append(append(append(args, p.NDRFlags...), row.NDRFlags...), row.Traffic...)
	cmd := exec.CommandContext(ctx, env.Perf, args...)
	// Interrupted, the generator closes its ports and removes its EAL
	// runtime directory on SIGTERM; killed, it left them behind.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if werr := p.keepLog(round, size, row.Name, attempt, out); werr != nil && err == nil {
		err = werr
	}
	// The generator goes first: a memif peer that disconnects can crash
	// the side still polling (DPDK 22.11).
	if serr := stop(); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		s.Err = fmt.Sprintf("%v: %s (filament-perf %s)", err, tailLines(string(out), 6), strings.Join(args, " "))
		return s
	}
	var rep struct {
		TSCHz    uint64
		NDR, PDR struct {
			PPS  float64
			Each []struct{ Void bool }
		}
		Latency []struct {
			PercentOfPDR int
			Result       struct {
				Streams []struct {
					Latency struct {
						P50, P99, P999 time.Duration
						Hist           []trafficgen.HistBin
					}
				}
			}
		}
	}
	bs, err := os.ReadFile(res)
	if err == nil {
		err = json.Unmarshal(bs, &rep)
	}
	if err != nil {
		s.Err = fmt.Sprintf("results: %v", err)
		return s
	}
	s.NDR, s.PDR, s.TSCHz = rep.NDR.PPS, rep.PDR.PPS, rep.TSCHz
	for _, t := range append(rep.NDR.Each, rep.PDR.Each...) {
		s.Trials++
		if t.Void {
			s.Void++
		}
	}
	for _, l := range rep.Latency {
		if l.PercentOfPDR == 50 && len(l.Result.Streams) > 0 {
			lat := l.Result.Streams[0].Latency
			s.P50, s.P99, s.P999 = float64(lat.P50), float64(lat.P99), float64(lat.P999)
			s.Hist = lat.Hist
		}
	}
	return s
}

// keepLog writes a sample's generator output into p.Logs, if set. A retry
// (RetryMixed) keeps the first attempt's log beside its own.
func (p Plan) keepLog(round int, size, row string, attempt int, out []byte) error {
	if p.Logs == "" {
		return nil
	}
	name := fmt.Sprintf("%d-%s-%s.log", round, size, row)
	if attempt > 0 {
		name = fmt.Sprintf("%d-%s-%s-again.log", round, size, row)
	}
	if err := os.WriteFile(filepath.Join(p.Logs, name), out, 0o644); err != nil {
		return fmt.Errorf("--logs: %w", err)
	}
	return nil
}

// runFlat is runOne's flat-out sample: testpmd flowgen, then the device
// stopped.
func runFlat(ctx context.Context, env *Env, p Plan, row Row, s Sample, stop func() error, a, b, dir string, round, attempt int) Sample {
	log := filepath.Join(dir, "flowgen.log")
	r, err := runFlowgen(ctx, env, row, a, b, log)
	out, _ := os.ReadFile(log)
	if werr := p.keepLog(round, s.Size, row.Name, attempt, out); werr != nil && err == nil {
		err = werr
	}
	// The generator has gone first (a memif peer that disconnects can
	// crash the side still polling, DPDK 22.11).
	if serr := stop(); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		s.Err = fmt.Sprintf("flat out (dpdk-testpmd flowgen): %v", err)
		return s
	}
	s.MOL, s.Refused = r.Rate, r.Refused
	return s
}

// wireSizes is a --size value with overhead added to each frame.
func wireSizes(size string, overhead int) string {
	if overhead == 0 {
		return size
	}
	var in []int
	if strings.EqualFold(size, "imix") {
		in = trafficgen.IMIX
	} else {
		for _, f := range strings.Split(size, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return size // filament-perf says what is wrong with it
			}
			in = append(in, n)
		}
	}
	out := make([]string, len(in))
	for i, n := range in {
		out[i] = strconv.Itoa(n + overhead)
	}
	return strings.Join(out, ",")
}

// genMTU is the generator ports' MTU for frames of wire sizes (FCS
// included): 1500, or what the largest needs (a decapsulation row's IMIX
// frames are 1568 bytes). memif has no MTU of its own: this is the
// generator's bound, not the device's.
func genMTU(wire string) int {
	mtu := 1500
	for _, f := range strings.Split(wire, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			mtu = max(mtu, n-trafficgen.FrameOverhead)
		}
	}
	return mtu
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Stat is a median with its range over rounds.
type Stat struct {
	Median, Min, Max float64
	N                int
}

func stat(v []float64) Stat {
	if len(v) == 0 {
		return Stat{}
	}
	v = slices.Clone(v)
	sort.Float64s(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return Stat{Median: m, Min: v[0], Max: v[len(v)-1], N: len(v)}
}

// Summary is a row at a size over its rounds.
type Summary struct {
	Row, Size, What string
	Flows           int
	NDR, PDR        Stat
	// NDRRatio is the NDR's median ratio to the baseline's over rounds
	// (each round's NDR over the same round's baseline NDR).
	NDRRatio, PDRRatio Stat
	P50, P99, P999     Stat // ns at 50% of PDR
	Errors             []string
	// Places are the samples' placements; Mixed counts those left out
	// because the host moved the vCPUs during them.
	Places []placement.Label
	Mixed  int
	// Peer is the OVS-DPDK row doing this row's work (OVSPeer), and
	// PeerNDRRatio, PeerPDRRatio this row's rates over its, round by round.
	Peer                       string
	PeerNDRRatio, PeerPDRRatio Stat
	// Flat-out rows (Row.Flowgen): the forwarding rate at maximum offered
	// load, its ratios to FlowgenBaseline's and to testpmd 5tswap's
	// flat-out rate (round by round, same placement), and the share of
	// frames the device refused.
	Flowgen                  bool
	MOL, MOLRatio, MOL5tswap Stat
	Refused                  Stat
}

// replaces says whether sample s, of the same row, size and round as old
// (zero if none), stands for the round instead: a retry after a sample
// during which the placement changed (Plan.RetryMixed), never the other
// way round.
func replaces(old, s Sample) bool {
	return old.Row == "" || old.Place == placement.Mixed || s.Place != placement.Mixed
}

// take notes sample s in the summary of its row and size (its error, or
// its placement) and says whether its figures count: not failed, not
// mixed.
func (sm *Summary) take(s Sample) bool {
	if s.Row != sm.Row || s.Size != sm.Size {
		return false
	}
	if s.Err != "" {
		sm.Errors = append(sm.Errors, s.Err)
		return false
	}
	sm.Places = append(sm.Places, s.Place)
	if s.Place == placement.Mixed {
		sm.Mixed++
		return false
	}
	return true
}

// Summarize groups samples by (size, row) in plan order, ratios taken
// round by round against the baseline row of the same size.
func Summarize(p Plan, samples []Sample) []Summary {
	base := map[[2]any]Sample{}
	for _, s := range samples {
		if k := [2]any{s.Size, s.Round}; s.Row == Baseline && s.Err == "" && replaces(base[k], s) {
			base[k] = s
		}
	}
	// A ratio compares two samples only if the host had the vCPUs in the
	// same place for both (unprobed counts as a place of its own).
	var out []Summary
	for _, size := range p.Sizes {
		for _, row := range p.Rows {
			if !row.RunsAt(size) {
				continue
			}
			sm := Summary{Row: row.Name, Size: size, What: row.What, Flows: row.Flows, Flowgen: row.Flowgen}
			if row.Flowgen {
				out = append(out, summarizeFlat(sm, samples))
				continue
			}
			var ndr, pdr, rn, rp, p50, p99, p999 []float64
			for _, s := range samples {
				if !sm.take(s) {
					continue
				}
				ndr, pdr = append(ndr, s.NDR), append(pdr, s.PDR)
				p50, p99, p999 = append(p50, s.P50), append(p99, s.P99), append(p999, s.P999)
				// Within one placement only; a noisy round can leave the
				// baseline without an NDR (a frame lost at every rate) and
				// still with a PDR.
				if b, ok := base[[2]any{size, s.Round}]; ok && b.NDR > 0 && b.Place == s.Place {
					rn = append(rn, s.NDR/b.NDR)
				}
				if b, ok := base[[2]any{size, s.Round}]; ok && b.PDR > 0 && b.Place == s.Place {
					rp = append(rp, s.PDR/b.PDR)
				}
			}
			sm.NDR, sm.PDR, sm.NDRRatio, sm.PDRRatio = stat(ndr), stat(pdr), stat(rn), stat(rp)
			sm.P50, sm.P99, sm.P999 = stat(p50), stat(p99), stat(p999)
			sm.Peer = OVSPeer(row.Name)
			sm.PeerNDRRatio, sm.PeerPDRRatio = peerRatios(row.Name, sm.Peer, size, samples)
			out = append(out, sm)
		}
	}
	return out
}
