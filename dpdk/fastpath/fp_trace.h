/* SPDX-License-Identifier: Apache-2.0
 * Packet trace and port capture: the objects control arms (fp_trace.c) and
 * the helpers the armed forwarding loop (fp_trace_worker.c) calls.
 */
#ifndef FP_TRACE_H
#define FP_TRACE_H

#include "fp_priv.h"

struct fp_trace_slot {
	struct fp_trace_rec rec;
	/* SENT: the mbuf while it may still sit in the worker's TX buffer
	 * (until the end of loop iteration iter), to mark it tx_full if the
	 * device refuses it. */
	const struct rte_mbuf *m;
	uint64_t iter; /* the worker's st.polls when it was recorded */
};

struct fp_trace {
	uint32_t count;
	uint16_t port; /* FP_TRACE_ANY_PORT or the only in port traced */
	/* slots claimed, by every worker (may pass count) */
	uint32_t next __rte_cache_aligned;
	/* per worker: its loop iteration that last claimed, and the first slot
	 * it claimed in it (where tx_full marking starts looking) */
	struct {
		uint64_t iter;
		uint32_t first;
	} w[FP_MAX_WORKERS] __rte_cache_aligned;
	struct fp_trace_slot slot[] __rte_cache_aligned;
};

struct fp_capture {
	uint16_t port;
	uint8_t dir;      /* FP_CAPTURE_RX | FP_CAPTURE_TX */
	uint32_t count;   /* 0: no limit */
	uint32_t snaplen;
	struct rte_mempool *pool; /* the copies */
	struct rte_ring *ring;    /* MP (workers), SC (control) */
	/* written by workers */
	uint64_t claimed __rte_cache_aligned; /* toward count */
	uint64_t captured;
	uint64_t dropped;
	/* control only */
	uint64_t read __rte_cache_aligned;
	bool armed;
};

/* Private area of a capture mbuf. */
struct fp_capture_priv {
	uint64_t tsc;
	uint32_t orig_len;
	uint16_t worker;
	uint8_t dir;
	uint8_t pad;
};

/* Slots for the first *n packets of a burst received on port (*n is
 * lowered to what is left of the trace), NULL with *n = 0 if none. */
struct fp_trace_slot *fp_trace_claim(struct fp_lcore *lc, uint16_t port, unsigned *n);
/* The device refused m[0..n) in this loop iteration: traced ones become
 * dropped, tx_full. */
void fp_trace_tx_failed(struct fp_lcore *lc, struct rte_mbuf *const *m, unsigned n);
/* Copy the frames (received or about to be sent on port) to its capture,
 * if one is armed for that direction. */
void fp_capture_burst(struct fp_lcore *lc, uint16_t port, uint8_t dir,
		      struct rte_mbuf *const *m, unsigned n);

#endif
