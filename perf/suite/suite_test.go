package suite

import (
	"context"
	"errors"
	"image/png"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/filament-net/filament/perf/placement"
)

// The suite end to end on two rows, one round, short trials: testpmd io
// and filament L3 each give a confirmed rate, the ratio is taken against
// the baseline of the same round, the report has its table.
func TestSuite(t *testing.T) {
	env := newTestEnv(t, testBins{perf: true, dataplane: true})
	var rows []Row
	for _, r := range Headline(64) {
		if r.Name == Baseline || r.Name == "filament-l3-10" || r.Name == "filament-vxlan-decap-10" {
			rows = append(rows, r)
		}
	}
	plan := Plan{Rows: rows, Sizes: []string{"64"}, Rounds: 1, Progress: os.Stderr,
		NDRFlags: []string{"--trial", "200ms", "--latency-trial", "200ms", "--resolution", "0.05", "--max-rate", "1M"}}
	samples, err := Run(context.Background(), env, plan)
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 3 {
		t.Fatalf("%d samples, want 3", len(samples))
	}
	for _, s := range samples {
		// A device that forwards nothing fails its search (an error);
		// the rates themselves depend on the machine's noise: on a busy
		// machine a frame is lost (or not taken) at every rate and NDR
		// is 0, PDR (confirmed) is there.
		if s.Err != "" || s.PDR <= 0 || s.NDR > 1e6 || s.PDR > 1e6 || s.P50 <= 0 || s.TSCHz == 0 {
			t.Fatalf("sample %+v", s)
		}
	}
	sums := Summarize(plan, samples)
	// The ratio exists only when the host kept the vCPUs in one place for
	// both samples. PDR: a noisy round may leave a row without an NDR.
	base, l3 := samples[0], samples[1]
	if len(sums) != 3 {
		t.Fatalf("summaries %+v", sums)
	}
	if base.Place == l3.Place && base.Place != placement.Mixed {
		if want := l3.PDR / base.PDR; sums[1].PDRRatio.Median != want || sums[1].PDRRatio.N != 1 {
			t.Fatalf("ratio %+v, want %v", sums[1].PDRRatio, want)
		}
	} else if sums[1].PDRRatio.N != 0 {
		t.Fatalf("a ratio across placements %s and %s: %+v", base.Place, l3.Place, sums[1].PDRRatio)
	}
	files, err := Plots(env.Dir, "perf", plan, sums, samples)
	if err != nil || len(files) != 2 {
		t.Fatalf("plots %v: %v", files, err)
	}
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		c, err := png.DecodeConfig(r)
		r.Close()
		if err != nil || c.Width < 300 || c.Height < 200 {
			t.Fatalf("%s: %+v %v", f, c, err)
		}
	}
	for _, s := range samples {
		if s.Place == "" || len(s.Hist) == 0 {
			t.Fatalf("sample without placement or latency histogram: %+v", s)
		}
	}
	var b strings.Builder
	Markdown(&b, Meta{Command: "test", TSCHz: samples[0].TSCHz, Rounds: 1, Flows: []int{64}, Images: []string{"../img/perf-throughput.png"}}, sums)
	if !strings.Contains(b.String(), "| filament-l3-10 | IPv4 L3") || !strings.Contains(b.String(), "| testpmd-io |") ||
		!strings.Contains(b.String(), "![perf-throughput](../img/perf-throughput.png)") {
		t.Fatalf("report:\n%s", b.String())
	}
}

func TestWireSizes(t *testing.T) {
	for _, c := range []struct {
		in   string
		over int
		want string
	}{{"64", 0, "64"}, {"64", 50, "114"}, {"64,512", 32, "96,544"}, {"imix", 50, "114,620,114,114,1568,114,620,114,114,620,114,620"}} {
		if got := wireSizes(c.in, c.over); got != c.want {
			t.Errorf("wireSizes(%q, %d) = %q, want %q", c.in, c.over, got, c.want)
		}
	}
	// The generator's MTU takes the largest frame, never below 1500.
	for wire, want := range map[string]int{"64": 1500, "imix": 1500, wireSizes("imix", 50): 1550, "64,9022": 9004} {
		if got := genMTU(wire); got != want {
			t.Errorf("genMTU(%q) = %d, want %d", wire, got, want)
		}
	}
}

// A row whose only sample saw the placement change is left out of the
// table with that reason, not reported as failed.
func TestMarkdownMixed(t *testing.T) {
	plan := Plan{Rows: []Row{{Name: Baseline, What: "b", Flows: 1}, {Name: "x", What: "x row", Flows: 1}}, Sizes: []string{"64"}}
	samples := []Sample{
		{Row: Baseline, Size: "64", Round: 1, NDR: 1e6, PDR: 2e6, Place: placement.Near},
		{Row: "x", Size: "64", Round: 1, NDR: 1e6, PDR: 2e6, Place: placement.Mixed},
	}
	var b strings.Builder
	samples[1].ProbeNs, samples[1].Trials, samples[1].Void = [2]float64{90, 410}, 20, 2
	Markdown(&b, Meta{TSCHz: 2.6e9, Rounds: 1}, Summarize(plan, samples), samples...)
	if !strings.Contains(b.String(), "| x | x row | 1 | left out: the host moved the vCPUs during its 1 sample(s) (mixed) |") ||
		!strings.Contains(b.String(), "| 1 | 64 | x | 1.00 | 2.00 | mixed (90 / 410) | 20 (2) |") ||
		strings.Contains(b.String(), "failed") {
		t.Fatalf("report:\n%s", b.String())
	}
}

// A run of several sizes: a section per size, each table ended by a blank
// line before the next heading (Markdown would run them together), and
// the flat-out goals once, under the size their rows ran at.
func TestMarkdownSizes(t *testing.T) {
	rows := append([]Row{{Name: Baseline, What: "b", Flows: 1}, {Name: "filament-l3-10", What: "l3", Flows: 1}}, FlowgenRows(1)...)
	plan := Plan{Rows: rows, Sizes: []string{"64", "512"}}
	var samples []Sample
	for _, size := range plan.Sizes {
		samples = append(samples, Sample{Row: Baseline, Size: size, Round: 1, NDR: 2e6, PDR: 2e6, Place: placement.Near},
			Sample{Row: "filament-l3-10", Size: size, Round: 1, NDR: 1e6, PDR: 1e6, Place: placement.Near})
	}
	for _, r := range FlowgenRows(1) {
		samples = append(samples, Sample{Row: r.Name, Size: FlowgenSize, Round: 1, MOL: 1e6, Refused: 0.2, Place: placement.Near})
	}
	var b strings.Builder
	Markdown(&b, Meta{TSCHz: 2.6e9, Rounds: 1}, Summarize(plan, samples), samples...)
	out := b.String()
	for _, want := range []string{"|\n\n## Frame size 512\n\n| row |", "\n\n### Frame size 512\n\n| goal |"} {
		if !strings.Contains(out, want) {
			t.Fatalf("report lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "| filament IPv4 >= 1.0x testpmd 5tswap (flat out) |"); n != 1 {
		t.Fatalf("flat-out goals %d times, want once (64 B):\n%s", n, out)
	}
}

// Flow counts: every row at the first, the per-flow rows again at the
// others under their own names, each with its OVS-DPDK peer at the same
// count; the traffic has as many distinct 5-tuples as it says.
func TestFlows(t *testing.T) {
	rows := Rows([]int{1, 10000})
	byName := map[string]Row{}
	for _, r := range rows {
		if _, dup := byName[r.Name]; dup {
			t.Fatalf("row %s twice", r.Name)
		}
		byName[r.Name] = r
	}
	for _, want := range []struct {
		name  string
		flows int
	}{
		{"testpmd-io", 1}, {"filament-l3-10", 1}, {"filament-l3-1048k", 1 << 16}, {"ovs-dpdk-l3-10", 1},
		{"filament-l3-10-f10k", 10000}, {"filament-vxlan-encap-10-f10k", 10000}, {"filament-vxlan-decap-10-f10k", 10000},
		{"ovs-dpdk-l3-10-f10k", 10000}, {"ovs-dpdk-vxlan-encap-10-f10k", 10000},
	} {
		r, ok := byName[want.name]
		if !ok || r.Flows != want.flows {
			t.Errorf("row %s: %+v (present %v), want %d flows", want.name, r.Flows, ok, want.flows)
		}
	}
	if len(rows) != len(Headline(1))+5 {
		t.Errorf("%d rows, want the %d headline rows and 5 at 10K flows", len(rows), len(Headline(1)))
	}
	for row, peer := range map[string]string{"filament-l3-10": "ovs-dpdk-l3-10", "filament-l3-10-f10k": "ovs-dpdk-l3-10-f10k",
		"filament-vxlan-encap-10-f10k": "ovs-dpdk-vxlan-encap-10-f10k", "filament-vxlan-decap-10-f10k": "", "testpmd-io": ""} {
		if got := OVSPeer(row); got != peer {
			t.Errorf("OVSPeer(%s) = %q, want %q", row, got, peer)
		}
	}
	// The 1M routes row: a flow to every 16th route, over all of them.
	if tr := strings.Join(byName["filament-l3-1048k"].Traffic, " "); !strings.Contains(tr, "--dst 16.0.0.1-31.255.255.1 --dst-step 4096 --flows 65536 ") {
		t.Errorf("1M routes row traffic: %s", tr)
	}
	// Flow f: route f mod routes, source port f mod ports.
	for _, c := range []struct{ flows, routes int }{{1, 10}, {256, 10}, {10000, 10}, {10000, 1}, {1 << 20, 1 << 20}, {64, 4}} {
		p := ports(c.flows, c.routes)
		seen := map[[2]int]bool{}
		for f := 0; f < c.flows; f++ {
			seen[[2]int{f % c.routes, f % p}] = true
		}
		if len(seen) != c.flows {
			t.Errorf("%d flows over %d routes with %d ports: %d distinct", c.flows, c.routes, p, len(seen))
		}
	}
}

// The goals section: ratios round by round within a placement, verdicts,
// cycles/packet from the TSC, p99 at 50% of PDR; goals whose rows did not
// run are left out.
func TestGoals(t *testing.T) {
	s := func(row string, round int, mpps float64, place placement.Label) Sample {
		return Sample{Row: row, Size: "64", Round: round, NDR: mpps * 1e6, PDR: mpps * 1e6, P99: 12e3, Place: place, TSCHz: 2.6e9}
	}
	samples := []Sample{
		s(Baseline, 1, 20, placement.Near), s("testpmd-5tswap", 1, 15, placement.Near), s("filament-l3-10", 1, 14, placement.Near),
		s(Baseline, 2, 10, placement.Far), s("testpmd-5tswap", 2, 7, placement.Far), s("filament-l3-10", 2, 7, placement.Far),
		s(Baseline, 3, 20, placement.Near), s("testpmd-5tswap", 3, 15, placement.Far), s("filament-l3-10", 3, 13, placement.Mixed),
	}
	rows := []Row{{Name: Baseline, Flows: 1}, {Name: "testpmd-5tswap", Flows: 1}, {Name: "filament-l3-10", Flows: 1}}
	plan := Plan{Rows: rows, Sizes: []string{"64"}}
	var b strings.Builder
	Markdown(&b, Meta{TSCHz: 2.6e9, Rounds: 3}, Summarize(plan, samples), samples...)
	for _, want := range []string{
		// rounds 1 (0.933) and 2 (1.0); round 3 mixed
		"| filament IPv4 >= 1.0x testpmd 5tswap | 0.97 (0.93-1.00) | 0.97 (0.93-1.00) | **not met** | **not met** |",
		"| filament IPv4 >= 0.65x testpmd io | 0.70 (0.70-0.70) | 0.70 (0.70-0.70) | met | met |",
		// 2.6e9 / 10.5M (median of 14 and 7) = 248
		"| IPv4 <= 90 cycles/packet (TSC / rate, all placements) | 248 (186-371) | 248 (186-371) | **not met** | **not met** |",
		"| filament-l3-10: p99 latency at 50% of PDR < 20 us | | 12.00 (12.00-12.00) us | | met |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "OVS-DPDK, 1 flow") {
		t.Errorf("a goal whose rows did not run is in the report")
	}
	// A row of the plan without samples (a run stopped before it).
	plan.Rows = append(plan.Rows, Row{Name: "ovs-dpdk-l3-10", Flows: 1})
	b.Reset()
	Markdown(&b, Meta{TSCHz: 2.6e9, Rounds: 3}, Summarize(plan, samples), samples...)
	if !strings.Contains(b.String(), "| ovs-dpdk-l3-10 |  | 1 | not run |") {
		t.Errorf("a row that did not run:\n%s", b.String())
	}
}

// A sample's estimate counts the trials the search takes at the plan's
// resolution (the search itself run on a device model), shorter search
// trials make it shorter, and a budget smaller than the first sample's
// estimate runs nothing.
func TestEstimateAndBudget(t *testing.T) {
	if s, c := searchTrials(0.01); s < 6 || s > 16 || c < 1 || c > 3 {
		t.Fatalf("at 1%%: %d search trials and %d confirmations, want 6-16 and 1-3", s, c)
	}
	if fine, coarse := mustTrials(0.005), mustTrials(0.02); fine <= coarse {
		t.Fatalf("%d trials at 0.5%%, %d at 2%%: a finer search must take more", fine, coarse)
	}
	row := Headline(1)[0]
	long := Plan{NDRFlags: []string{"--trial", "1s", "--latency-trial", "1s", "--latency-at", "50", "--resolution", "0.01"}}
	short := long
	short.NDRFlags = append(append([]string{}, long.NDRFlags...), "--search-trial", "250ms")
	dl, ds := Estimate(long, row, DefaultCost), Estimate(short, row, DefaultCost)
	if ds >= dl || dl-ds < 5*time.Second {
		t.Fatalf("estimate %v with 1 s search trials, %v with 250 ms ones", dl, ds)
	}
	p := Plan{Rows: []Row{row}, Sizes: []string{"64"}, Rounds: 3, Budget: time.Millisecond,
		Prior: func(Row) time.Duration { return time.Second }}
	samples, err := Run(context.Background(), &Env{}, p)
	if !errors.Is(err, ErrBudget) || len(samples) != 0 {
		t.Fatalf("budget 1 ms: %d samples, %v; want none and ErrBudget", len(samples), err)
	}
	e := newETA(p)
	e.done(Sample{Row: row.Name, Size: "64", Elapsed: 20 * time.Second})
	if l := e.left(1, "64", row.Name); l != 40*time.Second {
		t.Fatalf("left after the first of 3 samples of 20 s: %v", l)
	}
}

func mustTrials(res float64) int {
	s, c := searchTrials(res)
	return s + c
}

// A sample run again because the placement changed during it (RetryMixed)
// stands for its round, whichever order the two come in; the mixed one
// pairs with nothing.
func TestRetryMixedPairs(t *testing.T) {
	s := func(row string, mpps float64, place placement.Label) Sample {
		return Sample{Row: row, Size: "64", Round: 1, NDR: mpps * 1e6, PDR: mpps * 1e6, Place: place, TSCHz: 2.6e9}
	}
	rows := []Row{{Name: Baseline, Flows: 1}, {Name: "filament-l3-10", Flows: 1}}
	plan := Plan{Rows: rows, Sizes: []string{"64"}}
	for _, samples := range [][]Sample{
		{s(Baseline, 30, placement.Mixed), s(Baseline, 20, placement.Near), s("filament-l3-10", 13, placement.Mixed), s("filament-l3-10", 16, placement.Near)},
		{s(Baseline, 20, placement.Near), s(Baseline, 30, placement.Mixed), s("filament-l3-10", 16, placement.Near), s("filament-l3-10", 13, placement.Mixed)},
	} {
		var b strings.Builder
		Markdown(&b, Meta{TSCHz: 2.6e9, Rounds: 1}, Summarize(plan, samples), samples...)
		if want := "| filament IPv4 >= 0.65x testpmd io | 0.80 | 0.80 | met | met |"; !strings.Contains(b.String(), want) {
			t.Fatalf("want %q in:\n%s", want, b.String())
		}
		sums := Summarize(plan, samples)
		if r := sums[1].PDRRatio; r.N != 1 || r.Median != 0.8 {
			t.Fatalf("filament-l3-10 PDR ratio %+v, want 0.8 from the near pair alone", r)
		}
	}
}
