package main

import (
	"testing"
	"time"

	"github.com/filament-net/filament/perf/trafficgen"
)

// A device that back-pressures the generator loses what it did not take;
// the pacing's slack (up to 0.1% short) is not loss.
func TestAccount(t *testing.T) {
	for _, c := range []struct {
		sent uint64
		rate float64
		want uint64
	}{
		{sent: 100000, rate: 100000, want: 100000},
		{sent: 99950, rate: 100000, want: 99950},  // 0.05% short: slack
		{sent: 40000, rate: 100000, want: 100000}, // back-pressured to 40%
		{sent: 100010, rate: 100000, want: 100010},
	} {
		r := &trafficgen.Result{TxTime: time.Second, TxPackets: c.sent, RxPackets: c.sent, Due: uint64(c.rate)}
		if got := account(r, c.rate); got.Offered != c.want || got.Lost != int64(c.want-c.sent) {
			t.Errorf("account(sent %d, rate %v) = %+v, want %d offered", c.sent, c.rate, got, c.want)
		}
	}
}
