package fastpath

/*
#include <stdlib.h>
#include "fp.h"
*/
import "C"

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/filament-net/filament/dpdk/frames"
)

// Limits of a packet trace.
const (
	MaxTrace   = C.FP_TRACE_MAX   // packets one trace records
	TraceBytes = C.FP_TRACE_BYTES // bytes kept of each frame, in and out
)

// TraceOptions says which packets to trace.
type TraceOptions struct {
	// Count is how many packets to record (1..MaxTrace): the next Count
	// packets received by any worker.
	Count int
	// Port, if set, traces only packets received on that port.
	Port *PortID
	// Armed, if set, is called once the fast path records, before the
	// wait (a CLI says "waiting for packets"; tests start traffic).
	Armed func()
}

// Verdict is what the fast path did with a traced packet.
type Verdict uint8

const (
	// VerdictUnknown: no decision was seen. Every packet is sent,
	// consumed or dropped, so this is a bug in the fast path.
	VerdictUnknown  Verdict = C.FP_TRACE_NONE
	VerdictSent     Verdict = C.FP_TRACE_SENT     // handed to OutPort's TX queue
	VerdictConsumed Verdict = C.FP_TRACE_CONSUMED // terminated by the vRouter, not a drop
	VerdictDropped  Verdict = C.FP_TRACE_DROPPED  // counted under DropReason
)

func (v Verdict) String() string {
	switch v {
	case VerdictUnknown:
		return "unknown"
	case VerdictSent:
		return "sent"
	case VerdictConsumed:
		return "consumed"
	case VerdictDropped:
		return "dropped"
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// TraceRecord is one traced packet: where it came in, its first bytes as
// received, and its fate with its first bytes as sent.
type TraceRecord struct {
	Time    time.Time // when the worker processed it (from the TSC)
	TSC     uint64    // the worker's TSC reading
	Worker  int       // worker index (LcoreStats)
	Lcore   int       // DPDK lcore id
	InPort  PortID
	InQueue int
	InLen   int    // frame length as received
	In      []byte // its first TraceBytes (or fewer) bytes

	Verdict Verdict
	// DropReason is the drop counter's name (Drops, DropReasons) when
	// Verdict is VerdictDropped.
	DropReason string
	// OutPort, OutLen and Out (its first TraceBytes bytes, after rewrite or
	// encapsulation) describe the frame sent: for VerdictSent, and for a
	// dropped packet whose mbuf left as the vRouter's answer instead (an
	// ICMP error, an ARP request for an unresolved neighbour). Out is nil
	// when nothing was sent.
	OutPort PortID
	OutLen  int
	Out     []byte
}

// Decision is the packet's fate in words: "sent port 3", "consumed",
// "dropped no_route", "dropped ttl_exceeded, answered on port 1".
func (r TraceRecord) Decision() string {
	switch r.Verdict {
	case VerdictSent:
		return fmt.Sprintf("sent port %d", r.OutPort)
	case VerdictDropped:
		if r.Out != nil {
			return fmt.Sprintf("dropped %s, answered on port %d", r.DropReason, r.OutPort)
		}
		return "dropped " + r.DropReason
	case VerdictConsumed:
		return "consumed"
	}
	return "no decision (fast path bug)"
}

// headers summarises the first bytes of a frame of length n: zero-padded
// to n, so that only real length problems show as errors.
func headers(b []byte, n int) string {
	if n > len(b) {
		b = append(append(make([]byte, 0, n), b...), make([]byte, n-len(b))...)
	}
	return frames.Summary(b)
}

// Summary is one line: in port and queue, the headers as received, the
// decision, and the headers as sent.
func (r TraceRecord) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "port %d q%d %dB %s => %s", r.InPort, r.InQueue, r.InLen, headers(r.In, r.InLen), r.Decision())
	if r.Out != nil {
		fmt.Fprintf(&b, ": %dB %s", r.OutLen, headers(r.Out, r.OutLen))
	}
	return b.String()
}

// String is the Summary after the time and the worker.
func (r TraceRecord) String() string {
	return fmt.Sprintf("%s w%d %s", r.Time.Format("15:04:05.000000"), r.Worker, r.Summary())
}

// tscClock turns TSC readings of the workers into wall-clock time.
type tscClock struct {
	tsc uint64
	t   time.Time
	hz  uint64
}

func newTSCClock() tscClock {
	var hz C.uint64_t
	t := time.Now()
	tsc := C.fp_tsc(&hz)
	return tscClock{tsc: uint64(tsc), t: t, hz: uint64(hz)}
}

func (c tscClock) time(tsc uint64) time.Time {
	if c.hz == 0 {
		return c.t
	}
	d := int64(tsc - c.tsc) // readings may precede the reference slightly
	hz := int64(c.hz)
	return c.t.Add(time.Duration(d/hz)*time.Second + time.Duration(d%hz*int64(time.Second)/hz))
}

// poll calls step with pauses until it says done or ctx is done. The pause
// starts at 100 us after step made progress and doubles up to 10 ms while
// it makes none. Every pause has a deadline: nothing blocks unbounded.
func poll(ctx context.Context, step func() (done, progress bool, err error)) error {
	const least, most = 100 * time.Microsecond, 10 * time.Millisecond
	pause := least
	t := time.NewTimer(pause)
	defer t.Stop()
	for {
		done, progress, err := step()
		if done || err != nil {
			return err
		}
		if progress {
			pause = least
		} else if pause < most {
			pause *= 2
		}
		t.Reset(pause)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Trace records the next o.Count packets the fast path receives (on
// o.Port only, if set): each with its first bytes as received and its fate
// (sent with its first bytes as sent, consumed, or dropped with the
// reason). It arms the trace, waits until Count packets are recorded or ctx
// is done, disarms and returns the records sorted by time. If ctx ends
// first, it returns the records so far with ctx's error. One trace runs at
// a time (EBUSY). Forwarding never waits for it.
func (d *Dataplane) Trace(ctx context.Context, o TraceOptions) ([]TraceRecord, error) {
	if o.Count < 1 || o.Count > MaxTrace {
		return nil, &Error{Op: "trace", Errno: syscall.EINVAL, Msg: fmt.Sprintf("count %d: must be 1..%d", o.Count, MaxTrace)}
	}
	port := C.uint16_t(C.FP_TRACE_ANY_PORT)
	if o.Port != nil {
		if *o.Port >= MaxPorts {
			return nil, &Error{Op: "trace", Errno: syscall.EINVAL, Msg: fmt.Sprintf("port %d out of range", *o.Port)}
		}
		port = C.uint16_t(*o.Port)
	}
	clk := newTSCClock()
	if err := d.call("trace", func(e *C.char) C.int {
		return C.fp_trace_start(C.uint32_t(o.Count), port, e)
	}); err != nil {
		return nil, err
	}
	if o.Armed != nil {
		o.Armed()
	}
	last := 0
	waitErr := poll(ctx, func() (bool, bool, error) {
		var got C.uint32_t
		err := d.call("trace progress", func(*C.char) C.int {
			got = C.fp_trace_progress()
			return 0
		})
		progress := int(got) > last
		last = int(got)
		return last >= o.Count, progress, err
	})
	// Always disarm, even when ctx is done.
	crec := make([]C.struct_fp_trace_rec, o.Count)
	var n C.int
	if err := d.call("trace stop", func(e *C.char) C.int {
		n = C.fp_trace_stop(&crec[0], C.uint32_t(len(crec)), e)
		return n
	}); err != nil {
		return nil, err
	}
	recs := make([]TraceRecord, int(n))
	for i := range recs {
		recs[i] = traceRecord(&crec[i], clk)
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].TSC < recs[j].TSC })
	return recs, waitErr
}

func traceRecord(c *C.struct_fp_trace_rec, clk tscClock) TraceRecord {
	r := TraceRecord{
		TSC:     uint64(c.tsc),
		Worker:  int(c.worker),
		Lcore:   int(c.lcore),
		InPort:  PortID(c.in_port),
		InQueue: int(c.in_queue),
		InLen:   int(c.in_len),
		In:      C.GoBytes(unsafe.Pointer(&c.in[0]), C.int(c.in_cap)),
		Verdict: Verdict(c.verdict),
	}
	r.Time = clk.time(r.TSC)
	if r.Verdict == VerdictDropped {
		r.DropReason = C.GoString(C.fp_drop_name(C.unsigned(c.reason)))
	}
	if c.out_len != 0 {
		r.OutPort = PortID(c.out_port)
		r.OutLen = int(c.out_len)
		r.Out = C.GoBytes(unsafe.Pointer(&c.out[0]), C.int(c.out_cap))
	}
	return r
}
