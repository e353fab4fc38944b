/* SPDX-License-Identifier: Apache-2.0
 * Filament's IPv6 FIB: one per VRF, a leaf-pushed, path-compressed trie of
 * 8-bit strides (docs/architecture.md, "IPv6 FIB").
 *
 * Data side, read by lcores: a root word per VRF (fp_dp->fib6[vrf]: a
 * pointer entry to the VRF's root group, 0 = no FIB), and groups of 256
 * 32-bit entries from one pool shared by every VRF, preallocated at start.
 * A group at depth d looks up address byte d; it covers a /8d (its
 * prefix). An entry is
 *
 *     0                           no route
 *     nh + 1 (<= 2^24)            next-hop nh (longest match, pushed down)
 *     FP_FIB6_PTR | g             the next byte is looked up in group g
 *     FP_FIB6_PTR | SKIP | g      group g is deeper than the next byte:
 *                                 the address must match g's prefix
 *                                 (meta[g]), else the answer is meta[g].miss
 *
 * Path compression: a group exists only where a route ends (the byte its
 * last prefix bit is in) or two routes part, so a lookup reads one entry
 * per such group on its path: a /128 alone under the root is 2 groups,
 * pod /128s inside a /64 are 3 to 4, whatever the 16 levels of the
 * address.
 *
 * Updates run on one control thread at a time, concurrently with lookups:
 * every entry and miss value is one 32-bit atomic store; a new group is
 * complete (entries and meta) before the one store that links it; a
 * group's prefix and depth never change while lookups can reach it; a
 * group whose scope would narrow (a new group inserted above it) is
 * replaced by a copy instead, so the region a group's miss answers for
 * never shrinks while it is reachable; an unlinked group is reused only
 * after an RCU grace period (rte_rcu_qsbr tokens, no blocking per update).
 */
#ifndef FP_FIB6_H
#define FP_FIB6_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <rte_branch_prediction.h>
#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_rcu_qsbr.h>

#include "fp.h"

#define FP_FIB6_PTR 0x80000000u  /* entry: a group below */
#define FP_FIB6_SKIP 0x40000000u /* ... deeper than the next byte */
#define FP_FIB6_GMASK 0x3fffffffu
#define FP_FIB6_GROUP 256u
#define FP_FIB6_NH_MAX (1u << 24)
#define FP_FIB6_GROUPS_MAX (1u << 21) /* 2 GiB of groups */

struct fp_fib6; /* one VRF's FIB: the control side, fp_fib6.c */

/* Per group, read by lcores after a SKIP pointer: the group's prefix (the
 * first depth bytes of hi:lo, the rest 0), its depth, and the answer for
 * addresses that reach the pointer but are not under the prefix. */
struct fp_fib6_meta {
	uint64_t hi, lo; /* prefix, host byte order of the big-endian halves */
	uint32_t miss;
	uint8_t depth;   /* 1..15: the address byte the group indexes */
	uint8_t pad[11];
};

/* What lookups read besides a VRF's root word, set once at start. */
struct fp_fib6_lc {
	const uint32_t *groups;            /* group g's entry i: [g << 8 | i] */
	const struct fp_fib6_meta *meta;   /* [group] */
} __rte_cache_aligned;
extern struct fp_fib6_lc fp_fib6_lc;

/* The mask of a prefix of d bytes (d 1..15) over the two halves. */
static __rte_always_inline void
fp_fib6_mask(unsigned d, uint64_t *mhi, uint64_t *mlo)
{
	*mhi = d >= 8 ? UINT64_MAX : UINT64_MAX << (64 - 8 * d);
	*mlo = d <= 8 ? 0 : UINT64_MAX << (128 - 8 * d);
}

/* Longest match for addr (16 bytes, network order) in the FIB whose root
 * word is root (loaded with acquire from fp_dp->fib6[vrf], not 0): 0 if
 * none, else next-hop + 1. Lcores call it between two quiescent states. */
static __rte_always_inline uint32_t
fp_fib6_match(uint32_t root, const uint8_t *addr)
{
	const uint32_t *grp = fp_fib6_lc.groups;
	uint32_t e = root;
	unsigned d = 0;

	for (;;) {
		uint32_t g = e & FP_FIB6_GMASK;

		if (e & FP_FIB6_SKIP) {
			/* meta was complete before the acquire load of e */
			const struct fp_fib6_meta *m = &fp_fib6_lc.meta[g];
			uint64_t hi, lo, mhi, mlo;

			memcpy(&hi, addr, 8);
			memcpy(&lo, addr + 8, 8);
			d = m->depth;
			fp_fib6_mask(d, &mhi, &mlo);
			if (unlikely((((rte_be_to_cpu_64(hi) ^ m->hi) & mhi) |
				      ((rte_be_to_cpu_64(lo) ^ m->lo) & mlo)) != 0))
				return __atomic_load_n(&m->miss, __ATOMIC_RELAXED);
		}
		e = __atomic_load_n(&grp[(size_t)g << 8 | addr[d]], __ATOMIC_ACQUIRE);
		if (!(e & FP_FIB6_PTR))
			return e;
		d++;
	}
}

/* ---- control side: one control thread at a time ------------------------ */

/* The group pool shared by all VRFs (1 KiB + 32 bytes a group), and the
 * RCU variable whose grace periods gate reuse. */
int fp_fib6_pool_init(uint32_t groups, struct rte_rcu_qsbr *qs, char *err);
/* Only once no lcore runs. */
void fp_fib6_pool_fini(void);

/* A VRF's FIB with an empty root group, at most max_routes routes. It
 * publishes its root word in *slot (what lcores look up through). -ENOSPC
 * (NULL) when the pool has no group for the root. */
struct fp_fib6 *fp_fib6_create(uint32_t max_routes, uint32_t *slot, char *err);
/* Free a FIB at exit (no lcore runs). */
void fp_fib6_free(struct fp_fib6 *f);
/* Free an empty FIB: its slot becomes 0, its root group goes after a grace
 * period. */
void fp_fib6_retire(struct fp_fib6 *f);
uint32_t fp_fib6_routes(const struct fp_fib6 *f);

/* Add or replace prefix/len (16 bytes, network order, no host bits, len <=
 * 128) -> nh (< FP_FIB6_NH_MAX). *old: the next-hop replaced, or
 * FP_NH_INVALID for a new route. -ENOSPC when the VRF's route limit or the
 * pool is exhausted, -ENOMEM when the route table cannot grow: the FIB is
 * then unchanged. */
int fp_fib6_add(struct fp_fib6 *f, const uint8_t *prefix, uint8_t len, uint32_t nh,
		uint32_t *old, char *err);
/* Remove prefix/len; *old: its next-hop. -ENOENT if there is none. A
 * delete never needs a group. */
int fp_fib6_del(struct fp_fib6 *f, const uint8_t *prefix, uint8_t len, uint32_t *old, char *err);
/* Exact match: 0 and *nh, or -ENOENT. */
int fp_fib6_get(const struct fp_fib6 *f, const uint8_t *prefix, uint8_t len, uint32_t *nh);

/* After a batch: shrink the route table and recycle what grace periods
 * released. */
void fp_fib6_settle(struct fp_fib6 *f);

/* Every route (prefix in network order), in no particular order; stops at
 * the first non-zero return of cb and returns it. */
int fp_fib6_walk(const struct fp_fib6 *f,
		 int (*cb)(const uint8_t *prefix, uint8_t len, uint32_t nh, void *arg), void *arg);

void fp_fib6_vrf_stats(const struct fp_fib6 *f, struct fp_fib6_stats *out);
void fp_fib6_pool_stats(struct fp_fib6_stats *out);

#endif
