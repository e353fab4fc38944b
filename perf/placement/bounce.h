/* SPDX-License-Identifier: Apache-2.0
 * A cache line bounced between two CPUs: how far apart the host put them.
 */
#ifndef PLACEMENT_BOUNCE_H
#define PLACEMENT_BOUNCE_H

/* Median nanoseconds of one round trip of a cache line between threads
 * pinned to cpu_a and cpu_b, over batches of round trips; 0 on success,
 * -EBUSY if it took longer than limit_ms (a CPU was busy), another
 * negative errno otherwise. */
int bounce_ns(int cpu_a, int cpu_b, unsigned round_trips, unsigned limit_ms, double *ns);

#endif
