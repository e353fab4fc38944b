// Package fibtest drives the fast path's IPv4 FIB (../fp_fib4.c) on its own,
// without EAL or ports, for tests that need what the dataplane cannot show
// from outside: reader threads that look up addresses in a tight loop and
// check every answer while a writer changes the routes under them, a
// reader that withholds its RCU quiescent state, and exact group
// accounting on a small pool.
//
// fp_fib4.c is compiled into this package as it is, through symbolic links
// to it and to the headers it includes (links, not #include "../", so that
// the go command rebuilds this package when they change: it hashes only the
// files of a package's own directory). shim.h sends its rte_malloc calls to
// libc (no EAL); its RCU is a real rte_rcu_qsbr whose readers are this
// package's threads. FP_FIB4_DEBUG turns on its self-checks (a group queued
// for reuse must be unreachable). One harness at a time per process.
package fibtest

/*

#cgo pkg-config: libdpdk
#cgo CFLAGS: -O3 -Wall -Wno-address-of-packed-member -DALLOW_EXPERIMENTAL_API -D_GNU_SOURCE -DFP_FIB4_DEBUG -include ${SRCDIR}/shim.h
#cgo LDFLAGS: -lpthread
#include "harness.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"unsafe"
)

// NoRoute is what Match answers where no route matches.
const NoRoute = ^uint32(0)

var started, readersRunning bool

// Fini stops the readers if they run and frees everything: Init may run
// again.
func Fini() {
	if readersRunning {
		StopReaders()
	}
	C.ft_fini()
	started = false
}

// Bench runs rounds lookups of every address (bulk: in bursts of 32) in C
// and returns a checksum.
func Bench(addrs []uint32, rounds int, bulk bool) uint64 {
	b := C.int(0)
	if bulk {
		b = 1
	}
	return uint64(C.ft_bench((*C.uint32_t)(unsafe.Pointer(&addrs[0])), C.unsigned(len(addrs)), C.unsigned(rounds), b))
}

// Init creates the group pool (groups of 256 entries), one FIB of at most
// maxRoutes routes, and an RCU variable for readers reader threads (not
// started). One at a time: Fini before the next.
func Init(groups, maxRoutes uint32, readers int) error {
	if started {
		return errors.New("fibtest: Init without Fini")
	}
	started = true
	var buf [C.FP_ERRLEN]C.char
	if ret := C.ft_init(C.uint32_t(groups), C.uint32_t(maxRoutes), C.unsigned(readers), &buf[0]); ret < 0 {
		return fmt.Errorf("fibtest: %s (%v)", C.GoString(&buf[0]), syscall.Errno(-ret))
	}
	return nil
}

func cerr(ret C.int, buf *C.char) error {
	if ret >= 0 {
		return nil
	}
	return fmt.Errorf("%s: %w", C.GoString(buf), syscall.Errno(-ret))
}

// Add adds or repoints prefix/len (host byte order) to nh; old is the
// next-hop it replaced, NoRoute if new. The caller is the only writer.
func Add(prefix uint32, length int, nh uint32) (old uint32, err error) {
	var buf [C.FP_ERRLEN]C.char
	var o C.uint32_t
	err = cerr(C.ft_add(C.uint32_t(prefix), C.uint8_t(length), C.uint32_t(nh), &o, &buf[0]), &buf[0])
	return uint32(o), err
}

// Del deletes prefix/len and returns its next-hop.
func Del(prefix uint32, length int) (uint32, error) {
	var buf [C.FP_ERRLEN]C.char
	var o C.uint32_t
	err := cerr(C.ft_del(C.uint32_t(prefix), C.uint8_t(length), &o, &buf[0]), &buf[0])
	return uint32(o), err
}

// Settle is fp_fib4_settle: root resizing after a batch.
func Settle() { C.ft_settle() }

// Match is the longest match's next-hop, NoRoute if none.
func Match(addr uint32) uint32 {
	return uint32(C.ft_match(C.uint32_t(addr))) - 1
}

// MatchBulk is Match for many addresses, through fp_fib4_match_bulk.
func MatchBulk(addrs []uint32) []uint32 {
	out := make([]uint32, len(addrs))
	if len(addrs) > 0 {
		C.ft_match_bulk((*C.uint32_t)(unsafe.Pointer(&addrs[0])), (*C.uint32_t)(unsafe.Pointer(&out[0])), C.unsigned(len(addrs)))
	}
	for i := range out {
		out[i]--
	}
	return out
}

// Shortcuts counts the root entries that skip one level and two levels
// (root_sync in fp_fib4.c).
func Shortcuts() (k1, k2 int) {
	var a, b C.unsigned
	C.ft_shortcuts(&a, &b)
	return int(a), int(b)
}

// Stats of the FIB and the pool.
type Stats struct {
	Routes, RootBits, Groups          int
	Bytes, CtlBytes                   uint64
	PoolGroups, PoolFree, PoolPending int
}

func GetStats() Stats {
	var s C.struct_fp_fib4_stats
	C.ft_stats(&s)
	return Stats{int(s.routes), int(s.root_bits), int(s.groups), uint64(s.bytes), uint64(s.ctl_bytes),
		int(s.pool_groups), int(s.pool_free), int(s.pool_pending)}
}

// SetProbes gives the readers their addresses and, for each, the next-hops
// it may get (NoRoute for none; at most k each, shorter lists padded by
// repeating).
func SetProbes(addrs []uint32, ok [][]uint32) error {
	k := 1
	for _, o := range ok {
		k = max(k, len(o))
	}
	flat := make([]uint32, 0, len(addrs)*k)
	for _, o := range ok {
		for j := range k {
			v := NoRoute
			if len(o) > 0 {
				v = o[min(j, len(o)-1)]
			}
			flat = append(flat, v+1) // entries hold nh + 1, 0 = none
		}
	}
	if len(addrs) == 0 || len(ok) != len(addrs) {
		return errors.New("fibtest: one list of next-hops per address")
	}
	if ret := C.ft_probes((*C.uint32_t)(unsafe.Pointer(&addrs[0])), (*C.uint32_t)(unsafe.Pointer(&flat[0])),
		C.unsigned(len(addrs)), C.unsigned(k)); ret < 0 {
		return syscall.Errno(-ret)
	}
	return nil
}

// StartReaders starts the reader threads, reader i pinned to cpus[i] (-1:
// not pinned).
func StartReaders(cpus []int) error {
	c := make([]C.int, C.FT_MAX_READERS)
	for i := range c {
		c[i] = -1
		if i < len(cpus) {
			c[i] = C.int(cpus[i])
		}
	}
	if ret := C.ft_readers_start(&c[0]); ret < 0 {
		return syscall.Errno(-ret)
	}
	readersRunning = true
	return nil
}

// StopReaders stops and joins them.
func StopReaders() {
	C.ft_readers_stop()
	readersRunning = false
}

// ReaderResult is what reader i looked up, how many answers were not in
// its address's list, and the first of them.
type ReaderResult struct {
	Lookups, Bad    uint64
	BadAddr, BadVal uint32 // BadVal: entry value (nh + 1)
}

func Reader(i int) ReaderResult {
	var l, b C.uint64_t
	var a, v C.uint32_t
	C.ft_reader_result(C.unsigned(i), &l, &b, &a, &v)
	return ReaderResult{uint64(l), uint64(b), uint32(a), uint32(v)}
}

// Stall makes reader i withhold its quiescent state (it stays online, as an
// lcore in the middle of a burst) until Unstall.
func Stall(i int)   { C.ft_stall(C.unsigned(i)) }
func Unstall(i int) { C.ft_unstall(C.unsigned(i)) }

// AddAsync runs Add on a thread of its own; AsyncDone says whether it
// returned, AsyncJoin waits for it.
func AddAsync(prefix uint32, length int, nh uint32) error {
	if ret := C.ft_add_async(C.uint32_t(prefix), C.uint8_t(length), C.uint32_t(nh)); ret < 0 {
		return syscall.Errno(-ret)
	}
	return nil
}

func AsyncDone() bool { return C.ft_async_done() != 0 }

func AsyncJoin() error {
	if ret := C.ft_async_join(); ret < 0 {
		return syscall.Errno(-ret)
	}
	return nil
}

// PinWriter keeps the calling goroutine on its thread, off the given
// CPUs (the readers'), until the returned function runs.
func PinWriter(avoid []int) func() {
	runtime.LockOSThread()
	var old, set [16]uint64
	if _, _, e := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, 0, unsafe.Sizeof(old), uintptr(unsafe.Pointer(&old))); e != 0 {
		return runtime.UnlockOSThread
	}
	set = old
	for _, c := range avoid {
		if c >= 0 && c < 1024 {
			set[c/64] &^= 1 << (c % 64)
		}
	}
	if set == ([16]uint64{}) {
		return runtime.UnlockOSThread
	}
	syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, unsafe.Sizeof(set), uintptr(unsafe.Pointer(&set)))
	return func() {
		syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, unsafe.Sizeof(old), uintptr(unsafe.Pointer(&old)))
		runtime.UnlockOSThread()
	}
}
