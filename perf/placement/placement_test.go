package placement

import (
	"errors"
	"syscall"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	ns, err := RoundTripNs(0, 1)
	if errors.Is(err, syscall.EBUSY) {
		// Another process held a CPU for 100 ms: the probe must say so
		// quickly rather than measure the scheduler.
		t.Logf("busy machine: %v", err)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	// Whatever the host does, a round trip between two CPUs takes more
	// than a few ns and less than a scheduler tick.
	if ns < 5 || ns > 1e6 {
		t.Fatalf("round trip %.1f ns", ns)
	}
	t.Logf("CPU 0 <-> CPU 1: %.0f ns (%s)", ns, Of(ns, ns))
	if _, err := RoundTripNs(0, 4096); err == nil {
		t.Fatal("a CPU that does not exist was accepted")
	}
}

func TestOf(t *testing.T) {
	for _, c := range []struct {
		a, b float64
		want Label
	}{{90, 95, Near}, {400, 420, Far}, {90, 400, Mixed}, {0, 90, Unknown}} {
		if got := Of(c.a, c.b); got != c.want {
			t.Errorf("Of(%v, %v) = %s, want %s", c.a, c.b, got, c.want)
		}
	}
}
