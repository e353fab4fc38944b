package fastpath

/*
#include <stdlib.h>
#include "fp.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"

	"github.com/filament-net/filament/dpdk/pcapfile"
)

// Limits of a port capture.
const (
	MaxSnaplen       = C.FP_CAPTURE_SNAP_MAX // bytes kept of a frame, at most
	MaxCaptureBuffer = C.FP_CAPTURE_RING_MAX // frames buffered, at most
)

// Direction selects the frames a capture takes.
type Direction uint8

const (
	DirBoth Direction = 0                                 // received and sent (the zero value)
	DirRx   Direction = C.FP_CAPTURE_RX                   // received on the port
	DirTx   Direction = C.FP_CAPTURE_TX                   // sent on the port
	dirAll  Direction = C.FP_CAPTURE_RX | C.FP_CAPTURE_TX // what C calls both
)

func (d Direction) String() string {
	switch d {
	case DirBoth, dirAll:
		return "both"
	case DirRx:
		return "rx"
	case DirTx:
		return "tx"
	}
	return fmt.Sprintf("direction(%d)", uint8(d))
}

// ParseDirection reads "rx", "tx" or "both" (or "", both), as a CLI flag.
func ParseDirection(s string) (Direction, error) {
	switch strings.ToLower(s) {
	case "rx", "in":
		return DirRx, nil
	case "tx", "out":
		return DirTx, nil
	case "both", "", "any":
		return DirBoth, nil
	}
	return 0, fmt.Errorf("direction %q: want rx, tx or both", s)
}

// CaptureOptions says what to capture.
type CaptureOptions struct {
	Port PortID
	// Count is how many frames to write; 0 captures until ctx is done.
	Count int
	// Direction: received frames (as they arrived), sent frames (as handed
	// to the device, after rewrite or encapsulation), or both.
	Direction Direction
	// Snaplen is how many bytes of each frame are kept: 0 = whole frames
	// (up to MaxSnaplen).
	Snaplen int
	// Buffer is how many frames wait between the fast path and the writer
	// (0 = 4096); what does not fit is counted in Stats.Dropped, forwarding
	// is never held up.
	Buffer int
	// Stats, if set, is filled when Capture returns.
	Stats *CaptureStats
	// Armed, if set, is called once the fast path captures (after the
	// pcap header is written).
	Armed func()
}

// CaptureStats are a finished capture's counters.
type CaptureStats struct {
	Written  int    // frames written to the pcap
	Captured uint64 // frames the fast path copied
	Dropped  uint64 // frames it could not copy (buffer full): missing from the pcap
}

// Capture copies the frames of a port (o.Direction) into a pcap written to
// w, with the time each was received (or handed to the device for sending),
// until o.Count frames are written or ctx is done; then it disarms. It
// returns the frames written. When o.Count is 0, ctx ending is the normal
// end (nil error); with a Count, ending early returns ctx's error. One
// capture per port at a time (EBUSY); captures of different ports run side
// by side, and traffic keeps flowing whatever the writer does: a full
// buffer loses captured copies, never forwarded frames.
//
// With a Snaplen, longer frames are written truncated; each record keeps
// the frame's original length (as tcpdump -s does).
func (d *Dataplane) Capture(ctx context.Context, o CaptureOptions, w io.Writer) (n int, err error) {
	op := fmt.Sprintf("capture port %d", o.Port)
	dir := o.Direction
	if dir == DirBoth {
		dir = dirAll
	}
	var bad string
	switch {
	case dir&^dirAll != 0:
		bad = fmt.Sprintf("direction %d: want rx, tx or both", o.Direction)
	case o.Count < 0:
		bad = fmt.Sprintf("count %d: must be >= 0", o.Count)
	case o.Snaplen < 0 || o.Snaplen > MaxSnaplen || (o.Snaplen > 0 && o.Snaplen < 14):
		bad = fmt.Sprintf("snaplen %d: must be 14..%d, or 0 for whole frames", o.Snaplen, MaxSnaplen)
	case o.Buffer < 0 || o.Buffer > MaxCaptureBuffer || (o.Buffer > 0 && o.Buffer < 64):
		bad = fmt.Sprintf("buffer %d: must be 64..%d, or 0", o.Buffer, MaxCaptureBuffer)
	case o.Port >= MaxPorts:
		bad = fmt.Sprintf("port %d out of range", o.Port)
	}
	if bad != "" {
		return 0, &Error{Op: op, Errno: syscall.EINVAL, Msg: bad}
	}
	snap := o.Snaplen
	if snap == 0 {
		snap = MaxSnaplen
	}
	cc := C.struct_fp_capture_conf{
		port:    C.uint16_t(o.Port),
		dir:     C.uint8_t(dir),
		count:   C.uint32_t(o.Count),
		snaplen: C.uint32_t(snap),
		ring:    C.uint32_t(o.Buffer),
	}
	if o.Count > 1<<31 {
		cc.count = 0 // as good as no limit; Go counts
	}
	clk := newTSCClock()
	if err := d.call(op, func(e *C.char) C.int { return C.fp_capture_start(&cc, e) }); err != nil {
		return 0, err
	}
	var st C.struct_fp_capture_stats
	defer func() {
		// Disarm and free whatever happens; the frames left are lost.
		ferr := d.call(op+": free", func(e *C.char) C.int {
			C.fp_capture_stats(C.uint16_t(o.Port), &st)
			return C.fp_capture_free(C.uint16_t(o.Port), e)
		})
		if err == nil {
			err = ferr
		}
		if o.Stats != nil {
			*o.Stats = CaptureStats{Written: n, Captured: uint64(st.captured), Dropped: uint64(st.dropped)}
		}
	}()

	pw, err := pcapfile.NewWriter(w)
	if err == nil {
		err = pw.Flush()
	}
	if err != nil {
		return 0, err
	}
	if o.Armed != nil {
		o.Armed()
	}
	const batch = 64
	buf := make([]byte, batch*snap)
	meta := make([]C.struct_fp_capture_meta, batch)
	full := func() bool { return o.Count > 0 && n >= o.Count }
	// drain writes what the fast path captured so far; got says whether
	// there was anything.
	drain := func() (got bool, err error) {
		for !full() {
			max := batch
			if o.Count > 0 && o.Count-n < max {
				max = o.Count - n
			}
			var k C.int
			if err := d.call(op+": read", func(*C.char) C.int {
				k = C.fp_capture_read(C.uint16_t(o.Port), (*C.uint8_t)(&buf[0]), C.size_t(len(buf)), &meta[0], C.unsigned(max))
				return k
			}); err != nil {
				return got, err
			}
			off := 0
			for i := 0; i < int(k); i++ {
				l := int(meta[i].cap_len)
				if err := pw.WriteLen(clk.time(uint64(meta[i].tsc)), buf[off:off+l], int(meta[i].orig_len)); err != nil {
					return got, err
				}
				off += l
				n++
			}
			if k == 0 {
				return got, nil
			}
			got = true
		}
		return got, nil
	}
	waitErr := poll(ctx, func() (bool, bool, error) {
		got, err := drain()
		if err != nil || full() {
			return true, got, err
		}
		if !got {
			// Idle: push what is written to the reader, and notice a
			// port removed under the capture.
			if err := pw.Flush(); err != nil {
				return true, false, err
			}
			if err := d.call(op, func(*C.char) C.int {
				var mac [6]C.uint8_t
				return C.fp_port_mac(C.uint16_t(o.Port), &mac[0])
			}); err != nil {
				return true, false, fmt.Errorf("%s: port removed during the capture: %w", op, err)
			}
		}
		return false, got, nil
	})
	if waitErr != nil && !errors.Is(waitErr, ctx.Err()) {
		return n, waitErr
	}
	// Disarm, then write what was captured before.
	if err := d.call(op+": stop", func(e *C.char) C.int { return C.fp_capture_stop(C.uint16_t(o.Port), e) }); err != nil {
		return n, err
	}
	if _, err := drain(); err != nil {
		return n, err
	}
	if err := pw.Flush(); err != nil {
		return n, err
	}
	if waitErr != nil && o.Count > 0 && n < o.Count {
		return n, waitErr
	}
	return n, nil
}
