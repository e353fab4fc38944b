// Command filament-fpbench measures the fast path's cycles per packet for
// every scenario of dpdk/fpbench in one process: interleaved rounds, medians,
// near/far placement labelled, and prints (or writes) the Markdown report of
// docs/benchmarks/fastpath.md.
//
//	filament-fpbench [-rounds 12] [-duration 250ms] [-flows 1,1024] [-sizes 64,512] [-doc FILE]
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/dpdk/fpbench"
)

func main() {
	rounds := flag.Int("rounds", 12, "rounds; each runs every case once (>= 3 for a meaningful median)")
	duration := flag.Duration("duration", 250*time.Millisecond, "measured window of each sample")
	slice := flag.Duration("slice", time.Millisecond, "slice of the window; a sample's cycles/packet is the median slice")
	warmup := flag.Uint64("warmup", 8192, "packets forwarded before each window")
	inflight := flag.Int("inflight", 1024, "mbufs circulating between generator and worker")
	flows := flag.String("flows", "1,1024", "flow counts, comma separated")
	sizes := flag.String("sizes", "64,512", "inner frame sizes in bytes, comma separated")
	scenarios := flag.String("scenarios", "", "scenarios, comma separated (default all; io is always included)")
	probe := flag.Bool("probe", true, "label samples near/far with a cache-line round trip probe")
	quietMax := flag.Float64("quiet-max", 0.10, "wait until other processes use less than this many CPUs")
	quietWait := flag.Duration("quiet-wait", 2*time.Minute, "longest wait for a quiet machine (0: do not wait)")
	noisy := flag.Float64("noisy", 0.25, "leave out (and retry) samples during which other processes used more than this many CPUs (0: keep all)")
	retries := flag.Int("retries", 2, "retries of a noisy sample or one during which the placement changed")
	retryWait := flag.Duration("retry-wait", 2*time.Second, "pause before a retry")
	retryBudget := flag.Duration("retry-budget", time.Minute, "most time spent pausing for retries in the whole run")
	doc := flag.String("doc", "", "also write the report to this file (docs/benchmarks/fastpath.md)")
	mem := flag.Int("mem", 512, "MiB of memory without hugepages (--no-huge fallback)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [flags]\n\n"+
			"Measures the fast path's cycles/packet for every dpdk/fpbench scenario, interleaved,\n"+
			"and prints the Markdown report (make bench-fastpath writes docs/benchmarks/fastpath.md).\n"+
			"Needs 2 CPUs (generator on CPU 0, worker on CPU 1) and, for real numbers, hugepages.\n\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	plan := fpbench.Plan{
		Rounds: *rounds, Probe: *probe, Progress: os.Stderr,
		Opts:       fpbench.RunOpts{Duration: *duration, Slice: *slice, Warmup: *warmup, InFlight: *inflight},
		NoisyOther: *noisy, Retries: *retries, RetryWait: *retryWait, RetryBudget: *retryBudget,
	}
	if err := run(plan, *flows, *sizes, *scenarios, *quietMax, *quietWait, *doc, *mem); err != nil {
		fmt.Fprintln(os.Stderr, "filament-fpbench:", err)
		os.Exit(1)
	}
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(plan fpbench.Plan, flowsArg, sizesArg, scArg string, quietMax float64, quietWait time.Duration,
	doc string, mem int) error {
	if plan.Rounds < 1 || plan.Opts.Duration <= 0 {
		return fmt.Errorf("need rounds >= 1 and a duration")
	}
	flows, err := ints(flowsArg)
	if err != nil {
		return err
	}
	sizes, err := ints(sizesArg)
	if err != nil {
		return err
	}
	scs := fpbench.Scenarios()
	if scArg != "" {
		scs = scs[:1] // io
		for _, n := range strings.Split(scArg, ",") {
			if n = strings.TrimSpace(n); n == "io" {
				continue
			}
			sc, err := fpbench.ScenarioByName(n)
			if err != nil {
				return err
			}
			scs = append(scs, sc)
		}
	}
	var names []string
	for _, sc := range scs {
		names = append(names, sc.Name)
	}

	quiet, steal, ok := 0.0, 0.0, true
	if quietWait > 0 {
		quiet, steal, ok = fpbench.WaitQuiet(quietMax, quietWait, os.Stderr)
		if !ok {
			fmt.Fprintf(os.Stderr, "machine still busy (%.0f%% of a CPU): measuring anyway, the report says so\n", 100*quiet)
		}
	}
	env, err := fpbench.Start(mem)
	if err != nil {
		return err
	}
	defer env.Close()
	plan.Cases = fpbench.PlanCases(scs, flows, sizes)
	start := time.Now()
	samples, err := env.Execute(plan)
	if err != nil {
		return err
	}
	gen, worker := env.DP.BenchCPUs()
	m := fpbench.Meta{
		Date:          start,
		Command:       strings.Join(append([]string{filepath.Base(os.Args[0])}, os.Args[1:]...), " "),
		CPUModel:      cpuModel(),
		CPUs:          runtime.NumCPU(),
		Kernel:        strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		DPDK:          fastpath.DPDKVersion(),
		Go:            runtime.Version(),
		TSCHz:         fastpath.TSCHz(),
		Huge:          env.Huge,
		EAL:           env.EALArgs,
		Rounds:        plan.Rounds,
		Opts:          plan.Opts,
		NoisyOther:    plan.NoisyOther,
		Retries:       plan.Retries,
		GenCPU:        gen,
		WorkerCPU:     worker,
		QuietBefore:   quiet,
		StealBefore:   steal,
		Quiet:         ok,
		Duration:      time.Since(start),
		ScenarioNames: names,
	}
	if c := os.Getenv("FPBENCH_COMMAND"); c != "" {
		m.Command = c + "`, which runs `" + m.Command
	}
	out := fpbench.Markdown(m, samples)
	fmt.Print(out)
	if doc != "" {
		if err := os.MkdirAll(filepath.Dir(doc), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(doc, []byte(out), 0o644); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "wrote", doc)
	}
	return nil
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func cpuModel() string {
	for _, l := range strings.Split(readFile("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
