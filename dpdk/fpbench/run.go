package fpbench

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/filament-net/filament/dpdk/fastpath"
)

// Case is one row of the report: a scenario with a flow count and a frame
// size.
type Case struct {
	Scenario *Scenario
	Flows    int
	Size     int // inner Ethernet frame, bytes without FCS
}

func (c Case) String() string {
	return fmt.Sprintf("%s/%dB/%dflows", c.Scenario.Name, c.Size, c.Flows)
}

// Placement labels a sample by the cache-line round trip between the
// generator's CPU and the worker's, measured just before and just after it.
type Placement string

const (
	Near  Placement = "near"  // both probes under NearMaxNs
	Far   Placement = "far"   // both over
	Mixed Placement = "mixed" // the host moved the vCPUs during the sample
	// Unknown: no probe.
	Unknown Placement = "unprobed"
)

// NearMaxNs separates near (cores sharing a cache: 80-100 ns round trips
// measured here) from far (370-460 ns).
const NearMaxNs = 200

// Plan is an interleaved benchmark: every round runs every case once, in
// order, so slow drifts of the machine hit all cases alike.
type Plan struct {
	Cases  []Case
	Rounds int
	Opts   RunOpts
	// Probe measures the CPU0<->CPU1 cache-line round trip around every
	// sample (a few milliseconds each).
	Probe bool
	// NoisyOther: a sample during which other processes used more than
	// this many CPUs is noisy (0: never). Noisy and mixed-placement
	// samples are kept but left out of the tables.
	NoisyOther float64
	// Retries: run a noisy or mixed sample again, up to this many times,
	// RetryWait apart, while the whole run has spent less than
	// RetryBudget on it.
	Retries     int
	RetryWait   time.Duration
	RetryBudget time.Duration
	// Progress, if set, gets one line per sample.
	Progress io.Writer
}

// Sample is one run of one case.
type Sample struct {
	Case  Case
	Round int
	Res   fastpath.BenchResult
	// Cache-line round trips before and after, ns; Place from both.
	ProbeNs [2]float64
	Place   Placement
	// OtherCPU is the CPU time the rest of the machine used during the
	// sample, in CPUs (0.1 = 10% of one CPU); Steal the same for the host.
	OtherCPU, Steal float64
	// Excluded says why the sample is left out of the tables ("" = used).
	Excluded string
}

// CPP is the sample's cycles per packet: the median over slices when
// sliced, else the window's.
func (s Sample) CPP() float64 { return s.Res.SliceCyclesPerPacket() }

// PlanCases returns the cases for these scenarios, flow counts and sizes, the
// io baseline of each flow count and size first.
func PlanCases(scs []*Scenario, flows, sizes []int) []Case {
	var out []Case
	for _, size := range sizes {
		for _, f := range flows {
			for _, sc := range scs {
				out = append(out, Case{Scenario: sc, Flows: f, Size: size})
			}
		}
	}
	return out
}

// Execute runs the plan. A failing sample stops it: a harness that drops
// or leaks is not measuring the fast path.
func (e *Env) Execute(p Plan) ([]Sample, error) {
	if p.Rounds < 1 {
		return nil, fmt.Errorf("fpbench: %d rounds", p.Rounds)
	}
	gen, worker := e.DP.BenchCPUs()
	var out []Sample
	var retried time.Duration
	for round := 1; round <= p.Rounds; round++ {
		for _, c := range p.Cases {
			for attempt := 0; ; attempt++ {
				s, err := e.sample(p, c, round, gen, worker)
				if err != nil {
					return out, err
				}
				out = append(out, s)
				if p.Progress != nil {
					ex := ""
					if s.Excluded != "" {
						ex = "  (" + s.Excluded + ")"
					}
					fmt.Fprintf(p.Progress, "round %d %-28s %7.1f cycles/pkt (window %6.1f) burst %4.1f  %-5s %3.0f/%3.0f ns  other %3.0f%% steal %2.0f%%%s\n",
						round, c, s.CPP(), s.Res.CyclesPerPacket(), s.Res.AvgBurst(), s.Place,
						s.ProbeNs[0], s.ProbeNs[1], 100*s.OtherCPU, 100*s.Steal, ex)
				}
				if s.Excluded == "" || attempt >= p.Retries || retried >= p.RetryBudget {
					break
				}
				time.Sleep(p.RetryWait)
				retried += p.RetryWait
			}
		}
	}
	return out, nil
}

func (e *Env) sample(p Plan, c Case, round, gen, worker int) (Sample, error) {
	s := Sample{Case: c, Round: round, Place: Unknown}
	if p.Probe {
		s.ProbeNs[0] = e.probeNs(gen, worker)
	}
	c0 := readCPU()
	res, err := e.Run(c.Scenario, c.Flows, c.Size, p.Opts)
	c1 := readCPU()
	if err != nil {
		return s, err
	}
	s.Res = res
	s.OtherCPU, s.Steal = c1.since(c0)
	if p.Probe {
		s.ProbeNs[1] = e.probeNs(gen, worker)
		s.Place = place(s.ProbeNs)
	}
	switch {
	case s.Place == Mixed:
		s.Excluded = "placement changed"
	case p.NoisyOther > 0 && s.OtherCPU > p.NoisyOther:
		s.Excluded = "noisy"
	}
	return s, nil
}

// probeNs is one cache-line round trip between the CPUs, ns (0 on error).
func (e *Env) probeNs(a, b int) float64 {
	cyc, err := e.DP.BounceCycles(a, b, 2048)
	if err != nil {
		return 0
	}
	hz := e.TSCHz()
	if hz == 0 {
		return 0
	}
	return cyc / float64(hz) * 1e9
}

func place(ns [2]float64) Placement {
	switch {
	case ns[0] == 0 || ns[1] == 0:
		return Unknown
	case ns[0] < NearMaxNs && ns[1] < NearMaxNs:
		return Near
	case ns[0] >= NearMaxNs && ns[1] >= NearMaxNs:
		return Far
	}
	return Mixed
}

// TSCHz is the TSC frequency DPDK measured.
func (e *Env) TSCHz() uint64 { return fastpath.TSCHz() }

// cpuTimes are jiffies from /proc/stat (all CPUs) and /proc/self/stat.
type cpuTimes struct {
	busy, total, steal, self uint64
	ok                       bool
}

func readCPU() cpuTimes {
	var t cpuTimes
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return t
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return t
	}
	v := make([]uint64, len(f)-1)
	for i := range v {
		v[i], _ = strconv.ParseUint(f[i+1], 10, 64)
	}
	// user nice system idle iowait irq softirq steal [guest guest_nice]:
	// guest time is already in user.
	t.busy = v[0] + v[1] + v[2] + v[5] + v[6]
	t.steal = v[7]
	t.total = t.busy + v[3] + v[4] + v[7]
	s, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return t
	}
	// Fields after the command name (which may hold spaces): utime is the
	// 14th field overall, the 12th after ")".
	if i := strings.LastIndexByte(string(s), ')'); i >= 0 {
		g := strings.Fields(string(s)[i+1:])
		if len(g) > 12 {
			ut, _ := strconv.ParseUint(g[11], 10, 64)
			st, _ := strconv.ParseUint(g[12], 10, 64)
			t.self = ut + st
			t.ok = true
		}
	}
	return t
}

// since returns the CPU time others used and the host stole between t0 and
// t, in CPUs.
func (t cpuTimes) since(t0 cpuTimes) (other, steal float64) {
	if !t.ok || !t0.ok || t.total <= t0.total {
		return 0, 0
	}
	ncpu := float64(runtime.NumCPU())
	wall := float64(t.total-t0.total) / ncpu // jiffies of one CPU
	o := float64(t.busy-t0.busy) - float64(t.self-t0.self)
	if o < 0 {
		o = 0
	}
	return o / wall, float64(t.steal-t0.steal) / wall
}

// Load samples the machine for d: CPU time used by other processes and
// stolen by the host, in CPUs.
func Load(d time.Duration) (other, steal float64) {
	t0 := readCPU()
	time.Sleep(d)
	return readCPU().since(t0)
}

// WaitQuiet waits until other processes use less than maxOther CPUs over a
// 2 s sample, for at most max. It returns the last sample and whether the
// machine was quiet.
func WaitQuiet(maxOther float64, max time.Duration, log io.Writer) (other, steal float64, quiet bool) {
	deadline := time.Now().Add(max)
	for {
		other, steal = Load(2 * time.Second)
		if other < maxOther {
			return other, steal, true
		}
		if time.Now().After(deadline) {
			return other, steal, false
		}
		if log != nil {
			fmt.Fprintf(log, "machine busy: other processes use %.0f%% of a CPU, waiting (up to %s more)\n",
				100*other, time.Until(deadline).Round(time.Second))
		}
		time.Sleep(8 * time.Second)
	}
}
