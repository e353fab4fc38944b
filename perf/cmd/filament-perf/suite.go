package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/filament-net/filament/dpdk/hugepages"
	"github.com/filament-net/filament/perf/suite"
	"github.com/filament-net/filament/perf/trafficgen"
)

func suiteCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var rounds, genCPU, dutCPU, stampEvery int
	var sizes, flowList, rows, doc, jsonOut, dataplane, candidate, trial, searchTrial, resolution, command, img, from, logs string
	var elapsed, budget time.Duration
	var dryRun, retryMixed bool
	var minBaseline float64
	fs := flag.NewFlagSet("suite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&rounds, "rounds", 3, "interleaved rounds (medians over them)")
	fs.StringVar(&sizes, "sizes", "64", "frame sizes, comma-separated (64,512,imix)")
	fs.StringVar(&flowList, "flows", "1", "flow `counts`, comma-separated: every row at the first, the rows that work per flow (filament L3 and VXLAN, OVS-DPDK) at each further one; the 1M routes row has 65,536 flows, one per 16th route")
	fs.StringVar(&rows, "rows", "", "only rows whose name matches this `regexp`")
	fs.StringVar(&trial, "trial", "1s", "length of each confirmation and latency trial (RFC 2544: 1s)")
	fs.StringVar(&searchTrial, "search-trial", "", "length of the search's own trials and the flat-out one (default --trial)")
	fs.DurationVar(&budget, "budget", 0, "stop before a round (or sample) that would end past this `time` from the start; 0: no bound")
	fs.BoolVar(&dryRun, "dry-run", false, "run nothing: print the plan, each sample's estimated time and the total")
	fs.StringVar(&resolution, "resolution", "0.005", "search resolution, relative to the upper bound (filament-perf ndr --resolution; the kernel pod rows use 0.02)")
	fs.IntVar(&stampEvery, "stamp-every", 16, "filament-perf ndr --stamp-every: 1 frame in `N` built and timestamped, the others template clones, so the generator outruns the device; 1: every frame built (the generator is then the bound at 64 B)")
	fs.IntVar(&genCPU, "gen-cpu", 0, "CPU of the generator's worker")
	fs.IntVar(&dutCPU, "dut-cpu", 1, "CPU of the device under test's forwarding lcore")
	fs.StringVar(&dataplane, "dataplane", "", "filament-dataplane `binary` (default: next to this one)")
	fs.StringVar(&candidate, "candidate", "", "A/B: run every filament row also with this filament-dataplane `binary`, back to back with the baseline (--dataplane) in each round; the report adds each round's candidate/baseline ratio, same placement")
	fs.StringVar(&doc, "doc", "", "write the Markdown report to `file` (docs/benchmarks/perf.md)")
	fs.StringVar(&jsonOut, "json", "", "write every sample as JSON to `file`")
	fs.StringVar(&img, "img", "", "write the PNG figures into `dir` (default: ../img next to --doc)")
	fs.StringVar(&command, "command", "", "the command to name in the report (default: this one)")
	fs.StringVar(&from, "from-json", "", "run nothing: render the report (--doc, figures) from the samples a run wrote with --json to `file`, with the same --sizes and --flows")
	fs.BoolVar(&retryMixed, "retry-mixed", true, "run a sample once more when the host moved the CPUs during it (its placement is mixed: it pairs with no baseline), budget allowing")
	fs.StringVar(&logs, "logs", "", "keep each sample's filament-perf ndr output (every trial's accounting) in `dir`, as <round>-<size>-<row>.log (a retry's <round>-<size>-<row>-again.log)")
	fs.DurationVar(&elapsed, "elapsed", 0, "with --from-json: how long that run took, for the report")
	fs.Float64Var(&minBaseline, "min-baseline", 0, "the least NDR in `Mpps` that testpmd-io reaches at 64 B on a machine fit for numbers (make bench: 30, for 2 shared vCPUs); below it the report says the machine was unfit and the command exits 1; 0: no check")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: filament-perf suite [flags]\n\nRuns filament-perf ndr against each device under test in turn, interleaved\nover rounds: dpdk-testpmd io (the baseline) and 5tswap, filament-dataplane\nfor IPv4 L3 (10 and 1M routes), VXLAN and MPLSoUDP encap and decap,\nOVS-DPDK doing the L3 and VXLAN encap work (a private ovsdb-server and\novs-vswitchd-dpdk per sample), and through a kernel pod (AF_XDP, AF_PACKET\nand TAP ports); and testpmd io and 5tswap and filament L3 flat out with\ndpdk-testpmd flowgen as the generator (64 B: filament-perf cannot outrun\ntestpmd there). Each device gets --dut-cpu and two memif links to the\ngenerator on --gen-cpu. Needs root, hugepages, dpdk-testpmd,\nfilament-dataplane and OVS-DPDK (scripts/ovs-dpdk.sh).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if rounds < 1 {
		return usageError{fmt.Errorf("--rounds %d: want 1 or more", rounds)}
	}
	if minBaseline < 0 {
		return usageError{fmt.Errorf("--min-baseline %v: want 0 (no check) or Mpps", minBaseline)}
	}
	if budget < 0 {
		return usageError{fmt.Errorf("--budget %v: want 0 (no bound) or more", budget)}
	}
	if n := runtime.NumCPU(); genCPU < 0 || dutCPU < 0 || genCPU >= n || dutCPU >= n || genCPU == dutCPU {
		return usageError{fmt.Errorf("--gen-cpu %d, --dut-cpu %d: want two different CPUs of this machine's %d", genCPU, dutCPU, n)}
	}
	if candidate != "" && from == "" {
		if _, err := os.Stat(candidate); err != nil {
			return usageError{fmt.Errorf("--candidate: %w", err)}
		}
	}
	if _, huge := hugepages.EALArgs(0); !huge && !dryRun {
		return errors.New("the suite needs hugepages (memif): run scripts/hugepages.sh as root")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if dataplane == "" {
		dataplane = filepath.Join(filepath.Dir(self), "filament-dataplane")
	}
	if _, err := os.Stat(dataplane); err != nil && !dryRun && from == "" { // both run nothing
		return fmt.Errorf("--dataplane: %w (make build puts it in bin/)", err)
	}
	if stampEvery < 1 {
		return usageError{fmt.Errorf("--stamp-every %d: want 1 or more", stampEvery)}
	}
	// Templates for the largest row: the 1M routes row's 65,536 flows.
	// --drain 25ms: what is in flight when TX stops is two memif rings'
	// worth, back in well under 1 ms; 25 ms still covers the device's CPU
	// taken for the longest stalls seen here (5 ms), and the default
	// 100 ms cost a round 37 s over its ~500 trials.
	ndrFlags := []string{"--trial", trial, "--latency-trial", trial, "--latency-at", "50", "--resolution", resolution,
		"--drain", "25ms", "--stamp-every", fmt.Sprint(stampEvery), "--templates", fmt.Sprint(suite.MaxTemplates)}
	if searchTrial != "" {
		ndrFlags = append(ndrFlags, "--search-trial", searchTrial)
	}
	if logs != "" && !dryRun {
		if err := os.MkdirAll(logs, 0o755); err != nil {
			return fmt.Errorf("--logs: %w", err)
		}
	}
	plan := suite.Plan{Rounds: rounds, Progress: stderr, NDRFlags: ndrFlags, Budget: budget, Logs: logs, RetryMixed: retryMixed}
	plan.Prior = func(r suite.Row) time.Duration { return suite.Estimate(plan, r, suite.DefaultCost) }
	var re *regexp.Regexp
	if rows != "" {
		if re, err = regexp.Compile(rows); err != nil {
			return usageError{fmt.Errorf("--rows: %w", err)}
		}
	}
	var flows []int
	for _, f := range strings.Split(flowList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1<<20 {
			return usageError{fmt.Errorf("--flows %q: want counts from 1 to %d", f, 1<<20)}
		}
		flows = append(flows, n)
	}
	for _, r := range suite.Rows(flows) {
		if re == nil || re.MatchString(r.Name) || r.Name == suite.Baseline {
			plan.Rows = append(plan.Rows, r)
		}
	}
	if candidate != "" {
		n := len(plan.Rows)
		plan.Rows = suite.WithCandidate(plan.Rows, candidate)
		if len(plan.Rows) == n {
			return usageError{errors.New("--candidate: no filament row selected (--rows)")}
		}
	}
	for _, s := range strings.Split(sizes, ",") {
		if _, err := parseSizes(s); err != nil {
			return usageError{fmt.Errorf("--sizes: %w", err)}
		}
		plan.Sizes = append(plan.Sizes, strings.TrimSpace(s))
	}
	if dryRun {
		printPlan(stdout, plan)
		return nil
	}
	var samples []suite.Sample
	var stopped error
	date := time.Now()
	writeJSON := func(samples []suite.Sample) error {
		if jsonOut == "" || from != "" {
			return nil
		}
		b, _ := json.MarshalIndent(samples, "", "  ")
		return os.WriteFile(jsonOut, append(b, '\n'), 0o644)
	}
	// Every sample on disk as it comes: a run stopped midway still has
	// its samples and its report.
	plan.Done = func(s []suite.Sample) { _ = writeJSON(s) }
	if from != "" {
		b, err := os.ReadFile(from)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &samples); err != nil {
			return fmt.Errorf("%s: %w", from, err)
		}
		if fi, err := os.Stat(from); err == nil {
			date = fi.ModTime()
		}
	} else {
		dir, err := os.MkdirTemp("", "filament-perf-suite")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		env := &suite.Env{Perf: self, Dataplane: dataplane, Dir: dir, GenCPU: genCPU, DUTCPU: dutCPU, Huge: true}
		start := time.Now()
		samples, stopped = suite.Run(ctx, env, plan)
		if stopped != nil && len(samples) == 0 {
			return stopped
		}
		elapsed = time.Since(start)
		fmt.Fprintf(stderr, "suite: %d samples in %v\n", len(samples), elapsed.Round(time.Second))
	}
	if err := writeJSON(samples); err != nil {
		return err
	}
	if command == "" {
		command = "filament-perf suite " + strings.Join(args, " ")
	}
	meta := suite.Meta{Command: command, Date: date, CPU: cpuModel(), DPDK: trafficgen.DPDKVersion(),
		Kernel: kernel(), GenCPU: genCPU, DUTCPU: dutCPU, Rounds: rounds, NDRFlags: plan.NDRFlags, Flows: flows,
		Elapsed: elapsed, Dataplane: dataplane, Candidate: candidate}
	if from != "" {
		meta.From = filepath.Base(from)
	}
	if stopped != nil {
		meta.Stopped = fmt.Sprintf("stopped (%v) after %d samples", stopped, len(samples))
	}
	meta.Unfit = suite.Unfit(samples, minBaseline*1e6)
	if errors.Is(stopped, suite.ErrBudget) {
		// The budget is the plan's own bound: the report says where it
		// stopped, and the run succeeded.
		fmt.Fprintf(stderr, "suite: %v\n", stopped)
		stopped = nil
	}
	if stopped != nil || from != "" {
		// The rounds the samples reach, not the plan's.
		meta.Rounds = 0
		for _, s := range samples {
			meta.Rounds = max(meta.Rounds, s.Round)
		}
	}
	for _, s := range samples {
		if s.TSCHz != 0 {
			meta.TSCHz = s.TSCHz
		}
	}
	sums := suite.Summarize(plan, samples)
	if img == "" && doc != "" {
		img = filepath.Join(filepath.Dir(doc), "..", "img")
	}
	if img != "" {
		if err := os.MkdirAll(img, 0o755); err != nil {
			return err
		}
		// Figures are named after the report (perf.md: perf-*.png), so
		// reports side by side keep their own.
		prefix := "perf"
		if doc != "" {
			prefix = strings.TrimSuffix(filepath.Base(doc), filepath.Ext(doc))
		}
		files, err := suite.Plots(img, prefix, plan, sums, samples)
		if err != nil {
			return fmt.Errorf("plots: %w", err)
		}
		for _, f := range files {
			rel := f
			if doc != "" {
				if r, err := filepath.Rel(filepath.Dir(doc), f); err == nil {
					rel = r
				}
			}
			meta.Images = append(meta.Images, filepath.ToSlash(rel))
		}
	}
	w := stdout
	if doc != "" {
		f, err := os.Create(doc)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	suite.Markdown(w, meta, sums, samples...)
	if stopped == nil && meta.Unfit != "" {
		return fmt.Errorf("machine unfit for numbers: %s; the report says so", meta.Unfit)
	}
	return stopped
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	n := 0
	model := "unknown CPU"
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			switch strings.TrimSpace(k) {
			case "model name":
				model = strings.TrimSpace(v)
			case "processor":
				n++
			}
		}
	}
	return fmt.Sprintf("%d x %s", n, model)
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

// printPlan is --dry-run: every sample of one round with its estimate
// (suite.Estimate, suite.DefaultCost), and the run's total.
func printPlan(w io.Writer, p suite.Plan) {
	var round time.Duration
	for _, size := range p.Sizes {
		for _, r := range p.Rows {
			if !r.RunsAt(size) {
				continue
			}
			d := p.Prior(r)
			round += d
			fmt.Fprintf(w, "%-5s %-30s %6.1fs\n", size, r.Name, d.Seconds())
		}
	}
	total := round * time.Duration(max(p.Rounds, 1))
	fmt.Fprintf(w, "one round %v; %d rounds %v (no void trial, no failed confirmation)", round.Round(time.Second),
		max(p.Rounds, 1), total.Round(time.Second))
	if p.Budget > 0 {
		fmt.Fprintf(w, "; budget %v", p.Budget)
	}
	fmt.Fprintln(w)
}
