package suite

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/filament-net/filament/perf/placement"
)

// period is one stats period of dpdk-testpmd 22.11 (--stats-period), as it
// prints it: a screen clear, then a block per port.
func period(rx0, rx1 int) string {
	var b strings.Builder
	b.WriteString("\x1b[2J\x1b[1;1H\n")
	for port, rx := range []int{rx0, rx1} {
		fmt.Fprintf(&b, `  ######################## NIC statistics for port %d  ########################
  RX-packets: 17060384   RX-missed: 0          RX-bytes:  1023623040
  RX-errors: 0
  RX-nombuf:  0
  TX-packets: 17061888   TX-errors: 0          TX-bytes:  1023713280

  Throughput (since last show)
  Rx-pps:      %7d          Rx-bps:   4088981856
  Tx-pps:      8518824          Tx-bps:   4089035608
  ############################################################################
`, port, rx)
	}
	return b.String()
}

const flowgenTotals = `
Telling cores to stop...
Waiting for lcores to finish...

  ---------------------- Forward statistics for port 0  ----------------------
  RX-packets: 58026368       RX-dropped: 0             RX-total: 58026368
  TX-packets: 60000000       TX-dropped: 20000000      TX-total: 80000000
  ----------------------------------------------------------------------------

  ---------------------- Forward statistics for port 1  ----------------------
  RX-packets: 58026336       RX-dropped: 0             RX-total: 58026336
  TX-packets: 60000000       TX-dropped: 20000000      TX-total: 80000000
  ----------------------------------------------------------------------------

  +++++++++++++++ Accumulated forward statistics for all ports+++++++++++++++
  RX-packets: 116052704      RX-dropped: 0             RX-total: 116052704
  TX-packets: 120000000      TX-dropped: 40000000      TX-total: 160000000
  ++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++
`

func TestParseFlowgen(t *testing.T) {
	// Two warm-up periods (the links coming up), then 8+8, 9+9, 7+8: the
	// median of the sums is 16 Mpps.
	out := period(0, 0) + period(3000000, 2000000) + period(8000000, 8000000) + period(9000000, 9000000) +
		period(7000000, 8000000) + flowgenTotals
	r, err := parseFlowgen(bufio.NewScanner(strings.NewReader(out)), 2)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rate != 16e6 || r.Periods != 3 || r.Refused != 0.25 || r.Back != [2]float64{58026368, 58026336} {
		t.Fatalf("%+v, want 16 Mpps over 3 periods, 25%% refused, the totals' RX-packets back", r)
	}
	// An even count: the mean of the middle two.
	r, err = parseFlowgen(bufio.NewScanner(strings.NewReader(period(1, 1)+period(5, 5)+period(7, 7))), 1)
	if err != nil || r.Rate != 12 || r.Refused != 0 {
		t.Fatalf("%+v %v, want 12 pps, nothing refused (no totals)", r, err)
	}
	for _, bad := range []string{
		period(0, 0) + period(1, 1),                // nothing after the warm-up
		period(0, 0) + "  Rx-pps: 5\n",             // half a period
		period(0, 0) + period(0, 0) + period(0, 0), // nothing forwarded
		period(0, 0) + period(0, 0) + period(5, 0) + strings.Replace(flowgenTotals, // one way only
			"RX-packets: 58026336       RX-dropped: 0", "RX-packets: 0       RX-dropped: 0", 1),
	} {
		if r, err := parseFlowgen(bufio.NewScanner(strings.NewReader(bad)), 2); err == nil {
			t.Fatalf("no error for %q: %+v", bad, r)
		}
	}
}

// The flat-out rows' ratios: round by round, same placement, a retry after
// a mixed sample standing for its round.
func TestFlatSummary(t *testing.T) {
	rows := FlowgenRows(1)
	s := func(row string, round int, mol float64, place placement.Label) Sample {
		return Sample{Row: row, Size: FlowgenSize, Round: round, MOL: mol, Refused: 0.2, Place: place}
	}
	l3 := rows[2].Name
	samples := []Sample{
		s(FlowgenBaseline, 1, 40e6, placement.Near), s("testpmd-5tswap-flowgen", 1, 30e6, placement.Near), s(l3, 1, 36e6, placement.Near),
		s(FlowgenBaseline, 2, 20e6, placement.Far), s("testpmd-5tswap-flowgen", 2, 15e6, placement.Far), s(l3, 2, 30e6, placement.Mixed),
		s(l3, 2, 18e6, placement.Far),
	}
	p := Plan{Rows: rows, Sizes: []string{"64", "512"}}
	sums := Summarize(p, samples)
	if len(sums) != 3 {
		t.Fatalf("%d summaries, want the 3 flat-out rows at 64 B only: %+v", len(sums), sums)
	}
	got := sums[2]
	if !got.Flowgen || got.MOL.N != 2 || got.MOL.Median != 27e6 || got.Mixed != 1 {
		t.Fatalf("summary %+v", got)
	}
	if got.MOLRatio.N != 2 || got.MOLRatio.Min != 0.9 || got.MOLRatio.Max != 0.9 {
		t.Fatalf("ratio to io %+v, want 0.9 twice", got.MOLRatio)
	}
	if got.MOL5tswap.N != 2 || got.MOL5tswap.Min != 1.2 || got.MOL5tswap.Max != 1.2 {
		t.Fatalf("ratio to 5tswap %+v, want 1.2 twice", got.MOL5tswap)
	}
	var b strings.Builder
	Markdown(&b, Meta{Command: "test", TSCHz: 2.6e9, Rounds: 2}, sums, samples...)
	for _, want := range []string{
		"## Flat out: dpdk-testpmd flowgen as the generator",
		"| " + l3 + " | IPv4 L3, 10 routes, flat out",
		"| filament IPv4 >= 1.0x testpmd 5tswap (flat out) | 1.20 (1.20-1.20) |",
		"| IPv4 <= 90 cycles/packet (TSC / flat-out rate) |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("report lacks %q:\n%s", want, b.String())
		}
	}
}

// A real flat-out sample of testpmd io and of filament L3: dpdk-testpmd
// flowgen on CPU 0, the device on CPU 1. The rates depend on the machine;
// that both directions came back through filament's two VRFs does not.
func TestFlowgenRows(t *testing.T) {
	env := newTestEnv(t, testBins{dataplane: true})
	var rows []Row
	for _, r := range FlowgenRows(1) {
		if r.Name != "testpmd-5tswap-flowgen" {
			rows = append(rows, r)
		}
	}
	logs := t.TempDir()
	plan := Plan{Rows: rows, Sizes: []string{"64"}, Rounds: 1, Progress: os.Stderr, Logs: logs}
	samples, err := Run(context.Background(), env, plan)
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 2 {
		t.Fatalf("%d samples, want 2: %+v", len(samples), samples)
	}
	for _, s := range samples {
		if s.Err != "" || s.MOL <= 0 || s.Refused < 0 || s.Refused >= 1 || s.NDR != 0 {
			t.Fatalf("sample %+v", s)
		}
		b, err := os.ReadFile(filepath.Join(logs, "1-64-"+s.Row+".log"))
		if err != nil {
			t.Fatal(err)
		}
		// Each direction on its own: frames came back on both ports
		// (the sample fails otherwise; the kept log has the totals).
		r, err := parseFlowgen(bufio.NewScanner(strings.NewReader(string(b))), int(FlowgenWarmup.Seconds()))
		if err != nil || r.Rate != s.MOL || r.Back[0] == 0 || r.Back[1] == 0 {
			t.Fatalf("%s log: %+v %v\n%s", s.Row, r, err, b)
		}
	}
}
