/* SPDX-License-Identifier: Apache-2.0
 * The generator's worker: builds and sends frames at the trial's rate and
 * counts what comes back (sequence, latency) on the same lcore.
 */
#include <string.h>

#include <rte_branch_prediction.h>
#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_prefetch.h>

#include "tg_frame.h"
#include "tg_priv.h"

#define RX_BURST 32
#define MASK48 ((1ull << 48) - 1)

void
tg_sig_write(uint8_t *sig, uint16_t stream, uint64_t seq, uint64_t tsc)
{
	uint64_t a = rte_cpu_to_be_64(((uint64_t)stream << 48) | (seq & MASK48));
	uint64_t b = rte_cpu_to_be_64(((uint64_t)TG_SIG_MAGIC << 48) | (tsc & MASK48));

	memcpy(sig, &a, 8);
	memcpy(sig + 8, &b, 8);
}

/* Zeroes what an earlier frame of another layout left between this one's
 * headers and signature: [hdr, end of the old frame's non-zero bytes). */
static inline void
tx_buf_clean(struct rte_mbuf *m, uint8_t *p, uint16_t hdr, uint16_t sig)
{
	uint16_t old_hdr = (uint16_t)m->hash.usr, old_sig = (uint16_t)(m->hash.usr >> 16);
	uint16_t end = RTE_MAX(old_hdr, (uint16_t)(old_sig + TG_SIG_LEN));

	if (end > hdr)
		memset(p + hdr, 0, end - hdr);
	m->hash.usr = TG_LAYOUT(hdr, sig);
}

/* Moves stream s to its next flow and size. Field k's value is that of
 * flow mod its count, stepped rather than divided: all restart with the
 * flow. */
static inline void
advance(struct tg_stream *s)
{
	const struct tg_stream_conf *c = &s->c;
	unsigned k;

	if (++s->size_pos == c->nb_sizes)
		s->size_pos = 0;
	if (unlikely(++s->flow == c->nb_flows)) {
		s->flow = 0;
		for (k = 0; k < c->nb_fields; k++) {
			s->fidx[k] = 0;
			s->fval[k] = c->fields[k].base;
		}
		return;
	}
	for (k = 0; k < c->nb_fields; k++) {
		if (++s->fidx[k] == c->fields[k].count) {
			s->fidx[k] = 0;
			s->fval[k] = c->fields[k].base;
		} else {
			s->fval[k] += c->fields[k].step;
		}
	}
}

/* A TX mbuf for a frame to build, or NULL when the pool is out. */
static inline struct rte_mbuf *
tx_alloc(void)
{
	if (unlikely(tg->nb_stash == 0)) {
		if (rte_pktmbuf_alloc_bulk(tg->tx_pool, tg->stash, TG_STASH) != 0)
			return NULL;
		tg->nb_stash = TG_STASH;
	}
	return tg->stash[--tg->nb_stash];
}

/* Builds stream s's next frame into m, with a sequence number and tsc. */
static inline void
build(struct tg_stream *s, unsigned si, struct rte_mbuf *m, uint64_t tsc)
{
	const struct tg_stream_conf *c = &s->c;
	uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);
	uint16_t len = c->sizes[s->size_pos];
	uint16_t sig = (uint16_t)(len - TG_SIG_LEN);

	if (unlikely(m->hash.usr != TG_LAYOUT(c->hdr_len, sig)))
		tx_buf_clean(m, p, c->hdr_len, sig);
	tg_frame_fill(c, p, s->fval, len, si, s->seq++, tsc);
	m->data_len = len;
	m->pkt_len = len;
	advance(s);
}

/* Hands pending frames to their ports; true when none is left. */
static bool
flush(void)
{
	bool empty = true;
	unsigned i, k;

	for (i = 0; i < tg->nb_ports; i++) {
		struct tg_port *p = &tg->port[i];
		uint16_t sent;

		if (p->nb_pend == 0)
			continue;
		sent = rte_eth_tx_burst(p->id, 0, p->pend, p->nb_pend);
		for (k = 0; k < sent; k++)
			tg->st[p->pend_stream[k]].tx_pkts++;
		p->st.tx_pkts += sent;
		if (sent < p->nb_pend) {
			/* The device pushed back: keep the rest, in order, for the
			 * next round; sequence numbers stay without holes. */
			p->st.tx_full++;
			memmove(p->pend, p->pend + sent, (p->nb_pend - sent) * sizeof(p->pend[0]));
			memmove(p->pend_stream, p->pend_stream + sent,
				(p->nb_pend - sent) * sizeof(p->pend_stream[0]));
			empty = false;
		}
		p->nb_pend = (uint16_t)(p->nb_pend - sent);
	}
	return empty;
}

/* Gives up to n frames to their ports' pending lists, following the
 * schedule: a stream's stamped frames are built, its others are template
 * clones. A clone takes one reference per frame, added once per run of the
 * same template. Returns how many. */
static unsigned
produce(unsigned n, unsigned *sched_pos)
{
	uint32_t every = tg->trial.stamp_every;
	struct rte_mbuf *ref_m = NULL;
	uint64_t tsc = rte_rdtsc();
	int16_t refs = 0;
	unsigned i;

	for (i = 0; i < n; i++) {
		unsigned si = tg->sched[(*sched_pos) & (TG_SCHED_LEN - 1)];
		struct tg_stream *s = &tg->stream[si];
		struct tg_port *p = &tg->port[s->c.tx_port];
		struct tg_stream_stats *st = &tg->st[si];
		struct rte_mbuf *m;

		if (s->tmpl != NULL && likely(--s->stamp_left != 0)) {
			m = s->tmpl[s->flow * s->c.nb_sizes + s->size_pos];
			advance(s);
			st->tx_clones++;
			if (m != ref_m) {
				if (refs != 0)
					rte_mbuf_refcnt_update(ref_m, refs);
				ref_m = m;
				refs = 0;
			}
			refs++;
		} else {
			m = tx_alloc();
			if (unlikely(m == NULL)) {
				if (s->tmpl != NULL)
					s->stamp_left = 1; /* stamp the next one */
				break;
			}
			build(s, si, m, tsc);
			s->stamp_left = every;
		}
		(*sched_pos)++;
		st->tx_bytes += m->pkt_len;
		p->st.tx_bytes += m->pkt_len;
		p->pend_stream[p->nb_pend] = (uint16_t)si;
		p->pend[p->nb_pend++] = m;
	}
	if (refs != 0)
		rte_mbuf_refcnt_update(ref_m, refs);
	return i;
}

/* Where the signature of a received frame starts, from the outermost IP
 * header's length (so encapsulation and Ethernet padding do not matter),
 * or -1 when the frame cannot carry one. */
static inline int
sig_offset(const uint8_t *p, uint32_t len)
{
	uint32_t off = 12, end;
	uint16_t et;

	memcpy(&et, p + off, 2);
	while (et == rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN) ||
	       et == rte_cpu_to_be_16(RTE_ETHER_TYPE_QINQ)) {
		off += 4;
		if (off + 2 > len)
			return -1;
		memcpy(&et, p + off, 2);
	}
	off += 2;
	if (et == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) {
		const struct rte_ipv4_hdr *ip = (const void *)(p + off);

		if (off + sizeof(*ip) > len)
			return -1;
		end = off + rte_be_to_cpu_16(ip->total_length);
		if (end < off + sizeof(*ip) + TG_SIG_LEN)
			return -1;
	} else if (et == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6)) {
		const struct rte_ipv6_hdr *ip = (const void *)(p + off);

		if (off + sizeof(*ip) > len)
			return -1;
		end = off + (uint32_t)sizeof(*ip) + rte_be_to_cpu_16(ip->payload_len);
		if (end < off + sizeof(*ip) + TG_SIG_LEN)
			return -1;
	} else {
		return -1;
	}
	if (end > len)
		return -1;
	return (int)(end - TG_SIG_LEN);
}

static inline void
count(struct tg_port *port, struct rte_mbuf *m, uint64_t now, bool trial)
{
	const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);
	uint32_t len = m->data_len;
	uint64_t a, b, seq, lat;
	struct tg_stream_stats *st;
	struct tg_stream *s;
	unsigned si;
	int off;

	port->st.rx_pkts++;
	port->st.rx_bytes += m->pkt_len;
	off = unlikely(m->nb_segs != 1) ? -1 : sig_offset(p, len);
	if (unlikely(off < 0))
		goto foreign;
	memcpy(&a, p + off, 8);
	memcpy(&b, p + off + 8, 8);
	a = rte_be_to_cpu_64(a);
	b = rte_be_to_cpu_64(b);
	si = (unsigned)(a >> 48);
	if (unlikely((b >> 48) != TG_SIG_MAGIC || !trial || si >= tg->trial.nb_streams))
		goto foreign;
	s = &tg->stream[si];
	st = &tg->st[si];
	seq = a & MASK48;
	st->rx_pkts++;
	st->rx_bytes += m->pkt_len;
	if (seq == TG_SEQ_NONE)
		return; /* a clone: counted, neither sequenced nor stamped */
	st->stamped++;
	if (likely(seq == s->rx_next)) {
		s->rx_next = seq + 1;
	} else if (seq > s->rx_next) {
		st->gaps++;
		s->rx_next = seq + 1;
	} else {
		st->late++;
	}
	lat = (now - b) & MASK48;
	tg->hist[(size_t)si * TG_HIST_BUCKETS + tg_hist_bucket(lat)]++;
	st->lat_sum += lat;
	if (lat < st->lat_min)
		st->lat_min = lat;
	if (lat > st->lat_max)
		st->lat_max = lat;
	return;
foreign:
	port->st.rx_foreign++;
}

/* count() reads a frame's headers and its signature, which ends the IP
 * payload: in the first cache line of a frame up to 64 bytes, further on
 * in a larger one (VXLAN-encapsulated 64-byte frames too), each line just
 * written by the device on the other CPU. The signature's line is fetched
 * ahead as well, not missed on every frame over 64 bytes; a 64-byte frame
 * pays only the compare. */
static inline void
prefetch_frame(const struct rte_mbuf *m)
{
	const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);

	rte_prefetch0(p);
	if (m->data_len > RTE_CACHE_LINE_SIZE)
		rte_prefetch0(p + m->data_len - TG_SIG_LEN);
}

static unsigned
receive_queue(struct tg_port *port, uint16_t q, bool trial)
{
	struct rte_mbuf *m[RX_BURST];
	uint16_t i, n;
	uint64_t now;

	n = rte_eth_rx_burst(port->id, q, m, RX_BURST);
	if (n == 0)
		return 0;
	now = rte_rdtsc();
	for (i = 0; i < n && i < 4; i++)
		prefetch_frame(m[i]);
	for (i = 0; i < n; i++) {
		if (i + 4 < n)
			prefetch_frame(m[i + 4]);
		count(port, m[i], now, trial);
	}
	rte_pktmbuf_free_bulk(m, n);
	return n;
}

static unsigned
receive(bool trial)
{
	unsigned nb_ports = __atomic_load_n(&tg->nb_ports, __ATOMIC_ACQUIRE);
	unsigned bursts = tg->conf.rx_bursts;
	unsigned p, total = 0;
	uint16_t q;

	for (p = 0; p < nb_ports; p++) {
		struct tg_port *port = &tg->port[p];

		if (!port->used)
			continue;
		for (q = 0; q < port->nb_rxq; q++) {
			unsigned n, k = 0;

			/* Drain, not one burst per loop (TG_RX_BURSTS). */
			do {
				n = receive_queue(port, q, trial);
				total += n;
			} while (n == RX_BURST && ++k < bursts);
		}
	}
	return total;
}

static void
run_trial(void)
{
	const struct tg_trial_conf *t = &tg->trial;
	struct tg_trial_stats *ts = &tg->tst;
	uint64_t start = rte_rdtsc(), now, last = start, sent = 0, drain_end = 0;
	uint64_t tx_end = start + (uint64_t)((double)t->duration_ns * (double)tg->hz / 1e9);
	uint64_t stall = tg->hz * TG_STALL_US / 1000000;
	double per_cycle = t->pps * 1.0 / (double)tg->hz;
	uint64_t held_cycles = 0, credit_tsc = start;
	double credit = 0; /* frames the catch-up bound lets out now */
	unsigned sched_pos = 0;
	bool tx = true, refused = false;

	memset(ts, 0, sizeof(*ts));
	for (;;) {
		now = rte_rdtsc();
		/* A loop that comes late was not polling RX meanwhile (the
		 * lcore was preempted): what a device sent then may be lost
		 * on a full ring, and a trial's loss should say so. */
		ts->loops++;
		if (now - last > ts->max_gap)
			ts->max_gap = now - last;
		if (now - last > stall)
			ts->stalls++;
		/* Time a port spent refusing frames is the device's: what the
		 * rate asked for meanwhile is back-pressure, not the
		 * generator's own shortfall. */
		if (refused)
			held_cycles += now - last;
		last = now;
		refused = false;
		if (tx) {
			if (now >= tx_end || (t->max_packets && sent >= t->max_packets) ||
			    __atomic_load_n(&tg->abort, __ATOMIC_ACQUIRE)) {
				tx = false;
				ts->tx_cycles = now - start;
				if (t->pps > 0) {
					ts->due = (uint64_t)((double)(now - start) * per_cycle);
					ts->held = (uint64_t)((double)held_cycles * per_cycle);
				}
				drain_end = now + (uint64_t)((double)t->drain_ns * (double)tg->hz / 1e9);
				__atomic_store_n(&tg->state, TG_DRAINING, __ATOMIC_RELEASE);
			} else if (!flush()) {
				refused = true;
			} else {
				uint64_t n = t->burst;

				if (t->pps > 0) {
					uint64_t due = (uint64_t)((double)(now - start) * per_cycle);

					n = due > sent ? RTE_MIN(due - sent, (uint64_t)t->burst) : 0;
					/* Behind schedule (this lcore preempted, or a port
					 * refusing frames), catch up at TG_CATCHUP times the
					 * rate, not flat out: flat out, a device slower than
					 * the generator ran saturated, its RX ring full, for
					 * as long as the catching up took, and a latency
					 * trial at half its capacity reported that ring's
					 * delay as its p99. */
					credit = RTE_MIN(credit + (double)(now - credit_tsc) * per_cycle * TG_CATCHUP,
						(double)t->burst);
					credit_tsc = now;
					n = RTE_MIN(n, (uint64_t)credit);
				}
				if (t->max_packets && sent + n > t->max_packets)
					n = t->max_packets - sent;
				if (n > 0) {
					unsigned made = produce((unsigned)n, &sched_pos);

					sent += made;
					credit -= made;
					refused = !flush();
				}
			}
		} else if (now >= drain_end) {
			break;
		}
		receive(true);
	}
	/* What the devices never took was not sent. */
	for (unsigned i = 0; i < tg->nb_ports; i++) {
		struct tg_port *p = &tg->port[i];

		ts->not_taken += p->nb_pend;
		for (unsigned k = 0; k < p->nb_pend; k++) {
			tg->st[p->pend_stream[k]].tx_bytes -= p->pend[k]->pkt_len;
			p->st.tx_bytes -= p->pend[k]->pkt_len;
		}
		rte_pktmbuf_free_bulk(p->pend, p->nb_pend);
		p->nb_pend = 0;
	}
}

int
tg_worker_main(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&tg->quit, __ATOMIC_ACQUIRE)) {
		int s = __atomic_load_n(&tg->state, __ATOMIC_ACQUIRE);

		if (s == TG_RUNNING) {
			run_trial();
			tg_trial_done();
			continue;
		}
		if (__atomic_load_n(&tg->pause, __ATOMIC_ACQUIRE)) {
			/* Control restarts a port: stay off every port. */
			__atomic_store_n(&tg->paused, 1, __ATOMIC_RELEASE);
			while (__atomic_load_n(&tg->pause, __ATOMIC_ACQUIRE))
				rte_delay_us_sleep(100);
			__atomic_store_n(&tg->paused, 0, __ATOMIC_RELEASE);
			continue;
		}
		/* Between trials: keep the ports drained (late frames are
		 * foreign to the next trial) without burning the core. */
		if (receive(false) == 0)
			rte_delay_us_sleep(tg->conf.idle_sleep_us);
	}
	return 0;
}
