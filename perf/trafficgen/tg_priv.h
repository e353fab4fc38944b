/* SPDX-License-Identifier: Apache-2.0
 * The generator's state, shared by its control (tg.c) and worker (tg_worker.c)
 * halves. Control writes a trial's configuration only while the worker is
 * idle or done, then hands it over with a release store of the state.
 */
#ifndef TG_PRIV_H
#define TG_PRIV_H

#include <pthread.h>
#include <stdbool.h>

#include <rte_mbuf.h>
#include <rte_ring.h>

#include "tg.h"

#define TG_BURST_MAX 64
#define TG_SCHED_LEN 1024 /* stream schedule: weights spread over 1024 slots */

/* A stream as the worker runs it: its configuration and its cursors. */
struct tg_stream {
	struct tg_stream_conf c;
	uint64_t seq;	   /* next sequence number to send */
	uint32_t flow;	   /* next flow index */
	uint16_t size_pos; /* next entry of the size schedule */
	/* Per field: flow mod count and its value, stepped with the flow
	 * (a division per field and frame cost more than the rest of it). */
	uint32_t fidx[TG_MAX_FIELDS];
	uint32_t fval[TG_MAX_FIELDS];
	/* template clones: tmpl[flow * nb_sizes + size_pos], or NULL */
	struct rte_mbuf **tmpl;
	uint32_t stamp_left; /* clones before the next stamped frame */
	/* receive side */
	uint64_t rx_next; /* next expected sequence number */
};

/* A TX mbuf's layout word, kept in its user-defined hash.usr (on the mbuf's
 * first cache line, which allocation touches anyway; nothing on the TX path
 * writes it): what the last frame built in it left non-zero, its headers
 * [0, hdr) and its signature [sig, sig + TG_SIG_LEN). Every other byte is
 * zero, so a frame of the same layout needs no zeroing (TX buffers come
 * back to a pool nothing else writes into). */
#define TG_LAYOUT(hdr, sig) ((uint32_t)(hdr) | (uint32_t)(sig) << 16)

#define TG_STASH 32 /* TX mbufs the worker allocates at a time */

/* A stream's templates, kept across trials while its configuration stays. */
struct tg_tmpl_set {
	struct tg_stream_conf c;
	uint32_t n;
	struct rte_mbuf **m;
};

struct tg_port {
	bool used;
	bool is_ring;
	uint16_t id; /* ethdev port id */
	uint16_t nb_rxq; /* RX queues polled */
	uint16_t mtu;    /* the configured MTU of a device without an MTU setting (0: none) */
	struct rte_ring *rx_ring, *tx_ring;
	/* frames built but not yet taken by the device, in sequence order */
	struct rte_mbuf *pend[TG_BURST_MAX];
	uint16_t pend_stream[TG_BURST_MAX];
	uint16_t nb_pend;
	struct tg_port_stats st;
};

struct tg {
	struct tg_conf conf;
	unsigned lcore;
	uint64_t hz;
	struct rte_mempool *tx_pool, *rx_pool;
	struct tg_port port[TG_MAX_PORTS];
	unsigned nb_ports;

	/* trial: written by control while the worker is idle */
	struct tg_trial_conf trial;
	struct tg_stream stream[TG_MAX_STREAMS];
	struct tg_tmpl_set tmpl[TG_MAX_STREAMS];
	struct rte_mempool *tmpl_pool; /* NULL: no templates configured */
	/* the worker's TX mbufs for frames it builds, allocated a burst at a
	 * time (a built frame is 1 in stamp_every among clones) */
	struct rte_mbuf *stash[TG_STASH];
	unsigned nb_stash;
	struct tg_stream_stats st[TG_MAX_STREAMS];
	uint64_t *hist; /* nb_streams x TG_HIST_BUCKETS */
	uint8_t sched[TG_SCHED_LEN];
	struct tg_trial_stats tst; /* the last trial's */

	int state;   /* enum tg_state; atomics */
	int abort;   /* atomics: end TX now */
	int quit;    /* atomics: worker exits */
	int pause;   /* atomics: control wants the idle worker off the ports */
	int paused;  /* atomics: the worker is off the ports */
	int running; /* atomics: worker loop alive */
	/* The worker signals the end of a trial here, so control blocks on
	 * it instead of polling (a polling control thread wakes a thousand
	 * times a second on the CPUs being measured). */
	pthread_mutex_t done_lock;
	pthread_cond_t done_cond;
};

extern struct tg *tg;

int tg_worker_main(void *arg);
void tg_trial_done(void); /* worker: the trial ended (state TG_DONE) */

/* tg_memfd.c: the EAL's memory fds, which memif zero-copy closes */
int tg_memfd_save(char *err);
int tg_memfd_restore(char *err);
void tg_memfd_release(void);

static inline unsigned
tg_hist_bucket(uint64_t v)
{
	unsigned shift;

	if (v < (1u << TG_HIST_SUB_BITS))
		return (unsigned)v;
	shift = (unsigned)(63 - __builtin_clzll(v)) - (TG_HIST_SUB_BITS - 1);
	return (shift << (TG_HIST_SUB_BITS - 1)) + (unsigned)(v >> shift);
}

#endif
