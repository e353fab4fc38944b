// Package trafficgen is filament-perf's packet generator: a DPDK worker lcore
// in C builds, sends and receives frames; Go describes streams, runs trials
// and reads the results. No per-packet work crosses into Go.
//
// Frames carry a 16-byte trailer (stream, sequence number, TX timestamp) at
// the end of their IP payload, so loss, reordering and latency are measured
// per stream whatever encapsulation the device under test adds or removes.
package trafficgen

/*
#cgo pkg-config: libdpdk
#cgo LDFLAGS: -lrte_net_ring
#cgo CFLAGS: -O3 -Wall -Wno-address-of-packed-member -DALLOW_EXPERIMENTAL_API
#include <errno.h>
#include <stdlib.h>
#include <rte_version.h>
#include <rte_eal.h>
#include "tg.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Error is a refused operation; Errno says which kind.
type Error struct {
	Op    string
	Errno syscall.Errno
	Msg   string
}

func (e *Error) Error() string { return e.Op + ": " + e.Msg }

// Unwrap lets errors.Is(err, syscall.EINVAL) work.
func (e *Error) Unwrap() error { return e.Errno }

func cerr(op string, ret C.int, buf *C.char) error {
	msg := C.GoString(buf)
	if msg == "" {
		msg = syscall.Errno(-ret).Error()
	}
	return &Error{Op: op, Errno: syscall.Errno(-ret), Msg: msg}
}

// Config sizes the generator. EALArgs must give at least two lcores: the
// main one (control) and Lcore, the worker.
type Config struct {
	EALArgs     []string
	Lcore       uint // worker lcore id
	Mbufs       int  // per pool (TX and RX)
	DataRoom    int  // bytes per mbuf: >= the largest frame
	Descriptors int  // per RX/TX queue
	// RxQueues is how many RX queues each device port has, all polled
	// (0: one). Frames leave on TX queue 0 whatever it is.
	RxQueues  int
	IdleSleep time.Duration // worker nap between polls when no trial runs
	// RxBursts bounds the RX bursts a queue gives per loop while it has
	// frames (0: 16). 1 is one burst per loop, which let a device that
	// had a hiccup overflow the generator's RX ring (tests compare both).
	RxBursts int
	// Templates bounds the template frames kept for Trial.StampEvery over
	// all streams (one per flow and size; 0: none, every frame built).
	Templates int
	// MTU is set on every port before it starts (0: the device's own);
	// a device without an MTU setting (memif, ring) takes it as its
	// bound. A frame is at most MTU + FrameOverhead bytes.
	MTU int
}

// MaxFrame is the largest frame, FCS included, the generator's mbufs hold
// (a frame is built and received in one mbuf, without its FCS).
func (c Config) MaxFrame() int { return min(MaxFrame, c.DataRoom+fcsLen) }

// DefaultConfig: worker lcore 1, frames up to 2048 bytes, 16K mbufs a pool.
func DefaultConfig() Config {
	return Config{Lcore: 1, Mbufs: 16383, DataRoom: 2048, Descriptors: 1024, IdleSleep: 200 * time.Microsecond,
		Templates: 8192}
}

// Generator is the running generator; its methods are safe for concurrent
// use (they are serialised).
type Generator struct {
	mu sync.Mutex
	hz uint64
}

var started sync.Once

// Start initialises the EAL (once per process: DPDK cannot re-initialise)
// and launches the worker.
func Start(cfg Config) (*Generator, error) {
	if cfg.Mbufs == 0 || cfg.DataRoom == 0 || cfg.Descriptors == 0 {
		return nil, errors.New("trafficgen: mbufs, data room and descriptors must be > 0")
	}
	first := false
	started.Do(func() { first = true })
	if !first {
		return nil, errors.New("trafficgen: the EAL was initialised already in this process")
	}
	args := append([]string{"filament-perf"}, cfg.EALArgs...)
	argv := make([]*C.char, len(args))
	for i, a := range args {
		argv[i] = C.CString(a)
	}
	// The EAL keeps pointers into argv: these strings are never freed.
	c := C.struct_tg_conf{lcore: C.uint(cfg.Lcore), mbufs: C.uint(cfg.Mbufs),
		data_room: C.uint(cfg.DataRoom), nb_desc: C.uint(cfg.Descriptors), rx_queues: C.uint(max(cfg.RxQueues, 1)),
		idle_sleep_us: C.uint(cfg.IdleSleep / time.Microsecond), rx_bursts: C.uint(max(cfg.RxBursts, 0)),
		templates: C.uint(max(cfg.Templates, 0)), mtu: C.uint(max(cfg.MTU, 0))}
	var buf [C.TG_ERRLEN]C.char
	ret := C.tg_init(C.int(len(argv)), &argv[0], &c, &buf[0])
	if ret < 0 {
		return nil, cerr("trafficgen: start", ret, &buf[0])
	}
	return &Generator{hz: uint64(C.tg_tsc_hz())}, nil
}

// Close stops the worker, closes the ports and releases the EAL, then
// removes the EAL's runtime directory (/var/run/dpdk/<file-prefix>), which
// DPDK 22.11 leaves behind: the generator is the only process of its prefix.
func (g *Generator) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	dir := C.GoString(C.rte_eal_get_runtime_dir())
	C.tg_fini()
	if dir != "" && dir != "/" {
		_ = os.RemoveAll(dir)
	}
}

// DPDKVersion is the linked DPDK's version string.
func DPDKVersion() string { return C.GoString(C.rte_version()) }

// TSCHz is the worker's timestamp clock.
func (g *Generator) TSCHz() uint64 { return g.hz }

func (g *Generator) call(op string, f func(err *C.char) C.int) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var buf [C.TG_ERRLEN]C.char
	ret := f(&buf[0])
	if ret < 0 {
		return 0, cerr(op, ret, &buf[0])
	}
	return int(ret), nil
}

// AddPort probes a device from its devargs (net_memif0,role=client,...)
// and starts it with one RX and one TX queue.
func (g *Generator) AddPort(devargs string) (int, error) {
	cs := C.CString(devargs)
	defer C.free(unsafe.Pointer(cs))
	return g.call(fmt.Sprintf("add port %q", devargs), func(e *C.char) C.int { return C.tg_port_add(cs, e) })
}

// CheckDevargs says whether DPDK knows the device devargs names (a bus
// parses it: a PCI address, a registered virtual device driver) without
// probing it: an error here is bad input, not a device that failed.
func (g *Generator) CheckDevargs(devargs string) error {
	cs := C.CString(devargs)
	defer C.free(unsafe.Pointer(cs))
	_, err := g.call(fmt.Sprintf("port %q", devargs), func(e *C.char) C.int { return C.tg_devargs_check(cs, e) })
	return err
}

// AddRingPort adds a port over two rings: Inject feeds its receive side,
// Drain reads what it sent.
func (g *Generator) AddRingPort(name string) (int, error) {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	return g.call(fmt.Sprintf("add ring port %q", name), func(e *C.char) C.int { return C.tg_port_add_ring(cs, e) })
}

// LinkUp reports a port's link state. A port whose link is up may have
// closed the EAL's memory fds (memif zero-copy, see tg_memfd.c): they are
// put back, and LinkUp is false if they cannot be (LinkErr says why).
func (g *Generator) LinkUp(port int) bool {
	up, _ := g.LinkErr(port)
	return up
}

// LinkErr is LinkUp with the reason a link cannot be used.
func (g *Generator) LinkErr(port int) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch r := C.tg_port_link_up(C.uint(port)); {
	case r == 1:
		return true, nil
	case r == -C.EBUSY:
		return false, fmt.Errorf("port %d: the EAL's memory fd was closed and reused (memif zero-copy): start again", port)
	case r < 0:
		return false, fmt.Errorf("port %d: %w", port, syscall.Errno(-r))
	}
	return false, nil
}

// PortMTU is a port's MTU: its device's, or Config.MTU on a device
// without an MTU setting.
func (g *Generator) PortMTU(port int) (int, error) {
	return g.call(fmt.Sprintf("port %d MTU", port), func(e *C.char) C.int { return C.tg_port_mtu(C.uint(port), e) })
}

// RestartPort stops and starts a port between trials: a memif client
// connects only when its port starts, so a server that was not listening
// yet is tried again this way.
func (g *Generator) RestartPort(port int) error {
	_, err := g.call(fmt.Sprintf("restart port %d", port), func(e *C.char) C.int { return C.tg_port_restart(C.uint(port), e) })
	return err
}

// PortStats are a port's counters since it was added.
type PortStats struct {
	RxPackets, RxBytes, RxForeign uint64 // RxForeign: frames without a signature of the trial
	TxPackets, TxBytes, TxFull    uint64 // TxFull: bursts the device did not take whole
	DevIPackets, DevOPackets      uint64
	DevIMissed, DevIErrors        uint64
	DevOErrors, DevRxNoMbuf       uint64
}

// PortStats reads a port's counters (also while a trial runs).
func (g *Generator) PortStats(port int) (PortStats, error) {
	var s C.struct_tg_port_stats
	_, err := g.call(fmt.Sprintf("port %d stats", port), func(*C.char) C.int { return C.tg_port_stats(C.uint(port), &s) })
	return PortStats{uint64(s.rx_pkts), uint64(s.rx_bytes), uint64(s.rx_foreign),
		uint64(s.tx_pkts), uint64(s.tx_bytes), uint64(s.tx_full),
		uint64(s.dev_ipackets), uint64(s.dev_opackets), uint64(s.dev_imissed), uint64(s.dev_ierrors),
		uint64(s.dev_oerrors), uint64(s.dev_nombuf)}, err
}

// Inject queues frames on a ring port's receive side; it returns how many
// were queued.
func (g *Generator) Inject(port int, frames ...[]byte) (int, error) {
	if len(frames) == 0 {
		return 0, nil
	}
	var all []byte
	lens := make([]C.uint32_t, len(frames))
	for i, f := range frames {
		all = append(all, f...)
		lens[i] = C.uint32_t(len(f))
	}
	buf := C.CBytes(all)
	defer C.free(buf)
	return g.call(fmt.Sprintf("inject on port %d", port), func(*C.char) C.int {
		return C.tg_ring_inject(C.uint(port), (*C.uint8_t)(buf), &lens[0], C.uint(len(frames)))
	})
}

// Drain returns up to max frames a ring port sent.
func (g *Generator) Drain(port int, max int) ([][]byte, error) {
	if max <= 0 {
		return nil, nil
	}
	const room = 1 << 20
	buf := C.malloc(C.size_t(room))
	defer C.free(buf)
	lens := make([]C.uint32_t, max)
	var out [][]byte
	for len(out) < max {
		n, err := g.call(fmt.Sprintf("drain port %d", port), func(*C.char) C.int {
			return C.tg_ring_drain(C.uint(port), (*C.uint8_t)(buf), room, &lens[0], C.uint(max-len(out)))
		})
		if err != nil || n == 0 {
			return out, err
		}
		b := C.GoBytes(buf, C.int(room))
		off := 0
		for _, l := range lens[:n] {
			out = append(out, b[off:off+int(l)])
			off += int(l)
		}
	}
	return out, nil
}
