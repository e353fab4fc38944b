/* SPDX-License-Identifier: Apache-2.0
 * Instructions per packet of the fast path's stages, for callgrind
 * (icount.sh): repeatable where cycles are not on a shared VM.
 *
 * Built against a tree's dpdk/fastpath as the fuzz harness is: the
 * stages (fp_worker.c, FP_WORKER_ARMED) run on this thread with the
 * worker stopped, on the harness's topology (fuzz/harness/fuzz_topology.c).
 * Bursts of FP_BURST copies of one seed's first frame (a corpus file of
 * dpdk/fastpath/fuzz) are injected into its port's RX ring and processed
 * by icount_burst (RX burst, stages, TX flush), the only function
 * callgrind counts (--toggle-collect); the injection and the draining of
 * the TX rings are not counted.
 *
 * Usage: icount SEED [BURSTS]
 */
#define FP_WORKER_ARMED
#include "fp_worker.c"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_launch.h>

#include "fuzz/harness/fuzz_topology.h"

static struct fp_lcore *ic_lc;
static uint16_t ic_port[FZ_NB_PORTS];

static void
ic_check(int ret, const char *what, const char *err)
{
	if (ret < 0) {
		fprintf(stderr, "icount: %s: %s (%d)\n", what, err, ret);
		exit(1);
	}
}

__attribute__((noinline)) void
icount_burst(uint16_t port)
{
	fp_rx(ic_lc, port, 0);
	if (ic_lc->tx_pending)
		fp_tx_flush(ic_lc);
}

static void
ic_drain(void)
{
	void *ms[FP_BURST];
	unsigned k, got;

	for (k = 0; k < FZ_NB_PORTS; k++) {
		struct rte_ring *r = fp_dp->port_ctl[ic_port[k]].tx_ring;

		while (r != NULL && (got = rte_ring_dequeue_burst(r, ms, FP_BURST, NULL)) > 0)
			rte_pktmbuf_free_bulk((struct rte_mbuf **)ms, got);
	}
}

int
main(int argc, char **argv)
{
	char err[FP_ERRLEN] = "", prefix[64];
	char *eal[] = {"icount", "-l", "0,1", "--no-huge", "-m", "256", "--no-pci", "--no-shconf",
		       "--no-telemetry", "--log-level=*:error", "--file-prefix", prefix, NULL};
	static uint8_t in[4096];
	struct fp_config c;
	unsigned bursts, sel, len, b, i;
	uint64_t rx0, tx0, d0;
	size_t n;
	FILE *f;

	if (argc < 2 || (f = fopen(argv[1], "rb")) == NULL) {
		fprintf(stderr, "usage: icount SEED [BURSTS]\n");
		return 2;
	}
	n = fread(in, 1, sizeof(in), f);
	fclose(f);
	/* the harness's input: mode, then port selector, length, bytes */
	if (n < 4 || n - 4 < ((in[2] << 8 | in[3]) & 0x7ffu)) {
		fprintf(stderr, "icount: %s: not a one-frame seed\n", argv[1]);
		return 2;
	}
	sel = in[1] % FZ_NB_PORTS;
	len = (in[2] << 8 | in[3]) & 0x7ff;
	bursts = argc > 2 ? (unsigned)atoi(argv[2]) : 2000;

	snprintf(prefix, sizeof(prefix), "fil-icount-%d", (int)getpid());
	fp_config_defaults(&c);
	c.nh_max = 1024;
	c.vrf_max = 16;
	c.fib4_rules = 1024;
	c.fib4_tbl8s = 64;
	c.fib6_rules = 1024;
	c.fib6_groups = 64;
	c.mbufs = 2047;
	ic_check(fp_init((int)RTE_DIM(eal) - 1, eal, &c, err), "fp_init", err);
	ic_lc = fp_dp->lcore[0];
	ic_lc->stop = FP_LOOP_STOP;
	rte_eal_wait_lcore(ic_lc->lcore_id);
	fz_topology_setup(ic_port, ic_check);

	rx0 = ic_lc->st.rx_pkts;
	tx0 = ic_lc->st.tx_pkts;
	d0 = ic_lc->st.drops;
	for (b = 0; b < bursts; b++) {
		for (i = 0; i < FP_BURST; i++) {
			struct rte_mbuf *m = rte_pktmbuf_alloc(fp_dp->pool);

			if (m == NULL)
				ic_check(-ENOMEM, "inject", "no mbuf");
			memcpy(rte_pktmbuf_append(m, (uint16_t)len), in + 4, len);
			if (rte_ring_enqueue(fp_dp->port_ctl[ic_port[sel]].rx_ring, m) != 0)
				ic_check(-ENOBUFS, "inject", "RX ring full");
		}
		icount_burst(ic_port[sel]);
		ic_drain();
	}
	printf("packets %u rx %" PRIu64 " tx %" PRIu64 " drops %" PRIu64 "\n", bursts * FP_BURST,
	       ic_lc->st.rx_pkts - rx0, ic_lc->st.tx_pkts - tx0, ic_lc->st.drops - d0);
	fp_fini();
	return 0;
}
