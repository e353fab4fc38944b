/* SPDX-License-Identifier: Apache-2.0
 * The forwarding loop while a packet trace or a port capture is armed.
 *
 * This file compiles fp_worker.c a second time (without fp_worker_loop) and
 * runs its stages from a loop that records: the next packets of a trace with
 * their fate, the frames of a captured port. fp_worker_main (here) runs
 * fp_worker_loop, which returns when control sets lc->stop to FP_LOOP_ARMED
 * (a value its loop condition already tests), then the armed loop until
 * disarmed, then fp_worker_loop again. So the disarmed loop has no tracing
 * code at all and compiles exactly as without this file (its stages keep
 * their one caller, inlined), and the stages here are the same source: they
 * cannot drift.
 *
 * Every frame the armed loop sends goes through fp_flush_armed: a capture
 * copies the frames of a port before the device owns them, and traced
 * frames the device refuses are marked tx_full. No TX buffer is ever
 * flushed by fp_tx here (each packet is preceded by fp_flush_full_armed).
 */
#define FP_WORKER_ARMED
#include "fp_worker.c"

#include "fp_trace.h"

/* One packet through its cross-connect or its port's input stage, as in
 * fp_rx: the one caller of the stages in this file. */
static __rte_noinline void
fp_input_armed(struct fp_lcore *lc, const struct fp_port *p, struct rte_mbuf *m)
{
	if (p != NULL && p->xconnect != 0)
		fp_tx(lc, p->xconnect - 1, m);
	else
		fp_input(lc, p, m);
}

static void
fp_flush_armed(struct fp_lcore *lc, uint16_t port, uint32_t dbg)
{
	struct fp_txbuf *b = &lc->tx[port];
	uint64_t full = lc->drops[FP_DROP_TX_FULL];
	unsigned n = b->n, failed;

	if (dbg & FP_DBG_CAPTURE)
		fp_capture_burst(lc, port, FP_CAPTURE_TX, b->m, n);
	fp_tx_flush_port(lc, port);
	/* The refused ones are the last of the buffer (freed, but their
	 * pointers are still there to compare). */
	failed = (unsigned)(lc->drops[FP_DROP_TX_FULL] - full);
	if (unlikely(failed != 0) && (dbg & FP_DBG_TRACE))
		fp_trace_tx_failed(lc, b->m + n - failed, failed);
}

/* Flush the TX buffers that the next packet could fill: fp_tx then never
 * flushes behind the armed path's back (a packet adds at most one frame). */
static __rte_always_inline void
fp_flush_full_armed(struct fp_lcore *lc, uint32_t dbg)
{
	uint32_t pend = lc->tx_pending;

	while (pend) {
		unsigned k = __builtin_ctz(pend);

		pend &= pend - 1;
		if (lc->tx[k].n >= FP_TXBUF - 1)
			fp_flush_armed(lc, (uint16_t)k, dbg);
	}
}

/* The first FP_TRACE_BYTES of a frame; returns how many. */
static uint8_t
fp_trace_copy(uint8_t *dst, const struct rte_mbuf *m)
{
	uint32_t len = RTE_MIN(m->pkt_len, (uint32_t)FP_TRACE_BYTES);
	const void *d = rte_pktmbuf_read(m, 0, len, dst);

	if (d == NULL)
		return 0;
	if (d != dst)
		memcpy(dst, d, len);
	return (uint8_t)len;
}

/* Run one packet through the pipeline and record it in slot s. Its fate is
 * read where the pipeline leaves every packet (fp_tx, fp_drop, fp_consume):
 * the drop list (and the drop counter that moved, or the consumed one), or
 * the last place of a TX buffer (the same mbuf, rewritten or encapsulated),
 * so the stages themselves carry no tracing code. */
static __rte_noinline void
fp_trace_packet(struct fp_lcore *lc, struct fp_trace_slot *s, const struct fp_port *p,
		uint16_t port, uint16_t queue, struct rte_mbuf *m)
{
	struct fp_trace_rec *r = &s->rec;
	uint64_t drops[FP_DROP_MAX], ndrops, consumed;
	unsigned nd, k;
	uint32_t pend;

	r->tsc = rte_rdtsc();
	r->worker = (uint16_t)lc->idx;
	r->lcore = (uint16_t)lc->lcore_id;
	r->in_port = port;
	r->in_queue = queue;
	r->in_len = m->pkt_len;
	r->in_cap = fp_trace_copy(r->in, m);
	r->out_port = FP_TRACE_NO_PORT;
	r->out_len = 0;
	r->out_cap = 0;
	r->verdict = FP_TRACE_NONE;
	r->reason = FP_DROP_MAX;
	s->m = NULL;
	__atomic_store_n(&s->iter, lc->st.polls, __ATOMIC_RELAXED);
	memcpy(drops, lc->drops, sizeof(drops));
	ndrops = lc->st.drops;
	consumed = lc->st.consumed;
	nd = lc->nb_dropped;

	fp_input_armed(lc, p, m);

	if (lc->nb_dropped > nd && lc->dropped[lc->nb_dropped - 1] == m) {
		r->verdict = lc->st.consumed != consumed ? FP_TRACE_CONSUMED : FP_TRACE_DROPPED;
	} else {
		pend = lc->tx_pending;
		while (pend) {
			const struct fp_txbuf *b;

			k = __builtin_ctz(pend);
			pend &= pend - 1;
			b = &lc->tx[k];
			if (b->n != 0 && b->m[b->n - 1] == m) {
				r->verdict = FP_TRACE_SENT;
				r->out_port = (uint16_t)k;
				r->out_len = m->pkt_len;
				r->out_cap = fp_trace_copy(r->out, m);
				s->m = m;
				break;
			}
		}
	}
	/* Counted as a drop even if the mbuf left as the vRouter's answer
	 * (ICMP error, ARP request). */
	if (lc->st.drops != ndrops) {
		for (k = 0; k < FP_DROP_MAX; k++)
			if (lc->drops[k] != drops[k]) {
				r->reason = (uint8_t)k;
				break;
			}
		r->verdict = FP_TRACE_DROPPED;
	}
}

/* fp_rx with recording. */
static unsigned
fp_rx_armed(struct fp_lcore *lc, uint16_t port, uint16_t queue, uint32_t dbg)
{
	struct rte_mbuf *pkts[FP_BURST];
	struct fp_trace_slot *ts = NULL;
	const struct fp_port *p;
	uint64_t bytes = 0;
	unsigned n, i, nt = 0;

	n = rte_eth_rx_burst(port, queue, pkts, FP_BURST);
	if (n == 0)
		return 0;
	p = fp_dp->port[port];
	if (dbg & FP_DBG_CAPTURE)
		fp_capture_burst(lc, port, FP_CAPTURE_RX, pkts, n);
	if (dbg & FP_DBG_TRACE) {
		nt = n;
		ts = fp_trace_claim(lc, port, &nt);
	}
	for (i = 0; i < n && i < FP_PREFETCH; i++)
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	for (i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];

		if (i + FP_PREFETCH < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + FP_PREFETCH], void *));
		bytes += m->pkt_len;
		fp_flush_full_armed(lc, dbg);
		if (i < nt)
			fp_trace_packet(lc, &ts[i], p, port, queue, m);
		else
			fp_input_armed(lc, p, m);
	}
	lc->port_st[port].rx_pkts += n;
	lc->port_st[port].rx_bytes += bytes;
	lc->st.rx_pkts += n;
	if (lc->nb_dropped) {
		rte_pktmbuf_free_bulk(lc->dropped, lc->nb_dropped);
		lc->nb_dropped = 0;
	}
	return n;
}

/* One loop iteration's polls and flushes while armed. */
static unsigned
fp_poll_armed(struct fp_lcore *lc, const struct fp_pollset *ps)
{
	uint32_t dbg = __atomic_load_n(&lc->dbg, __ATOMIC_ACQUIRE);
	unsigned i, nrx = 0;
	uint32_t pend;

	for (i = 0; i < ps->n; i++)
		nrx += fp_rx_armed(lc, ps->q[i].port, ps->q[i].queue, dbg);
	pend = lc->tx_pending;
	while (pend) {
		unsigned port = __builtin_ctz(pend);

		pend &= pend - 1;
		fp_flush_armed(lc, (uint16_t)port, dbg);
	}
	return nrx;
}

/* Loop iterations while armed: fp_worker_loop's, with fp_poll_armed for the
 * polls and flushes. */
static void
fp_worker_armed(struct fp_lcore *lc)
{
	struct rte_rcu_qsbr *qs = fp_dp->qs;
	uint64_t max_sleep = fp_dp->cfg.idle_sleep_max_us;
	unsigned idle = 0, sleep_us = 0;
	uint64_t t0 = rte_rdtsc(), t1;

	while (lc->stop == FP_LOOP_ARMED) {
		const struct fp_pollset *ps = __atomic_load_n(&lc->poll, __ATOMIC_ACQUIRE);
		unsigned nrx = fp_poll_armed(lc, ps);

		lc->st.polls++;
		/* nothing armed is held past this point: disarming waits for it */
		rte_rcu_qsbr_quiescent(qs, lc->idx);
		t1 = rte_rdtsc();
		if (nrx != 0) {
			lc->st.busy_cycles += t1 - t0;
			t0 = t1;
			lc->st.busy_polls++;
			idle = 0;
			sleep_us = 0;
			continue;
		}
		t0 = t1;
		if (++idle < FP_IDLE_SPIN || max_sleep == 0) {
			rte_pause();
			continue;
		}
		sleep_us = sleep_us == 0 ? 1 : RTE_MIN(sleep_us * 2, (unsigned)max_sleep);
		lc->st.sleeps++;
		rte_rcu_qsbr_thread_offline(qs, lc->idx);
		rte_delay_us_sleep(sleep_us);
		rte_rcu_qsbr_thread_online(qs, lc->idx);
		t0 = rte_rdtsc();
	}
}

int
fp_worker_main(void *arg)
{
	struct fp_lcore *lc = arg;

	for (;;) {
		fp_worker_loop(lc); /* RCU-offline when it returns */
		if (lc->stop & FP_LOOP_STOP)
			return 0;
		/* Armed (or it was, briefly: then this returns at once). */
		rte_rcu_qsbr_thread_online(fp_dp->qs, lc->idx);
		fp_worker_armed(lc);
		rte_rcu_qsbr_thread_offline(fp_dp->qs, lc->idx);
	}
}
