package fpbench

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/filament-net/filament/dpdk/fastpath"
)

// env is the one dataplane of this test binary (the EAL starts once per
// process).
var env *Env

func TestMain(m *testing.M) {
	var err error
	env, err = Start(512)
	if errors.Is(err, ErrNeedTwoCPUs) {
		fmt.Fprintln(os.Stderr, "fpbench: skipped:", err)
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fpbench:", err)
		os.Exit(1)
	}
	code := m.Run()
	env.Close()
	os.Exit(code)
}

// TestScenarios runs every scenario briefly: its frames are valid for it (no
// drop), all come back out of the expected port, the worker counted them and
// every mbuf returns to the pool.
func TestScenarios(t *testing.T) {
	const n = 5000
	for _, sc := range Scenarios() {
		for _, size := range []int{64, 512} {
			for _, flows := range []int{1, 1024} {
				t.Run(fmt.Sprintf("%s/%dB/flows=%d", sc.Name, size, flows), func(t *testing.T) {
					before := env.DP.MbufsInUse()
					r, err := env.Run(sc, flows, size, RunOpts{Packets: n, Warmup: 1024, InFlight: 256, Slice: time.Millisecond})
					if err != nil {
						t.Fatal(err)
					}
					if r.Received != r.Sent || r.WindowReceived < n {
						t.Fatalf("sent %d, received %d, %d in the window", r.Sent, r.Received, r.WindowReceived)
					}
					if r.RxPackets == 0 || r.BusyCycles == 0 || r.TxPackets == 0 {
						t.Fatalf("worker counted nothing: rx %d tx %d busy cycles %d", r.RxPackets, r.TxPackets, r.BusyCycles)
					}
					if after := env.DP.MbufsInUse(); after != before {
						t.Fatalf("mbufs in use: %d before, %d after", before, after)
					}
				})
			}
		}
	}
}

// TestBrokenScenarioIsReported checks that drops are not silently measured:
// frames nobody routes are dropped, and the run says so.
func TestBrokenScenarioIsReported(t *testing.T) {
	sc, err := ScenarioByName("ipv4")
	if err != nil {
		t.Fatal(err)
	}
	s, err := env.Build(sc, 1, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Frames[0][ethLen+8] = 1 // TTL 1 (with a valid checksum): ttl_exceeded
	s.Frames[0][ethLen+10], s.Frames[0][ethLen+11] = 0, 0
	sum := csum(s.Frames[0][ethLen : ethLen+ipLen])
	s.Frames[0][ethLen+10], s.Frames[0][ethLen+11] = byte(sum>>8), byte(sum)
	before := env.DP.MbufsInUse()
	_, err = env.Measure(s, RunOpts{Packets: 1000, InFlight: 64})
	if err == nil || !strings.Contains(err.Error(), "ttl_exceeded") {
		t.Fatalf("want a ttl_exceeded error, got %v", err)
	}
	if after := env.DP.MbufsInUse(); after != before {
		t.Fatalf("mbufs in use: %d before, %d after", before, after)
	}
}

func bench(b *testing.B, name string) {
	sc, err := ScenarioByName(name)
	if err != nil {
		b.Fatal(err)
	}
	for _, flows := range []int{1, 1024} {
		b.Run(fmt.Sprintf("flows=%d", flows), func(b *testing.B) {
			s, err := env.Build(sc, flows, 64)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.ResetTimer()
			r, err := env.Measure(s, RunOpts{Packets: uint64(b.N), Slice: time.Millisecond})
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			cpp := r.SliceCyclesPerPacket()
			b.ReportMetric(cpp, "cycles/pkt")
			if cpp > 0 {
				b.ReportMetric(float64(r.TSCHz)/cpp/1e6, "worker-Mpps")
			}
			b.ReportMetric(r.AvgBurst(), "burst")
		})
	}
}

// Each benchmark op is one packet; cycles/pkt is the worker's (median over
// 1 ms slices). filament-fpbench is the interleaved, placement-aware run.
func BenchmarkIO(b *testing.B)            { bench(b, "io") }
func BenchmarkIPv4(b *testing.B)          { bench(b, "ipv4") }
func BenchmarkVXLANEncap(b *testing.B)    { bench(b, "vxlan-encap") }
func BenchmarkVXLANDecap(b *testing.B)    { bench(b, "vxlan-decap") }
func BenchmarkVXLANEncapU6(b *testing.B)  { bench(b, "vxlan-encap-u6") }
func BenchmarkMPLSoUDPEncap(b *testing.B) { bench(b, "mplsoudp-encap") }
func BenchmarkMPLSoUDPDecap(b *testing.B) { bench(b, "mplsoudp-decap") }
func BenchmarkMPLSoGREEncap(b *testing.B) { bench(b, "mplsogre-encap") }
func BenchmarkMPLSoGREDecap(b *testing.B) { bench(b, "mplsogre-decap") }

// TestExecuteAndReport runs a tiny interleaved plan through the runner and
// the report, as filament-fpbench does.
func TestExecuteAndReport(t *testing.T) {
	var scs []*Scenario
	for _, n := range []string{"io", "ipv4", "vxlan-encap"} {
		sc, err := ScenarioByName(n)
		if err != nil {
			t.Fatal(err)
		}
		scs = append(scs, sc)
	}
	p := Plan{
		Cases:  PlanCases(scs, []int{1, 16}, []int{64}),
		Rounds: 2,
		Opts:   RunOpts{Duration: 20 * time.Millisecond, Slice: time.Millisecond, InFlight: 256},
		Probe:  true,
	}
	samples, err := env.Execute(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 12 {
		t.Fatalf("%d samples, want 12", len(samples))
	}
	for _, s := range samples {
		if s.CPP() <= 0 || s.Place == Unknown {
			t.Fatalf("sample %s round %d: %.1f cycles/pkt, placement %s", s.Case, s.Round, s.CPP(), s.Place)
		}
	}
	md := Markdown(Meta{Date: time.Now(), TSCHz: env.TSCHz(), Rounds: 2, Opts: p.Opts,
		ScenarioNames: []string{"io", "ipv4", "vxlan-encap"}}, samples)
	for _, want := range []string{"| io | 64 B | 1 |", "| ipv4 | 64 B | 16 |", "| vxlan-encap | 64 B | 16 |", "## Goals"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func TestSummarize(t *testing.T) {
	io, _ := ScenarioByName("io")
	v4, _ := ScenarioByName("ipv4")
	mk := func(sc *Scenario, pl Placement, busy uint64, ex string) Sample {
		return Sample{Case: Case{Scenario: sc, Flows: 1, Size: 64}, Place: pl, Excluded: ex,
			Res: fastpath.BenchResult{BusyCycles: busy, RxPackets: 1, BusyPolls: 1}}
	}
	samples := []Sample{
		mk(io, Near, 20, ""), mk(v4, Near, 50, ""),
		mk(io, Near, 22, ""), mk(v4, Near, 60, ""),
		mk(io, Near, 21, ""), mk(v4, Near, 55, ""),
		mk(io, Far, 60, ""), mk(v4, Far, 100, ""),
		mk(io, Far, 61, ""), mk(v4, Far, 101, ""),
		mk(io, Far, 59, ""), mk(v4, Far, 99, ""),
		mk(v4, Near, 500, "noisy"),
		mk(io, Unknown, 20, ""), mk(v4, Unknown, 90, ""),
	}
	sum := Summarize(samples, 2_600_000_000)
	near := sum[Near]
	if len(near) != 2 || near[1].N != 3 || near[1].Median != 55 || near[1].Delta != 34 || !near[1].Met {
		t.Fatalf("near rows: %+v", near)
	}
	far := sum[Far]
	if len(far) != 2 || far[1].Delta != 40 || far[1].Met {
		t.Fatalf("far rows: %+v", far)
	}
	if judged, missed := Verdict(far); judged != 1 || len(missed) != 1 {
		t.Fatalf("far verdict: %d judged, missed %v", judged, missed)
	}
	// One sample: shown, not judged.
	if un := sum[Unknown]; len(un) != 2 || un[1].HasGoal() || math.IsNaN(un[1].Delta) {
		t.Fatalf("unprobed rows: %+v", un)
	}
	if judged, _ := Verdict(sum[Unknown]); judged != 0 {
		t.Fatalf("rows with one sample judged")
	}
}
