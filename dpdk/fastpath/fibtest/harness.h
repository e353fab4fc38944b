/* SPDX-License-Identifier: Apache-2.0
 * The fibtest harness (harness.c): one FIB of fp_fib4.c, its own RCU
 * variable, reader threads that check every lookup, one writer.
 */
#ifndef FIBTEST_HARNESS_H
#define FIBTEST_HARNESS_H

#include <stdint.h>

#include "fp_fib4.h"

#define FT_MAX_READERS 8

int ft_init(uint32_t groups, uint32_t max_routes, unsigned readers, char *err);
void ft_fini(void);

/* the writer: one thread at a time */
int ft_add(uint32_t p, uint8_t len, uint32_t nh, uint32_t *old, char *err);
int ft_del(uint32_t p, uint8_t len, uint32_t *old, char *err);
void ft_settle(void);
void ft_stats(struct fp_fib4_stats *s);
/* ft_add on a thread of its own (it may wait for a grace period) */
int ft_add_async(uint32_t p, uint8_t len, uint32_t nh);
int ft_async_done(void);
int ft_async_join(void);

uint32_t ft_match(uint32_t a);
void ft_shortcuts(unsigned *k1, unsigned *k2);
void ft_match_bulk(const uint32_t *a, uint32_t *out, unsigned n);
uint64_t ft_bench(const uint32_t *a, unsigned n, unsigned rounds, int bulk);

/* readers: addr[i] may only get an entry among ok[i * k .. i * k + k - 1] */
int ft_probes(const uint32_t *addr, const uint32_t *ok, unsigned n, unsigned k);
int ft_readers_start(const int *cpus);
void ft_readers_stop(void);
void ft_reader_result(unsigned i, uint64_t *lookups, uint64_t *bad, uint32_t *addr, uint32_t *val);
void ft_stall(unsigned i);
void ft_unstall(unsigned i);

#endif
