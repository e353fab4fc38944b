// Package rfc2544 finds a device's throughput as RFC 2544 defines it: the
// highest offered rate whose trial loses no more than a goal's loss ratio
// (NDR: none; PDR: a partial drop rate, 0.5% by convention), by a search
// over trials of fixed length (bisection, led by what failed trials say of
// the device's capacity), then a confirmation trial at the rate found. It
// knows nothing of packets: a Trial does the sending.
package rfc2544

import (
	"context"
	"errors"
	"fmt"
)

// Sample is what one trial at a rate sent and got back.
type Sample struct {
	Rate      float64 // offered, packets per second
	TxPackets uint64
	RxPackets uint64
	// Detail is whatever the trial wants to keep with it (latency, ports).
	Detail any `json:",omitempty"`
}

// LossRatio is the share of frames sent that did not come back (0 when
// the device returned at least as many as it was sent).
func (s Sample) LossRatio() float64 {
	if s.TxPackets == 0 || s.RxPackets >= s.TxPackets {
		return 0
	}
	return float64(s.TxPackets-s.RxPackets) / float64(s.TxPackets)
}

// Trial runs traffic offered at rate packets per second for the trial's
// length and reports the counts. A trial that sends nothing is an error.
type Trial func(ctx context.Context, rate float64) (Sample, error)

// Goal names a loss ratio a rate must meet.
type Goal struct {
	Name      string
	LossRatio float64
}

// The usual goals.
var (
	NDR = Goal{"NDR", 0}
	PDR = Goal{"PDR", 0.005}
)

// Options bound a search.
type Options struct {
	// Max is the highest rate to try (pps): the line rate, or what the
	// generator offers flat out. Required.
	Max float64
	// Min is the lowest rate worth reporting; a device that fails at Min
	// has no throughput at this goal (default Max/1000).
	Min float64
	// Resolution ends the search when the bounds are this close, relative
	// to the upper one (default 0.005: half a percent).
	Resolution float64
	// Confirmations are the extra trials the rate found must pass (default
	// 1); one that fails lowers the upper bound and the search goes on.
	Confirmations int
	// Confirm, if set, runs the confirmation trials, and the search's own
	// trials are the Trial given to Search: RFC 2544's full-length trials
	// for the rate reported, shorter ones to find it.
	Confirm Trial
	// MaxTrials bounds the whole search (default 60).
	MaxTrials int
	// Start, if set, is a rate known to pass, confirmed (a PDR search
	// starts from the NDR found before: a rate that lost nothing meets any
	// loss goal). The search only tries rates above it and never reports
	// less: if none above it holds, the result is Start itself.
	Start float64
	// Known are trials already run against the device for another goal
	// (a PDR search gets the NDR search's): one above Start that lost
	// more than this goal allows is an upper bound the search need not
	// find again (the top trial is then skipped), one below that bound
	// that lost less a lower one (still confirmed). Rate must be set.
	Known []Sample
}

// Result is a goal's throughput and every trial that led to it.
type Result struct {
	Goal      Goal
	Rate      float64 // the highest rate that passed, confirmed; 0 if none did
	Sample    Sample  // the confirming trial (or the last pass); none when FromStart
	Confirmed bool
	// FromStart: no rate above Options.Start held, and the result is
	// Start, confirmed by the search that found it.
	FromStart bool
	Trials    []Sample
}

// ErrNoRate: not even the minimum rate met the goal.
var ErrNoRate = errors.New("no rate at or above the minimum meets the goal")

func (o *Options) defaults() error {
	if o.Max <= 0 {
		return fmt.Errorf("rfc2544: maximum rate %v: must be > 0", o.Max)
	}
	if o.Min <= 0 {
		o.Min = o.Max / 1000
	}
	if o.Min > o.Max {
		return fmt.Errorf("rfc2544: minimum rate %v above the maximum %v", o.Min, o.Max)
	}
	if o.Resolution <= 0 {
		o.Resolution = 0.005
	}
	if o.Confirmations == 0 {
		o.Confirmations = 1
	}
	if o.MaxTrials == 0 {
		o.MaxTrials = 60
	}
	return nil
}

// Search finds the throughput at goal g.
func Search(ctx context.Context, o Options, g Goal, trial Trial) (Result, error) {
	r := Result{Goal: g}
	if err := o.defaults(); err != nil {
		return r, err
	}
	confirm := o.Confirm
	if confirm == nil {
		confirm = trial
	}
	try := func(trial Trial, rate float64) (bool, Sample, error) {
		if len(r.Trials) >= o.MaxTrials {
			return false, Sample{}, fmt.Errorf("rfc2544: %s: %d trials without converging", g.Name, o.MaxTrials)
		}
		s, err := trial(ctx, rate)
		if err != nil {
			return false, s, fmt.Errorf("rfc2544: %s: trial at %.0f pps: %w", g.Name, rate, err)
		}
		if s.TxPackets == 0 {
			return false, s, fmt.Errorf("rfc2544: %s: trial at %.0f pps sent nothing", g.Name, rate)
		}
		s.Rate = rate
		r.Trials = append(r.Trials, s)
		return s.LossRatio() <= g.LossRatio, s, nil
	}
	run := func(rate float64) (bool, Sample, error) { return try(trial, rate) }
	// lo passed (or is the floor), hi failed (or is above the maximum).
	lo, hi := 0.0, o.Max
	var best Sample
	// A known pass: never tried again, never gone below. Trying it again
	// gave a PDR under the NDR when a noisy device failed that trial (a
	// kernel pod's 0.481 against 0.489 Mpps): the search then went on
	// below it.
	start := 0.0
	if o.Start > 0 {
		start = min(o.Start, o.Max)
		lo = start
	}
	if start == o.Max {
		r.Rate, r.Confirmed, r.FromStart = start, true, true
		return r, nil
	}
	// prev is the last trial, for next: a failure's estimate of the edge;
	// down, if not 0, the step below hi next steps down by.
	var prev probe
	var down float64
	for _, k := range o.Known {
		if k.Rate > lo && k.Rate <= hi && k.TxPackets > 0 && k.LossRatio() > g.LossRatio {
			hi, prev = k.Rate, probe{kind: probeKnown, s: k}
		}
	}
	// Known passes below that bound (a trial that lost under this goal's
	// ratio passes it) raise the floor, confirmed at the end as any.
	for _, k := range o.Known {
		if k.Rate > lo && k.Rate < hi && k.TxPackets > 0 && k.LossRatio() <= g.LossRatio {
			lo, best = k.Rate, k
		}
	}
	// The top first: a device that keeps up needs one trial (and its
	// confirmation).
	if prev.kind != probeKnown {
		ok, s, err := run(hi)
		if err != nil {
			return r, err
		}
		prev = probe{kind: probeBisect, ok: ok, s: s}
		if ok {
			lo, best = hi, s
		}
	}
	for {
		for lo < hi && hi-lo > o.Resolution*hi {
			kind, rate := next(o, g, lo, hi, prev, down)
			ok, s, err := run(rate)
			if err != nil {
				return r, err
			}
			prev = probe{kind: kind, ok: ok, s: s}
			switch {
			case ok:
				down = 0
			case kind == probeStepDown:
				down *= 2
			}
			if ok {
				lo, best = rate, s
			} else {
				if rate <= o.Min {
					return r, fmt.Errorf("rfc2544: %s: %w (%.0f pps lost %.3g%%)", g.Name, ErrNoRate, rate,
						100*s.LossRatio())
				}
				hi = rate
			}
		}
		if lo == 0 {
			return r, fmt.Errorf("rfc2544: %s: %w", g.Name, ErrNoRate)
		}
		if lo == start {
			r.Rate, r.Confirmed, r.FromStart = start, true, true
			return r, nil
		}
		confirmed := true
		var last Sample
		for i := 0; i < o.Confirmations; i++ {
			ok, s, err := try(confirm, lo)
			if err != nil {
				return r, err
			}
			if !ok {
				confirmed, last = false, s
				break
			}
			best = s
		}
		if confirmed {
			r.Rate, r.Sample, r.Confirmed = lo, best, true
			return r, nil
		}
		// The rate did not hold: it is the new upper bound, and what
		// passed below it must be found again (from the start, if any:
		// lo is above it). The failed confirmation's estimate leads the
		// way: where the edge moved a little, 2 trials find it again.
		hi, lo = lo, start
		prev = probe{kind: probeConfirm, s: last}
		// The device passed a search trial just below hi: step down
		// from it rather than bisect from the floor (7 trials back up
		// from hi/2 on a noisy day).
		down = 2 * o.Resolution
	}
}

// probe is a trial of the search, for next: what it was and what it got.
type probe struct {
	kind probeKind
	ok   bool
	s    Sample
}

type probeKind int

const (
	probeBisect   probeKind = iota // the middle of [lo, hi], or the top
	probeEstimate                  // where the last failure put the edge
	probeBracket                   // just above an estimate that passed
	probeStepDown                  // below hi after a failed confirmation
	probeConfirm                   // a failed confirmation
	probeKnown                     // a failure of Options.Known
)

// next is the rate to try between lo (passed, or 0) and hi (failed). A
// failed trial says what the device took: a device back-pressuring or
// dropping the excess forwards about its capacity, offered x received /
// sent, and the goal's edge is that over (1 - the loss goal). Trying just
// under it, then just above it if it passes, brackets the edge in two
// trials where bisection takes log2(range / resolution): 7 from a top
// trial at 1.4x the edge to 1%. Every try stays inside (lo, hi), so a
// wrong estimate (a noisy device, loss that is not overload) costs its
// trial and no more: an estimate that fails is followed by a bisection,
// never by another estimate, and the search takes at most about twice
// bisection's trials.
func next(o Options, g Goal, lo, hi float64, prev probe, down float64) (probeKind, float64) {
	w := o.Resolution * hi
	if !prev.ok && prev.kind != probeEstimate && prev.s.TxPackets > 0 {
		// A quarter of the resolution under the estimate: a device at
		// its edge passes it, and the bracket above is then within the
		// resolution.
		est := prev.s.Rate * float64(prev.s.RxPackets) / float64(prev.s.TxPackets) / (1 - g.LossRatio) *
			(1 - o.Resolution/4)
		est = max(est, o.Min)
		if est > lo+w/4 && est < hi-w/4 {
			return probeEstimate, est
		}
		if est <= lo+w/4 && lo > 0 {
			// The edge is just above what passed: bracket it.
			if b := lo * (1 + 0.9*o.Resolution); b < hi-w/4 {
				return probeBracket, b
			}
		}
	}
	if prev.ok && prev.kind == probeEstimate {
		// Just above the estimate that passed: if it fails, the edge is
		// found to the resolution.
		if b := lo * (1 + 0.9*o.Resolution); b < hi-w/4 {
			return probeBracket, b
		}
	}
	if down > 0 {
		// After a failed confirmation, nothing passed since: steps
		// below hi that double (MLRsearch's external search) find a
		// pass near hi in one or two trials, a far one in log2 of them.
		if rate := hi * (1 - down); rate > lo+w/4 && rate >= o.Min {
			return probeStepDown, rate
		}
	}
	if lo == 0 {
		// Nothing passed yet: approach the floor geometrically.
		return probeBisect, max(hi/2, o.Min)
	}
	return probeBisect, (lo + hi) / 2
}
