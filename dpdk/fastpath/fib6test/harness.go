// Package fib6test drives the fast path's IPv6 FIB (../fp_fib6.c) on its
// own, without EAL or ports: reader threads look up addresses in a tight
// loop and check every answer while a writer changes the routes under
// them, and group accounting is exact on a small pool.
//
// fp_fib6.c is compiled into this package through symbolic links (the go
// command hashes only a package's own files, so links keep it rebuilt),
// with fibtest's shim.h (rte_malloc from libc) and FP_FIB6_DEBUG (a group
// queued for reuse must be unreachable, or the process panics). One
// harness at a time per process.
package fib6test

/*
#cgo pkg-config: libdpdk
#cgo CFLAGS: -O3 -Wall -Wno-address-of-packed-member -DALLOW_EXPERIMENTAL_API -D_GNU_SOURCE -DFP_FIB6_DEBUG -include ${SRCDIR}/shim.h
#cgo LDFLAGS: -lpthread
#include "harness.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"unsafe"
)

// NoRoute is what Match answers where no route matches.
const NoRoute = ^uint32(0)

var started, readersRunning bool

// Init creates the group pool, one FIB of at most maxRoutes routes, and an
// RCU variable for readers reader threads (not started).
func Init(groups, maxRoutes uint32, readers int) error {
	if started {
		return errors.New("fib6test: Init without Fini")
	}
	started = true
	var buf [C.FP_ERRLEN]C.char
	if ret := C.ft6_init(C.uint32_t(groups), C.uint32_t(maxRoutes), C.unsigned(readers), &buf[0]); ret < 0 {
		return fmt.Errorf("fib6test: %s (%v)", C.GoString(&buf[0]), syscall.Errno(-ret))
	}
	return nil
}

// Fini stops the readers if they run and frees everything.
func Fini() {
	if readersRunning {
		StopReaders()
	}
	C.ft6_fini()
	started = false
}

func cerr(ret C.int, buf *C.char) error {
	if ret >= 0 {
		return nil
	}
	return fmt.Errorf("%s: %w", C.GoString(buf), syscall.Errno(-ret))
}

// Add adds or repoints p to nh; old is the next-hop it replaced, NoRoute
// if new. The caller is the only writer.
func Add(p netip.Prefix, nh uint32) (old uint32, err error) {
	var buf [C.FP_ERRLEN]C.char
	var o C.uint32_t
	a := p.Addr().As16()
	err = cerr(C.ft6_add((*C.uint8_t)(&a[0]), C.uint8_t(p.Bits()), C.uint32_t(nh), &o, &buf[0]), &buf[0])
	return uint32(o), err
}

// Del deletes p and returns its next-hop.
func Del(p netip.Prefix) (uint32, error) {
	var buf [C.FP_ERRLEN]C.char
	var o C.uint32_t
	a := p.Addr().As16()
	err := cerr(C.ft6_del((*C.uint8_t)(&a[0]), C.uint8_t(p.Bits()), &o, &buf[0]), &buf[0])
	return uint32(o), err
}

// Settle is fp_fib6_settle: folds and recycling after a batch.
func Settle() { C.ft6_settle() }

func flat(addrs []netip.Addr) []byte {
	b := make([]byte, 16*len(addrs))
	for i, a := range addrs {
		x := a.As16()
		copy(b[16*i:], x[:])
	}
	return b
}

// Match is the longest match's next-hop for each address, NoRoute if none.
func Match(addrs []netip.Addr) []uint32 {
	out := make([]uint32, len(addrs))
	if len(addrs) == 0 {
		return out
	}
	in := flat(addrs)
	C.ft6_match_bulk((*C.uint8_t)(&in[0]), (*C.uint32_t)(unsafe.Pointer(&out[0])), C.unsigned(len(addrs)))
	for i := range out {
		out[i]--
	}
	return out
}

// Bench runs rounds lookups of every address in C and returns a checksum.
func Bench(addrs []netip.Addr, rounds int) uint64 {
	in := flat(addrs)
	return uint64(C.ft6_bench((*C.uint8_t)(&in[0]), C.unsigned(len(addrs)), C.unsigned(rounds)))
}

// Stats of the FIB and the pool.
type Stats struct {
	Routes, Groups                    int
	Bytes, CtlBytes                   uint64
	PoolGroups, PoolFree, PoolPending int
}

func GetStats() Stats {
	var s C.struct_fp_fib6_stats
	C.ft6_stats(&s)
	return Stats{int(s.routes), int(s.groups), uint64(s.bytes), uint64(s.ctl_bytes),
		int(s.pool_groups), int(s.pool_free), int(s.pool_pending)}
}

// SetProbes gives the readers their addresses and, for each, the next-hops
// it may get (NoRoute for none).
func SetProbes(addrs []netip.Addr, ok [][]uint32) error {
	if len(addrs) == 0 || len(ok) != len(addrs) {
		return errors.New("fib6test: one list of next-hops per address")
	}
	k := 1
	for _, o := range ok {
		k = max(k, len(o))
	}
	vals := make([]uint32, 0, len(addrs)*k)
	for _, o := range ok {
		for j := range k {
			v := NoRoute
			if len(o) > 0 {
				v = o[min(j, len(o)-1)]
			}
			vals = append(vals, v+1) // entries hold nh + 1, 0 = none
		}
	}
	in := flat(addrs)
	if ret := C.ft6_probes((*C.uint8_t)(&in[0]), (*C.uint32_t)(unsafe.Pointer(&vals[0])),
		C.unsigned(len(addrs)), C.unsigned(k)); ret < 0 {
		return syscall.Errno(-ret)
	}
	return nil
}

// StartReaders starts the reader threads, reader i pinned to cpus[i] (-1:
// not pinned).
func StartReaders(cpus []int) error {
	c := make([]C.int, C.FT6_MAX_READERS)
	for i := range c {
		c[i] = -1
		if i < len(cpus) {
			c[i] = C.int(cpus[i])
		}
	}
	if ret := C.ft6_readers_start(&c[0]); ret < 0 {
		return syscall.Errno(-ret)
	}
	readersRunning = true
	return nil
}

// StopReaders stops and joins them.
func StopReaders() {
	C.ft6_readers_stop()
	readersRunning = false
}

// ReaderResult is what reader i looked up, how many answers were not in
// its address's list, and the first of them (probe index, entry value).
type ReaderResult struct {
	Lookups, Bad   uint64
	BadIdx, BadVal uint32
}

func Reader(i int) ReaderResult {
	var l, b C.uint64_t
	var x, v C.uint32_t
	C.ft6_reader_result(C.unsigned(i), &l, &b, &x, &v)
	return ReaderResult{uint64(l), uint64(b), uint32(x), uint32(v)}
}
