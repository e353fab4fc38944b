package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/filament-net/filament/perf/rfc2544"
	"github.com/filament-net/filament/perf/trafficgen"
)

// What a trial counts as offered and lost: a device that back-pressures
// the generator loses what it refused; frames the generator did not build
// on its own (preempted) were not offered; the pacing's slack (0.1%) is
// neither. A trial the generator spoiled is void.
func TestAccount(t *testing.T) {
	for _, c := range []struct {
		name                   string
		due, sent, held, rx    uint64
		gap                    time.Duration
		offered, heldBack, gen uint64
		lost                   int64
		void                   bool
	}{
		{name: "all", due: 100000, sent: 100000, rx: 100000, offered: 100000},
		{name: "slack", due: 100000, sent: 99950, rx: 99950, offered: 99950, gen: 50},
		{name: "back-pressured to 40%", due: 100000, sent: 40000, held: 60000, rx: 40000, offered: 100000, heldBack: 60000, lost: 60000},
		{name: "preempted", due: 100000, sent: 90000, rx: 90000, offered: 90000, gen: 10000, void: true},
		{name: "both", due: 100000, sent: 80000, held: 5000, rx: 80000, offered: 85000, heldBack: 5000, gen: 15000, lost: 5000, void: true},
		{name: "device drops", due: 100000, sent: 100000, rx: 99990, offered: 100000, lost: 10},
		{name: "drops after a stall", due: 100000, sent: 100000, rx: 99000, gap: 4 * time.Millisecond, offered: 100000, lost: 1000, void: true},
		{name: "more back than sent", due: 100000, sent: 100010, rx: 100010, offered: 100010},
	} {
		r := &trafficgen.Result{TxTime: time.Second, Due: c.due, TxPackets: c.sent, Held: c.held, RxPackets: c.rx, MaxGap: c.gap}
		got := account(r)
		if got.Offered != c.offered || got.HeldBack != c.heldBack || got.GeneratorShort != c.gen || got.Lost != c.lost {
			t.Errorf("%s: %+v, want offered %d held back %d generator short %d lost %d", c.name, got, c.offered, c.heldBack, c.gen, c.lost)
		}
		if v := void(got); v != c.void {
			t.Errorf("%s: void %v, want %v", c.name, v, c.void)
		}
	}
}

// simDevice forwards up to capacity pps without loss and back-pressures
// above it (memif); its generator is preempted in the trials preempt says:
// it then sends 3% short of the rate and stalls 5 ms, after which the
// device drops 100 frames into the generator's undrained RX ring.
type simDevice struct {
	capacity float64
	preempt  func(trial int) bool
	trials   int
}

func (d *simDevice) run(rate float64, _ bool) (*trafficgen.Result, time.Duration, error) {
	d.trials++
	due := uint64(rate)
	r := &trafficgen.Result{TxTime: time.Second, Due: due, TxPackets: due, MaxGap: 20 * time.Microsecond}
	if rate > d.capacity {
		r.TxPackets = uint64(d.capacity)
		r.Held = due - r.TxPackets
	}
	r.RxPackets = r.TxPackets
	if d.preempt(d.trials) {
		r.TxPackets = r.TxPackets * 97 / 100
		r.RxPackets = r.TxPackets - 100
		r.Stalls, r.MaxGap = 3, 5*time.Millisecond
	}
	r.Lost = int64(r.TxPackets) - int64(r.RxPackets)
	return r, 0, nil
}

// The search over a lossless device of known capacity whose generator is
// preempted now and then finds NDR at the capacity: the trials the
// generator spoiled run again instead of failing the rate (counting the
// generator's shortfall as loss put NDR far below PDR). A generator
// preempted in every trial shows no rate it did not send.
func TestSearchPreemptedGenerator(t *testing.T) {
	const capacity = 8e6
	o := rfc2544.Options{Max: 20e6, Resolution: 0.005}
	d := &simDevice{capacity: capacity, preempt: func(n int) bool { return n%3 == 1 }}
	var log strings.Builder
	rep, err := searchGoal(context.Background(), o, rfc2544.NDR, d.run, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	voids := 0
	for _, tr := range rep.Each {
		if tr.Void {
			voids++
		}
	}
	if !rep.Confirmed || rep.PPS > capacity*1.001 || rep.PPS < capacity*(1-2*o.Resolution) || voids == 0 {
		t.Fatalf("NDR %.3f Mpps (confirmed %v, %d void trials), want within 1%% of %.3f (0.1%% over is the slack):\n%s",
			rep.PPS/1e6, rep.Confirmed, voids, capacity/1e6, log.String())
	}
	// Always preempted: every rate the search passes was really sent.
	d = &simDevice{capacity: capacity, preempt: func(int) bool { return true }}
	log.Reset()
	rep, err = searchGoal(context.Background(), o, rfc2544.NDR, d.run, &log)
	if err == nil || rep.PPS != 0 {
		t.Fatalf("a generator short in every trial passed %.3f Mpps (%v):\n%s", rep.PPS/1e6, err, log.String())
	}
}
