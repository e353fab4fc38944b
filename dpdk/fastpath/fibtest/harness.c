/* SPDX-License-Identifier: Apache-2.0
 * The fibtest harness: fp_fib4.c (compiled into this package through a
 * symbolic link, see harness.go) driven by reader threads and one writer.
 */
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_rcu_qsbr.h>

#include "fp_fib4.h"
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

struct ft_reader {
	pthread_t th;
	unsigned id;
	int cpu;
	volatile int stop;
	volatile int stall;   // set: stay online, stop reporting quiescent states
	volatile int stalled; // the reader acknowledges
	uint64_t lookups, bad;
	uint32_t bad_addr, bad_val; // the first wrong answer
} __rte_cache_aligned;

static struct {
	struct rte_rcu_qsbr *qs;
	struct fp_fib4 *fib;
	uintptr_t root; /* the FIB's root word, as fp_dp->fib4[vrf] */
	unsigned nb_readers;
	struct ft_reader r[FT_MAX_READERS];
	// probes: addr[i] may only get one of ok[i * k .. i * k + k - 1]
	uint32_t *addr, *ok;
	unsigned n, k;
	// an update running on its own thread
	pthread_t async;
	volatile int async_done;
	int async_ret;
	uint32_t async_p, async_nh;
	uint8_t async_len;
} ft;

int
ft_init(uint32_t groups, uint32_t max_routes, unsigned readers, char *err)
{
	unsigned i;
	int ret;

	if (readers == 0 || readers > FT_MAX_READERS) {
		fp_err(err, "1..%u readers", FT_MAX_READERS);
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
	ret = fp_fib4_pool_init(groups, ft.qs, err);
	if (ret < 0)
		return ret;
	ft.fib = fp_fib4_create(max_routes, &ft.root, err);
	return ft.fib == NULL ? -ENOMEM : 0;
}

void
ft_fini(void)
{
	fp_fib4_free(ft.fib);
	fp_fib4_pool_fini();
	free(ft.qs);
	free(ft.addr);
	free(ft.ok);
	memset(&ft, 0, sizeof(ft));
}

// Lookup cost: rounds passes over a[0..n), one address at a time or in
// bursts of 32 (fp_fib4_match_bulk). The sum keeps the compiler honest.
uint64_t
ft_bench(const uint32_t *a, unsigned n, unsigned rounds, int bulk)
{
	uint32_t out[32];
	uint64_t sum = 0;
	unsigned r, i, j;

	for (r = 0; r < rounds; r++) {
		if (!bulk) {
			for (i = 0; i < n; i++)
				sum += fp_fib4_match(__atomic_load_n(&ft.root, __ATOMIC_ACQUIRE), a[i]);
			continue;
		}
		for (i = 0; i + 32 <= n; i += 32) {
			fp_fib4_match_bulk(__atomic_load_n(&ft.root, __ATOMIC_ACQUIRE), &a[i], out, 32);
			for (j = 0; j < 32; j++)
				sum += out[j];
		}
	}
	return sum;
}

// Root entries that are shortcuts past k = 1 and k = 2 levels.
void
ft_shortcuts(unsigned *k1, unsigned *k2)
{
	uintptr_t w = __atomic_load_n(&ft.root, __ATOMIC_ACQUIRE);
	const uint32_t *t = (const uint32_t *)(w & ~(uintptr_t)FP_FIB4_SHIFT_MASK);
	size_t i, n = (size_t)1 << (32 - (w & FP_FIB4_SHIFT_MASK));

	*k1 = *k2 = 0;
	for (i = 0; i < n; i++) {
		if (t[i] >= FP_FIB4_SKIP2)
			(*k2)++;
		else if (t[i] >= FP_FIB4_SKIP1)
			(*k1)++;
	}
}

int ft_add(uint32_t p, uint8_t len, uint32_t nh, uint32_t *old, char *err)
{ return fp_fib4_add(ft.fib, p, len, nh, old, err); }
int ft_del(uint32_t p, uint8_t len, uint32_t *old, char *err)
{ return fp_fib4_del(ft.fib, p, len, old, err); }
void ft_settle(void) { fp_fib4_settle(ft.fib); }
uint32_t ft_match(uint32_t a) { return fp_fib4_match(__atomic_load_n(&ft.root, __ATOMIC_ACQUIRE), a); }
void ft_match_bulk(const uint32_t *a, uint32_t *out, unsigned n)
{ fp_fib4_match_bulk(__atomic_load_n(&ft.root, __ATOMIC_ACQUIRE), a, out, n); }

void
ft_stats(struct fp_fib4_stats *s)
{
	memset(s, 0, sizeof(*s));
	fp_fib4_pool_stats(s);
	fp_fib4_vrf_stats(ft.fib, s);
}

int
ft_probes(const uint32_t *addr, const uint32_t *ok, unsigned n, unsigned k)
{
	free(ft.addr);
	free(ft.ok);
	ft.addr = malloc(sizeof(uint32_t) * n);
	ft.ok = malloc(sizeof(uint32_t) * n * k);
	if (ft.addr == NULL || ft.ok == NULL)
		return -ENOMEM;
	memcpy(ft.addr, addr, sizeof(uint32_t) * n);
	memcpy(ft.ok, ok, sizeof(uint32_t) * n * k);
	ft.n = n;
	ft.k = k;
	return 0;
}

// A reader: the fast path's loop reduced to lookups. It reports a quiescent
// state every 16 lookups (an lcore does once per burst), so grace periods
// are short and released groups come back fast; it never holds an entry
// across one.
static void *
ft_reader_main(void *arg)
{
	struct ft_reader *r = arg;
	unsigned i, j;

	if (r->cpu >= 0) {
		cpu_set_t s;

		CPU_ZERO(&s);
		CPU_SET(r->cpu, &s);
		pthread_setaffinity_np(pthread_self(), sizeof(s), &s);
	}
	rte_rcu_qsbr_thread_online(ft.qs, r->id);
	while (!r->stop) {
		if (r->stall) {
			r->stalled = 1;
			while (r->stall && !r->stop)
				rte_pause();
			r->stalled = 0;
		}
		for (i = 0; i < ft.n; i++) {
			uint32_t e = fp_fib4_match(__atomic_load_n(&ft.root, __ATOMIC_ACQUIRE),
						   ft.addr[i]);
			const uint32_t *ok = &ft.ok[i * ft.k];

			for (j = 0; j < ft.k && ok[j] != e; j++)
				;
			if (unlikely(j == ft.k) && r->bad++ == 0) {
				r->bad_addr = ft.addr[i];
				r->bad_val = e;
			}
			if ((i & 15) == 15)
				rte_rcu_qsbr_quiescent(ft.qs, r->id);
		}
		r->lookups += ft.n;
		rte_rcu_qsbr_quiescent(ft.qs, r->id);
	}
	rte_rcu_qsbr_thread_offline(ft.qs, r->id);
	return NULL;
}

int
ft_readers_start(const int *cpus)
{
	unsigned i;

	for (i = 0; i < ft.nb_readers; i++) {
		struct ft_reader *r = &ft.r[i];

		memset(r, 0, sizeof(*r));
		r->id = i;
		r->cpu = cpus[i];
		if (pthread_create(&r->th, NULL, ft_reader_main, r) != 0)
			return -errno;
	}
	return 0;
}

void
ft_readers_stop(void)
{
	unsigned i;

	for (i = 0; i < ft.nb_readers; i++)
		ft.r[i].stop = 1;
	for (i = 0; i < ft.nb_readers; i++)
		pthread_join(ft.r[i].th, NULL);
}

void
ft_reader_result(unsigned i, uint64_t *lookups, uint64_t *bad, uint32_t *addr, uint32_t *val)
{
	*lookups = __atomic_load_n(&ft.r[i].lookups, __ATOMIC_RELAXED);
	*bad = __atomic_load_n(&ft.r[i].bad, __ATOMIC_RELAXED);
	*addr = ft.r[i].bad_addr;
	*val = ft.r[i].bad_val;
}

// Reader i stops reporting quiescent states (still online): returns once it
// has.
void
ft_stall(unsigned i)
{
	ft.r[i].stall = 1;
	while (!ft.r[i].stalled)
		rte_pause();
}

void ft_unstall(unsigned i) { ft.r[i].stall = 0; }

static void *
ft_async_main(void *arg)
{
	uint32_t old;

	(void)arg;
	ft.async_ret = fp_fib4_add(ft.fib, ft.async_p, ft.async_len, ft.async_nh, &old, NULL);
	__atomic_store_n(&ft.async_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

// An add on a thread of its own (it may wait for a grace period).
int
ft_add_async(uint32_t p, uint8_t len, uint32_t nh)
{
	ft.async_p = p;
	ft.async_len = len;
	ft.async_nh = nh;
	ft.async_done = 0;
	return pthread_create(&ft.async, NULL, ft_async_main, NULL) == 0 ? 0 : -errno;
}

int ft_async_done(void) { return __atomic_load_n(&ft.async_done, __ATOMIC_ACQUIRE); }

int
ft_async_join(void)
{
	pthread_join(ft.async, NULL);
	return ft.async_ret;
}
