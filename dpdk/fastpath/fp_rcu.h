/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The Filament Authors
 *
 * Waiting for an RCU grace period from a control thread. */
#ifndef FP_RCU_H
#define FP_RCU_H

#include <stdint.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_pause.h>
#include <rte_rcu_qsbr.h>

/* How long a waiter spins before it sleeps between checks. */
#define FP_RCU_SPIN_US 20
#define FP_RCU_SLEEP_US 20

/* Wait until every lcore reported a quiescent state after token. Workers
 * report one every loop, so on CPUs of their own this returns within
 * microseconds, spinning; rte_rcu_qsbr_check(..., true) and
 * rte_rcu_qsbr_synchronize spin until then whatever happens. A control
 * thread that shares a CPU with a worker (a 2-core node, the perf suite's
 * device under test) then spun through its time slice, milliseconds with
 * the worker not running, before the worker could report: forwarding
 * stalled that long on each route delete or port change. Past a short spin
 * it sleeps between checks instead, and the worker runs. */
static inline void
fp_rcu_wait(struct rte_rcu_qsbr *qs, uint64_t token)
{
	uint64_t end = rte_get_tsc_cycles() + rte_get_tsc_hz() / 1000000 * FP_RCU_SPIN_US;
	const struct timespec ts = {0, FP_RCU_SLEEP_US * 1000};

	while (rte_rcu_qsbr_check(qs, token, false) != 1) {
		if (rte_get_tsc_cycles() < end)
			rte_pause();
		else
			nanosleep(&ts, NULL);
	}
}

#endif
