/* SPDX-License-Identifier: Apache-2.0
 * EAL start-up, the packet pool, RCU, workers and counters.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "fp_priv.h"
#include "fp_rcu.h"

struct fp_dp *fp_dp;

static const char *const drop_names[] = {
#define FP_DROP_NAME(e, s) s,
	FP_DROP_REASONS(FP_DROP_NAME)
#undef FP_DROP_NAME
};

const char *
fp_drop_name(unsigned reason)
{
	return reason < FP_DROP_MAX ? drop_names[reason] : "";
}

void
fp_err(char *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(err, FP_ERRLEN, fmt, ap);
	va_end(ap);
}

/* Wait until every worker has passed a quiescent state: after this, no lcore
 * holds a pointer read before the call. Offline (sleeping) workers do not
 * delay it. */
void
fp_sync(void)
{
	if (fp_dp != NULL && fp_dp->qs != NULL)
		fp_rcu_wait(fp_dp->qs, rte_rcu_qsbr_start(fp_dp->qs));
}

void
fp_config_defaults(struct fp_config *c)
{
	static const uint8_t mac[6] = {0x00, 0x00, 0x5e, 0x00, 0x01, 0x00};

	memset(c, 0, sizeof(*c));
	c->nh_max = 524288;
	c->vrf_max = FP_MAX_VRFS;
	/* A VRF may hold 2M routes; the pool of 128 MiB holds 1M routes of
	 * /24s and clustered /32s (a /25../32 alone in its /24 takes a group
	 * of its own: docs/operations.md) and fits --no-huge -m 512. */
	c->fib4_rules = 1u << 21;
	c->fib4_tbl8s = 131072;
	/* A VRF may hold 1M IPv6 routes; the pool of 16 MiB holds 100K pod
	 * /128s in /64s, or about 10K scattered ones (docs/operations.md). */
	c->fib6_rules = 1u << 20;
	c->fib6_groups = 16384;
	c->mbufs = 16383;
	c->idle_sleep_max_us = 500;
	memcpy(c->vrouter_mac, mac, 6); /* TF's vRouter MAC (VRRP 00:00:5e:00:01:00) */
}

static int
check_config(const struct fp_config *c, char *err)
{
	if (c->nh_max == 0 || c->nh_max > (1u << 24)) {
		fp_err(err, "nh_max %u: must be 1..%u", c->nh_max, 1u << 24);
		return -EINVAL;
	}
	if (c->vrf_max == 0 || c->vrf_max > FP_MAX_VRFS) {
		fp_err(err, "vrf_max %u: must be 1..%u", c->vrf_max, FP_MAX_VRFS);
		return -EINVAL;
	}
	if (c->fib4_rules == 0) {
		fp_err(err, "fib4_rules: must be > 0");
		return -EINVAL;
	}
	if (c->fib4_tbl8s == 0 || c->fib4_tbl8s > FP_FIB4_GROUPS_MAX) {
		fp_err(err, "fib4_tbl8s %u: must be 1..%u", c->fib4_tbl8s, FP_FIB4_GROUPS_MAX);
		return -EINVAL;
	}
	if (c->fib6_rules == 0) {
		fp_err(err, "fib6_rules: must be > 0");
		return -EINVAL;
	}
	if (c->fib6_groups == 0 || c->fib6_groups > FP_FIB6_GROUPS_MAX) {
		fp_err(err, "fib6_groups %u: must be 1..%u", c->fib6_groups, FP_FIB6_GROUPS_MAX);
		return -EINVAL;
	}
	if (c->mbufs < 1024) {
		fp_err(err, "mbufs %u: must be >= 1024", c->mbufs);
		return -EINVAL;
	}
	if (rte_is_zero_ether_addr((const struct rte_ether_addr *)c->vrouter_mac) ||
	    rte_is_multicast_ether_addr((const struct rte_ether_addr *)c->vrouter_mac)) {
		fp_err(err, "vrouter_mac must be a unicast address");
		return -EINVAL;
	}
	return 0;
}

unsigned
fp_worker_count(void)
{
	return fp_dp ? fp_dp->nb_workers : 0;
}

int
fp_init(int argc, char **argv, const struct fp_config *c, char *err)
{
	cpu_set_t saved;
	struct fp_dp *dp;
	unsigned lcore, i;
	size_t qs_sz;
	int ret;

	if (fp_dp != NULL) {
		fp_err(err, "fast path already initialised");
		return -EALREADY;
	}
	ret = check_config(c, err);
	if (ret < 0)
		return ret;

	/* rte_eal_init pins the calling thread to the main lcore; the caller is
	 * a control thread (a Go runtime thread), so give its affinity back. */
	pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved);
	ret = rte_eal_init(argc, argv);
	pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
	if (ret < 0) {
		fp_err(err, "EAL init failed: %s", rte_strerror(rte_errno));
		return -rte_errno;
	}

	dp = rte_zmalloc("fp_dp", sizeof(*dp), RTE_CACHE_LINE_SIZE);
	if (dp == NULL) {
		fp_err(err, "no memory for fast path state");
		rte_eal_cleanup();
		return -ENOMEM;
	}
	dp->cfg = *c;
	memcpy(&dp->vrouter_mac, c->vrouter_mac, 6);
	dp->fabric_port = -1;
	dp->host_port = -1;
	dp->tsc_hz = rte_get_tsc_hz();

	if (rte_lcore_count() - 1 > FP_MAX_WORKERS) {
		fp_err(err, "%u worker lcores: at most %u", rte_lcore_count() - 1, FP_MAX_WORKERS);
		ret = -EINVAL;
		goto fail;
	}
	RTE_LCORE_FOREACH_WORKER(lcore) {
		dp->lcore[dp->nb_workers] = rte_zmalloc_socket("fp_lcore",
			sizeof(struct fp_lcore), RTE_CACHE_LINE_SIZE,
			rte_lcore_to_socket_id(lcore));
		if (dp->lcore[dp->nb_workers] == NULL) {
			fp_err(err, "no memory for lcore %u state", lcore);
			ret = -ENOMEM;
			goto fail;
		}
		dp->lcore[dp->nb_workers]->idx = dp->nb_workers;
		dp->lcore[dp->nb_workers]->lcore_id = lcore;
		dp->nb_workers++;
	}
	if (dp->nb_workers == 0) {
		fp_err(err, "no worker lcore: give EAL at least two lcores "
			    "(e.g. -l 0,1: 0 for control, 1 forwards)");
		ret = -EINVAL;
		goto fail;
	}

	/* Room for the RX descriptors of every port plus bursts in flight. */
	dp->pool = rte_pktmbuf_pool_create("fp_mbuf", c->mbufs, 256, 0,
		RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
	if (dp->pool == NULL) {
		fp_err(err, "cannot create pool of %u mbufs: %s", c->mbufs,
			rte_strerror(rte_errno));
		ret = -ENOMEM;
		goto fail;
	}

	qs_sz = rte_rcu_qsbr_get_memsize(dp->nb_workers);
	dp->qs = rte_zmalloc("fp_qsbr", qs_sz, RTE_CACHE_LINE_SIZE);
	if (dp->qs == NULL || rte_rcu_qsbr_init(dp->qs, dp->nb_workers) != 0) {
		fp_err(err, "cannot create RCU state");
		ret = -ENOMEM;
		goto fail;
	}

	fp_dp = dp;
	ret = fp_tables_init(err);
	if (ret < 0)
		goto fail;

	ret = fp_pollsets_init(err);
	if (ret < 0)
		goto fail;
	/* Registered here, not in the worker, so that a control call made
	 * right after fp_init already waits for this worker. */
	for (i = 0; i < dp->nb_workers; i++)
		rte_rcu_qsbr_thread_register(dp->qs, dp->lcore[i]->idx);
	for (i = 0; i < dp->nb_workers; i++) {
		ret = rte_eal_remote_launch(fp_worker_main, dp->lcore[i],
			dp->lcore[i]->lcore_id);
		if (ret != 0) {
			fp_err(err, "cannot launch worker on lcore %u: %s",
				dp->lcore[i]->lcore_id, strerror(-ret));
			goto fail;
		}
	}
	return 0;

fail:
	if (fp_dp == dp) {
		fp_fini();
	} else {
		rte_mempool_free(dp->pool);
		rte_free(dp->qs);
		for (i = 0; i < dp->nb_workers; i++)
			rte_free(dp->lcore[i]);
		rte_free(dp);
		rte_eal_cleanup();
	}
	return ret;
}

/* EAL leaves its runtime directory (/var/run/dpdk/<file-prefix>: the
 * telemetry socket, and config files without --in-memory) behind. The
 * dataplane is the only process of its prefix, so it removes it. */
static void
runtime_dir_remove(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d;

	if (dir[0] == '\0' || (d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < sizeof(path))
			unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

void
fp_fini(void)
{
	char rundir[PATH_MAX];
	struct fp_dp *dp = fp_dp;
	unsigned i;

	if (dp == NULL)
		return;
	snprintf(rundir, sizeof(rundir), "%s", rte_eal_get_runtime_dir());
	for (i = 0; i < dp->nb_workers; i++)
		if (dp->lcore[i] != NULL)
			dp->lcore[i]->stop = true;
	rte_eal_mp_wait_lcore();
	fp_links_stop();
	/* A trace or capture still armed (its reader gone) is freed here. */
	if (dp->trace != NULL)
		fp_trace_stop(NULL, 0, NULL);
	for (i = 0; i < FP_MAX_PORTS; i++)
		fp_capture_free((uint16_t)i, NULL);
	fp_ports_fini();
	fp_tables_fini();
	fp_pollsets_fini();
	for (i = 0; i < dp->nb_workers; i++)
		rte_free(dp->lcore[i]);
	rte_mempool_free(dp->pool);
	rte_free(dp->qs);
	rte_free(dp);
	fp_dp = NULL;
	rte_eal_cleanup();
	runtime_dir_remove(rundir);
}

void
fp_drop_stats(uint64_t out[FP_DROP_MAX])
{
	unsigned i, r;

	memset(out, 0, sizeof(uint64_t) * FP_DROP_MAX);
	if (fp_dp == NULL)
		return;
	for (i = 0; i < fp_dp->nb_workers; i++)
		for (r = 0; r < FP_DROP_MAX; r++)
			out[r] += __atomic_load_n(&fp_dp->lcore[i]->drops[r], __ATOMIC_RELAXED);
}

int
fp_port_stats(uint16_t port, struct fp_port_stats *out)
{
	struct rte_eth_stats ds;
	unsigned i;

	memset(out, 0, sizeof(*out));
	if (fp_dp == NULL || port >= FP_MAX_PORTS || !fp_dp->port_ctl[port].used)
		return -ENOENT;
	for (i = 0; i < fp_dp->nb_workers; i++) {
		const struct fp_port_stats *s = &fp_dp->lcore[i]->port_st[port];

		out->rx_pkts += __atomic_load_n(&s->rx_pkts, __ATOMIC_RELAXED);
		out->rx_bytes += __atomic_load_n(&s->rx_bytes, __ATOMIC_RELAXED);
		out->tx_pkts += __atomic_load_n(&s->tx_pkts, __ATOMIC_RELAXED);
		out->tx_bytes += __atomic_load_n(&s->tx_bytes, __ATOMIC_RELAXED);
		out->drops += __atomic_load_n(&s->drops, __ATOMIC_RELAXED);
	}
	out->memif_unmap_waits = __atomic_load_n(&fp_dp->port_ctl[port].unmap_waits,
		__ATOMIC_RELAXED);
	if (rte_eth_stats_get(port, &ds) == 0) {
		out->dev_imissed = ds.imissed;
		out->dev_ierrors = ds.ierrors;
		out->dev_oerrors = ds.oerrors;
		out->dev_rx_nombuf = ds.rx_nombuf;
	}
	return 0;
}

int
fp_lcore_stats(unsigned worker, struct fp_lcore_stats *out)
{
	const struct fp_lcore_stats *s;

	memset(out, 0, sizeof(*out));
	if (fp_dp == NULL || worker >= fp_dp->nb_workers)
		return -ENOENT;
	s = &fp_dp->lcore[worker]->st;
	out->polls = __atomic_load_n(&s->polls, __ATOMIC_RELAXED);
	out->busy_polls = __atomic_load_n(&s->busy_polls, __ATOMIC_RELAXED);
	out->sleeps = __atomic_load_n(&s->sleeps, __ATOMIC_RELAXED);
	out->rx_pkts = __atomic_load_n(&s->rx_pkts, __ATOMIC_RELAXED);
	out->tx_pkts = __atomic_load_n(&s->tx_pkts, __ATOMIC_RELAXED);
	out->drops = __atomic_load_n(&s->drops, __ATOMIC_RELAXED);
	out->busy_cycles = __atomic_load_n(&s->busy_cycles, __ATOMIC_RELAXED);
	out->consumed = __atomic_load_n(&s->consumed, __ATOMIC_RELAXED);
	out->router_adverts = __atomic_load_n(&s->router_adverts, __ATOMIC_RELAXED);
	return 0;
}

unsigned
fp_mbufs_in_use(void)
{
	if (fp_dp == NULL)
		return 0;
	return rte_mempool_in_use_count(fp_dp->pool);
}
