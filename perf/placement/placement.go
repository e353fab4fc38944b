// Package placement measures where the host runs two vCPUs: the round trip
// of a cache line between threads pinned to them is 80-100 ns on cores that
// share a cache ("near") and 370-460 ns otherwise ("far") on this machine
// kind, and every forwarding rate between the two roughly halves when far.
// Benchmarks label their samples with it and compare only like with like.
package placement

/*
#cgo CFLAGS: -O2 -Wall
#cgo LDFLAGS: -lpthread
#include "bounce.h"
*/
import "C"

import (
	"fmt"
	"sync"
	"syscall"
)

// Label is a sample's placement.
type Label string

const (
	Near    Label = "near"
	Far     Label = "far"
	Mixed   Label = "mixed"    // the host moved the vCPUs during the sample
	Unknown Label = "unprobed" // no probe (or it failed)
)

// NearMaxNs separates near from far.
const NearMaxNs = 200

var mu sync.Mutex

// RoundTripNs is the median cache-line round trip between cpuA and cpuB
// (2048 round trips: a millisecond or two). When another process holds one
// of the CPUs the round trips wait for the scheduler: after 100 ms it gives
// up with syscall.EBUSY rather than report that.
func RoundTripNs(cpuA, cpuB int) (float64, error) {
	mu.Lock()
	defer mu.Unlock()
	var ns C.double
	if r := C.bounce_ns(C.int(cpuA), C.int(cpuB), 2048, 100, &ns); r != 0 {
		return 0, fmt.Errorf("placement: bounce between CPU %d and %d: %w", cpuA, cpuB, syscall.Errno(-r))
	}
	return float64(ns), nil
}

// Of labels a sample from the probes taken before and after it.
func Of(before, after float64) Label {
	switch {
	case before == 0 || after == 0:
		return Unknown
	case before < NearMaxNs && after < NearMaxNs:
		return Near
	case before >= NearMaxNs && after >= NearMaxNs:
		return Far
	}
	return Mixed
}
