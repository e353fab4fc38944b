package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/filament-net/filament/perf/latplot"
	"github.com/filament-net/filament/perf/rfc2544"
	"github.com/filament-net/filament/perf/trafficgen"
)

// ndrReport is the result of `filament-perf ndr`.
type ndrReport struct {
	Command  string
	Ports    []string
	Sizes    string
	Flows    int
	TSCHz    uint64
	MaxPPS   float64 // the search's upper bound: given, or what the generator offered flat out
	MinPPS   float64 `json:",omitempty"` // its floor, if not the default (MaxPPS/1000)
	NDR, PDR searchReport
	Latency  []latencyReport `json:",omitempty"`
	// BackToBack is the longest burst sent flat out without a loss
	// (RFC 2544 26.4), in frames; 0 when not measured.
	BackToBack struct {
		Frames    uint64
		Confirmed bool
		Trials    int
	} `json:",omitempty"`
}

type searchReport struct {
	LossGoal  float64
	PPS       float64
	Confirmed bool
	Trials    int
	Result    *trafficgen.Result `json:",omitempty"` // the confirming trial
	// FromStart: PDR is the NDR, no rate above it having held (its
	// Result is the NDR's).
	FromStart bool `json:",omitempty"`
	// Each is every trial of the search, in order: what it sent, got
	// back and why frames were missing.
	Each []trialReport `json:",omitempty"`
}

// trialReport is one search trial's accounting (see account).
type trialReport struct {
	PPS       float64
	Due       uint64 // frames the rate asked for in the trial's TX time
	TxPackets uint64 // taken by the port
	NotTaken  uint64 // refused by the port when TX ended
	// HeldBack is the part of Due - TxPackets the device refused
	// (back-pressure): lost. GeneratorShort is the rest: frames the
	// generator did not build in time (its lcore preempted), not offered.
	HeldBack, GeneratorShort uint64
	Offered                  uint64 // TxPackets + HeldBack
	RxPackets                uint64
	Lost                     int64 // Offered - RxPackets
	Pass                     bool
	// Stalls are the generator's own: its worker's loop late by more than
	// 50 us (nothing polled its RX then); MaxGap the longest.
	Stalls uint64
	MaxGap time.Duration
	// QuietWait is how long the trial waited for the generator's CPU to
	// be quiet (other processes under 20% of it; at most 2 s).
	QuietWait time.Duration
	// Confirming: a confirmation trial (--trial long); the others are
	// the search's (--search-trial). Length is how long it sent.
	Confirming bool `json:",omitempty"`
	Length     time.Duration
	// Void: the generator, not the device, spoiled the trial (see void):
	// it ran again. The last of voidRetries+1 attempts counts anyway,
	// the generator's shortfall as lost: the rate was not shown to pass.
	Void bool `json:",omitempty"`
}

type latencyReport struct {
	PercentOfPDR int
	PPS          float64
	Result       *trafficgen.Result
}

func ndrCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var t traffic
	var trialLen, searchLen, latLen time.Duration
	var maxRate string
	var resolution, pdrLoss float64
	var confirm int
	var noLatency bool
	var latencyAt string
	var b2bMax uint64
	var plotFile string
	fs := flag.NewFlagSet("ndr", flag.ContinueOnError)
	fs.SetOutput(stderr)
	t.register(fs)
	fs.StringVar(&plotFile, "plot", "", "also draw the latency CDF at each latency point (all streams' frames) into this PNG `file`")
	fs.DurationVar(&trialLen, "trial", time.Second, "length of each confirmation trial (RFC 2544: 1s), and of the search's unless --search-trial")
	fs.DurationVar(&searchLen, "search-trial", 0, "length of the search's trials before a rate is confirmed, and of the flat-out trial (default --trial)")
	fs.DurationVar(&latLen, "latency-trial", time.Second, "length of each latency trial (10%, 50%, 90% of PDR)")
	fs.StringVar(&maxRate, "max-rate", "max", "the search's upper `bound`: max (what the generator offers flat out, measured first), received (twice what comes back flat out, and the floor a 20th of it: for devices that drop far below the generator's rate) or pps")
	fs.Float64Var(&resolution, "resolution", 0.005, "stop when the bounds are this close, relative to the upper one")
	fs.Float64Var(&pdrLoss, "pdr-loss", 0.005, "loss ratio PDR allows")
	fs.IntVar(&confirm, "confirm", 1, "confirmation trials the rate found must pass")
	fs.BoolVar(&noLatency, "no-latency", false, "skip the latency trials")
	fs.StringVar(&latencyAt, "latency-at", "10,50,90", "`percents` of PDR to measure latency at, comma-separated")
	fs.Uint64Var(&b2bMax, "b2b", 0, "also find the longest back-to-back burst (flat out, no loss) up to this many `frames` (RFC 2544 26.4); 0: skip")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: filament-perf ndr [flags]\n\nFinds the RFC 2544 throughput: NDR (no frame lost) and PDR (--pdr-loss lost)\nby a search over trials, each rate confirmed by another trial; then\nmeasures latency at 10%%, 50%% and 90%% of PDR.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if searchLen == 0 {
		searchLen = trialLen
	}
	if trialLen <= 0 || searchLen <= 0 {
		return usageError{fmt.Errorf("--trial %v, --search-trial %v: want > 0", trialLen, searchLen)}
	}
	byReceived := maxRate == "received"
	if byReceived {
		maxRate = "max"
	}
	max, err := parseRate(maxRate)
	if err != nil {
		return usageError{fmt.Errorf("--max-rate: %w", err)}
	}
	var latPcts []int
	for _, f := range strings.Split(latencyAt, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 100 {
			return usageError{fmt.Errorf("--latency-at %q: want percents of PDR from 1 to 100", f)}
		}
		latPcts = append(latPcts, n)
	}
	if pdrLoss <= 0 || pdrLoss >= 1 {
		return usageError{fmt.Errorf("--pdr-loss %v: want a ratio in (0, 1)", pdrLoss)}
	}
	streams, err := t.streams()
	if err != nil {
		return usageError{err}
	}
	g, err := t.start(ctx, stderr)
	if err != nil {
		return err
	}
	defer g.Close()
	if err := t.checkMTU(g, streams); err != nil {
		return err
	}
	trial := func(rate float64, d time.Duration) (*trafficgen.Result, error) {
		return g.Run(ctx, trafficgen.Trial{Streams: streams, Rate: rate, Duration: d, Drain: t.drain, Burst: t.burst, StampEvery: t.stampEvery})
	}
	sizes, flows := t.spec.Sizes, 0
	if t.profile != "" {
		sizes = "per stream (" + filepath.Base(t.profile) + ")"
	}
	for _, s := range streams {
		flows += s.Flows
	}
	rep := ndrReport{Command: "ndr", Ports: t.ports, Sizes: sizes, Flows: flows, TSCHz: g.TSCHz(), MaxPPS: max}
	if max == 0 {
		r, err := trial(0, searchLen)
		if err != nil {
			return err
		}
		rep.MaxPPS = r.TxPPS
		fmt.Fprintf(stderr, "flat out: offered %.3f Mpps, received %.3f Mpps\n", r.TxPPS/1e6, r.RxPPS/1e6)
		if byReceived {
			// A device far slower than the generator (a kernel path)
			// drops most of a flat-out trial: its rate is near what came
			// back, seldom above twice that (overload can cost it some:
			// receive livelock), and a rate 20 times lower that still
			// loses says there is no NDR worth the search's trials.
			if r.RxPPS <= 0 {
				return fmt.Errorf("flat out: nothing came back in %v", searchLen)
			}
			rep.MaxPPS = min(r.TxPPS, 2*r.RxPPS)
			rep.MinPPS = rep.MaxPPS / 20
		}
	}
	search := func(goal rfc2544.Goal, start float64, known []rfc2544.Sample) (searchReport, error) {
		o := rfc2544.Options{Max: rep.MaxPPS, Min: rep.MinPPS, Resolution: resolution, Confirmations: confirm, Start: start,
			Known: known}
		return searchGoal(ctx, o, goal, func(rate float64, confirming bool) (*trafficgen.Result, time.Duration, error) {
			// The generator's CPU quiet first (see waitQuiet).
			waited := waitQuiet(ctx, t.cpu)
			d := searchLen
			if confirming {
				d = trialLen
			}
			r, err := trial(rate, d)
			return r, waited, err
		}, stderr)
	}
	if rep.NDR, err = search(rfc2544.NDR, 0, nil); err != nil && !errors.Is(err, rfc2544.ErrNoRate) {
		return err
	}
	// The NDR search's trials that lost more than PDR allows bound the
	// PDR search from above: it need not find them again.
	var known []rfc2544.Sample
	for _, t := range rep.NDR.Each {
		if !t.Void {
			known = append(known, rfc2544.Sample{Rate: t.PPS, TxPackets: t.Offered, RxPackets: t.RxPackets})
		}
	}
	if rep.PDR, err = search(rfc2544.Goal{Name: "PDR", LossRatio: pdrLoss}, rep.NDR.PPS, known); err != nil {
		return err
	}
	if rep.PDR.FromStart {
		rep.PDR.Result = rep.NDR.Result
	}
	if !noLatency {
		for _, pct := range latPcts {
			rate := rep.PDR.PPS * float64(pct) / 100
			r, err := trial(rate, latLen)
			if err != nil {
				return err
			}
			rep.Latency = append(rep.Latency, latencyReport{PercentOfPDR: pct, PPS: rate, Result: r})
		}
	}
	if b2bMax > 0 {
		// The same search over burst lengths: a "rate" here is frames.
		res, err := rfc2544.Search(ctx, rfc2544.Options{Max: float64(b2bMax), Min: 1, Resolution: 0.01, Confirmations: confirm},
			rfc2544.Goal{Name: "back-to-back", LossRatio: 0}, func(ctx context.Context, frames float64) (rfc2544.Sample, error) {
				r, err := g.Run(ctx, trafficgen.Trial{Streams: streams, MaxPackets: uint64(frames), Drain: t.drain, Burst: t.burst, StampEvery: t.stampEvery})
				if err != nil {
					return rfc2544.Sample{}, err
				}
				fmt.Fprintf(stderr, "  back-to-back %d frames: lost %d\n", uint64(frames), r.Lost)
				return rfc2544.Sample{TxPackets: r.TxPackets, RxPackets: r.RxPackets}, nil
			})
		if err != nil && !errors.Is(err, rfc2544.ErrNoRate) {
			return err
		}
		rep.BackToBack.Frames, rep.BackToBack.Confirmed, rep.BackToBack.Trials = uint64(res.Rate), res.Confirmed, len(res.Trials)
	}
	if plotFile != "" {
		drew, err := rep.plotLatency(plotFile)
		if err != nil {
			return fmt.Errorf("--plot: %w", err)
		}
		if !drew {
			fmt.Fprintf(stderr, "filament-perf: --plot: no latency samples to draw (--no-latency, or nothing came back)\n")
		}
	}
	return t.emit(stdout, rep, rep.text, rep.markdown)
}

// plotLatency draws the latency CDF at each latency point, every stream's
// frames together, into file (PNG); false if there was none to draw.
func (r *ndrReport) plotLatency(file string) (bool, error) {
	var lines []latplot.Line
	for _, l := range r.Latency {
		if l.Result == nil {
			continue
		}
		var hists [][]trafficgen.HistBin
		for _, s := range l.Result.Streams {
			hists = append(hists, s.Latency.Hist)
		}
		lines = append(lines, latplot.Line{Name: fmt.Sprintf("%d%% of PDR (%.3f Mpps)", l.PercentOfPDR, l.PPS/1e6), Hist: latplot.Merge(hists...)})
	}
	return latplot.Save(file, fmt.Sprintf("One-way latency (CDF), frame sizes %s", r.Sizes), lines)
}

// searchGoal runs one RFC 2544 search with trials at a rate from run
// (confirming: a confirmation trial, full length), accounted by account and
// run again while void, each printed to log.
func searchGoal(ctx context.Context, o rfc2544.Options, goal rfc2544.Goal,
	run func(rate float64, confirming bool) (r *trafficgen.Result, waited time.Duration, err error), log io.Writer) (searchReport, error) {
	var each []trialReport
	trial := func(confirming bool) rfc2544.Trial {
		return func(ctx context.Context, rate float64) (rfc2544.Sample, error) {
			return accounted(rate, confirming, goal, run, &each, log)
		}
	}
	o.Confirm = trial(true)
	res, err := rfc2544.Search(ctx, o, goal, trial(false))
	sr := searchReport{LossGoal: goal.LossRatio, PPS: res.Rate, Confirmed: res.Confirmed, Trials: len(res.Trials), Each: each,
		FromStart: res.FromStart}
	if d, ok := res.Sample.Detail.(*trafficgen.Result); ok {
		sr.Result = d
	}
	return sr, err
}

// accounted runs a search trial until it is not void (or out of retries),
// appends each attempt's accounting to each and prints it to log.
func accounted(rate float64, confirming bool, goal rfc2544.Goal,
	run func(rate float64, confirming bool) (*trafficgen.Result, time.Duration, error), each *[]trialReport, log io.Writer) (rfc2544.Sample, error) {
	for attempt := 0; ; attempt++ {
		r, waited, err := run(rate, confirming)
		if err != nil {
			return rfc2544.Sample{}, err
		}
		tr := account(r)
		tr.PPS, tr.QuietWait = rate, waited
		tr.Pass = rfc2544.Sample{TxPackets: tr.Offered, RxPackets: r.RxPackets}.LossRatio() <= goal.LossRatio
		if void(tr) {
			if attempt < voidRetries {
				tr.Void = true
			} else if tr.GeneratorShort > 0 {
				// Still short: the rate was not shown to pass.
				tr.Offered += tr.GeneratorShort
				tr.Lost += int64(tr.GeneratorShort)
				tr.Pass = rfc2544.Sample{TxPackets: tr.Offered, RxPackets: r.RxPackets}.LossRatio() <= goal.LossRatio
			}
		}
		tr.Confirming, tr.Length = confirming, r.TxTime.Round(time.Millisecond)
		*each = append(*each, tr)
		again := ""
		if tr.Void {
			again = ": void, again"
		}
		kind := "trial"
		if confirming {
			kind = "confirmation"
		}
		fmt.Fprintf(log, "  %s %s %.3f Mpps: lost %d of %d offered (%.4f%%): sent %d, held back %d, generator short %d; generator stalls %d (longest %v)%s\n",
			goal.Name, kind, rate/1e6, tr.Lost, tr.Offered, 100*float64(tr.Lost)/float64(max(tr.Offered, 1)),
			r.TxPackets, tr.HeldBack, tr.GeneratorShort, r.Stalls, r.MaxGap.Round(time.Microsecond), again)
		if !tr.Void {
			return rfc2544.Sample{TxPackets: tr.Offered, RxPackets: r.RxPackets, Detail: r}, nil
		}
	}
}

// account is what a search trial counts as offered and lost. A device that
// takes frames slower than the rate back-pressures the generator (memif)
// rather than dropping: what the rate asked for while a port refused
// frames, and the generator then could not send, is lost. What the
// generator did not send for its own reasons (its lcore preempted, or the
// rate above what it builds) was never offered: counting it as the
// device's loss made NDR a measure of the generator's CPU. Up to 0.1%
// short is the pacing's slack.
func account(r *trafficgen.Result) trialReport {
	t := trialReport{Due: r.Due, TxPackets: r.TxPackets, NotTaken: r.NotTaken, RxPackets: r.RxPackets,
		Stalls: r.Stalls, MaxGap: r.MaxGap}
	if r.Due > r.TxPackets {
		short := r.Due - r.TxPackets
		t.HeldBack = min(short, max(r.Held, r.NotTaken))
		t.GeneratorShort = short - t.HeldBack
	}
	if t.HeldBack <= r.Due/1000 {
		t.HeldBack = 0
	}
	t.Offered = r.TxPackets + t.HeldBack
	t.Lost = int64(t.Offered) - int64(r.RxPackets)
	return t
}

// voidRetries is how many times a void trial runs again before it counts
// as it is.
const voidRetries = 2

// void says a trial measured the generator rather than the device: it
// fell short of the rate by more than the slack on its own (the rate was
// not offered, pass or fail), or it lost frames and its worker had
// stalled for over a millisecond (at 1 Mpps and up, a memif ring's worth
// of frames the device sends meanwhile finds no room: the device's TX
// drops, but the generator's doing).
func void(t trialReport) bool {
	return t.GeneratorShort > t.Due/1000 || (t.Lost > 0 && t.MaxGap > time.Millisecond)
}

func (r ndrReport) text(w io.Writer) {
	fmt.Fprintf(w, "sizes %s, %d flows, upper bound %.3f Mpps\n", r.Sizes, r.Flows, r.MaxPPS/1e6)
	for _, s := range []struct {
		name string
		s    searchReport
	}{{"NDR", r.NDR}, {"PDR", r.PDR}} {
		fmt.Fprintf(w, "%s (loss <= %.2f%%): %.3f Mpps after %d trials (confirmed %v)\n",
			s.name, 100*s.s.LossGoal, s.s.PPS/1e6, s.s.Trials, s.s.Confirmed)
	}
	if r.BackToBack.Trials > 0 {
		fmt.Fprintf(w, "back-to-back: %d frames flat out without a loss (confirmed %v)\n", r.BackToBack.Frames, r.BackToBack.Confirmed)
	}
	for _, l := range r.Latency {
		for i, s := range l.Result.Streams {
			fmt.Fprintf(w, "latency at %d%% of PDR (%.3f Mpps), stream %d: p50 %v p90 %v p99 %v p99.9 %v max %v\n",
				l.PercentOfPDR, l.PPS/1e6, i, s.Latency.P50, s.Latency.P90, s.Latency.P99, s.Latency.P999, s.Latency.Max)
		}
	}
}

func (r ndrReport) markdown(w io.Writer) {
	fmt.Fprintf(w, "| goal | Mpps | trials | confirmed |\n|---|---|---|---|\n")
	fmt.Fprintf(w, "| NDR (0 loss) | %.3f | %d | %v |\n", r.NDR.PPS/1e6, r.NDR.Trials, r.NDR.Confirmed)
	fmt.Fprintf(w, "| PDR (%.2f%% loss) | %.3f | %d | %v |\n", 100*r.PDR.LossGoal, r.PDR.PPS/1e6, r.PDR.Trials, r.PDR.Confirmed)
	if len(r.Latency) > 0 {
		fmt.Fprintf(w, "\n| load | Mpps | p50 | p90 | p99 | p99.9 | max |\n|---|---|---|---|---|---|---|\n")
		for _, l := range r.Latency {
			for _, s := range l.Result.Streams {
				x := s.Latency
				fmt.Fprintf(w, "| %d%% of PDR | %.3f | %v | %v | %v | %v | %v |\n", l.PercentOfPDR, l.PPS/1e6, x.P50, x.P90, x.P99, x.P999, x.Max)
			}
		}
	}
	if r.BackToBack.Trials > 0 {
		fmt.Fprintf(w, "\nBack-to-back: %d frames.\n", r.BackToBack.Frames)
	}
}
