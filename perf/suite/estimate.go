package suite

import (
	"context"
	"strconv"
	"time"

	"github.com/filament-net/filament/perf/rfc2544"
)

// Cost is what a sample costs on the machine, besides its trials' own
// sending time: the device's start, the generator's start, and each
// trial's overhead (waiting for a quiet CPU, the drain, setting up).
type Cost struct {
	Setup     func(Row) time.Duration // before the generator starts
	Generator time.Duration           // EAL, two memif links up, teardown
	PerTrial  time.Duration
}

// DefaultCost: measured on the shared 2-vCPU machine with `filament-perf
// suite --rounds 1 --trial 1s --search-trial 250ms --resolution 0.01
// --rows 'testpmd-io|filament-l3-1048k|ovs-dpdk-l3-10|kernelpod-tap'`
// (each sample's Setup and Elapsed in its JSON, its trials counted): a
// device serves its sockets 0.1-0.2 s after it starts, 1M routes take
// 1.8 s through the API; the rest of a sample, less its trials' sending
// time, came to about 1.2 s for the generator's start (EAL, two memif
// links) and 0.15 s a trial (a 50 ms look at the CPU, the 100 ms drain
// it then had: 75 ms with the suite's 25 ms).
var DefaultCost = Cost{
	Setup: func(r Row) time.Duration {
		if d, ok := r.DUT.(Filament); ok && d.Routes > 100000 {
			return 2 * time.Second
		}
		return 300 * time.Millisecond
	},
	Generator: 1200 * time.Millisecond,
	PerTrial:  75 * time.Millisecond,
}

// Estimate is how long a sample of row takes under the plan's flags (no
// void trial, no failed confirmation): the trials a search needs are
// counted by running rfc2544.Search on a device model whose NDR is 40% of
// the upper bound (testpmd io's PDR is about half what the generator
// offers flat out).
func Estimate(p Plan, row Row, c Cost) time.Duration {
	if row.Flowgen {
		// testpmd's stats periods come every 1-2 s beside a busy poller
		return c.Setup(row) + c.Generator + FlowgenWarmup + FlowgenPeriods*1500*time.Millisecond
	}
	flags := append(append([]string{}, p.NDRFlags...), row.NDRFlags...)
	trial, search, latency := time.Second, time.Duration(0), time.Second
	res, lat := 0.005, 3
	for i := 0; i+1 < len(flags); i++ {
		v := flags[i+1]
		switch flags[i] {
		case "--trial":
			trial, _ = time.ParseDuration(v)
		case "--search-trial":
			search, _ = time.ParseDuration(v)
		case "--latency-trial":
			latency, _ = time.ParseDuration(v)
		case "--resolution":
			res, _ = strconv.ParseFloat(v, 64)
		case "--latency-at":
			lat = 1
			for _, ch := range v {
				if ch == ',' {
					lat++
				}
			}
		}
	}
	if search == 0 {
		search = trial
	}
	nSearch, nConfirm := searchTrials(res)
	d := c.Setup(row) + c.Generator
	d += (search + c.PerTrial) * time.Duration(1+nSearch) // the flat-out trial first
	d += (trial + c.PerTrial) * time.Duration(nConfirm)
	d += (latency + c.PerTrial) * time.Duration(lat)
	return d
}

// searchTrials counts the search trials and confirmations NDR and PDR
// take at resolution res on a device that loses nothing up to its capacity
// and the excess above it, its capacity drawn each trial within 5% of 40%
// of the upper bound (a shared machine's noise; a quiet device needs 3
// search trials and 1 confirmation, and no run here was quiet): the mean
// over 64 such devices, rounded.
func searchTrials(res float64) (search, confirm int) {
	const max, capacity, devices = 1e6, 4e5, 64
	var ns, nc int
	for seed := uint64(1); seed <= devices; seed++ {
		x := seed * 0x9e3779b97f4a7c15
		counted := func(n *int) rfc2544.Trial {
			return func(_ context.Context, rate float64) (rfc2544.Sample, error) {
				*n++
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				c := capacity * (0.95 + 0.1*float64(x%1000)/1000)
				tx := uint64(rate)
				return rfc2544.Sample{TxPackets: tx, RxPackets: min(tx, uint64(c))}, nil
			}
		}
		o := rfc2544.Options{Max: max, Resolution: res, Confirm: counted(&nc)}
		ndr, _ := rfc2544.Search(context.Background(), o, rfc2544.NDR, counted(&ns))
		o.Start, o.Known = ndr.Rate, ndr.Trials // as filament-perf ndr does
		_, _ = rfc2544.Search(context.Background(), o, rfc2544.PDR, counted(&ns))
	}
	return (ns + devices/2) / devices, (nc + devices/2) / devices
}

// eta estimates a run's samples: a row's own mean duration once it has
// run, else the mean of all samples so far scaled by the rows' priors,
// else the prior.
type eta struct {
	p    Plan
	took map[string][]time.Duration // row/size
}

func newETA(p Plan) *eta { return &eta{p: p, took: map[string][]time.Duration{}} }

func (e *eta) done(s Sample) {
	k := s.Row + "/" + s.Size
	e.took[k] = append(e.took[k], s.Elapsed)
}

func (e *eta) sample(row Row, size string) time.Duration {
	if d := e.took[row.Name+"/"+size]; len(d) > 0 {
		var sum time.Duration
		for _, x := range d {
			sum += x
		}
		return sum / time.Duration(len(d))
	}
	if e.p.Prior != nil {
		return e.p.Prior(row)
	}
	return 30 * time.Second
}

// left is the estimate of every sample after (round, size, row).
func (e *eta) left(round int, size, row string) time.Duration {
	var d time.Duration
	after := false
	for r := 1; r <= max(e.p.Rounds, 1); r++ {
		for _, sz := range e.p.Sizes {
			for _, rw := range e.p.Rows {
				if !rw.RunsAt(sz) {
					continue
				}
				if after {
					d += e.sample(rw, sz)
				}
				if r == round && sz == size && rw.Name == row {
					after = true
				}
			}
		}
	}
	return d
}
