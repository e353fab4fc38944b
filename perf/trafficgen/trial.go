package trafficgen

/*
#include "tg.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"math"
	"syscall"
	"time"
	"unsafe"
)

const (
	sigLen     = C.TG_SIG_LEN
	maxSizes   = C.TG_MAX_SIZES
	maxStreams = C.TG_MAX_STREAMS
	subBits    = C.TG_HIST_SUB_BITS
	nBuckets   = C.TG_HIST_BUCKETS
)

// Trial is one run: streams sent at an aggregate rate for a duration (or a
// packet count), then a drain time for the last frames to come back.
type Trial struct {
	Streams    []Stream
	Rate       float64       // packets per second over all streams; 0 = as fast as the ports take
	Duration   time.Duration // TX time
	MaxPackets uint64        // stop TX after this many (0: no limit)
	Drain      time.Duration // RX time after TX stops (default 100 ms)
	Burst      int           // frames per TX burst (default 32)
	// StampEvery N > 1: one frame in N per stream is built with a
	// sequence number and a timestamp, the others are clones of a
	// template per flow and size, so the generator writes no memory for
	// them and outruns the device. Loss stays exact; order and latency
	// come from the stamped frames. A stream with more flows x sizes than
	// Config.Templates left is built frame by frame (StreamResult.Clones
	// 0). 0 or 1: every frame built and stamped.
	StampEvery int
}

// Latency is a stream's one-way latency distribution (generator TX to
// generator RX, timestamps taken per burst).
type Latency struct {
	Samples             uint64
	Min, Mean, Max      time.Duration
	P50, P90, P99, P999 time.Duration
	// Buckets are the raw histogram in TSC cycles (see Bucket).
	Buckets []uint64 `json:"-"`
	// Hist is the histogram's non-empty buckets, for plots: each bucket's
	// middle in ns and its count, in increasing order.
	Hist []HistBin `json:",omitempty"`
}

// HistBin is one non-empty latency bucket.
type HistBin struct {
	Ns    float64
	Count uint64
}

// StreamResult is what one stream sent and got back.
type StreamResult struct {
	TxPackets, TxBytes uint64
	RxPackets, RxBytes uint64
	Lost               int64  // TxPackets - RxPackets: negative if the device duplicated
	Late               uint64 // frames that arrived after a higher sequence number
	Gaps               uint64 // times a sequence number was skipped
	Clones             uint64 // frames sent as template clones (Trial.StampEvery)
	Latency            Latency
}

// Result is a finished trial.
type Result struct {
	TxTime    time.Duration // how long the worker transmitted
	TxPackets uint64        // taken by the ports
	RxPackets uint64
	Lost      int64
	LossRatio float64 // Lost / TxPackets
	TxPPS     float64 // TxPackets / TxTime
	RxPPS     float64 // RxPackets / TxTime
	// Due is what the rate asked for by the end of TX (0 flat out);
	// NotTaken were built but still refused by a port when TX ended;
	// Held is what the rate asked for while a port refused frames
	// (back-pressure). Of Due - TxPackets, what back-pressure does not
	// explain the generator never built in time: its own shortfall.
	Due, NotTaken, Held uint64
	// Stalls count the worker's loop iterations that came more than
	// StallThreshold after the one before (its lcore preempted: nothing
	// polled RX then); MaxGap is the longest such time.
	Stalls  uint64
	MaxGap  time.Duration
	Streams []StreamResult
}

// StallThreshold is the gap between two iterations of the worker's loop
// that counts as a stall.
const StallThreshold = C.TG_STALL_US * time.Microsecond

// waitSlice is how long, in ms, Run blocks on the worker before it looks
// at its context again.
const waitSlice = 100

// Run runs a trial and waits for it; cancelling ctx stops TX early (the
// trial still drains and returns its counts with ctx's error).
func (g *Generator) Run(ctx context.Context, t Trial) (*Result, error) {
	if len(t.Streams) == 0 || len(t.Streams) > maxStreams {
		return nil, fmt.Errorf("trial: %d streams: want 1..%d", len(t.Streams), maxStreams)
	}
	if t.Duration <= 0 && t.MaxPackets == 0 {
		return nil, errors.New("trial: give a duration or a packet count")
	}
	if t.Duration <= 0 {
		t.Duration = 24 * time.Hour
	}
	if t.Drain == 0 {
		t.Drain = 100 * time.Millisecond
	}
	if t.Burst == 0 {
		t.Burst = 32
	}
	if t.Rate < 0 || math.IsNaN(t.Rate) || math.IsInf(t.Rate, 0) {
		return nil, fmt.Errorf("trial: rate %v pps: want >= 0 (0: as fast as possible)", t.Rate)
	}
	cs := make([]C.struct_tg_stream_conf, len(t.Streams))
	for i := range t.Streams {
		tpl, err := t.Streams[i].compile()
		if err != nil {
			return nil, fmt.Errorf("trial: stream %d: %w", i, err)
		}
		if err := tpl.toC(&cs[i]); err != nil {
			return nil, fmt.Errorf("trial: stream %d: %w", i, err)
		}
	}
	if err := g.CheckMTU(t.Streams); err != nil {
		return nil, fmt.Errorf("trial: %w", err)
	}
	tc := C.struct_tg_trial_conf{nb_streams: C.uint32_t(len(cs)), burst: C.uint32_t(t.Burst),
		pps: C.double(t.Rate), duration_ns: C.uint64_t(t.Duration), max_packets: C.uint64_t(t.MaxPackets),
		drain_ns: C.uint64_t(t.Drain), stamp_every: C.uint32_t(max(t.StampEvery, 1))}
	if _, err := g.call("start trial", func(e *C.char) C.int { return C.tg_trial_start(&tc, &cs[0], e) }); err != nil {
		return nil, err
	}
	// Blocks in C until the worker says the trial is done: a Go ticker
	// polling here woke this process's threads a thousand times a second,
	// preempting the generator's worker and the device's forwarding lcore.
	// Only a running or draining trial is waited on: any other state
	// returns at once, and looping on it would spin.
	var ctxErr error
	for s := C.tg_trial_wait(waitSlice); s == C.TG_RUNNING || s == C.TG_DRAINING; s = C.tg_trial_wait(waitSlice) {
		if ctxErr == nil && ctx.Err() != nil {
			ctxErr = ctx.Err()
			C.tg_trial_abort()
		}
	}
	r, err := g.result(len(cs))
	if err != nil {
		return nil, err
	}
	return r, ctxErr
}

// CheckMTU refuses a stream whose largest frame does not fit its port's
// MTU (PortMTU) + FrameOverhead: an *Error with Errno EMSGSIZE. Run
// makes the same check; a command calls it first to tell bad input from
// a failed trial.
func (g *Generator) CheckMTU(streams []Stream) error {
	for i, s := range streams {
		largest := MinFrame
		for _, z := range s.Sizes {
			largest = max(largest, z)
		}
		mtu, err := g.PortMTU(s.Port)
		if err != nil {
			return err
		}
		if need := largest - FrameOverhead; need > mtu {
			return &Error{Op: fmt.Sprintf("stream %d", i), Errno: syscall.EMSGSIZE,
				Msg: fmt.Sprintf("frame size %d needs an MTU of %d on port %d, whose MTU is %d", largest, need, s.Port, mtu)}
		}
	}
	return nil
}

// trialRunning says whether a trial is transmitting.
func (g *Generator) trialRunning() bool { return C.tg_trial_state() == C.TG_RUNNING }

func (g *Generator) result(n int) (*Result, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var ts C.struct_tg_trial_stats
	if ret := C.tg_trial_stats(&ts); ret != 0 {
		return nil, fmt.Errorf("trial: results: %d", int(ret))
	}
	r := &Result{TxTime: g.cycles(uint64(ts.tx_cycles)), Due: uint64(ts.due), NotTaken: uint64(ts.not_taken), Held: uint64(ts.held),
		Stalls: uint64(ts.stalls), MaxGap: g.cycles(uint64(ts.max_gap))}
	for i := 0; i < n; i++ {
		var s C.struct_tg_stream_stats
		hist := make([]uint64, nBuckets)
		if ret := C.tg_stream_stats(C.uint(i), &s, (*C.uint64_t)(unsafe.Pointer(&hist[0]))); ret != 0 {
			return nil, fmt.Errorf("trial: stream %d results: %d", i, int(ret))
		}
		sr := StreamResult{TxPackets: uint64(s.tx_pkts), TxBytes: uint64(s.tx_bytes),
			RxPackets: uint64(s.rx_pkts), RxBytes: uint64(s.rx_bytes),
			Late: uint64(s.late), Gaps: uint64(s.gaps), Clones: uint64(s.tx_clones)}
		sr.Lost = int64(sr.TxPackets) - int64(sr.RxPackets)
		sr.Latency = g.latency(hist, uint64(s.lat_min), uint64(s.lat_max), uint64(s.lat_sum), uint64(s.stamped))
		r.Streams = append(r.Streams, sr)
		r.TxPackets += sr.TxPackets
		r.RxPackets += sr.RxPackets
	}
	r.Lost = int64(r.TxPackets) - int64(r.RxPackets)
	if r.TxPackets > 0 {
		r.LossRatio = float64(r.Lost) / float64(r.TxPackets)
	}
	if s := r.TxTime.Seconds(); s > 0 {
		r.TxPPS = float64(r.TxPackets) / s
		r.RxPPS = float64(r.RxPackets) / s
	}
	return r, nil
}

func (g *Generator) cycles(c uint64) time.Duration {
	return time.Duration(float64(c) * 1e9 / float64(g.hz))
}

// Bucket is the range of TSC cycles histogram bucket i holds.
func Bucket(i int) (lo, hi uint64) {
	half := 1 << (subBits - 1)
	if i < 2*half {
		return uint64(i), uint64(i)
	}
	shift := uint(i/half - 1)
	m := uint64(i - int(shift)*half)
	return m << shift, (m+1)<<shift - 1
}

func (g *Generator) latency(hist []uint64, lo, hi, sum, n uint64) Latency {
	l := Latency{Samples: n, Buckets: hist}
	if n == 0 {
		return l
	}
	l.Min, l.Max, l.Mean = g.cycles(lo), g.cycles(hi), g.cycles(sum/n)
	pct := func(p float64) time.Duration {
		rank := uint64(math.Ceil(p * float64(n)))
		var seen uint64
		for i, c := range hist {
			seen += c
			if seen >= rank && c > 0 {
				a, b := Bucket(i)
				return g.cycles(min(max((a+b)/2, lo), hi))
			}
		}
		return l.Max
	}
	l.P50, l.P90, l.P99, l.P999 = pct(0.5), pct(0.9), pct(0.99), pct(0.999)
	for i, c := range hist {
		if c > 0 {
			a, b := Bucket(i)
			l.Hist = append(l.Hist, HistBin{Ns: float64(a+b) / 2 * 1e9 / float64(g.hz), Count: c})
		}
	}
	return l
}

func (t *template) toC(c *C.struct_tg_stream_conf) error {
	switch {
	case len(t.hdr) > C.TG_MAX_HDR:
		return fmt.Errorf("headers of %d bytes: at most %d", len(t.hdr), C.TG_MAX_HDR)
	case len(t.fields) > C.TG_MAX_FIELDS, len(t.lens) > C.TG_MAX_LENS,
		len(t.ip4csum) > C.TG_MAX_CSUMS, len(t.l4csum) > C.TG_MAX_CSUMS:
		return errors.New("template too complex")
	case t.port < 0 || t.port >= C.TG_MAX_PORTS:
		return fmt.Errorf("port %d out of range", t.port)
	}
	c.tx_port = C.uint16_t(t.port)
	c.hdr_len = C.uint16_t(len(t.hdr))
	for i, b := range t.hdr {
		c.hdr[i] = C.uint8_t(b)
	}
	c.nb_fields = C.uint8_t(len(t.fields))
	for i, f := range t.fields {
		c.fields[i] = C.struct_tg_field{off: C.uint16_t(f.off), width: C.uint8_t(f.width),
			base: C.uint32_t(f.base), count: C.uint32_t(f.count), step: C.uint32_t(f.step)}
	}
	c.nb_lens = C.uint8_t(len(t.lens))
	for i, l := range t.lens {
		c.lens[i] = C.struct_tg_len{off: C.uint16_t(l.off), delta: C.uint16_t(l.delta)}
	}
	c.nb_ip4csum = C.uint8_t(len(t.ip4csum))
	for i, o := range t.ip4csum {
		c.ip4csum[i] = C.uint16_t(o)
	}
	c.nb_l4csum = C.uint8_t(len(t.l4csum))
	for i, l := range t.l4csum {
		v6 := C.uint8_t(0)
		if l.v6 {
			v6 = 1
		}
		c.l4csum[i] = C.struct_tg_l4csum{l3_off: C.uint16_t(l.l3), l4_off: C.uint16_t(l.l4),
			v6: v6, csum_at: C.uint8_t(l.at)}
	}
	c.nb_flows = C.uint32_t(t.flows)
	c.nb_sizes = C.uint16_t(len(t.sizes))
	for i, z := range t.sizes {
		c.sizes[i] = C.uint16_t(z)
	}
	c.weight = C.uint32_t(t.weight)
	return nil
}
