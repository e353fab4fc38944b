package fastpath_test

import (
	"syscall"
	"testing"
	"time"
)

// An idle dataplane backs off: the whole test process (worker lcore, control
// threads, Go runtime) stays under 5% of a core while nothing arrives.
func TestIdleCPU(t *testing.T) {
	e := newEnv(t)
	a := e.pod(34, "02:00:00:22:00:0a", "10.34.0.10") // one polled port, no traffic
	_ = a
	settle(t)
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	// Let every worker reach its longest sleep first: after 20 sleeps the
	// back-off (1 us doubling) is at its ceiling.
	var base []uint64
	for w := 0; w < dp.Workers(); w++ {
		s, _ := dp.LcoreStats(w)
		base = append(base, s.Sleeps)
	}
	waitFor(t, "workers at their longest idle sleep", func() bool {
		for w := range base {
			if s, _ := dp.LcoreStats(w); s.Sleeps < base[w]+20 {
				return false
			}
		}
		return true
	})
	c0, w0 := cpu(), time.Now()
	time.Sleep(2 * time.Second) // measuring an interval, not waiting for a condition
	used, wall := cpu()-c0, time.Since(w0)
	share := float64(used) / float64(wall)
	t.Logf("idle: %v of CPU over %v (%.1f%% of a core)", used, wall.Round(time.Millisecond), 100*share)
	if share >= 0.05 {
		t.Errorf("idle dataplane used %.1f%% of a core, want < 5%%", 100*share)
	}
}
