package fpbench

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/dpdk/hugepages"
)

// Env is a started dataplane the scenarios run on.
type Env struct {
	DP         *fastpath.Dataplane
	VRouterMAC net.HardwareAddr
	// Huge is false when the EAL runs on anonymous memory (--no-huge):
	// numbers are then not comparable with hugepage runs.
	Huge bool
	// EALArgs as given to the EAL.
	EALArgs []string
	seq     int
}

// Start starts the dataplane for benchmarking: EAL main lcore on CPU 0 (the
// generator's), one forwarding worker on CPU 1, hugepages when there are
// some (else --no-huge with memMB MiB), adaptive polling as in production.
// FPBENCH_NO_HUGE=1 forces --no-huge (to run under valgrind).
func Start(memMB int) (*Env, error) {
	if runtime.NumCPU() < 2 {
		return nil, ErrNeedTwoCPUs
	}
	mem, huge := hugepages.EALArgs(memMB)
	if os.Getenv("FPBENCH_NO_HUGE") == "1" {
		mem, huge = []string{"--no-huge", "-m", strconv.Itoa(memMB)}, false
	}
	eal := append([]string{"-l", "0,1", "--no-pci", "--no-telemetry", "--log-level=*:warning"}, mem...)
	cfg := fastpath.DefaultConfig()
	cfg.EALArgs = eal
	dp, err := fastpath.Start(cfg)
	if err != nil {
		return nil, err
	}
	return &Env{DP: dp, VRouterMAC: cfg.VRouterMAC, Huge: huge, EALArgs: eal}, nil
}

// ErrNeedTwoCPUs: the generator and the worker each need a CPU.
var ErrNeedTwoCPUs = errors.New("fpbench: needs at least 2 CPUs (generator on CPU 0, worker on CPU 1)")

// Close stops the dataplane.
func (e *Env) Close() { e.DP.Close() }

// RunOpts says how long one measurement lasts.
type RunOpts struct {
	// The window closes after Packets frames or Duration, whichever first.
	Packets  uint64
	Duration time.Duration
	// Warmup frames are forwarded before the window opens (0: a default
	// of 8 trips of every mbuf in flight).
	Warmup   uint64
	InFlight int
	// Slice: see fastpath.BenchConfig.Slice.
	Slice time.Duration
}

// Run builds the scenario, measures it once and tears it down. The error
// covers setup, the run itself, teardown and the run's own checks (every
// frame back, no drop, every mbuf returned).
func (e *Env) Run(sc *Scenario, flows, size int, o RunOpts) (fastpath.BenchResult, error) {
	s, err := e.Build(sc, flows, size)
	if err != nil {
		return fastpath.BenchResult{}, err
	}
	res, err := e.Measure(s, o)
	if cerr := s.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return res, fmt.Errorf("fpbench: %s (%d flows, %d B): %w", sc.Name, flows, size, err)
	}
	return res, nil
}

// Measure runs the generator once on a built scenario and checks the run.
func (e *Env) Measure(s *Setup, o RunOpts) (fastpath.BenchResult, error) {
	warm := o.Warmup
	if warm == 0 {
		inflight := o.InFlight
		if inflight == 0 {
			inflight = 1024
		}
		warm = 8 * uint64(inflight)
	}
	res, err := e.DP.Bench(fastpath.BenchConfig{
		In: s.In, Out: s.Out, Frames: s.Frames, InFlight: o.InFlight,
		Warmup: warm, Packets: o.Packets, Duration: o.Duration, Slice: o.Slice,
	})
	// A stalled run says why through the drop counters.
	return res, errors.Join(err, res.Check())
}
