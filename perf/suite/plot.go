package suite

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/filament-net/filament/perf/latplot"
)

// Plots writes the report's figures into dir, their names starting with
// prefix (the report's: "perf" for perf.md), and returns their file names:
// throughput (NDR and PDR medians per row, grouped by frame size) and the
// latency CDF at 50% of PDR per row (the last clean sample of each row at
// the first size).
func Plots(dir, prefix string, p Plan, sums []Summary, samples []Sample) ([]string, error) {
	var files []string
	f, err := throughputPlot(dir, prefix, p, sums)
	if err != nil {
		return nil, err
	}
	files = append(files, f)
	if f, err = latencyPlot(dir, prefix, p, samples); err != nil {
		return nil, err
	}
	if f != "" {
		files = append(files, f)
	}
	return files, nil
}

func throughputPlot(dir, prefix string, p Plan, sums []Summary) (string, error) {
	pl := plot.New()
	pl.Title.Text = "Forwarding rate (RFC 2544, one core), medians"
	pl.Y.Label.Text = "Mpps"
	pl.Legend.Top = true
	// Flat-out rows have no NDR or PDR: the report's table has them.
	var names []string
	var rows []Row
	for _, r := range p.Rows {
		if !r.Flowgen {
			names, rows = append(names, r.Name), append(rows, r)
		}
	}
	w := vg.Points(float64(60) / float64(2*len(p.Sizes)))
	for i, size := range p.Sizes {
		for k, goal := range []string{"NDR", "PDR"} {
			vals := make(plotter.Values, len(rows))
			for j, r := range rows {
				for _, s := range sums {
					if s.Row == r.Name && s.Size == size {
						if goal == "NDR" {
							vals[j] = s.NDR.Median / 1e6
						} else {
							vals[j] = s.PDR.Median / 1e6
						}
					}
				}
			}
			b, err := plotter.NewBarChart(vals, w)
			if err != nil {
				return "", err
			}
			b.LineStyle.Width = 0
			b.Color = plotutil.Color(i)
			if k == 1 {
				c := color.NRGBAModel.Convert(plotutil.Color(i)).(color.NRGBA)
				c.A = 110
				b.Color = c
			}
			b.Offset = w * vg.Length(float64(2*i+k)-float64(len(p.Sizes)*2-1)/2)
			pl.Add(b)
			pl.Legend.Add(fmt.Sprintf("%s %s", goal, sizeLabel(size)), b)
		}
	}
	pl.NominalX(names...)
	pl.X.Tick.Label.Rotation = math.Pi / 5
	pl.X.Tick.Label.XAlign = -0.9
	pl.X.Tick.Label.YAlign = -0.4
	name := filepath.Join(dir, prefix+"-throughput.png")
	return name, pl.Save(vg.Length(120+60*len(rows)), 380, name)
}

func sizeLabel(s string) string {
	if s == "imix" {
		return "IMIX"
	}
	return s + " B"
}

func latencyPlot(dir, prefix string, p Plan, samples []Sample) (string, error) {
	if len(p.Sizes) == 0 {
		return "", nil
	}
	size := p.Sizes[0]
	var lines []latplot.Line
	for _, r := range p.Rows {
		var last *Sample
		for k := range samples {
			s := &samples[k]
			if s.Row == r.Name && s.Size == size && s.Err == "" && len(s.Hist) > 0 {
				last = s
			}
		}
		if last != nil {
			lines = append(lines, latplot.Line{Name: r.Name, Hist: last.Hist})
		}
	}
	name := filepath.Join(dir, prefix+"-latency-cdf.png")
	ok, err := latplot.Save(name, fmt.Sprintf("One-way latency at 50%% of PDR, %s frames (CDF)", sizeLabel(size)), lines)
	if !ok || err != nil {
		return "", err
	}
	return name, nil
}
