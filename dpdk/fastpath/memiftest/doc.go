// Package memiftest runs the fast path with one busy-polling worker (idle
// sleep off, as benchmarks and latency-sensitive nodes configure it) against
// memif peers that come and go: a pod disconnecting must never crash the
// dataplane. Its own test process: DPDK starts once per process.
package memiftest
