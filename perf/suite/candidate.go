package suite

import (
	"fmt"
	"io"
	"strings"
)

// CandidateSuffix names the row that runs a filament row's work with the
// candidate filament-dataplane binary: "filament-vxlan-encap-10+cand".
const CandidateSuffix = "+cand"

// WithCandidate puts after each filament row (a Filament device) the same
// row run by binary, named with CandidateSuffix: an A/B of two builds of
// the dataplane. The pair runs back to back in every round, so the host's
// drifts and moves of the vCPUs hit both alike, and each round's
// candidate over its baseline (same placement) is the change's effect;
// two runs, one per binary, compare nothing on a shared machine.
func WithCandidate(rows []Row, binary string) []Row {
	out := make([]Row, 0, 2*len(rows))
	for _, r := range rows {
		out = append(out, r)
		f, ok := r.DUT.(Filament)
		if !ok {
			continue
		}
		f.Binary = binary
		c := r
		c.Name += CandidateSuffix
		c.DUT = f
		c.What += " (candidate binary)"
		out = append(out, c)
	}
	return out
}

// candidateBase is the baseline row of a candidate row, or "".
func candidateBase(row string) string {
	base, ok := strings.CutSuffix(row, CandidateSuffix)
	if !ok {
		return ""
	}
	return base
}

// writeCandidate adds the A/B table if the run had candidate rows: each
// round's candidate rate over the same round's baseline rate, same
// placement only.
func writeCandidate(w io.Writer, m Meta, sums []Summary, samples []Sample) {
	var have []Summary
	for _, s := range sums {
		if candidateBase(s.Row) != "" {
			have = append(have, s)
		}
	}
	if len(have) == 0 {
		return
	}
	p := func(f string, a ...any) { fmt.Fprintf(w, f, a...) }
	p("\n## Candidate against baseline\n\n")
	p("Every filament row ran twice in each round, back to back: with the baseline `filament-dataplane` (`%s`) and with the candidate (`%s`, rows ending in `%s`). Each round's candidate rate over the same round's baseline rate, both in the same placement; medians, with min-max. Above 1.0 the candidate forwards more. The rows' rates to `%s` and OVS-DPDK are in the tables above.\n\n",
		m.Dataplane, m.Candidate, CandidateSuffix, Baseline)
	p("| size | row | NDR ratio | PDR ratio | flat-out ratio |\n|---|---|---|---|---|\n")
	for _, s := range have {
		base := candidateBase(s.Row)
		if s.Flowgen {
			p("| %s | %s | | | %s |\n", s.Size, base, ratio(molRatios(s.Row, base, s.Size, samples)))
			continue
		}
		ndr, pdr := peerRatios(s.Row, base, s.Size, samples)
		p("| %s | %s | %s | %s | |\n", s.Size, base, ratio(ndr), ratio(pdr))
	}
}
