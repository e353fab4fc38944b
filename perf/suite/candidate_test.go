package suite

import (
	"strings"
	"testing"

	"github.com/filament-net/filament/perf/placement"
)

func TestWithCandidate(t *testing.T) {
	rows := WithCandidate(Headline(1), "/opt/cand/filament-dataplane")
	var names []string
	for i, r := range rows {
		names = append(names, r.Name)
		base := candidateBase(r.Name)
		if base == "" {
			continue
		}
		if rows[i-1].Name != base {
			t.Fatalf("%s follows %s, want its baseline %s", r.Name, rows[i-1].Name, base)
		}
		f, ok := r.DUT.(Filament)
		if !ok || f.Binary != "/opt/cand/filament-dataplane" || rows[i-1].DUT.(Filament).Binary != "" {
			t.Fatalf("%s: device %+v after %+v", r.Name, r.DUT, rows[i-1].DUT)
		}
		if r.Flowgen != rows[i-1].Flowgen || r.Flows != rows[i-1].Flows || r.Overhead != rows[i-1].Overhead {
			t.Fatalf("%s differs from its baseline beyond the binary: %+v", r.Name, r)
		}
	}
	all := strings.Join(names, " ")
	for _, want := range []string{"filament-l3-10+cand", "filament-vxlan-encap-10+cand", "filament-l3-10-flowgen+cand"} {
		if !strings.Contains(all, want+" ") && !strings.HasSuffix(all, want) {
			t.Errorf("no row %s in %s", want, all)
		}
	}
	for _, no := range []string{"testpmd-io+cand", "ovs-dpdk-l3-10+cand", "filament-kernelpod-tap+cand"} {
		if strings.Contains(all, no) {
			t.Errorf("row %s: only filament rows have candidates", no)
		}
	}
	if p := OVSPeer("filament-vxlan-encap-10-f10k" + CandidateSuffix); p != "ovs-dpdk-vxlan-encap-10-f10k" {
		t.Errorf("a candidate's OVS peer is %q, want its baseline's", p)
	}
}

// TestCandidateReport: the A/B table pairs each candidate sample with its
// baseline of the same round and placement only.
func TestCandidateReport(t *testing.T) {
	near, far := placement.Near, placement.Far
	enc := "filament-vxlan-encap-10"
	plan := Plan{Rows: WithCandidate([]Row{Headline(1)[0], Headline(1)[4]}, "cand"), Sizes: []string{"64"}}
	samples := []Sample{
		{Row: Baseline, Size: "64", Round: 1, NDR: 30e6, PDR: 30e6, Place: near},
		{Row: enc, Size: "64", Round: 1, NDR: 20e6, PDR: 20e6, Place: near},
		{Row: enc + CandidateSuffix, Size: "64", Round: 1, NDR: 22e6, PDR: 21e6, Place: near},
		{Row: Baseline, Size: "64", Round: 2, NDR: 15e6, PDR: 15e6, Place: far},
		{Row: enc, Size: "64", Round: 2, NDR: 10e6, PDR: 10e6, Place: far},
		{Row: enc + CandidateSuffix, Size: "64", Round: 2, NDR: 12e6, PDR: 11.5e6, Place: far},
		// placement differs: no pair
		{Row: Baseline, Size: "64", Round: 3, NDR: 30e6, PDR: 30e6, Place: near},
		{Row: enc, Size: "64", Round: 3, NDR: 10e6, PDR: 10e6, Place: far},
		{Row: enc + CandidateSuffix, Size: "64", Round: 3, NDR: 40e6, PDR: 40e6, Place: near},
	}
	var b strings.Builder
	Markdown(&b, Meta{TSCHz: 2.6e9, Rounds: 3, Dataplane: "bin/filament-dataplane", Candidate: "cand"}, Summarize(plan, samples), samples...)
	out := b.String()
	for _, want := range []string{
		"## Candidate against baseline",
		"(`bin/filament-dataplane`) and with the candidate (`cand`",
		"| 64 | filament-vxlan-encap-10 | 1.15 (1.10-1.20) | 1.10 (1.05-1.15) | |",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("no %q in the report:\n%s", want, out)
		}
	}
	b.Reset()
	Markdown(&b, Meta{TSCHz: 2.6e9, Rounds: 1}, Summarize(Plan{Rows: Headline(1)[:1], Sizes: []string{"64"}}, samples[:1]), samples[:1]...)
	if strings.Contains(b.String(), "Candidate") {
		t.Fatalf("a run without candidate rows has no A/B table:\n%s", b.String())
	}
}
