package fastpath

/*
#include <stdlib.h>
#include "fp.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// DropReasons lists every drop reason's name, in counter order.
func DropReasons() []string {
	names := make([]string, C.FP_DROP_MAX)
	for i := range names {
		names[i] = C.GoString(C.fp_drop_name(C.unsigned(i)))
	}
	return names
}

// Drops sums the drop counters of all lcores, by reason name.
func (d *Dataplane) Drops() map[string]uint64 {
	var out [C.FP_DROP_MAX]C.uint64_t
	d.mu.Lock()
	if !d.closed {
		C.fp_drop_stats(&out[0])
	}
	d.mu.Unlock()
	m := make(map[string]uint64, len(out))
	for i, v := range out {
		m[C.GoString(C.fp_drop_name(C.unsigned(i)))] = uint64(v)
	}
	return m
}

// PortStats are a port's counters, summed over lcores, and the device's
// own counters of what never reached the fast path (DevMissed: its RX queue
// was full; DevRxNoMbuf: the pool was empty) or failed on the wire.
// MemifUnmapWaits counts the disconnects of a memif peer, each waited out
// by the workers before DPDK unmapped its shared memory (one per
// disconnect).
type PortStats struct {
	RxPackets, RxBytes, TxPackets, TxBytes, Drops    uint64
	DevMissed, DevRxErrors, DevTxErrors, DevRxNoMbuf uint64
	MemifUnmapWaits                                  uint64
}

// PortStats reads a port's counters.
func (d *Dataplane) PortStats(id PortID) (PortStats, error) {
	var s C.struct_fp_port_stats
	err := d.call(fmt.Sprintf("port %d stats", id), func(*C.char) C.int {
		return C.fp_port_stats(C.uint16_t(id), &s)
	})
	return PortStats{uint64(s.rx_pkts), uint64(s.rx_bytes), uint64(s.tx_pkts), uint64(s.tx_bytes), uint64(s.drops),
		uint64(s.dev_imissed), uint64(s.dev_ierrors), uint64(s.dev_oerrors), uint64(s.dev_rx_nombuf),
		uint64(s.memif_unmap_waits)}, err
}

// LcoreStats are one forwarding lcore's counters. Polls that found nothing
// and Sleeps show adaptive polling at work.
type LcoreStats struct {
	Polls, BusyPolls, Sleeps, RxPackets, TxPackets, Drops uint64
	BusyCycles                                            uint64 // TSC cycles in polls that received packets
	Consumed                                              uint64 // terminated by the vRouter, not drops
	RouterAdverts                                         uint64 // Router Advertisements sent: pods' solicitations answered
}

// LcoreStats reads worker w's counters (0 <= w < Workers()).
func (d *Dataplane) LcoreStats(w int) (LcoreStats, error) {
	var s C.struct_fp_lcore_stats
	err := d.call(fmt.Sprintf("lcore %d stats", w), func(*C.char) C.int {
		return C.fp_lcore_stats(C.unsigned(w), &s)
	})
	return LcoreStats{uint64(s.polls), uint64(s.busy_polls), uint64(s.sleeps), uint64(s.rx_pkts), uint64(s.tx_pkts), uint64(s.drops), uint64(s.busy_cycles), uint64(s.consumed),
		uint64(s.router_adverts)}, err
}

// MbufsInUse counts packet buffers out of the pool: in flight, in device
// queues, or leaked.
func (d *Dataplane) MbufsInUse() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0
	}
	return int(C.fp_mbufs_in_use())
}

// Inject queues frames on a ring port's RX side, as if they arrived on it.
func (d *Dataplane) Inject(id PortID, frames ...[]byte) (int, error) {
	if len(frames) == 0 {
		return 0, nil
	}
	var total int
	for _, f := range frames {
		total += len(f)
	}
	buf := C.malloc(C.size_t(total + 1))
	defer C.free(buf)
	lens := make([]C.uint32_t, len(frames))
	b := unsafe.Slice((*byte)(buf), total+1)
	off := 0
	for i, f := range frames {
		copy(b[off:], f)
		off += len(f)
		lens[i] = C.uint32_t(len(f))
	}
	var n C.int
	err := d.call(fmt.Sprintf("inject on port %d", id), func(*C.char) C.int {
		n = C.fp_ring_inject(C.uint16_t(id), (*C.uint8_t)(buf), &lens[0], C.unsigned(len(frames)))
		return n
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// Drain takes up to max frames a ring port sent.
func (d *Dataplane) Drain(id PortID, max int) ([][]byte, error) {
	if max <= 0 {
		return nil, nil
	}
	const room = 2048 // RTE_MBUF_DEFAULT_DATAROOM: the largest frame
	size := C.size_t(max * room)
	buf := C.malloc(size)
	defer C.free(buf)
	lens := make([]C.uint32_t, max)
	var n C.int
	err := d.call(fmt.Sprintf("drain port %d", id), func(*C.char) C.int {
		n = C.fp_ring_drain(C.uint16_t(id), (*C.uint8_t)(buf), size, &lens[0], C.unsigned(max))
		return n
	})
	if err != nil {
		return nil, err
	}
	out := make([][]byte, n)
	b := unsafe.Slice((*byte)(buf), int(size))
	off := 0
	for i := range out {
		l := int(lens[i])
		out[i] = append([]byte(nil), b[off:off+l]...)
		off += l
	}
	return out, nil
}
