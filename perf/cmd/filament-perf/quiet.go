package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Other processes on the generator's CPU preempt its worker: it falls
// behind the rate and stops polling RX (a void trial). Before a search
// trial the generator waits, within a bound, for its CPU to be quiet.
const (
	quietBusy   = 0.2                   // busy share of the CPU that counts as quiet
	quietWindow = 50 * time.Millisecond // how long one look at the CPU lasts
	quietMax    = 2 * time.Second       // the longest wait before a trial
	statPath    = "/proc/stat"
)

// cpuTimes reads a CPU's busy and total jiffies from /proc/stat.
func cpuTimes(stat string, cpu int) (busy, total uint64, err error) {
	name := "cpu" + strconv.Itoa(cpu)
	for _, l := range strings.Split(stat, "\n") {
		f := strings.Fields(l)
		if len(f) < 5 || f[0] != name {
			continue
		}
		for i, v := range f[1:] {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("%s: field %d: %w", name, i+1, err)
			}
			// Guest time (fields 9, 10) is in user already; idle (4)
			// and iowait (5) are not busy.
			if i >= 8 {
				break
			}
			total += n
			if i != 3 && i != 4 {
				busy += n
			}
		}
		return busy, total, nil
	}
	return 0, 0, fmt.Errorf("no %s in %s", name, statPath)
}

// busyShare is cpu's busy share over d.
func busyShare(ctx context.Context, cpu int, d time.Duration) (float64, error) {
	read := func() (uint64, uint64, error) {
		b, err := os.ReadFile(statPath)
		if err != nil {
			return 0, 0, err
		}
		return cpuTimes(string(b), cpu)
	}
	b0, t0, err := read()
	if err != nil {
		return 0, err
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(d):
	}
	b1, t1, err := read()
	if err != nil || t1 <= t0 {
		return 0, err
	}
	return float64(b1-b0) / float64(t1-t0), nil
}

// waitQuiet returns once cpu was quiet for a window, or after quietMax;
// it says how long it waited (0 if the CPU cannot be read).
func waitQuiet(ctx context.Context, cpu int) time.Duration {
	start := time.Now()
	for time.Since(start) < quietMax {
		share, err := busyShare(ctx, cpu, quietWindow)
		if err != nil || share < quietBusy {
			break
		}
	}
	return time.Since(start)
}
