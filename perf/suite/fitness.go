package suite

import "fmt"

// Unfit says why the machine the samples ran on was not fit for numbers,
// or "" if it was, or cannot be judged (minPPS 0, no 64 B sample of the
// baseline). The judge is the baseline's best NDR at 64 B: on a shared
// host whose other tenants take the physical cores, every rate falls
// several times and the generator, not the device, bounds every row, so
// ratios between devices mean little. Its best sample, of any placement,
// stands for the run: one fit sample shows the host let it be.
func Unfit(samples []Sample, minPPS float64) string {
	if minPPS <= 0 {
		return ""
	}
	best, seen := 0.0, false
	for _, s := range samples {
		if s.Row != Baseline || s.Size != "64" || s.Err != "" {
			continue
		}
		seen = true
		best = max(best, s.NDR)
	}
	if !seen || best >= minPPS {
		return ""
	}
	return fmt.Sprintf("`%s` reached at most %.2f Mpps NDR at 64 B, below the %.1f Mpps of a machine fit for numbers (--min-baseline): the host's other tenants slowed it, the generator bounds every row and ratios between devices mean little",
		Baseline, best/1e6, minPPS/1e6)
}
