package fastpath

/*
#include <stdlib.h>
#include "fp_bench.h"
*/
import "C"

import (
	"fmt"
	"sort"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// BenchConfig is one run of the in-process generator (fp_bench.c): frames
// go into In's RX ring, the worker forwards them, the generator takes them
// from Out's TX ring, rewrites each mbuf with the next frame and sends it
// again. Both ports must be ring ports (AddRingPort) nobody else uses.
type BenchConfig struct {
	In, Out PortID
	Frames  [][]byte // sent round robin (flows)
	// InFlight mbufs circulate (0: C default 1024).
	InFlight int
	// Warmup frames come back before the measured window opens.
	Warmup uint64
	// The window closes after Packets frames came back or after Duration,
	// whichever is first (at least one must be set).
	Packets  uint64
	Duration time.Duration
	// Slice, if set, also records the worker's counters every Slice of the
	// window (at most 1024 slices).
	Slice time.Duration
	// GenCPU runs the generator; nil: the EAL main lcore's CPU.
	GenCPU *int
}

// BenchResult is what the worker and the generator counted.
type BenchResult struct {
	// Whole run (warm-up, window, drain).
	Sent, Received       uint64
	Drops                map[string]uint64 // non-zero worker drop counters, deltas
	InUseBefore, InUseAt int               // MbufsInUse before and after the run
	// Window: worker counters summed over lcores.
	BusyCycles, RxPackets, TxPackets, BusyPolls, Polls, Sleeps uint64
	// Window: the generator's view.
	WindowReceived uint64
	Window         time.Duration
	GenEmptyPolls  uint64
	TSCHz          uint64
	GenCPU         int
	WorkerCPU      int
	// Slices of the window (BenchConfig.Slice), in order.
	Slices []BenchSlice
}

// BenchSlice is the worker's work in one slice of the window.
type BenchSlice struct {
	BusyCycles, RxPackets uint64
}

// CyclesPerPacket of the slice (0 if it received nothing).
func (s BenchSlice) CyclesPerPacket() float64 {
	if s.RxPackets == 0 {
		return 0
	}
	return float64(s.BusyCycles) / float64(s.RxPackets)
}

// SliceCyclesPerPacket is the median over slices of their cycles per
// packet: slices in which the worker thread was preempted or interrupted
// (its busy cycles then include the time away) fall out. Without slices it
// is CyclesPerPacket.
func (r BenchResult) SliceCyclesPerPacket() float64 {
	var v []float64
	for _, s := range r.Slices {
		if s.RxPackets != 0 {
			v = append(v, s.CyclesPerPacket())
		}
	}
	if len(v) == 0 {
		return r.CyclesPerPacket()
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// CyclesPerPacket is the worker's TSC cycles per received packet in the
// window: the figure that travels between machines (on a saturated worker).
func (r BenchResult) CyclesPerPacket() float64 {
	if r.RxPackets == 0 {
		return 0
	}
	return float64(r.BusyCycles) / float64(r.RxPackets)
}

// WorkerMpps is what the worker would forward per second if always busy:
// TSC Hz / cycles per packet.
func (r BenchResult) WorkerMpps() float64 {
	c := r.CyclesPerPacket()
	if c == 0 {
		return 0
	}
	return float64(r.TSCHz) / c / 1e6
}

// RateMpps is what actually went through in the window.
func (r BenchResult) RateMpps() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.WindowReceived) / r.Window.Seconds() / 1e6
}

// AvgBurst is received packets per busy poll: near FP_BURST (64) means the
// worker always found a full burst, i.e. the generator was not the limit.
func (r BenchResult) AvgBurst() float64 {
	if r.BusyPolls == 0 {
		return 0
	}
	return float64(r.RxPackets) / float64(r.BusyPolls)
}

// BusyFraction is the share of the window's TSC cycles the worker spent in
// polls that received packets.
func (r BenchResult) BusyFraction() float64 {
	w := r.Window.Seconds() * float64(r.TSCHz)
	if w == 0 {
		return 0
	}
	return float64(r.BusyCycles) / w
}

// Check says what went wrong in a run that ended: frames lost, dropped, or
// mbufs not returned to the pool.
func (r BenchResult) Check() error {
	var p []string
	if r.Received != r.Sent {
		p = append(p, fmt.Sprintf("%d of %d frames did not come back", r.Sent-r.Received, r.Sent))
	}
	if len(r.Drops) != 0 {
		names := make([]string, 0, len(r.Drops))
		for n := range r.Drops {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			p = append(p, fmt.Sprintf("%d dropped as %s", r.Drops[n], n))
		}
	}
	if r.InUseAt != r.InUseBefore {
		p = append(p, fmt.Sprintf("mbufs in use %d before, %d after", r.InUseBefore, r.InUseAt))
	}
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("bench: %s", strings.Join(p, "; "))
}

// Bench runs the generator on the calling thread (pinned to GenCPU for the
// run) against the forwarding lcores. It holds the control lock for the run.
// A run that completed returns a nil error even if frames were dropped: see
// BenchResult.Check.
func (d *Dataplane) Bench(bc BenchConfig) (BenchResult, error) {
	var res BenchResult
	if len(bc.Frames) == 0 {
		return res, &Error{Op: "bench", Errno: syscall.EINVAL, Msg: "no frames"}
	}
	if bc.Packets == 0 && bc.Duration <= 0 {
		return res, &Error{Op: "bench", Errno: syscall.EINVAL, Msg: "set Packets or Duration"}
	}
	if bc.InFlight < 0 || bc.Duration > time.Hour {
		return res, &Error{Op: "bench", Errno: syscall.EINVAL, Msg: "InFlight or Duration out of range"}
	}
	total := 0
	for _, f := range bc.Frames {
		total += len(f)
	}
	buf := C.malloc(C.size_t(total + 1))
	defer C.free(buf)
	lens := (*C.uint32_t)(C.malloc(C.size_t(len(bc.Frames)) * 4))
	defer C.free(unsafe.Pointer(lens))
	b := unsafe.Slice((*byte)(buf), total+1)
	l := unsafe.Slice(lens, len(bc.Frames))
	off := 0
	for i, f := range bc.Frames {
		copy(b[off:], f)
		off += len(f)
		l[i] = C.uint32_t(len(f))
	}
	var c C.struct_fp_bench_conf
	c.in_port = C.uint16_t(bc.In)
	c.out_port = C.uint16_t(bc.Out)
	c.frames = (*C.uint8_t)(buf)
	c.lens = lens
	c.nb_frames = C.uint32_t(len(bc.Frames))
	c.inflight = C.uint32_t(bc.InFlight)
	c.warmup_pkts = C.uint64_t(bc.Warmup)
	c.window_pkts = C.uint64_t(bc.Packets)
	c.window_ms = C.uint32_t(bc.Duration / time.Millisecond)
	if bc.Duration > 0 && c.window_ms == 0 {
		c.window_ms = 1
	}
	c.slice_ms = C.uint32_t(bc.Slice / time.Millisecond)
	if bc.Slice > 0 && c.slice_ms == 0 {
		c.slice_ms = 1
	}
	c.gen_cpu = -1
	if bc.GenCPU != nil {
		c.gen_cpu = C.int(*bc.GenCPU)
	}
	var r C.struct_fp_bench_result
	err := d.call(fmt.Sprintf("bench %d -> %d", bc.In, bc.Out), func(e *C.char) C.int {
		return C.fp_bench_run(&c, &r, e)
	})
	res = BenchResult{
		Sent: uint64(r.sent), Received: uint64(r.received),
		InUseBefore: int(r.in_use_before), InUseAt: int(r.in_use_after),
		BusyCycles: uint64(r.busy_cycles), RxPackets: uint64(r.rx_pkts),
		TxPackets: uint64(r.tx_pkts), BusyPolls: uint64(r.busy_polls),
		Polls: uint64(r.polls), Sleeps: uint64(r.sleeps),
		WindowReceived: uint64(r.win_received), GenEmptyPolls: uint64(r.gen_empty),
		TSCHz: uint64(r.tsc_hz), GenCPU: int(r.gen_cpu), WorkerCPU: int(r.worker_cpu),
	}
	if r.tsc_hz != 0 {
		res.Window = time.Duration(float64(r.win_cycles) / float64(r.tsc_hz) * float64(time.Second))
	}
	for i := 0; i < int(r.nb_slices); i++ {
		res.Slices = append(res.Slices, BenchSlice{uint64(r.slice[i].busy_cycles), uint64(r.slice[i].rx_pkts)})
	}
	for i, v := range r.drops {
		if v != 0 {
			if res.Drops == nil {
				res.Drops = map[string]uint64{}
			}
			res.Drops[C.GoString(C.fp_drop_name(C.unsigned(i)))] = uint64(v)
		}
	}
	return res, err
}

// BounceCycles measures a cache-line round trip between CPUs a and b (two
// threads bouncing one line, median over batches), in TSC cycles. On a VM
// it tells whether the host put the two vCPUs on cores sharing a cache.
func (d *Dataplane) BounceCycles(a, b int, roundTrips int) (float64, error) {
	var cyc C.double
	err := d.call(fmt.Sprintf("bounce %d <-> %d", a, b), func(e *C.char) C.int {
		return C.fp_bench_bounce(C.int(a), C.int(b), C.unsigned(roundTrips), &cyc, e)
	})
	return float64(cyc), err
}

// TSCHz is the TSC frequency DPDK measured at start (0 before Start).
func TSCHz() uint64 { return uint64(C.fp_bench_tsc_hz()) }

// DPDKVersion is the version string of the linked DPDK.
func DPDKVersion() string { return C.GoString(C.fp_bench_dpdk_version()) }

// BenchCPUs are the CPUs of the EAL main lcore (the default generator CPU)
// and of the first worker lcore.
func (d *Dataplane) BenchCPUs() (gen, worker int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return -1, -1
	}
	return int(C.fp_bench_main_cpu()), int(C.fp_bench_worker_cpu())
}
