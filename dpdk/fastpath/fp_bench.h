/* SPDX-License-Identifier: Apache-2.0
 * In-process benchmark generator: a control thread feeds a ring port's RX
 * ring and recycles what another ring port sends, so a forwarding lcore runs
 * saturated with no NIC and no cgo call per packet. What is measured is the
 * worker's own accounting (busy TSC cycles over received packets), read
 * before and after a window of the run.
 *
 * Control-only: runs on the calling thread (pinned to gen_cpu for the run,
 * its affinity restored before returning); the caller serialises it with
 * other control calls. Ports must be ring ports (fp_port_add_ring) and no one
 * else may inject into in_port or drain out_port meanwhile.
 */
#ifndef FP_BENCH_H
#define FP_BENCH_H

#include <stdint.h>

#include "fp.h"

#define FP_BENCH_MAX_FRAMES 65536
#define FP_BENCH_INFLIGHT_DEF 1024
#define FP_BENCH_MAX_SLICES 1024

struct fp_bench_conf {
	uint16_t in_port;        /* ring port the frames are received on */
	uint16_t out_port;       /* ring port they must come out of */
	const uint8_t *frames;   /* templates, back to back */
	const uint32_t *lens;    /* their lengths (14..2048 - headroom) */
	uint32_t nb_frames;      /* 1..FP_BENCH_MAX_FRAMES, sent round robin */
	uint32_t inflight;       /* mbufs circulating; 0 = FP_BENCH_INFLIGHT_DEF */
	uint64_t warmup_pkts;    /* received before the window opens */
	uint64_t window_pkts;    /* window closes after this many received ... */
	uint32_t window_ms;      /* ... or after this long (0 = no limit; one of
	                          * the two must be set) */
	uint32_t slice_ms;       /* also record the worker counters every
	                          * slice_ms of the window (0 = do not) */
	int gen_cpu;             /* CPU of the generator, -1 = the main lcore's */
};

/* Worker counters over one slice of the window. A slice in which the worker
 * thread was preempted or interrupted shows it as many more busy cycles: the
 * median slice is the fast path's own cost on a shared machine. */
struct fp_bench_slice {
	uint64_t busy_cycles, rx_pkts;
};

struct fp_bench_result {
	/* whole run: warm-up, window and drain */
	uint64_t sent, received;
	uint64_t drops[FP_DROP_MAX]; /* worker drop counters, deltas */
	uint64_t in_use_before, in_use_after; /* fp_mbufs_in_use() */
	/* window: worker counters (summed over workers), deltas */
	uint64_t busy_cycles, rx_pkts, tx_pkts, busy_polls, polls, sleeps;
	/* window: generator's view */
	uint64_t win_received;
	uint64_t win_cycles;  /* TSC cycles the window lasted */
	uint64_t gen_empty;   /* generator polls that found nothing to recycle */
	uint64_t tsc_hz;
	int gen_cpu, worker_cpu;
	uint32_t nb_slices; /* full slices of the window */
	struct fp_bench_slice slice[FP_BENCH_MAX_SLICES];
};

/* Run the generator; 0 or negative errno (err says why). Frames lost or
 * dropped are reported in r, not as an error: the caller decides. */
int fp_bench_run(const struct fp_bench_conf *c, struct fp_bench_result *r, char *err);

/* Cache-line round trip between two CPUs (a thread on each bouncing one
 * line): median over batches, in TSC cycles per round trip. */
int fp_bench_bounce(int cpu_a, int cpu_b, unsigned round_trips, double *cycles, char *err);

/* TSC frequency as DPDK measured it (0 before fp_init); DPDK version. */
uint64_t fp_bench_tsc_hz(void);
const char *fp_bench_dpdk_version(void);

/* CPU of the first worker lcore and of the main lcore (-1 if unknown). */
int fp_bench_worker_cpu(void);
int fp_bench_main_cpu(void);

#endif
