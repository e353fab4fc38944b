/* SPDX-License-Identifier: Apache-2.0
 * In-process benchmark generator (see fp_bench.h).
 *
 * A fixed set of mbufs circulates: generator -> in_port's RX ring -> worker
 * -> out_port's TX ring -> generator, which rewrites each one from the next
 * template (same mbuf, no allocation) and sends it again. The number in
 * flight bounds the rings' occupancy, so neither ring ever fills and the
 * worker always finds a full burst while the generator keeps up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_memcpy.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include <rte_ring.h>
#include <rte_version.h>

#include "fp_bench.h"
#include "fp_priv.h"

#define GEN_BURST 32
#define GEN_STALL_MS 500  /* nothing came back this long: give up */
#define GEN_DRAIN_MS 200  /* after the window: wait this long for the rest */

uint64_t
fp_bench_tsc_hz(void)
{
	return fp_dp ? fp_dp->tsc_hz : 0;
}

const char *
fp_bench_dpdk_version(void)
{
	return rte_version();
}

int
fp_bench_main_cpu(void)
{
	if (fp_dp == NULL)
		return -1;
	return (int)rte_lcore_to_cpu_id((int)rte_get_main_lcore());
}

int
fp_bench_worker_cpu(void)
{
	if (fp_dp == NULL || fp_dp->nb_workers == 0)
		return -1;
	return (int)rte_lcore_to_cpu_id((int)fp_dp->lcore[0]->lcore_id);
}

/* Worker counters summed over lcores. */
static void
lcore_sum(struct fp_lcore_stats *s)
{
	struct fp_lcore_stats t;
	unsigned w;

	memset(s, 0, sizeof(*s));
	for (w = 0; w < fp_dp->nb_workers; w++) {
		fp_lcore_stats(w, &t);
		s->polls += t.polls;
		s->busy_polls += t.busy_polls;
		s->sleeps += t.sleeps;
		s->rx_pkts += t.rx_pkts;
		s->tx_pkts += t.tx_pkts;
		s->drops += t.drops;
		s->busy_cycles += t.busy_cycles;
	}
}

static int
pin(int cpu, cpu_set_t *saved)
{
	cpu_set_t set;

	if (pthread_getaffinity_np(pthread_self(), sizeof(*saved), saved) != 0)
		return -errno;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* Templates copied to hugepage memory, one 64-byte aligned slot each. */
struct gen_tmpl {
	uint8_t *data;
	uint16_t *len;
	uint32_t stride;
	uint32_t n;
};

static int
tmpl_load(struct gen_tmpl *t, const struct fp_bench_conf *c, char *err)
{
	const uint32_t room = RTE_MBUF_DEFAULT_BUF_SIZE - RTE_PKTMBUF_HEADROOM;
	const uint8_t *src = c->frames;
	uint32_t i, max = 0;

	if (c->nb_frames == 0 || c->nb_frames > FP_BENCH_MAX_FRAMES) {
		fp_err(err, "%u frames: need 1..%u", c->nb_frames, FP_BENCH_MAX_FRAMES);
		return -EINVAL;
	}
	for (i = 0; i < c->nb_frames; i++) {
		if (c->lens[i] < RTE_ETHER_HDR_LEN || c->lens[i] > room) {
			fp_err(err, "frame %u: %u bytes, need %u..%u", i, c->lens[i],
				RTE_ETHER_HDR_LEN, room);
			return -EINVAL;
		}
		max = RTE_MAX(max, c->lens[i]);
	}
	t->n = c->nb_frames;
	t->stride = RTE_ALIGN_CEIL(max, RTE_CACHE_LINE_SIZE);
	t->data = rte_malloc("fp_bench_tmpl", (size_t)t->stride * t->n, RTE_CACHE_LINE_SIZE);
	t->len = rte_malloc("fp_bench_len", sizeof(*t->len) * t->n, RTE_CACHE_LINE_SIZE);
	if (t->data == NULL || t->len == NULL) {
		rte_free(t->data);
		rte_free(t->len);
		fp_err(err, "no memory for %u templates", t->n);
		return -ENOMEM;
	}
	for (i = 0; i < t->n; i++) {
		memcpy(t->data + (size_t)i * t->stride, src, c->lens[i]);
		t->len[i] = (uint16_t)c->lens[i];
		src += c->lens[i];
	}
	return 0;
}

/* Offset of the default data start from the mbuf: the pool's buffers
 * follow their headers (rte_pktmbuf_pool_create), so the data can be
 * prefetched before the header arrives. */
static inline size_t
gen_data_off(void)
{
	return sizeof(struct rte_mbuf) + rte_pktmbuf_priv_size(fp_dp->pool) +
	       RTE_PKTMBUF_HEADROOM;
}

/* Make m a fresh single-segment frame holding template i. Only what the
 * worker may change and read back is reset: the data offset and lengths
 * (encap prepends, decap strips) and the RX flags, all in the first cache
 * line of the mbuf. */
static __rte_always_inline void
gen_fill(struct rte_mbuf *m, size_t doff, const struct gen_tmpl *t, uint32_t i)
{
	uint16_t len = t->len[i];

	m->data_off = RTE_PKTMBUF_HEADROOM;
	m->data_len = len;
	m->pkt_len = len;
	m->ol_flags = 0;
	rte_memcpy((uint8_t *)m + doff, t->data + (size_t)i * t->stride, len);
}

int
fp_bench_run(const struct fp_bench_conf *c, struct fp_bench_result *r, char *err)
{
	struct rte_mbuf *pkts[GEN_BURST], **all = NULL;
	struct fp_lcore_stats s0 = {0}, s1 = {0}, sl = {0}, cur;
	uint64_t drops0[FP_DROP_MAX], drops1[FP_DROP_MAX];
	uint64_t hz, now, last_rx, t0 = 0, win_cycles, win_rx0 = 0, gen_empty0 = 0;
	uint64_t slice_cycles, slice_t0 = 0;
	enum { WARMUP, WINDOW, DRAIN } phase;
	struct rte_ring *rx, *tx;
	struct gen_tmpl t = {0};
	uint32_t inflight, next = 0, i, n, k;
	size_t doff = gen_data_off();
	cpu_set_t saved;
	bool enq_short = false;
	int ret, cpu;

	memset(r, 0, sizeof(*r));
	if (fp_dp == NULL) {
		fp_err(err, "fast path not initialised");
		return -ENODEV;
	}
	if (c->in_port >= FP_MAX_PORTS || c->out_port >= FP_MAX_PORTS ||
	    !fp_dp->port_ctl[c->in_port].is_ring || !fp_dp->port_ctl[c->out_port].is_ring ||
	    fp_dp->port[c->in_port] == NULL || fp_dp->port[c->out_port] == NULL) {
		fp_err(err, "ports %u and %u must be ring ports that are up", c->in_port,
			c->out_port);
		return -EINVAL;
	}
	if (c->window_pkts == 0 && c->window_ms == 0) {
		fp_err(err, "no window: set a packet count or a duration");
		return -EINVAL;
	}
	rx = fp_dp->port_ctl[c->in_port].rx_ring;
	tx = fp_dp->port_ctl[c->out_port].tx_ring;
	inflight = c->inflight ? c->inflight : FP_BENCH_INFLIGHT_DEF;
	/* Neither ring may ever fill (that would drop), and leave the pool
	 * enough for everything else. */
	if (inflight < GEN_BURST || inflight > rte_ring_get_capacity(rx) - GEN_BURST ||
	    inflight > rte_ring_get_capacity(tx) - GEN_BURST ||
	    inflight > rte_mempool_avail_count(fp_dp->pool) / 2) {
		fp_err(err, "inflight %u: need %u..min(ring capacity %u - %u, half the "
			    "free mbufs %u)", inflight, GEN_BURST,
			rte_ring_get_capacity(rx), GEN_BURST,
			rte_mempool_avail_count(fp_dp->pool) / 2);
		return -EINVAL;
	}
	if (rte_ring_count(rx) != 0 || rte_ring_count(tx) != 0) {
		fp_err(err, "rings of ports %u/%u are not empty", c->in_port, c->out_port);
		return -EBUSY;
	}
	cpu = c->gen_cpu >= 0 ? c->gen_cpu : fp_bench_main_cpu();
	r->gen_cpu = cpu;
	r->worker_cpu = fp_bench_worker_cpu();
	r->tsc_hz = hz = rte_get_tsc_hz();
	ret = tmpl_load(&t, c, err);
	if (ret < 0)
		return ret;
	all = rte_malloc("fp_bench_mbufs", sizeof(*all) * inflight, 0);
	if (all == NULL) {
		fp_err(err, "no memory");
		ret = -ENOMEM;
		goto out_tmpl;
	}
	ret = pin(cpu, &saved);
	if (ret < 0) {
		fp_err(err, "cannot pin the generator to CPU %d: %s", cpu, strerror(-ret));
		goto out_tmpl;
	}

	r->in_use_before = fp_mbufs_in_use();
	fp_drop_stats(drops0);
	if (rte_pktmbuf_alloc_bulk(fp_dp->pool, all, inflight) != 0) {
		fp_err(err, "cannot allocate %u mbufs", inflight);
		ret = -ENOBUFS;
		goto out_pin;
	}
	for (i = 0; i < inflight; i++) {
		if ((uint8_t *)all[i] + doff != (uint8_t *)all[i]->buf_addr + RTE_PKTMBUF_HEADROOM) {
			rte_pktmbuf_free_bulk(all, inflight);
			fp_err(err, "unexpected mbuf layout");
			ret = -EINVAL;
			goto out_pin;
		}
	}
	for (i = 0; i < inflight; i++) {
		gen_fill(all[i], doff, &t, next);
		if (++next == t.n)
			next = 0;
	}
	for (i = 0; i < inflight; i += k) {
		k = rte_ring_sp_enqueue_burst(rx, (void **)all + i,
			RTE_MIN((uint32_t)GEN_BURST, inflight - i), NULL);
		if (k == 0) {
			/* Cannot happen (checked above); never leak. */
			rte_pktmbuf_free_bulk(all + i, inflight - i);
			enq_short = true;
			break;
		}
		r->sent += k;
	}

	phase = c->warmup_pkts ? WARMUP : WINDOW;
	last_rx = rte_rdtsc();
	if (phase == WINDOW) {
		lcore_sum(&s0);
		t0 = slice_t0 = last_rx;
		sl = s0;
	}
	win_cycles = (uint64_t)c->window_ms * (hz / 1000);
	slice_cycles = (uint64_t)c->slice_ms * (hz / 1000);
	for (;;) {
		n = rte_ring_sc_dequeue_burst(tx, (void **)pkts, GEN_BURST, NULL);
		now = rte_rdtsc();
		if (n == 0) {
			r->gen_empty++;
			if (now - last_rx > (phase == DRAIN ? GEN_DRAIN_MS : GEN_STALL_MS) *
					    (hz / 1000))
				break;
			rte_pause();
			continue;
		}
		last_rx = now;
		r->received += n;
		if (phase == WARMUP && r->received >= c->warmup_pkts) {
			lcore_sum(&s0);
			t0 = slice_t0 = now;
			sl = s0;
			win_rx0 = r->received;
			gen_empty0 = r->gen_empty;
			phase = WINDOW;
		} else if (phase == WINDOW &&
			   ((c->window_pkts && r->received - win_rx0 >= c->window_pkts) ||
			    (win_cycles && now - t0 >= win_cycles))) {
			lcore_sum(&s1);
			r->win_cycles = now - t0;
			r->win_received = r->received - win_rx0;
			r->gen_empty -= gen_empty0;
			phase = DRAIN;
		} else if (phase == WINDOW && slice_cycles && now - slice_t0 >= slice_cycles &&
			   r->nb_slices < FP_BENCH_MAX_SLICES) {
			lcore_sum(&cur);
			r->slice[r->nb_slices].busy_cycles = cur.busy_cycles - sl.busy_cycles;
			r->slice[r->nb_slices].rx_pkts = cur.rx_pkts - sl.rx_pkts;
			r->nb_slices++;
			sl = cur;
			slice_t0 = now;
		}
		if (phase == DRAIN) {
			rte_pktmbuf_free_bulk(pkts, n);
			if (r->received == r->sent)
				break;
			continue;
		}
		for (i = 0; i < n; i++) {
			rte_prefetch0(pkts[i]);
			rte_prefetch0((uint8_t *)pkts[i] + doff);
		}
		for (i = 0; i < n; i++) {
			gen_fill(pkts[i], doff, &t, next);
			if (++next == t.n)
				next = 0;
		}
		k = rte_ring_sp_enqueue_burst(rx, (void **)pkts, n, NULL);
		r->sent += k;
		if (unlikely(k < n)) {
			rte_pktmbuf_free_bulk(pkts + k, n - k);
			enq_short = true;
		}
	}
	/* Stalled before the window closed: still report the counters. */
	if (phase != DRAIN) {
		lcore_sum(&s1);
		r->win_cycles = rte_rdtsc() - t0;
		r->win_received = r->received - win_rx0;
		if (phase == WARMUP)
			s0 = s1;
	}
	r->busy_cycles = s1.busy_cycles - s0.busy_cycles;
	r->rx_pkts = s1.rx_pkts - s0.rx_pkts;
	r->tx_pkts = s1.tx_pkts - s0.tx_pkts;
	r->busy_polls = s1.busy_polls - s0.busy_polls;
	r->polls = s1.polls - s0.polls;
	r->sleeps = s1.sleeps - s0.sleeps;
	fp_drop_stats(drops1);
	for (i = 0; i < FP_DROP_MAX; i++)
		r->drops[i] = drops1[i] - drops0[i];
	r->in_use_after = fp_mbufs_in_use();
	ret = 0;
	if (enq_short) {
		fp_err(err, "RX ring of port %u was full", c->in_port);
		ret = -ENOSPC;
	} else if (phase != DRAIN) {
		fp_err(err, "stalled: nothing came out of port %u for %u ms "
			    "(sent %" PRIu64 ", received %" PRIu64 ")", c->out_port,
			GEN_STALL_MS, r->sent, r->received);
		ret = -ETIMEDOUT;
	}
out_pin:
	pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
out_tmpl:
	rte_free(all);
	rte_free(t.data);
	rte_free(t.len);
	return ret;
}

/* ---- cache-line bounce probe ------------------------------------------- */

struct bounce {
	volatile uint64_t v __rte_cache_aligned;
	volatile uint64_t stop __rte_cache_aligned;
	int cpu;
	unsigned n;
};

static void *
bounce_peer(void *arg)
{
	struct bounce *b = arg;
	uint64_t i;

	for (i = 0; i < b->n; i++) {
		while (b->v != 2 * i + 1)
			if (b->stop)
				return NULL;
		b->v = 2 * i + 2;
	}
	return NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

#define BOUNCE_BATCH 16
#define BOUNCE_MAX_BATCHES 4096

int
fp_bench_bounce(int cpu_a, int cpu_b, unsigned round_trips, double *cycles, char *err)
{
	struct bounce *b;
	uint64_t *batch, i, j, nb, t, limit;
	pthread_attr_t attr;
	pthread_t th;
	cpu_set_t set, saved;
	bool timeout = false;
	int ret;

	nb = round_trips / BOUNCE_BATCH;
	if (nb == 0 || nb > BOUNCE_MAX_BATCHES) {
		fp_err(err, "round trips: need %u..%u", BOUNCE_BATCH,
			BOUNCE_BATCH * BOUNCE_MAX_BATCHES);
		return -EINVAL;
	}
	b = aligned_alloc(RTE_CACHE_LINE_SIZE, RTE_ALIGN_CEIL(sizeof(*b), RTE_CACHE_LINE_SIZE));
	batch = calloc(nb, sizeof(*batch));
	if (b == NULL || batch == NULL) {
		free(b);
		free(batch);
		fp_err(err, "no memory");
		return -ENOMEM;
	}
	memset(b, 0, sizeof(*b));
	b->n = (unsigned)(nb * BOUNCE_BATCH);
	ret = pin(cpu_a, &saved);
	if (ret < 0) {
		fp_err(err, "cannot pin to CPU %d: %s", cpu_a, strerror(-ret));
		goto out;
	}
	pthread_attr_init(&attr);
	CPU_ZERO(&set);
	CPU_SET(cpu_b, &set);
	pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	ret = -pthread_create(&th, &attr, bounce_peer, b);
	pthread_attr_destroy(&attr);
	if (ret < 0) {
		fp_err(err, "cannot start a thread on CPU %d: %s", cpu_b, strerror(-ret));
		goto out_pin;
	}
	/* A peer that never runs (CPU not allowed, starved) must not hang us. */
	limit = rte_get_tsc_hz();
	for (i = 0; i < nb && !timeout; i++) {
		t = rte_rdtsc();
		for (j = i * BOUNCE_BATCH; j < (i + 1) * BOUNCE_BATCH && !timeout; j++) {
			b->v = 2 * j + 1;
			while (b->v != 2 * j + 2) {
				if (rte_rdtsc() - t > limit) {
					timeout = true;
					break;
				}
			}
		}
		batch[i] = rte_rdtsc() - t;
	}
	b->stop = 1;
	pthread_join(th, NULL);
	if (timeout) {
		fp_err(err, "no answer from CPU %d for a second", cpu_b);
		ret = -ETIMEDOUT;
		goto out_pin;
	}
	qsort(batch, nb, sizeof(*batch), cmp_u64);
	*cycles = (double)batch[nb / 2] / BOUNCE_BATCH;
	ret = 0;
out_pin:
	pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
out:
	free(b);
	free(batch);
	return ret;
}
