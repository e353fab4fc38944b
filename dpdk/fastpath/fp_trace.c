/* SPDX-License-Identifier: Apache-2.0
 * Packet trace and port capture, for operators.
 *
 * Both are armed by control: it allocates what the workers will write to
 * (trace slots; a capture ring and a pool for the copies), publishes it with
 * one pointer store, then sets what is armed in every worker's dbg word and
 * FP_LOOP_ARMED in its stop byte: the worker leaves its loop (whose one test
 * of stop covers it) for the armed loop of fp_trace_worker.c, so a disarmed
 * fast path pays nothing per packet or per burst. Disarming clears the
 * pointer and the bits and waits for a grace period (fp_sync): after it no
 * worker holds the object, which control then reads and frees. Nothing here
 * allocates on the packet path.
 *
 * Control calls are serialised by the caller, like every fp.h call.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "fp_trace.h"

#define FP_CAPTURE_CACHE 32

/* Control's view: the capture of each port from start to free (fp_dp->cap
 * is the workers' view, from start to stop). */
static struct fp_capture *cap_ctl[FP_MAX_PORTS];
static unsigned cap_gen; /* unique names for pools and rings */

/* Set every worker's dbg bits from what is armed. */
static void
dbg_update(void)
{
	uint32_t bits = 0;
	unsigned i;

	if (fp_dp->trace != NULL)
		bits |= FP_DBG_TRACE;
	for (i = 0; i < FP_MAX_PORTS; i++)
		if (fp_dp->cap[i] != NULL) {
			bits |= FP_DBG_CAPTURE;
			break;
		}
	/* dbg first: the armed loop it sends the workers to reads it. */
	for (i = 0; i < fp_dp->nb_workers; i++) {
		struct fp_lcore *lc = fp_dp->lcore[i];

		__atomic_store_n(&lc->dbg, bits, __ATOMIC_RELEASE);
		if (bits != 0)
			__atomic_fetch_or(&lc->stop, FP_LOOP_ARMED, __ATOMIC_RELEASE);
		else
			__atomic_fetch_and(&lc->stop, (uint8_t)~FP_LOOP_ARMED, __ATOMIC_RELEASE);
	}
}

uint64_t
fp_tsc(uint64_t *hz)
{
	if (hz != NULL)
		*hz = rte_get_tsc_hz();
	return rte_rdtsc();
}

/* ---- trace: control ------------------------------------------------------ */

int
fp_trace_start(uint32_t count, uint16_t port, char *err)
{
	struct fp_trace *t;
	unsigned i;

	if (fp_dp == NULL) {
		fp_err(err, "fast path not initialised");
		return -ENODEV;
	}
	if (count == 0 || count > FP_TRACE_MAX) {
		fp_err(err, "trace of %u packets: must be 1..%u", count, FP_TRACE_MAX);
		return -EINVAL;
	}
	if (port != FP_TRACE_ANY_PORT &&
	    (port >= FP_MAX_PORTS || fp_dp->port[port] == NULL)) {
		fp_err(err, "port %u does not exist", port);
		return -ENOENT;
	}
	if (fp_dp->trace != NULL) {
		fp_err(err, "a trace is already running");
		return -EBUSY;
	}
	t = rte_zmalloc("fp_trace", sizeof(*t) + count * sizeof(t->slot[0]),
			RTE_CACHE_LINE_SIZE);
	if (t == NULL) {
		fp_err(err, "no memory for a trace of %u packets", count);
		return -ENOMEM;
	}
	t->count = count;
	t->port = port;
	for (i = 0; i < FP_MAX_WORKERS; i++)
		t->w[i].iter = UINT64_MAX;
	__atomic_store_n(&fp_dp->trace, t, __ATOMIC_RELEASE);
	dbg_update();
	return 0;
}

uint32_t
fp_trace_progress(void)
{
	const struct fp_trace *t = fp_dp != NULL ? fp_dp->trace : NULL;

	if (t == NULL)
		return 0;
	return RTE_MIN(__atomic_load_n(&t->next, __ATOMIC_RELAXED), t->count);
}

int
fp_trace_stop(struct fp_trace_rec *out, uint32_t max, char *err)
{
	struct fp_trace *t;
	uint32_t n, i;

	if (fp_dp == NULL || fp_dp->trace == NULL) {
		fp_err(err, "no trace is running");
		return -ENOENT;
	}
	t = fp_dp->trace;
	__atomic_store_n(&fp_dp->trace, NULL, __ATOMIC_RELEASE);
	dbg_update();
	/* Every slot claimed was filled in the loop iteration that claimed it. */
	fp_sync();
	n = RTE_MIN(RTE_MIN(t->next, t->count), max);
	for (i = 0; i < n; i++)
		out[i] = t->slot[i].rec;
	rte_free(t);
	return (int)n;
}

/* ---- trace: workers (armed path only) ------------------------------------ */

struct fp_trace_slot *
fp_trace_claim(struct fp_lcore *lc, uint16_t port, unsigned *n)
{
	struct fp_trace *t = __atomic_load_n(&fp_dp->trace, __ATOMIC_ACQUIRE);
	uint32_t idx;

	/* The load first: once full, next stops growing (no wrap). */
	if (t == NULL || (t->port != FP_TRACE_ANY_PORT && t->port != port) ||
	    __atomic_load_n(&t->next, __ATOMIC_RELAXED) >= t->count) {
		*n = 0;
		return NULL;
	}
	idx = __atomic_fetch_add(&t->next, *n, __ATOMIC_RELAXED);
	if (idx >= t->count) {
		*n = 0;
		return NULL;
	}
	*n = RTE_MIN(*n, t->count - idx);
	if (t->w[lc->idx].iter != lc->st.polls) {
		t->w[lc->idx].iter = lc->st.polls;
		t->w[lc->idx].first = idx;
	}
	return &t->slot[idx];
}

void
fp_trace_tx_failed(struct fp_lcore *lc, struct rte_mbuf *const *m, unsigned n)
{
	struct fp_trace *t = __atomic_load_n(&fp_dp->trace, __ATOMIC_ACQUIRE);
	uint32_t i, end;
	unsigned j;

	if (t == NULL || t->w[lc->idx].iter != lc->st.polls)
		return;
	end = RTE_MIN(__atomic_load_n(&t->next, __ATOMIC_RELAXED), t->count);
	/* Slots of other workers in the range may be being written: only
	 * this worker's (iter and worker are its own stores) are looked at. */
	for (i = t->w[lc->idx].first; i < end; i++) {
		struct fp_trace_slot *s = &t->slot[i];

		if (__atomic_load_n(&s->iter, __ATOMIC_RELAXED) != lc->st.polls ||
		    __atomic_load_n(&s->rec.worker, __ATOMIC_RELAXED) != lc->idx ||
		    s->m == NULL)
			continue;
		for (j = 0; j < n; j++)
			if (m[j] == s->m) {
				s->rec.verdict = FP_TRACE_DROPPED;
				s->rec.reason = FP_DROP_TX_FULL;
				s->m = NULL;
				break;
			}
	}
}

/* ---- capture: control ---------------------------------------------------- */

static void
capture_release(struct fp_capture *c)
{
	struct rte_mbuf *m;

	if (c->ring != NULL) {
		while (rte_ring_dequeue(c->ring, (void **)&m) == 0)
			rte_pktmbuf_free(m);
		rte_ring_free(c->ring);
	}
	rte_mempool_free(c->pool);
	rte_free(c);
}

int
fp_capture_start(const struct fp_capture_conf *cc, char *err)
{
	char name[RTE_MEMPOOL_NAMESIZE];
	struct fp_capture *c;
	uint32_t ring = cc->ring ? cc->ring : FP_CAPTURE_RING_DEF;
	uint32_t snap = cc->snaplen ? cc->snaplen : FP_CAPTURE_SNAP_MAX;
	unsigned gen;

	if (fp_dp == NULL) {
		fp_err(err, "fast path not initialised");
		return -ENODEV;
	}
	if (cc->port >= FP_MAX_PORTS || fp_dp->port[cc->port] == NULL) {
		fp_err(err, "port %u does not exist", cc->port);
		return -ENOENT;
	}
	if (cc->dir == 0 || (cc->dir & ~(FP_CAPTURE_RX | FP_CAPTURE_TX))) {
		fp_err(err, "direction %u: must be rx, tx or both", cc->dir);
		return -EINVAL;
	}
	if (ring < 64 || ring > FP_CAPTURE_RING_MAX) {
		fp_err(err, "capture ring of %u frames: must be 64..%u", ring, FP_CAPTURE_RING_MAX);
		return -EINVAL;
	}
	if (snap < 14 || snap > FP_CAPTURE_SNAP_MAX) {
		fp_err(err, "snaplen %u: must be 14..%u", snap, FP_CAPTURE_SNAP_MAX);
		return -EINVAL;
	}
	if (cap_ctl[cc->port] != NULL) {
		fp_err(err, "port %u is already being captured", cc->port);
		return -EBUSY;
	}
	c = rte_zmalloc("fp_capture", sizeof(*c), RTE_CACHE_LINE_SIZE);
	if (c == NULL) {
		fp_err(err, "no memory for a capture");
		return -ENOMEM;
	}
	c->port = cc->port;
	c->dir = cc->dir;
	c->count = cc->count;
	c->snaplen = snap;
	gen = cap_gen++;
	snprintf(name, sizeof(name), "fp_capr_%u", gen);
	c->ring = rte_ring_create(name, ring, SOCKET_ID_ANY, RING_F_SC_DEQ | RING_F_EXACT_SZ);
	/* Ring full and the workers' caches, plus one burst being copied:
	 * the pool never runs out before the ring does. */
	snprintf(name, sizeof(name), "fp_capm_%u", gen);
	if (c->ring != NULL)
		c->pool = rte_pktmbuf_pool_create(name,
			ring + fp_dp->nb_workers * (FP_CAPTURE_CACHE * 3 / 2 + 64),
			FP_CAPTURE_CACHE, sizeof(struct fp_capture_priv),
			RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	if (c->ring == NULL || c->pool == NULL) {
		fp_err(err, "no memory for a capture of %u frames: %s", ring,
			rte_strerror(rte_errno));
		capture_release(c);
		return -ENOMEM;
	}
	c->armed = true;
	cap_ctl[cc->port] = c;
	__atomic_store_n(&fp_dp->cap[cc->port], c, __ATOMIC_RELEASE);
	dbg_update();
	return 0;
}

int
fp_capture_stop(uint16_t port, char *err)
{
	struct fp_capture *c;

	if (fp_dp == NULL || port >= FP_MAX_PORTS || (c = cap_ctl[port]) == NULL) {
		fp_err(err, "port %u is not being captured", port);
		return -ENOENT;
	}
	if (!c->armed)
		return 0;
	__atomic_store_n(&fp_dp->cap[port], NULL, __ATOMIC_RELEASE);
	dbg_update();
	fp_sync();
	c->armed = false;
	return 0;
}

int
fp_capture_free(uint16_t port, char *err)
{
	int ret = fp_capture_stop(port, err);

	if (ret < 0)
		return ret;
	capture_release(cap_ctl[port]);
	cap_ctl[port] = NULL;
	return 0;
}

int
fp_capture_read(uint16_t port, uint8_t *buf, size_t buflen, struct fp_capture_meta *meta,
		unsigned max)
{
	struct fp_capture *c;
	struct rte_mbuf *m;
	unsigned n = 0;
	size_t off = 0;

	if (fp_dp == NULL || port >= FP_MAX_PORTS || (c = cap_ctl[port]) == NULL)
		return -ENOENT;
	while (n < max && buflen - off >= c->snaplen &&
	       rte_ring_dequeue(c->ring, (void **)&m) == 0) {
		const struct fp_capture_priv *pv = rte_mbuf_to_priv(m);
		uint32_t len = RTE_MIN(rte_pktmbuf_pkt_len(m), c->snaplen);
		const void *d = rte_pktmbuf_read(m, 0, len, buf + off);

		if (d != NULL && d != buf + off)
			memcpy(buf + off, d, len);
		meta[n].tsc = pv->tsc;
		meta[n].orig_len = pv->orig_len;
		meta[n].cap_len = d != NULL ? len : 0;
		meta[n].worker = pv->worker;
		meta[n].dir = pv->dir;
		off += meta[n].cap_len;
		n++;
		rte_pktmbuf_free(m);
	}
	c->read += n;
	return (int)n;
}

int
fp_capture_stats(uint16_t port, struct fp_capture_stats *out)
{
	const struct fp_capture *c;

	memset(out, 0, sizeof(*out));
	if (fp_dp == NULL || port >= FP_MAX_PORTS || (c = cap_ctl[port]) == NULL)
		return -ENOENT;
	out->captured = __atomic_load_n(&c->captured, __ATOMIC_RELAXED);
	out->dropped = __atomic_load_n(&c->dropped, __ATOMIC_RELAXED);
	out->read = c->read;
	out->armed = c->armed;
	return 0;
}

/* ---- capture: workers (armed path only) ---------------------------------- */

void
fp_capture_burst(struct fp_lcore *lc, uint16_t port, uint8_t dir, struct rte_mbuf *const *m,
		 unsigned n)
{
	struct fp_capture *c = __atomic_load_n(&fp_dp->cap[port], __ATOMIC_ACQUIRE);
	struct rte_mbuf *cp[FP_TXBUF];
	unsigned i, k = 0, q;
	uint64_t tsc;

	if (c == NULL || !(c->dir & dir))
		return;
	if (n > FP_TXBUF)
		n = FP_TXBUF;
	if (c->count != 0) {
		/* Take n of what is left of count; failed copies give theirs
		 * back, so count is of frames captured. */
		uint64_t got = __atomic_load_n(&c->claimed, __ATOMIC_RELAXED), take;

		do {
			if (got >= c->count)
				return;
			take = RTE_MIN((uint64_t)n, c->count - got);
		} while (!__atomic_compare_exchange_n(&c->claimed, &got, got + take, false,
						      __ATOMIC_RELAXED, __ATOMIC_RELAXED));
		n = (unsigned)take;
	}
	tsc = rte_rdtsc();
	for (i = 0; i < n; i++) {
		struct rte_mbuf *x = rte_pktmbuf_copy(m[i], c->pool, 0, c->snaplen);
		struct fp_capture_priv *pv;

		if (unlikely(x == NULL))
			continue;
		pv = rte_mbuf_to_priv(x);
		pv->tsc = tsc;
		pv->orig_len = m[i]->pkt_len;
		pv->worker = (uint16_t)lc->idx;
		pv->dir = dir;
		cp[k++] = x;
	}
	q = rte_ring_enqueue_burst(c->ring, (void **)cp, k, NULL);
	if (unlikely(q < k))
		rte_pktmbuf_free_bulk(cp + q, k - q);
	if (q != 0)
		__atomic_fetch_add(&c->captured, q, __ATOMIC_RELAXED);
	if (unlikely(q < n)) {
		__atomic_fetch_add(&c->dropped, n - q, __ATOMIC_RELAXED);
		if (c->count != 0)
			__atomic_fetch_sub(&c->claimed, n - q, __ATOMIC_RELAXED);
	}
}
