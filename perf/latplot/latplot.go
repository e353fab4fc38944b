// Package latplot draws one-way latency distributions as CDFs (PNG): the
// suite's figure of every row and filament-perf ndr's of its latency
// points.
package latplot

import (
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/filament-net/filament/perf/trafficgen"
)

// Line is one distribution: a histogram's non-empty buckets and its name.
type Line struct {
	Name string
	Hist []trafficgen.HistBin
}

// Merge adds histograms bucket by bucket (the same buckets: trafficgen's
// grid), in increasing latency: several streams' frames as one.
func Merge(hists ...[]trafficgen.HistBin) []trafficgen.HistBin {
	sum := map[float64]uint64{}
	for _, h := range hists {
		for _, b := range h {
			sum[b.Ns] += b.Count
		}
	}
	out := make([]trafficgen.HistBin, 0, len(sum))
	for ns, c := range sum {
		out = append(out, trafficgen.HistBin{Ns: ns, Count: c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ns < out[j].Ns })
	return out
}

// CDF is the fraction of frames at or below each bucket, latency in us
// (at least 0.01 for the log scale); nil for an empty histogram.
func CDF(hist []trafficgen.HistBin) plotter.XYs {
	var total, seen float64
	for _, b := range hist {
		total += float64(b.Count)
	}
	if total == 0 {
		return nil
	}
	pts := make(plotter.XYs, 0, len(hist))
	for _, b := range hist {
		seen += float64(b.Count)
		pts = append(pts, plotter.XY{X: math.Max(b.Ns/1e3, 0.01), Y: seen / total})
	}
	return pts
}

// Save draws lines into file (PNG, 560x380 points), one colour each;
// empty lines are left out. It says whether it drew any: no file
// without one.
func Save(file, title string, lines []Line) (bool, error) {
	pl := plot.New()
	pl.Title.Text = title
	pl.X.Label.Text = "latency (us, log scale)"
	pl.Y.Label.Text = "fraction of frames"
	pl.X.Scale = plot.LogScale{}
	pl.X.Tick.Marker = plot.LogTicks{Prec: 1}
	pl.Legend.Left = true
	pl.Legend.Top = true
	n := 0
	for i, ln := range lines {
		pts := CDF(ln.Hist)
		if pts == nil {
			continue
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return false, err
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i / 7)
		l.Width = vg.Points(1.5)
		pl.Add(l)
		pl.Legend.Add(ln.Name, l)
		n++
	}
	if n == 0 {
		return false, nil
	}
	return true, pl.Save(560, 380, file)
}
