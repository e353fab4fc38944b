/* SPDX-License-Identifier: Apache-2.0
 * The fib6test harness (harness.c): one FIB of fp_fib6.c, its own RCU
 * variable, reader threads that check every lookup, one writer.
 */
#ifndef FIB6TEST_HARNESS_H
#define FIB6TEST_HARNESS_H

#include <stdint.h>

#include "fp_fib6.h"

#define FT6_MAX_READERS 8

int ft6_init(uint32_t groups, uint32_t max_routes, unsigned readers, char *err);
void ft6_fini(void);

/* the writer: one thread at a time */
int ft6_add(const uint8_t *p, uint8_t len, uint32_t nh, uint32_t *old, char *err);
int ft6_del(const uint8_t *p, uint8_t len, uint32_t *old, char *err);
void ft6_settle(void);
void ft6_stats(struct fp_fib6_stats *s);

/* entry values: nh + 1, 0 = none */
void ft6_match_bulk(const uint8_t *a, uint32_t *out, unsigned n);
uint64_t ft6_bench(const uint8_t *a, unsigned n, unsigned rounds);

/* readers: addr i (16 bytes) may only get an entry among ok[i*k .. i*k+k-1] */
int ft6_probes(const uint8_t *addr, const uint32_t *ok, unsigned n, unsigned k);
int ft6_readers_start(const int *cpus);
void ft6_readers_stop(void);
void ft6_reader_result(unsigned i, uint64_t *lookups, uint64_t *bad, uint32_t *bad_idx,
		       uint32_t *val);

#endif
