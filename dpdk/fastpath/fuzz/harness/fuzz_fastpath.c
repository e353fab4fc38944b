/* SPDX-License-Identifier: Apache-2.0
 * libFuzzer harness over the fast path's packet entry point.
 *
 * The fast path's C files are compiled into this binary with ASan and UBSan
 * (build.sh); DPDK itself is not instrumented. EAL starts once, on anonymous
 * memory, with the one worker lcore fp_init needs stopped right away: every
 * input is run on the calling thread through the worker's own stages
 * (fp_worker.c is compiled here a second time, as fp_trace_worker.c does):
 * nothing runs concurrently, so the counters can be checked exactly.
 *
 * Input: one mode byte, then frames as { port selector, length (2 bytes, big
 * endian, low 11 bits used), bytes }; a last frame shorter than its length
 * takes what is left. Mode bit 0 clear: frames one at a time, accounted
 * each; set: all frames injected first, then each port polled in bursts
 * (the burst path: prefetch, TX buffers, bulk free), accounted together.
 * State that packets change is reset before each input, from the mode too,
 * so that an input always does the same: bit 1 set, the ICMP error budget
 * is spent; bit 2 set, the learnt underlay neighbours 192.168.100.9 and
 * fd00:100::9 start resolved (else unresolved, with no ARP request or
 * solicitation sent yet). Bit 3 set: each frame ends its mbuf's buffer
 * (less than 8 bytes of tailroom: a reply that must grow more cannot).
 *
 * Frames are injected with their mbuf's tailroom poisoned (fz_inject): ASan
 * then sees reads past a frame's end even in DPDK's pool memory.
 *
 * After every input: no sanitizer report, every frame received, everything
 * sent found on a ring, every frame forwarded, consumed or counted as a drop
 * (answers - ICMP errors, ARP requests - are drops whose mbuf is sent, and an
 * answer may itself be dropped: each such extra count needs an answering
 * drop), and the mbufs in use back at their baseline. Any breach aborts, so
 * libFuzzer keeps the input as a crash.
 */
#include <rte_mbuf.h>
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>

/* Frames are injected with their mbuf's tailroom poisoned (fz_inject); the
 * stages may legitimately grow a frame there (an ARP request built in place
 * of a short packet), always with rte_pktmbuf_append: what it hands out is
 * unpoisoned first. */
static inline char *
fz_pktmbuf_append(struct rte_mbuf *m, uint16_t len)
{
	if (len <= rte_pktmbuf_tailroom(m))
		ASAN_UNPOISON_MEMORY_REGION(rte_pktmbuf_mtod_offset(m, char *, m->data_len), len);
	return rte_pktmbuf_append(m, len);
}
#define rte_pktmbuf_append fz_pktmbuf_append

#define FP_WORKER_ARMED /* the stages, without fp_worker_loop */
#include "../../fp_worker.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_launch.h>

#include "fuzz_topology.h"

#define FUZZ_MAX_FRAMES 64
#define FUZZ_MAX_LEN 2047 /* an mbuf's data room is 2048 */

static struct fp_lcore *fz_lc;
static uint16_t fz_port[FZ_NB_PORTS];
static unsigned fz_base_mbufs;
static uint8_t fz_drain_buf[FP_BURST * RTE_MBUF_DEFAULT_DATAROOM];
static bool fz_verbose; /* FUZZ_VERBOSE set: each frame's fate on stderr */

struct fz_count {
	uint64_t rx, tx, drops, consumed, answering, reasons;
	uint64_t port_rx, port_tx, drained;
	uint64_t drop[FP_DROP_MAX];
};

static void __attribute__((noreturn))
fz_die(const char *what)
{
	fprintf(stderr, "fuzz_fastpath: %s\n", what);
	abort();
}

static void
fz_check(int ret, const char *what, const char *err)
{
	if (ret < 0) {
		fprintf(stderr, "fuzz_fastpath: %s: %s (%d)\n", what, err, ret);
		exit(1);
	}
}

static void
fz_snapshot(struct fz_count *c)
{
	unsigned i, r;

	memset(c, 0, sizeof(*c));
	c->rx = fz_lc->st.rx_pkts;
	c->tx = fz_lc->st.tx_pkts;
	c->drops = fz_lc->st.drops;
	c->consumed = fz_lc->st.consumed;
	c->answering = fz_lc->drops[FP_DROP_TTL_EXCEEDED] + fz_lc->drops[FP_DROP_TOO_BIG] +
		       fz_lc->drops[FP_DROP_NEIGH_UNRESOLVED] +
		       fz_lc->drops[FP_DROP_ICMP_ERROR_UNSENT]; /* may leave as an ARP request */
	for (r = 0; r < FP_DROP_MAX; r++) {
		c->drop[r] = fz_lc->drops[r];
		c->reasons += fz_lc->drops[r];
	}
	for (i = 0; i < FP_MAX_PORTS; i++) {
		c->port_rx += fz_lc->port_st[i].rx_pkts;
		c->port_tx += fz_lc->port_st[i].tx_pkts;
	}
}

/* fp_ring_inject, but the mbuf's tailroom is poisoned for ASan: DPDK's pool
 * is not instrumented, so a read past the end of a frame (stale bytes of an
 * earlier one) would otherwise go unseen. Done here, not in fp_port.c: the
 * buffer is unpoisoned again before the copy in. */
static void
fz_inject(uint16_t port, const uint8_t *frame, uint32_t len, bool no_tailroom)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(fp_dp->pool);
	char *d;

	if (m == NULL)
		fz_die("no mbuf to inject into");
	ASAN_UNPOISON_MEMORY_REGION(m->buf_addr, m->buf_len);
	/* as far back as an 8-byte aligned start allows (a NIC aligns too):
	 * under 8 bytes of tailroom */
	if (no_tailroom && len <= m->buf_len - RTE_PKTMBUF_HEADROOM)
		m->data_off = (uint16_t)((m->buf_len - len) & ~7u);
	d = rte_pktmbuf_append(m, (uint16_t)len);
	if (d == NULL)
		fz_die("frame larger than an mbuf");
	memcpy(d, frame, len);
	ASAN_POISON_MEMORY_REGION(d + len, rte_pktmbuf_tailroom(m));
	if (rte_ring_enqueue(fp_dp->port_ctl[port].rx_ring, m) != 0)
		fz_die("RX ring full");
}

/* Poll one port until its RX ring is empty, then flush TX as the loop does. */
static void
fz_poll(uint16_t port)
{
	while (fp_rx(fz_lc, port, 0) != 0)
		;
	if (fz_lc->tx_pending)
		fp_tx_flush(fz_lc);
}

/* Take what every port sent; the bytes are only copied (ASan checks the
 * reads of each frame's whole length). */
static uint64_t
fz_drain(void)
{
	uint32_t lens[FP_BURST];
	uint64_t n = 0;
	unsigned i;
	int k;

	for (i = 0; i < FZ_NB_PORTS; i++)
		while ((k = fp_ring_drain(fz_port[i], fz_drain_buf, sizeof(fz_drain_buf), lens,
					  FP_BURST)) > 0)
			n += (uint64_t)k;
	return n;
}

/* The accounting of n frames (see the top of the file). */
static void
fz_account(const struct fz_count *a, const struct fz_count *b, uint64_t n)
{
	uint64_t rx = b->rx - a->rx, tx = b->tx - a->tx, d = b->drops - a->drops;
	uint64_t c = b->consumed - a->consumed, ans = b->answering - a->answering;
	char msg[512];
	const char *bad = NULL;

	if (rx != n || b->port_rx - a->port_rx != n)
		bad = "frames injected and frames received differ";
	else if (b->drained - a->drained != tx || b->port_tx - a->port_tx != tx)
		bad = "frames counted sent and frames found on the rings differ";
	else if (b->reasons - a->reasons != d)
		bad = "drop reasons do not add up to the drop count";
	else if (c + tx > n)
		bad = "more frames sent or consumed than received";
	else if (d + c + tx < n)
		bad = "a frame was neither sent, consumed nor counted as a drop";
	else if (d + c + tx - n > ans)
		bad = "a frame was counted twice without an answer (ICMP error, ARP request)";
	if (fz_verbose) {
		unsigned r;

		fprintf(stderr, "fuzz_fastpath: %" PRIu64 " in: %" PRIu64 " sent, %" PRIu64
			" consumed, %" PRIu64 " dropped", n, tx, c, d);
		for (r = 0; r < FP_DROP_MAX; r++)
			if (b->drop[r] != a->drop[r])
				fprintf(stderr, " %s+%" PRIu64, fp_drop_name(r), b->drop[r] - a->drop[r]);
		fprintf(stderr, "\n");
	}
	if (bad == NULL)
		return;
	snprintf(msg, sizeof(msg),
		 "%s: in %" PRIu64 ", rx %" PRIu64 ", tx %" PRIu64 " (drained %" PRIu64
		 "), drops %" PRIu64 " (reasons %" PRIu64 ", answering %" PRIu64
		 "), consumed %" PRIu64,
		 bad, n, rx, tx, b->drained - a->drained, d, b->reasons - a->reasons, ans, c);
	fz_die(msg);
}

static void
fz_check_mbufs(void)
{
	unsigned now = fp_mbufs_in_use();
	char msg[128];

	if (now != fz_base_mbufs) {
		snprintf(msg, sizeof(msg), "mbuf leak: %u in use, %u before the input", now,
			 fz_base_mbufs);
		fz_die(msg);
	}
}

static void
fz_unpoison(struct rte_mempool *mp, void *arg, void *obj, unsigned idx)
{
	struct rte_mbuf *m = obj;

	(void)mp;
	(void)arg;
	(void)idx;
	ASAN_UNPOISON_MEMORY_REGION(m->buf_addr, m->buf_len);
}

/* DPDK clears the pool's memory when it frees it (memset, which ASan
 * intercepts): unpoison it first. */
static void
fz_cleanup(void)
{
	rte_mempool_obj_iter(fp_dp->pool, fz_unpoison, NULL);
	fp_fini();
}

#define FZ_MODE_BURST 1u
#define FZ_MODE_NO_ICMP 2u
#define FZ_MODE_RESOLVED 4u
#define FZ_MODE_NO_TAILROOM 8u

/* Undo what packets changed (ARP and ND learning, ARP request and ICMP error rate
 * limits): nothing runs concurrently, so plain writes do. */
static void
fz_reset_state(uint8_t mode)
{
	static const uint8_t learnt[6] = {0x02, 0xfb, 0, 0, 0, 0x09};
	uint64_t mac = 0;
	unsigned i;

	if (mode & FZ_MODE_RESOLVED) {
		memcpy(&mac, learnt, sizeof(learnt));
		mac |= FP_NEIGH_VALID;
	}
	for (i = 0; i < FP_MAX_NEIGH; i++) {
		struct fp_neigh *n = &fp_dp->neigh[i];

		if (n->family != 0 && !n->is_static) {
			n->mac = mac;
			n->last_req_tsc = 0;
		}
	}
	fz_lc->icmp_tsc = rte_rdtsc();
	fz_lc->icmp_tokens = (mode & FZ_MODE_NO_ICMP) ? 0 : FP_ICMP_BURST;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char prefix[64], err[FP_ERRLEN] = "";
	char *eal[] = {"fuzz_fastpath", "-l", "0,1", "--no-huge", "-m", "256", "--no-pci",
		       "--no-shconf", "--no-telemetry", "--log-level=*:error", "--file-prefix",
		       prefix, NULL};
	struct fp_config c;

	(void)argc;
	(void)argv;
	fz_verbose = getenv("FUZZ_VERBOSE") != NULL;
	/* Unique: fuzzing jobs run side by side. */
	snprintf(prefix, sizeof(prefix), "fil-fuzz-%d", (int)getpid());
	fp_config_defaults(&c);
	c.nh_max = 1024;
	c.vrf_max = 16;
	c.fib4_rules = 1024;
	c.fib4_tbl8s = 64;
	c.fib6_rules = 1024;
	c.fib6_groups = 64;
	c.mbufs = 2047;
	/* The tables' control structures are calloc'd and referenced only
	 * from DPDK memory, which LeakSanitizer does not scan: without this,
	 * libFuzzer's leak check after an input that happens to malloc
	 * reports them (and re-runs the input). Set-up only: what an input
	 * allocates is still checked. */
	__lsan_disable();
	fz_check(fp_init((int)RTE_DIM(eal) - 1, eal, &c, err), "fp_init", err);
	/* Stop the worker: this thread runs its stages from now on. */
	fz_lc = fp_dp->lcore[0];
	fz_lc->stop = FP_LOOP_STOP;
	rte_eal_wait_lcore(fz_lc->lcore_id);
	fz_topology_setup(fz_port, fz_check);
	__lsan_enable();
	atexit(fz_cleanup);
	fz_base_mbufs = fp_mbufs_in_use();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t frame[FUZZ_MAX_LEN];
	struct fz_count a, b;
	bool batch, seen[FZ_NB_PORTS] = {false};
	uint64_t n = 0;
	size_t off = 1;
	unsigned i;

	if (size < 1)
		return 0;
	batch = data[0] & FZ_MODE_BURST;
	fz_reset_state(data[0]);
	fz_snapshot(&a);
	while (off + 3 <= size && n < FUZZ_MAX_FRAMES) {
		unsigned sel = data[off] % FZ_NB_PORTS;
		uint32_t len = ((uint32_t)data[off + 1] << 8 | data[off + 2]) & 0x7ff;
		struct fz_count fa, fb;

		off += 3;
		if (len > size - off)
			len = (uint32_t)(size - off);
		if (len > FUZZ_MAX_LEN)
			len = FUZZ_MAX_LEN;
		memcpy(frame, data + off, len);
		off += len;
		if (!batch)
			fz_snapshot(&fa);
		fz_inject(fz_port[sel], frame, len, data[0] & FZ_MODE_NO_TAILROOM);
		n++;
		if (batch) {
			seen[sel] = true;
			continue;
		}
		fz_poll(fz_port[sel]);
		fz_snapshot(&fb);
		fb.drained = fa.drained + fz_drain();
		fz_account(&fa, &fb, 1);
		fz_check_mbufs();
	}
	if (batch) {
		for (i = 0; i < FZ_NB_PORTS; i++)
			if (seen[i])
				fz_poll(fz_port[i]);
		fz_snapshot(&b);
		b.drained = a.drained + fz_drain();
		fz_account(&a, &b, n);
		fz_check_mbufs();
	}
	return 0;
}
