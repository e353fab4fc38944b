/* SPDX-License-Identifier: Apache-2.0
 * The fib6test harness: fp_fib6.c (compiled into this package through a
 * symbolic link, see harness.go) driven by reader threads and one writer.
 */
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_rcu_qsbr.h>

#include "fp_fib6.h"
#include "harness.h"

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

struct ft6_reader {
	pthread_t th;
	unsigned id;
	int cpu;
	volatile int stop;
	uint64_t lookups, bad;
	uint32_t bad_idx, bad_val; /* the first wrong answer */
} __rte_cache_aligned;

static struct {
	struct rte_rcu_qsbr *qs;
	struct fp_fib6 *fib;
	uint32_t root; /* the FIB's root word, as fp_dp->fib6[vrf] */
	unsigned nb_readers;
	struct ft6_reader r[FT6_MAX_READERS];
	uint8_t *addr;
	uint32_t *ok;
	unsigned n, k;
} ft;

int
ft6_init(uint32_t groups, uint32_t max_routes, unsigned readers, char *err)
{
	unsigned i;
	int ret;

	if (readers == 0 || readers > FT6_MAX_READERS) {
		fp_err(err, "1..%u readers", FT6_MAX_READERS);
		return -EINVAL;
	}
	ft.qs = ft_alloc(rte_rcu_qsbr_get_memsize(readers), 64, 1);
	if (ft.qs == NULL || rte_rcu_qsbr_init(ft.qs, readers) != 0) {
		fp_err(err, "cannot create RCU state");
		return -ENOMEM;
	}
	for (i = 0; i < readers; i++)
		rte_rcu_qsbr_thread_register(ft.qs, i);
	ft.nb_readers = readers;
	ret = fp_fib6_pool_init(groups, ft.qs, err);
	if (ret < 0)
		return ret;
	ft.fib = fp_fib6_create(max_routes, &ft.root, err);
	return ft.fib == NULL ? -ENOMEM : 0;
}

void
ft6_fini(void)
{
	fp_fib6_free(ft.fib);
	fp_fib6_pool_fini();
	free(ft.qs);
	free(ft.addr);
	free(ft.ok);
	memset(&ft, 0, sizeof(ft));
}

int ft6_add(const uint8_t *p, uint8_t len, uint32_t nh, uint32_t *old, char *err)
{ return fp_fib6_add(ft.fib, p, len, nh, old, err); }
int ft6_del(const uint8_t *p, uint8_t len, uint32_t *old, char *err)
{ return fp_fib6_del(ft.fib, p, len, old, err); }
void ft6_settle(void) { fp_fib6_settle(ft.fib); }

void
ft6_match_bulk(const uint8_t *a, uint32_t *out, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		out[i] = fp_fib6_match(__atomic_load_n(&ft.root, __ATOMIC_ACQUIRE), &a[16 * i]);
}

/* rounds passes of lookups over a[0..n); the sum keeps the compiler honest */
uint64_t
ft6_bench(const uint8_t *a, unsigned n, unsigned rounds)
{
	uint32_t root = __atomic_load_n(&ft.root, __ATOMIC_ACQUIRE);
	uint64_t sum = 0;
	unsigned r, i;

	for (r = 0; r < rounds; r++)
		for (i = 0; i < n; i++)
			sum += fp_fib6_match(root, &a[16 * i]);
	return sum;
}

void
ft6_stats(struct fp_fib6_stats *s)
{
	memset(s, 0, sizeof(*s));
	fp_fib6_pool_stats(s);
	fp_fib6_vrf_stats(ft.fib, s);
}

int
ft6_probes(const uint8_t *addr, const uint32_t *ok, unsigned n, unsigned k)
{
	free(ft.addr);
	free(ft.ok);
	ft.addr = malloc(16 * (size_t)n);
	ft.ok = malloc(sizeof(uint32_t) * n * k);
	if (ft.addr == NULL || ft.ok == NULL)
		return -ENOMEM;
	memcpy(ft.addr, addr, 16 * (size_t)n);
	memcpy(ft.ok, ok, sizeof(uint32_t) * n * k);
	ft.n = n;
	ft.k = k;
	return 0;
}

/* A reader: an lcore's loop reduced to lookups, a quiescent state every 16
 * (an lcore reports one per burst); it never holds an entry across one. */
static void *
ft6_reader_main(void *arg)
{
	struct ft6_reader *r = arg;
	unsigned i, j;

	if (r->cpu >= 0) {
		cpu_set_t s;

		CPU_ZERO(&s);
		CPU_SET(r->cpu, &s);
		pthread_setaffinity_np(pthread_self(), sizeof(s), &s);
	}
	rte_rcu_qsbr_thread_online(ft.qs, r->id);
	while (!r->stop) {
		for (i = 0; i < ft.n; i++) {
			uint32_t e = fp_fib6_match(__atomic_load_n(&ft.root, __ATOMIC_ACQUIRE),
						   &ft.addr[16 * i]);
			const uint32_t *ok = &ft.ok[i * ft.k];

			for (j = 0; j < ft.k && ok[j] != e; j++)
				;
			if (unlikely(j == ft.k) && r->bad++ == 0) {
				r->bad_idx = i;
				r->bad_val = e;
			}
			if ((i & 15) == 15)
				rte_rcu_qsbr_quiescent(ft.qs, r->id);
		}
		__atomic_fetch_add(&r->lookups, ft.n, __ATOMIC_RELAXED);
		rte_rcu_qsbr_quiescent(ft.qs, r->id);
	}
	rte_rcu_qsbr_thread_offline(ft.qs, r->id);
	return NULL;
}

int
ft6_readers_start(const int *cpus)
{
	unsigned i;

	for (i = 0; i < ft.nb_readers; i++) {
		struct ft6_reader *r = &ft.r[i];

		memset(r, 0, sizeof(*r));
		r->id = i;
		r->cpu = cpus[i];
		if (pthread_create(&r->th, NULL, ft6_reader_main, r) != 0)
			return -errno;
	}
	return 0;
}

void
ft6_readers_stop(void)
{
	unsigned i;

	for (i = 0; i < ft.nb_readers; i++)
		ft.r[i].stop = 1;
	for (i = 0; i < ft.nb_readers; i++)
		pthread_join(ft.r[i].th, NULL);
}

void
ft6_reader_result(unsigned i, uint64_t *lookups, uint64_t *bad, uint32_t *bad_idx, uint32_t *val)
{
	*lookups = __atomic_load_n(&ft.r[i].lookups, __ATOMIC_RELAXED);
	*bad = __atomic_load_n(&ft.r[i].bad, __ATOMIC_RELAXED);
	*bad_idx = ft.r[i].bad_idx;
	*val = ft.r[i].bad_val;
}
