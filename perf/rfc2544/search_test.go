package rfc2544

import (
	"context"
	"errors"
	"math"
	"testing"
)

// device forwards up to capacity pps and drops the excess; flaky makes the
// trials whose numbers it lists lose one frame in a thousand.
type device struct {
	capacity float64
	flaky    map[int]bool
	trials   int
}

func (d *device) trial(_ context.Context, rate float64) (Sample, error) {
	d.trials++
	tx := uint64(rate) // a one-second trial
	rx := tx
	if rate > d.capacity {
		rx = uint64(d.capacity)
	}
	if d.flaky[d.trials] {
		rx -= tx / 1000
	}
	return Sample{TxPackets: tx, RxPackets: rx}, nil
}

func TestNDR(t *testing.T) {
	d := &device{capacity: 7.3e6}
	r, err := Search(context.Background(), Options{Max: 10e6}, NDR, d.trial)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Confirmed || r.Rate > 7.3e6 || r.Rate < 7.3e6*(1-0.005) {
		t.Fatalf("NDR %.0f (confirmed %v), want within 0.5%% below 7.3M", r.Rate, r.Confirmed)
	}
	// The top trial fails; what came back puts the edge near 7.3M: a
	// trial just under it passes, one just above fails, and the rate is
	// confirmed. Bisection alone took 10 (log2(200) halvings, the top
	// trial and the confirmation).
	if n := len(r.Trials); n > 4 || n != d.trials {
		t.Fatalf("%d trials recorded, %d run", n, d.trials)
	}
	if last := r.Trials[len(r.Trials)-1]; last.Rate != r.Rate || last.LossRatio() != 0 {
		t.Fatalf("last trial %+v is not the confirmation at %.0f", last, r.Rate)
	}
}

func TestPDRAboveNDR(t *testing.T) {
	d := &device{capacity: 5e6}
	r, err := Search(context.Background(), Options{Max: 10e6, Start: 4.9e6}, PDR, d.trial)
	if err != nil {
		t.Fatal(err)
	}
	// Loss is (rate-5M)/rate: 0.5% at 5M/0.995.
	edge := 5e6 / 0.995
	if r.Rate > edge || r.Rate < edge*(1-0.005) {
		t.Fatalf("PDR %.0f, want within 0.5%% below %.0f", r.Rate, edge)
	}
	for _, s := range r.Trials {
		if s.Rate < 4.9e6 {
			t.Fatalf("trial at %.0f below the start rate", s.Rate)
		}
	}
}

func TestKeepsUp(t *testing.T) {
	d := &device{capacity: math.Inf(1)}
	r, err := Search(context.Background(), Options{Max: 10e6}, NDR, d.trial)
	if err != nil || r.Rate != 10e6 || len(r.Trials) != 2 {
		t.Fatalf("rate %.0f after %d trials (%v): want the maximum after 2", r.Rate, len(r.Trials), err)
	}
}

// A confirmation that fails lowers the upper bound; the search ends on a
// rate that held twice in a row.
func TestFailedConfirmation(t *testing.T) {
	d := &device{capacity: 7.3e6}
	first, err := Search(context.Background(), Options{Max: 10e6}, NDR, (&device{capacity: 7.3e6}).trial)
	if err != nil {
		t.Fatal(err)
	}
	d.flaky = map[int]bool{len(first.Trials): true} // the first confirmation
	r, err := Search(context.Background(), Options{Max: 10e6}, NDR, d.trial)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Confirmed || r.Rate >= first.Rate || r.Rate < first.Rate*0.99 {
		t.Fatalf("rate %.0f (confirmed %v), want just below %.0f", r.Rate, r.Confirmed, first.Rate)
	}
	// The search steps down from the rate that failed (one step of twice
	// the resolution passes), bisects once and confirms: 3 trials, not a
	// new search from the floor (7 or 8).
	if after := len(r.Trials) - len(first.Trials); after > 3 {
		t.Fatalf("%d trials after the failed confirmation, want 3: %v", after, rates(r.Trials))
	}
}

// A device whose capacity falls while it is measured (the host moved its
// CPU): the confirmation fails and the search steps down, doubling its
// step, to the new edge rather than starting over.
func TestCapacityFalls(t *testing.T) {
	d := &device{capacity: 7.3e6}
	first, err := Search(context.Background(), Options{Max: 10e6}, NDR, (&device{capacity: 7.3e6}).trial)
	if err != nil {
		t.Fatal(err)
	}
	n := len(first.Trials) - 1 // the search trials before the confirmation
	trial := func(ctx context.Context, rate float64) (Sample, error) {
		if d.trials == n {
			d.capacity = 6.1e6
		}
		return d.trial(ctx, rate)
	}
	r, err := Search(context.Background(), Options{Max: 10e6}, NDR, trial)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Confirmed || r.Rate > 6.1e6 || r.Rate < 6.1e6*0.99 {
		t.Fatalf("rate %.0f (confirmed %v), want within 1%% under 6.1M: %v", r.Rate, r.Confirmed, rates(r.Trials))
	}
	// Steps of 1%, 2%, 4%, 8% and 16% of the rate that failed, the last
	// passing, then a bisection of that step to 0.5% and the confirmation.
	if after := len(r.Trials) - n - 1; after > 10 {
		t.Fatalf("%d trials after the failed confirmation: %v", after, rates(r.Trials))
	}
	for _, s := range r.Trials[n+1:] {
		if s.Rate >= first.Rate {
			t.Fatalf("a trial at %.0f, at or above the rate that failed (%.0f): %v", s.Rate, first.Rate, rates(r.Trials))
		}
	}
}

// Known failures (the NDR search's trials) bound a PDR search from above:
// it skips the top trial and bisects only below them.
func TestKnownBound(t *testing.T) {
	d := &device{capacity: 5e6}
	ndr, err := Search(context.Background(), Options{Max: 10e6}, NDR, d.trial)
	if err != nil {
		t.Fatal(err)
	}
	plain := &device{capacity: 5e6}
	if _, err := Search(context.Background(), Options{Max: 10e6, Start: ndr.Rate}, PDR, plain.trial); err != nil {
		t.Fatal(err)
	}
	seeded := &device{capacity: 5e6}
	r, err := Search(context.Background(), Options{Max: 10e6, Start: ndr.Rate, Known: ndr.Trials}, PDR, seeded.trial)
	if err != nil {
		t.Fatal(err)
	}
	edge := 5e6 / 0.995
	if !r.Confirmed || r.Rate > edge || r.Rate < edge*(1-0.005) {
		t.Fatalf("PDR %.0f, want within 0.5%% below %.0f: %v", r.Rate, edge, rates(r.Trials))
	}
	if seeded.trials >= plain.trials {
		t.Fatalf("%d trials with the NDR search's known, %d without: want fewer", seeded.trials, plain.trials)
	}
	for _, s := range r.Trials {
		if s.Rate >= 10e6 {
			t.Fatalf("the top trial ran though a known trial above the edge failed: %v", rates(r.Trials))
		}
	}
	t.Logf("PDR %.0f after %d trials (%d without the NDR's)", r.Rate, seeded.trials, plain.trials)
}

func rates(ss []Sample) []float64 {
	var out []float64
	for _, s := range ss {
		out = append(out, s.Rate)
	}
	return out
}

func TestNoRate(t *testing.T) {
	d := &device{capacity: 1000}
	_, err := Search(context.Background(), Options{Max: 10e6, Min: 10e3}, NDR, d.trial)
	if !errors.Is(err, ErrNoRate) {
		t.Fatalf("err %v, want ErrNoRate", err)
	}
	if d.trials > 12 {
		t.Fatalf("%d trials to find nothing", d.trials)
	}
}

func TestTrialErrors(t *testing.T) {
	boom := errors.New("port down")
	_, err := Search(context.Background(), Options{Max: 1e6}, NDR, func(context.Context, float64) (Sample, error) {
		return Sample{}, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want the trial's", err)
	}
	_, err = Search(context.Background(), Options{Max: 1e6}, NDR, func(context.Context, float64) (Sample, error) {
		return Sample{}, nil
	})
	if err == nil {
		t.Fatal("a trial that sent nothing passed")
	}
	if _, err = Search(context.Background(), Options{}, NDR, (&device{}).trial); err == nil {
		t.Fatal("no maximum rate accepted")
	}
	d := &device{capacity: 7.3e6}
	if _, err = Search(context.Background(), Options{Max: 10e6, MaxTrials: 2}, NDR, d.trial); err == nil || d.trials != 2 {
		t.Fatalf("err %v after %d trials, want a bound at 2", err, d.trials)
	}
}

// A PDR search from a confirmed NDR never reports less than it, nor tries
// it or anything below it again (monotonicity: a rate that lost nothing
// meets any loss goal). Before, a noisy device that failed the trial at the
// start rate sent the search below it: a kernel pod's PDR came out at
// 0.481 Mpps under its NDR of 0.489.
func TestPDRNeverBelowNDR(t *testing.T) {
	const ndr = 4.89e5
	for _, c := range []struct {
		name string
		loss func(rate float64) float64 // the share of a trial lost
		want float64                    // PDR, within the resolution below
	}{
		// Every trial above the NDR loses 1%: nothing holds above it.
		{"noisy above", func(float64) float64 { return 0.01 }, ndr},
		// A device with a 0.5% edge just above NDR that loses 1% in its
		// first trials (the start rate's retrial used to be one of them).
		{"edge above", func(r float64) float64 {
			if r > 5e5 {
				return 0.01
			}
			return 0.001
		}, 5e5},
	} {
		t.Run(c.name, func(t *testing.T) {
			var rates []float64
			trial := func(_ context.Context, rate float64) (Sample, error) {
				rates = append(rates, rate)
				tx := uint64(rate)
				return Sample{TxPackets: tx, RxPackets: tx - uint64(float64(tx)*c.loss(rate))}, nil
			}
			r, err := Search(context.Background(), Options{Max: 1e6, Resolution: 0.02, Start: ndr}, PDR, trial)
			if err != nil {
				t.Fatal(err)
			}
			if r.Rate < ndr || r.Rate > c.want || r.Rate < c.want*(1-0.02) || !r.Confirmed {
				t.Fatalf("PDR %.0f (confirmed %v), want %.0f (within 2%% below), never under the NDR %.0f; trials at %v",
					r.Rate, r.Confirmed, c.want, ndr, rates)
			}
			if r.FromStart != (r.Rate == ndr) {
				t.Fatalf("FromStart %v at %.0f", r.FromStart, r.Rate)
			}
			for _, x := range rates {
				if x <= ndr {
					t.Fatalf("a trial at %.0f, at or below the NDR %.0f: %v", x, ndr, rates)
				}
			}
		})
	}
	// An NDR at the maximum: PDR is the maximum, no trial.
	r, err := Search(context.Background(), Options{Max: 1e6, Start: 1e6}, PDR, func(context.Context, float64) (Sample, error) {
		t.Fatal("a trial at or below a start at the maximum")
		return Sample{}, nil
	})
	if err != nil || r.Rate != 1e6 || !r.Confirmed || !r.FromStart {
		t.Fatalf("PDR %+v (%v), want the maximum from the start", r, err)
	}
}

// With Options.Confirm, the rate found is confirmed by that trial (a full
// one-second trial) and only the search's trials are the short ones.
func TestConfirmTrial(t *testing.T) {
	short, long := &device{capacity: 7.3e6}, &device{capacity: 7.3e6}
	r, err := Search(context.Background(), Options{Max: 10e6, Confirm: long.trial}, NDR, short.trial)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Confirmed || long.trials != 1 || short.trials+long.trials != len(r.Trials) || short.trials < 3 {
		t.Fatalf("rate %.0f: %d search trials, %d confirmations (%d recorded): want many and one", r.Rate, short.trials, long.trials, len(r.Trials))
	}
	if last := r.Trials[len(r.Trials)-1]; last.Rate != r.Rate || r.Sample.Rate != r.Rate {
		t.Fatalf("the result's sample %+v is not the confirmation at %.0f", r.Sample, r.Rate)
	}
}

// A noisy device: each trial's capacity drawn within 5% of 7.3M (a shared
// machine). Whatever the draws, the search ends, confirmed, on a rate some
// trial's capacity allowed, in fewer trials than MaxTrials, and in fewer on
// average than bisection needed.
func TestNoisyDevice(t *testing.T) {
	total, worst := 0, 0
	for seed := uint64(1); seed <= 500; seed++ {
		x := seed * 0x9e3779b97f4a7c15
		d := &device{}
		trial := func(ctx context.Context, rate float64) (Sample, error) {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			d.capacity = 7.3e6 * (0.95 + 0.1*float64(x%1000)/1000)
			return d.trial(ctx, rate)
		}
		for _, g := range []Goal{NDR, PDR} {
			d.trials = 0
			r, err := Search(context.Background(), Options{Max: 10e6, Resolution: 0.01}, g, trial)
			if err != nil {
				t.Fatalf("seed %d %s: %v", seed, g.Name, err)
			}
			if !r.Confirmed || r.Rate > 7.3e6*1.05/(1-g.LossRatio) || r.Rate < 7.3e6*0.95*0.9 {
				t.Fatalf("seed %d %s: %.0f (confirmed %v) outside the capacities drawn: %v", seed, g.Name, r.Rate, r.Confirmed, rates(r.Trials))
			}
			worst = max(worst, d.trials)
			if d.trials > 40 {
				t.Fatalf("seed %d %s: %d trials: %v", seed, g.Name, d.trials, rates(r.Trials))
			}
			total += d.trials
		}
	}
	mean := float64(total) / 1000
	t.Logf("%.1f trials per search on average, %d at most", mean, worst)
	// Bisection alone (before the estimates): 15.6 on average, 42 at most.
	if mean > 12 {
		t.Fatalf("%.1f trials per search on average, want under 12", mean)
	}
}

// A device whose capacity drifts down while it is measured (a noisy day:
// 1% a trial from 10.75 Mpps until it settles at 9): each failed
// confirmation steps down from the rate that failed rather than bisecting
// up from half of it. A capacity that never settles has no NDR: no search
// converges on it.
func TestCapacityDrifts(t *testing.T) {
	d := &device{}
	trial := func(ctx context.Context, rate float64) (Sample, error) {
		d.capacity = max(9e6, 10.75e6*math.Pow(0.99, float64(d.trials)))
		return d.trial(ctx, rate)
	}
	r, err := Search(context.Background(), Options{Max: 10.75e6, Resolution: 0.01}, NDR, trial)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Confirmed || r.Rate > 9e6 || r.Rate < 9e6*0.99 {
		t.Fatalf("NDR %.0f (confirmed %v), want within 1%% under 9M: %v", r.Rate, r.Confirmed, rates(r.Trials))
	}
	// 27 trials with the estimates alone, 26 with bisection alone.
	if d.trials > 23 {
		t.Fatalf("%d trials: %v", d.trials, rates(r.Trials))
	}
}
