/* SPDX-License-Identifier: Apache-2.0
 * Two threads pinned to two CPUs pass a counter in one cache line back and
 * forth; the round trip is 80-100 ns when the host runs the vCPUs on cores
 * that share a cache and 370-460 ns when not (../shared/notes/benchmarking.md).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "bounce.h"

#define BATCH 64
#define MAX_BATCHES 1024

struct line {
	_Alignas(64) volatile uint64_t v;
	char pad[56];
	/* Another line: set when the measurement gives up. */
	_Alignas(64) volatile int abort;
};

struct peer {
	struct line *l;
	int cpu;
	unsigned n;
	int err;
};

static int
pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* The peer answers every odd value with the next even one. */
static void *
answer(void *arg)
{
	struct peer *p = arg;
	uint64_t want = 1;
	unsigned i;

	p->err = pin(p->cpu);
	for (i = 0; i < p->n; i++, want += 2) {
		while (p->l->v != want)
			if (p->l->abort)
				return NULL;
		p->l->v = want + 1;
	}
	return NULL;
}

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int
bounce_ns(int cpu_a, int cpu_b, unsigned round_trips, unsigned limit_ms, double *ns)
{
	double *t;
	struct line *l;
	struct peer peer;
	pthread_t th;
	cpu_set_t saved;
	unsigned nb = round_trips / BATCH, b, i;
	uint64_t v = 0, spins;
	double deadline;
	int ret;

	if (nb == 0 || nb > MAX_BATCHES)
		return -EINVAL;
	t = calloc(nb, sizeof(*t));
	if (t == NULL || posix_memalign((void **)&l, 64, sizeof(*l)) != 0) {
		free(t);
		return -ENOMEM;
	}
	l->v = 0;
	l->abort = 0;
	peer = (struct peer){.l = l, .cpu = cpu_b, .n = nb * BATCH};
	pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved);
	ret = pin(cpu_a);
	if (ret == 0)
		ret = pthread_create(&th, NULL, answer, &peer);
	if (ret != 0) {
		pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
		free(l);
		free(t);
		return -ret;
	}
	deadline = now_ns() + limit_ms * 1e6;
	for (b = 0; b < nb && ret == 0; b++) {
		double t0 = now_ns();

		for (i = 0; i < BATCH && ret == 0; i++) {
			l->v = ++v;
			++v;
			/* A CPU taken by something else makes round trips wait
			 * for the scheduler: give up rather than report that. */
			for (spins = 0; l->v != v; spins++)
				if ((spins & 0xfff) == 0xfff && now_ns() > deadline) {
					ret = -EBUSY;
					l->abort = 1;
					break;
				}
		}
		t[b] = (now_ns() - t0) / BATCH;
	}
	if (now_ns() > deadline)
		ret = -EBUSY;
	l->abort = 1;
	pthread_join(th, NULL);
	pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
	free(l);
	if (peer.err != 0 || ret != 0) {
		free(t);
		return peer.err != 0 ? -peer.err : ret;
	}
	qsort(t, nb, sizeof(t[0]), cmp);
	*ns = t[nb / 2];
	free(t);
	return 0;
}
