package main

import (
	"testing"
	"time"

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
