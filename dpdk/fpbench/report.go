package fpbench

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Row aggregates the samples of one case in one placement.
type Row struct {
	Case  Case
	Place Placement
	N     int
	// Cycles per packet over the samples: median, min, max.
	Median, Min, Max float64
	// WorkerMpps is TSC Hz / Median: the worker's capacity.
	WorkerMpps float64
	// Burst is the median packets per busy poll (32 = saturated).
	Burst float64
	// Delta is Median minus the io baseline's median (same size, flows and
	// placement); NaN without a baseline.
	Delta float64
	// Met: Delta within the scenario's goal.
	Met   bool
	baseN int // samples of the io baseline
}

// MinSamples is how many samples a row (and its io baseline) needs to be
// judged against its goal.
const MinSamples = 3

// HasGoal says whether the row is judged against a goal: it has one, an io
// baseline, and enough samples.
func (r Row) HasGoal() bool {
	return r.Case.Scenario.Goal > 0 && !math.IsNaN(r.Delta) && r.N >= MinSamples && r.baseN >= MinSamples
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Summarize groups the samples that are not excluded by placement and
// case, in plan order.
func Summarize(samples []Sample, hz uint64) map[Placement][]Row {
	type key struct {
		c Case
		p Placement
	}
	var order []key
	by := map[key][]Sample{}
	for _, s := range samples {
		if s.Excluded != "" {
			continue
		}
		k := key{s.Case, s.Place}
		if _, ok := by[k]; !ok {
			order = append(order, k)
		}
		by[k] = append(by[k], s)
	}
	// Plan order (size, flows, scenario), whatever order the placements
	// came in.
	rank := map[string]int{}
	for i, sc := range Scenarios() {
		rank[sc.Name] = i
	}
	sort.SliceStable(order, func(i, j int) bool {
		a, b := order[i].c, order[j].c
		if a.Size != b.Size {
			return a.Size < b.Size
		}
		if a.Flows != b.Flows {
			return a.Flows < b.Flows
		}
		return rank[a.Scenario.Name] < rank[b.Scenario.Name]
	})
	out := map[Placement][]Row{}
	base := map[string]Row{}
	for _, k := range order {
		ss := by[k]
		var cpp, burst []float64
		for _, s := range ss {
			cpp = append(cpp, s.CPP())
			burst = append(burst, s.Res.AvgBurst())
		}
		r := Row{Case: k.c, Place: k.p, N: len(ss), Median: median(cpp), Burst: median(burst),
			Min: math.Inf(1), Max: math.Inf(-1), Delta: math.NaN()}
		for _, v := range cpp {
			r.Min = math.Min(r.Min, v)
			r.Max = math.Max(r.Max, v)
		}
		if r.Median > 0 {
			r.WorkerMpps = float64(hz) / r.Median / 1e6
		}
		if k.c.Scenario.Baseline() {
			base[fmt.Sprintf("%s/%d/%d", k.p, k.c.Size, k.c.Flows)] = r
		}
		out[k.p] = append(out[k.p], r)
	}
	for p, rows := range out {
		for i := range rows {
			r := &rows[i]
			if b, ok := base[fmt.Sprintf("%s/%d/%d", p, r.Case.Size, r.Case.Flows)]; ok && !r.Case.Scenario.Baseline() {
				r.Delta = r.Median - b.Median
				r.Met = r.Delta <= r.Case.Scenario.Goal
				r.baseN = b.N
			}
		}
	}
	return out
}

// Meta is what the report says about the run.
type Meta struct {
	Date          time.Time
	Command       string
	CPUModel      string
	CPUs          int
	Kernel        string
	DPDK, Go      string
	TSCHz         uint64
	Huge          bool
	EAL           []string
	Rounds        int
	Opts          RunOpts
	GenCPU        int
	WorkerCPU     int
	QuietBefore   float64 // other processes' CPU before the run, in CPUs
	StealBefore   float64
	Quiet         bool
	Duration      time.Duration
	ScenarioNames []string
	NoisyOther    float64
	Retries       int
}

// Table is the Markdown table of some rows.
func Table(rows []Row) string {
	var b strings.Builder
	b.WriteString("| scenario | frame | flows | cycles/pkt median | min-max | samples | burst | worker Mpps | vs io | goal | met |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	few := false
	for _, r := range rows {
		n := fmt.Sprint(r.N)
		if r.N < 3 {
			n += "*"
			few = true
		}
		delta, goal, met := "-", "-", "baseline"
		if !r.Case.Scenario.Baseline() {
			goal = fmt.Sprintf("<= +%.0f", r.Case.Scenario.Goal)
			met = "no io baseline"
			if !math.IsNaN(r.Delta) {
				delta = fmt.Sprintf("%+.1f", r.Delta)
				switch {
				case !r.HasGoal() && r.Met:
					met = "(yes)"
				case !r.HasGoal():
					met = "(no)"
				case r.Met:
					met = "yes"
				default:
					met = "**NO**"
				}
			}
		}
		fmt.Fprintf(&b, "| %s | %d B | %d | %.1f | %.1f-%.1f | %s | %.1f | %.1f | %s | %s | %s |\n",
			r.Case.Scenario.Name, r.Case.Size, r.Case.Flows, r.Median, r.Min, r.Max, n,
			r.Burst, r.WorkerMpps, delta, goal, met)
	}
	if few {
		b.WriteString("\n\\* fewer than 3 samples in this placement: indicative only, not judged (met in parentheses).\n")
	}
	return b.String()
}

// Verdict summarises the goals over rows: how many were judged and which
// missed.
func Verdict(rows []Row) (judged int, missed []string) {
	for _, r := range rows {
		if !r.HasGoal() {
			continue
		}
		judged++
		if !r.Met {
			missed = append(missed, fmt.Sprintf("%s %d B %d flows (%+.1f, goal +%.0f)",
				r.Case.Scenario.Name, r.Case.Size, r.Case.Flows, r.Delta, r.Case.Scenario.Goal))
		}
	}
	return judged, missed
}

var placeOrder = []Placement{Near, Far, Unknown, Mixed}

// Markdown renders docs/benchmarks/fastpath.md.
func Markdown(m Meta, samples []Sample) string {
	var b strings.Builder
	sum := Summarize(samples, m.TSCHz)
	counts := map[Placement]int{}
	excluded := map[string]int{}
	goalCases := map[Case]bool{}
	for _, s := range samples {
		if !s.Case.Scenario.Baseline() {
			goalCases[s.Case] = true
		}
	}
	var other, steal []float64
	for _, s := range samples {
		counts[s.Place]++
		other = append(other, s.OtherCPU)
		steal = append(steal, s.Steal)
		if s.Excluded != "" {
			excluded[s.Excluded]++
		}
	}
	p := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }

	p("# Fast path benchmark: cycles per packet\n\n")
	p("Written by `filament-fpbench` (`make bench-fastpath`); regenerate rather than edit.\n")
	p("The in-process harness of `dpdk/fpbench`: ring ports, a C generator on one CPU, ")
	p("the forwarding worker on the other, every scenario in the same run, interleaved.\n\n")

	p("## Machine and command\n\n")
	p("- Date: %s\n", m.Date.UTC().Format("2006-01-02 15:04 MST"))
	p("- Command: `%s` (run time %s)\n", m.Command, m.Duration.Round(time.Second))
	p("- CPU: %s, %d CPUs, TSC %.3f GHz; kernel %s\n", m.CPUModel, m.CPUs, float64(m.TSCHz)/1e9, m.Kernel)
	p("- %s, %s; EAL `%s`%s\n", m.DPDK, m.Go, strings.Join(m.EAL, " "), map[bool]string{true: "", false: " (**no hugepages**: not comparable)"}[m.Huge])
	p("- Generator on CPU %d, worker (lcore 1) on CPU %d; %d rounds, each case measured for %s ",
		m.GenCPU, m.WorkerCPU, m.Rounds, m.Opts.Duration)
	p("(after %d warm-up packets, %d mbufs in flight, cycles/packet = median over %s slices)\n",
		m.Opts.Warmup, m.Opts.InFlight, m.Opts.Slice)
	quiet := "quiet"
	if !m.Quiet {
		quiet = "**busy** (gave up waiting)"
	}
	p("- Machine before the run: other processes %.0f%% of a CPU, steal %.0f%% (%s); during samples: other processes median %.0f%% (max %.0f%%), steal median %.0f%%\n",
		100*m.QuietBefore, 100*m.StealBefore, quiet, 100*median(other), 100*maxf(other), 100*median(steal))
	p("- Placement (cache-line round trip CPU %d <-> CPU %d before and after every sample, near < %d ns): ",
		m.GenCPU, m.WorkerCPU, NearMaxNs)
	probes := map[Placement][]float64{}
	for _, s := range samples {
		if s.Place == Near || s.Place == Far {
			probes[s.Place] = append(probes[s.Place], s.ProbeNs[0], s.ProbeNs[1])
		}
	}
	var pl []string
	for _, k := range placeOrder {
		if counts[k] > 0 {
			if v := probes[k]; len(v) > 0 {
				pl = append(pl, fmt.Sprintf("%d %s (round trip median %.0f ns)", counts[k], k, median(v)))
			} else {
				pl = append(pl, fmt.Sprintf("%d %s", counts[k], k))
			}
		}
	}
	p("%s samples\n", strings.Join(pl, ", "))
	p("- Left out of the tables: %d noisy samples (other processes over %.0f%% of a CPU), %d during which the placement changed; each was retried up to %d times\n\n",
		excluded["noisy"], 100*m.NoisyOther, excluded["placement changed"], m.Retries)

	p("## Goals\n\n")
	p("IPv4 route + rewrite <= io + %d cycles/packet, each encapsulation and decapsulation <= io + %d, ", GoalRoute, GoalTunnel)
	p("judged on medians of the same placement. Near is the reference (the placement of the baselines in ")
	p("`benchmarking.md`); far rows appear when the host ran the vCPUs apart during the run (see How to read it).\n\n")
	for _, k := range placeOrder {
		rows := sum[k]
		if len(rows) == 0 || k == Mixed {
			continue
		}
		judged, missed := Verdict(rows)
		unjudged := ""
		if n := len(goalCases) - judged; n > 0 {
			unjudged = fmt.Sprintf(" (%d of %d cases not judged: fewer than %d clean samples of them or of their io baseline here)", n, len(goalCases), MinSamples)
		}
		switch {
		case judged == 0:
			p("- %s placement: nothing judged (fewer than %d clean samples per case)\n", k, MinSamples)
		case len(missed) == 0:
			p("- %s placement: **all %d met**%s\n", k, judged, unjudged)
		default:
			p("- %s placement: %d of %d met%s; missed: %s\n", k, judged-len(missed), judged, unjudged, strings.Join(missed, "; "))
		}
	}
	p("\n")

	for _, k := range placeOrder {
		rows := sum[k]
		if len(rows) == 0 {
			continue
		}
		switch k {
		case Near:
			p("## Near placement (the two vCPUs on cores sharing a cache)\n\n")
		case Far:
			p("## Far placement (the two vCPUs on cores not sharing a cache)\n\n")
		case Unknown:
			p("## Unprobed samples\n\n")
		}
		p("%s\n", Table(rows))
	}

	p("## How to read it\n\n")
	p("- **cycles/pkt** is the worker's own accounting: TSC cycles of the polls that received packets ")
	p("divided by the packets received (`fp_lcore_stats.busy_cycles / rx_pkts`), on a saturated worker ")
	p("(**burst** = packets per busy poll; 32 is a full burst every poll, so the generator was not the limit). ")
	p("Each sample is the median over its slices, so a slice in which the kernel preempted or interrupted ")
	p("the worker (those cycles count as busy) does not move it; the table gives the median and range over rounds.\n")
	p("- **worker Mpps** = TSC Hz / cycles per packet: what one core forwards when always busy.\n")
	p("- **vs io** is the median minus the io-forward median of the same frame size, flow count and placement: ")
	p("what the pipeline costs over receiving and sending a packet. The goals are judged on it.\n")
	p("- The absolute numbers include the ring PMD (a multi-producer enqueue per burst) and the cross-CPU ")
	p("cache misses on every mbuf header and packet the generator just wrote: they stand for a NIC's RX/TX ")
	p("cost only roughly; the deltas are the portable part.\n")
	p("- **Placement decides the absolute numbers here too**, contrary to the intuition that rings make ")
	p("it irrelevant: the generator and the worker hand every mbuf (its header line, the packet's lines ")
	p("and the ring slots) from one CPU to the other, so every packet pays cross-CPU cache-line ")
	p("transfers, which cost 4-5 times more when the host runs the two vCPUs on cores that do not share ")
	p("a cache (far) than when they do (near): io-forward measured 16-19 cycles/packet near and 53-75 far ")
	p("here. The deltas vs io grow less, but they grow as well (each packet line the pipeline reads is ")
	p("one more far transfer, which io-forward never makes). Compare only rows of one placement; samples during ")
	p("which the placement changed are left out, and near is the figure to quote (a NIC's DMA does not ")
	p("bounce lines between two cores).\n")
	p("- io: %s.\n", findAbout("io"))
	for _, n := range m.ScenarioNames {
		if n != "io" {
			p("- %s: %s.\n", n, findAbout(n))
		}
	}
	p("- Frame sizes are the inner Ethernet frame without FCS (a 64 B frame carries 50 B of IPv4/UDP); ")
	p("flows differ in their inner UDP source port (and, on the fabric, the outer one).\n\n")

	p("## Method\n\n")
	p("Following `benchmarking.md`: one process, the dataplane started once, every scenario built, ")
	p("measured and torn down in turn within a round (A B C ... A B C ...), %d rounds, medians; ", m.Rounds)
	p("the command waits for a quiet machine first. The generator (`dpdk/fastpath/fp_bench.c`) runs on ")
	p("the control thread pinned to CPU %d and keeps a fixed set of mbufs circulating: it takes what ", m.GenCPU)
	p("the out port sent from that port's TX ring, rewrites each mbuf from the next flow's template ")
	p("(data offset, lengths, flags, a copy of the frame) and enqueues it on the in port's RX ring; no ")
	p("allocation and no cgo call per packet. A run fails if any frame is dropped or lost or an mbuf ")
	p("is not returned to the pool. Reproduce one number: `go test -run '^$' -bench . ./dpdk/fpbench/`.\n\n")
	p("Where the cycles go: this VM has no PMU counters for `perf stat`, but `perf record -e cpu-clock -p <pid>` ")
	p("samples the worker (thread `rte-worker-1`), and callgrind counts instructions per packet exactly ")
	p("(it needs anonymous memory and no async preemption; divide by the packets forwarded):\n\n")
	p("    go test -c -o /tmp/fpbench.test ./dpdk/fpbench\n")
	p("    GODEBUG=asyncpreemptoff=1 FPBENCH_NO_HUGE=1 valgrind --tool=callgrind --separate-threads=yes \\\n")
	p("      /tmp/fpbench.test -test.run '^$' -test.bench 'BenchmarkIPv4/flows=1$' -test.benchtime 200000x\n")
	return b.String()
}

func maxf(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = math.Max(m, x)
	}
	return m
}

func findAbout(name string) string {
	sc, err := ScenarioByName(name)
	if err != nil {
		return ""
	}
	return sc.About
}
