/* SPDX-License-Identifier: Apache-2.0
 * Filament's IPv4 FIB: one per VRF, a leaf-pushed multibit trie of 32-bit
 * entries (docs/architecture.md, "IPv4 FIB").
 *
 * Data side, read by lcores: a root word (the root table's address and
 * size, published where the caller says: fp_dp->fib4[vrf]), a root table
 * of 2^8, 2^16 or 2^24 entries
 * (the "stride" grows with the VRF: 1 KiB for a small VRF, 64 MiB only for
 * a very large one), then groups of 256 entries for the next 8 bits each,
 * taken from one pool shared by every VRF and preallocated at start. An
 * entry is
 *
 *     0                      no route
 *     FP_FIB4_PTR | g << 8   the next 8 bits are looked up in group g
 *     ... | k << 29          (8-bit root only) a shortcut: the k levels
 *                            below hold only the path to g, checked by
 *                            skips[g] (so a small VRF's /32 is 2 loads)
 *     nh + 1 (<= 2^24)       next-hop nh (longest match, pushed down)
 *
 * so a lookup is 1 to 4 dependent loads and ends on the first non-pointer
 * entry; the default route 0.0.0.0/0 is pushed into the table like any
 * other route.
 *
 * Control side (never read by lcores): the routes of the VRF in a hash
 * table sized to them, the depth (prefix length) of the route behind each
 * entry, and per group the number of routes longer than the group's prefix
 * inside it (a group whose count falls to 0 is folded back into its parent
 * entry).
 *
 * Updates run on one control thread at a time, concurrently with lookups:
 * every entry is written with one 32-bit atomic store, so a reader sees its
 * old or its new value, never half of it; a new group (or a chain of them)
 * is filled completely before the one store that links it; a group or root
 * table that was unlinked is reused or freed only after an RCU grace period
 * (rte_rcu_qsbr tokens, no blocking per update). The root is resized
 * (promotion and demotion) by building a new one aside and publishing it
 * with one pointer store.
 */
#ifndef FP_FIB4_H
#define FP_FIB4_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_branch_prediction.h>
#include <rte_common.h>
#include <rte_rcu_qsbr.h>

#include "fp.h"

#define FP_FIB4_PTR 0x80000000u  /* entry: FP_FIB4_PTR | group << 8 */
#define FP_FIB4_SKIP_SHIFT 29     /* 8-bit roots: levels a shortcut skips */
#define FP_FIB4_SKIP_MASK (3u << FP_FIB4_SKIP_SHIFT)
#define FP_FIB4_SKIP1 (FP_FIB4_PTR | 1u << FP_FIB4_SKIP_SHIFT) /* entries >= */
#define FP_FIB4_SKIP2 (FP_FIB4_PTR | 2u << FP_FIB4_SKIP_SHIFT)
#define FP_FIB4_PTR_TO(g) (FP_FIB4_PTR | (uint32_t)(g) << 8)
#define FP_FIB4_GRP(e) (((e) & ~(FP_FIB4_PTR | FP_FIB4_SKIP_MASK)) >> 8)
#define FP_FIB4_GROUP 256u       /* entries per group (8 bits) */
#define FP_FIB4_SHIFT_MASK 63u   /* root word: low bits = 32 - root bits */
#define FP_FIB4_NH_MAX (1u << 24) /* next-hop ids stored: 0..2^24-1 */
#define FP_FIB4_GROUPS_MAX (1u << 21) /* 2 GiB of groups */

struct fp_fib4; /* one VRF's FIB: the control side, fp_fib4.c */

/* A shortcut's check: the address bits it skips must be tag, or the
 * answer is miss (a value). One per group, used when a root entry points
 * straight to that group. */
struct fp_fib4_skip {
	uint32_t tag;
	uint32_t miss;
};

/* What lookups read besides a VRF's root word: the pool, set once before
 * any lcore runs. */
struct fp_fib4_lc {
	const uint32_t *groups;            /* biased: group g's entry i is
	                                    * groups[FP_FIB4_PTR | g << 8 | i] */
	const struct fp_fib4_skip *skips;  /* [group] */
} __rte_cache_aligned;
extern struct fp_fib4_lc fp_fib4_lc;

/* Longest match for addr (host byte order) in the FIB whose root word is
 * root (loaded with acquire from where fp_fib4_create publishes it, not
 * 0): 0 if none, else next-hop + 1. Lcores call it between two quiescent
 * states. */
static __rte_always_inline uint32_t
fp_fib4_match(uintptr_t root, uint32_t addr)
{
	const uint32_t *t = (const uint32_t *)(root & ~(uintptr_t)FP_FIB4_SHIFT_MASK);
	unsigned shift = (unsigned)(root & FP_FIB4_SHIFT_MASK);
	/* acquire: a group was complete before the store that linked it */
	uint32_t e = __atomic_load_n(&t[addr >> shift], __ATOMIC_ACQUIRE);

	if (e >= FP_FIB4_SKIP1) {
		/* A shortcut (8-bit roots only): the check loads in parallel
		 * with the group, and every shift is a constant. */
		const struct fp_fib4_skip *s = &fp_fib4_lc.skips[FP_FIB4_GRP(e)];
		uint32_t tag = __atomic_load_n(&s->tag, __ATOMIC_RELAXED);
		uint32_t g = e & ~FP_FIB4_SKIP_MASK;

		if (e >= FP_FIB4_SKIP2) {
			/* past the /8 and /16 levels, to a /24 group */
			if (unlikely(((addr >> 8) & 0xffff) != tag))
				return __atomic_load_n(&s->miss, __ATOMIC_RELAXED);
			return __atomic_load_n(&fp_fib4_lc.groups[g | (addr & 0xff)],
					       __ATOMIC_ACQUIRE);
		}
		/* past the /8 level, to a /16 group */
		if (unlikely(((addr >> 16) & 0xff) != tag))
			return __atomic_load_n(&s->miss, __ATOMIC_RELAXED);
		e = __atomic_load_n(&fp_fib4_lc.groups[g | ((addr >> 8) & 0xff)], __ATOMIC_ACQUIRE);
		if (e & FP_FIB4_PTR)
			e = __atomic_load_n(&fp_fib4_lc.groups[e | (addr & 0xff)], __ATOMIC_ACQUIRE);
		return e;
	}
	/* At most shift / 8 more levels: a group at the /24 level holds no
	 * pointer, so the loop ends with shift >= 0. Between two loads, one
	 * OR: the entry is already the group's index into the biased pool. */
	while (e & FP_FIB4_PTR) {
		shift -= 8;
		e = __atomic_load_n(&fp_fib4_lc.groups[e | ((addr >> shift) & 0xff)],
				    __ATOMIC_ACQUIRE);
	}
	return e;
}

/* n lookups. */
static inline void
fp_fib4_match_bulk(uintptr_t root, const uint32_t *addr, uint32_t *out, unsigned n)
{
	unsigned i;

	/* A two-pass version that first prefetched every address's group
	 * measured slower: in a loop of independent lookups the CPU already
	 * overlaps their cache misses. */
	for (i = 0; i < n; i++)
		out[i] = fp_fib4_match(root, addr[i]);
}

/* ---- control side: one control thread at a time ------------------------ */

/* The group pool, shared by all VRFs: groups of 256 entries (1 KiB), and
 * the RCU variable whose grace periods gate their reuse. */
int fp_fib4_pool_init(uint32_t groups, struct rte_rcu_qsbr *qs, char *err);
/* Only once no lcore runs. */
void fp_fib4_pool_fini(void);

/* A VRF's FIB with an empty 8-bit root (1 KiB), at most max_routes routes.
 * It publishes its root word in *slot (what lcores look up through) now
 * and whenever the root changes. */
struct fp_fib4 *fp_fib4_create(uint32_t max_routes, uintptr_t *slot, char *err);
/* Free a FIB at exit (no lcore runs). */
void fp_fib4_free(struct fp_fib4 *f);
/* Free an empty FIB: its slot becomes 0, its root table goes after a grace
 * period. */
void fp_fib4_retire(struct fp_fib4 *f);
/* Routes in the FIB. */
uint32_t fp_fib4_routes(const struct fp_fib4 *f);

/* Add or replace prefix/len (host byte order, no host bits, len <= 32) ->
 * nh (< FP_FIB4_NH_MAX). *old: the next-hop replaced, or FP_NH_INVALID for
 * a new route. -ENOSPC when the VRF's route limit or the pool is exhausted,
 * -ENOMEM when the route table cannot grow: the FIB is then unchanged. */
int fp_fib4_add(struct fp_fib4 *f, uint32_t prefix, uint8_t len, uint32_t nh,
		uint32_t *old, char *err);
/* Remove prefix/len; *old: its next-hop. -ENOENT if there is none. */
int fp_fib4_del(struct fp_fib4 *f, uint32_t prefix, uint8_t len, uint32_t *old, char *err);
/* Exact match: 0 and *nh, or -ENOENT. */
int fp_fib4_get(const struct fp_fib4 *f, uint32_t prefix, uint8_t len, uint32_t *nh);

/* After a batch of updates: resize the root to the VRF's size (promotion
 * to 16 or 24 bits, demotion back), shrink the route table, and recycle
 * what grace periods released. fp_fib4_add may promote (which takes no
 * group, it releases some) but neither demotes nor shrinks, so a batch can
 * be undone route by route with no memory the FIB did not have before. */
void fp_fib4_settle(struct fp_fib4 *f);

/* Every route, in no particular order; stops at the first non-zero return
 * of cb and returns it. The FIB must not change meanwhile. */
int fp_fib4_walk(const struct fp_fib4 *f,
		 int (*cb)(uint32_t prefix, uint8_t len, uint32_t nh, void *arg), void *arg);

/* This VRF's part of the stats (f may be NULL), and the pool's. */
void fp_fib4_vrf_stats(const struct fp_fib4 *f, struct fp_fib4_stats *out);
void fp_fib4_pool_stats(struct fp_fib4_stats *out);

#endif
