package suite

import (
	"strings"
	"testing"

	"github.com/filament-net/filament/perf/placement"
)

// The machine check takes the baseline's best 64 B NDR of the run, any
// placement, failed samples and other rows and sizes left out; the report
// says so at the top.
func TestUnfit(t *testing.T) {
	unfit := []Sample{
		{Row: Baseline, Size: "64", Round: 1, NDR: 6.07e6, Place: placement.Near},
		{Row: Baseline, Size: "64", Round: 2, NDR: 5.25e6, Place: placement.Far},
		{Row: Baseline, Size: "64", Round: 3, NDR: 40e6, Err: "trial failed"},
		{Row: Baseline, Size: "512", Round: 1, NDR: 35e6, Place: placement.Near},
		{Row: "filament-l3-10", Size: "64", Round: 1, NDR: 33e6, Place: placement.Near},
	}
	msg := Unfit(unfit, 30e6)
	if !strings.Contains(msg, "`testpmd-io` reached at most 6.07 Mpps NDR at 64 B, below the 30.0 Mpps") {
		t.Fatalf("Unfit: %q", msg)
	}
	fit := append([]Sample{{Row: Baseline, Size: "64", Round: 4, NDR: 35.8e6, Place: placement.Mixed}}, unfit...)
	if m := Unfit(fit, 30e6); m != "" {
		t.Errorf("a 35.8 Mpps sample: %q, want fit", m)
	}
	if m := Unfit(unfit, 0); m != "" {
		t.Errorf("no minimum: %q, want no check", m)
	}
	if m := Unfit(unfit[3:], 30e6); m != "" {
		t.Errorf("no 64 B baseline sample: %q, want no verdict", m)
	}
	plan := Plan{Rows: []Row{{Name: Baseline, What: "b", Flows: 1}}, Sizes: []string{"64"}}
	var b strings.Builder
	Markdown(&b, Meta{TSCHz: 2.6e9, Rounds: 2, Unfit: msg}, Summarize(plan, unfit[:2]), unfit[:2]...)
	if !strings.Contains(b.String(), "\n\n**Not fit for numbers: `testpmd-io` reached at most 6.07 Mpps") ||
		!strings.Contains(b.String(), "Do not quote this report") {
		t.Fatalf("report:\n%s", b.String())
	}
	b.Reset()
	Markdown(&b, Meta{TSCHz: 2.6e9, Rounds: 2}, Summarize(plan, unfit[:2]), unfit[:2]...)
	if strings.Contains(b.String(), "Not fit") {
		t.Fatalf("a fit run's report says unfit:\n%s", b.String())
	}
}
