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
	// A binary search of 10M to 0.5%: about log2(200) halvings, plus the
	// top trial and the confirmation.
	if n := len(r.Trials); n > 12 || n != d.trials {
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
	if _, err = Search(context.Background(), Options{Max: 10e6, MaxTrials: 4}, NDR, d.trial); err == nil || d.trials != 4 {
		t.Fatalf("err %v after %d trials, want a bound at 4", err, d.trials)
	}
}
