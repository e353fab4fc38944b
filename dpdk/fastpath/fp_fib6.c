/* SPDX-License-Identifier: Apache-2.0
 * Filament's IPv6 FIB: the control side of the trie described in fp_fib6.h.
 *
 * Everything here runs on the one control thread; lcores only read the
 * groups through fp_fib6_match. A route of length L is *expressed* in the
 * group at depth k(L) = (L - 1) / 8 (0 for L = 0) whose prefix is the
 * route's first 8k bits, as 2^(8(k+1) - L) entries. Invariants:
 *
 *  - A group exists iff it is a VRF's root, some route is expressed in it
 *    (nroutes > 0), or two of its slots hold pointers (nptr >= 2): path
 *    compression (between a delete and fp_fib6_settle, a group may also
 *    hold just one pointer: a level more, never a wrong answer). So no route is expressed at a depth a SKIP pointer
 *    jumps over, and the addresses that reach a SKIP pointer to g but are
 *    not under g's prefix are matched only by routes covering the whole
 *    parent slot: one value, meta[g].miss (its depth: ctl[g].missdep).
 *  - Entries are leaf-pushed (dep[] says which prefix length each value
 *    came from), and a group with neither route nor pointer holds its
 *    miss everywhere.
 *  - Lcore-visible words change only by one 32-bit atomic store each. A
 *    new group is complete, meta included, before the release store that
 *    links it; its prefix and depth never change while it is linked.
 *  - The region a group's miss answers for (the parent slot it hangs from)
 *    never shrinks while lookups may reach the group: inserting a group
 *    between a slot and its child links a copy of the child instead, and
 *    the child is queued. A stale lookup therefore always reads a miss that
 *    is right for a region at least as large as the one it came through,
 *    and an in-place update of a miss is right for every reader.
 *  - What is unlinked is reused only once rte_rcu_qsbr_check says every
 *    lcore passed a quiescent state since the token taken after the
 *    unlinking store.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_log.h>
#include <rte_malloc.h>

#include "fp_fib6.h"
#include "fp_rcu.h"

/* fp_init.c (or the fibtest harness) */
void fp_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define RT_MIN_BITS 4

struct dq6_item {
	uint64_t token;
	uint32_t group;
};

/* control side of a group */
struct gctl {
	uint16_t nroutes; /* routes expressed in it (at most 510) */
	uint16_t nptr;    /* slots holding a pointer */
	uint8_t missdep;  /* prefix length behind meta.miss */
};

static struct {
	uint32_t *e;                /* n groups of 256 entries, read by lcores */
	struct fp_fib6_meta *meta;  /* per group, read by lcores */
	uint8_t *dep;               /* prefix length behind each entry */
	struct gctl *ctl;
	uint32_t *free;
	uint32_t n, nfree, npending;
	struct dq6_item *dq;        /* FIFO, tokens in increasing order */
	uint32_t dq_head, dq_len, dq_cap;
	struct rte_rcu_qsbr *qs;
	uint32_t vrfs;
} pool;

struct fp_fib6_lc fp_fib6_lc;

/* One route in the control table: 0 len1 = free slot. */
struct rt6 {
	uint64_t hi, lo;
	uint32_t nh;
	uint8_t len1; /* length + 1 */
};

struct fp_fib6 {
	uint32_t *slot; /* RCU: where the root word is published */
	uint32_t root;  /* root group (depth 0) */
	uint32_t ngroups;
	uint32_t routes, max_routes;
	uint32_t nlen[129]; /* routes per prefix length */
	struct rt6 *rt;     /* open addressing, linear probing, <= 70% full */
	unsigned rt_bits;
	uint32_t fold[64];  /* groups to fold at settle (trie_del) */
	unsigned nfold;
	bool fold_all;      /* fold[] overflowed: look everywhere */
};

static inline uint32_t *
grp_e(uint32_t g)
{
	return &pool.e[(size_t)g << 8];
}

static inline uint8_t *
grp_d(uint32_t g)
{
	return &pool.dep[(size_t)g << 8];
}

static inline unsigned
expr_depth(unsigned len)
{
	return len == 0 ? 0 : (len - 1) / 8;
}

static inline void
load_hilo(const uint8_t *p, uint64_t *hi, uint64_t *lo)
{
	uint64_t h, l;

	memcpy(&h, p, 8);
	memcpy(&l, p + 8, 8);
	*hi = rte_be_to_cpu_64(h);
	*lo = rte_be_to_cpu_64(l);
}

static inline void
store_hilo(uint64_t hi, uint64_t lo, uint8_t *p)
{
	uint64_t h = rte_cpu_to_be_64(hi), l = rte_cpu_to_be_64(lo);

	memcpy(p, &h, 8);
	memcpy(p + 8, &l, 8);
}

/* hi:lo masked to its first len bits */
static inline void
mask_bits(uint64_t *hi, uint64_t *lo, unsigned len)
{
	if (len < 64) {
		*hi &= len == 0 ? 0 : UINT64_MAX << (64 - len);
		*lo = 0;
	} else if (len < 128) {
		*lo &= len == 64 ? 0 : UINT64_MAX << (128 - len);
	}
}

/* byte j (0..15) of a group's prefix */
static inline uint8_t
meta_byte(const struct fp_fib6_meta *m, unsigned j)
{
	return (uint8_t)(j < 8 ? m->hi >> (56 - 8 * j) : m->lo >> (120 - 8 * j));
}

static inline uint32_t
mkptr(uint32_t g, unsigned child_depth, unsigned parent_depth)
{
	return FP_FIB6_PTR | (child_depth > parent_depth + 1 ? FP_FIB6_SKIP : 0) | g;
}

/* ---- the pool and deferred reclamation ---------------------------------- */

int
fp_fib6_pool_init(uint32_t n, struct rte_rcu_qsbr *qs, char *err)
{
	uint32_t i;

	if (n == 0 || n > FP_FIB6_GROUPS_MAX) {
		fp_err(err, "IPv6 FIB groups %u: must be 1..%u", n, FP_FIB6_GROUPS_MAX);
		return -EINVAL;
	}
	memset(&pool, 0, sizeof(pool));
	pool.e = rte_malloc("fp_fib6_groups", (size_t)n * FP_FIB6_GROUP * sizeof(uint32_t),
			    RTE_CACHE_LINE_SIZE);
	pool.meta = rte_malloc("fp_fib6_meta", (size_t)n * sizeof(*pool.meta), RTE_CACHE_LINE_SIZE);
	pool.dep = malloc((size_t)n * FP_FIB6_GROUP);
	pool.ctl = malloc((size_t)n * sizeof(*pool.ctl));
	pool.free = malloc((size_t)n * sizeof(uint32_t));
	pool.dq_cap = n + 64;
	pool.dq = malloc(pool.dq_cap * sizeof(*pool.dq));
	if (!pool.e || !pool.meta || !pool.dep || !pool.ctl || !pool.free || !pool.dq) {
		fp_fib6_pool_fini();
		fp_err(err, "no memory for the IPv6 FIB: %u groups of 1 KiB (fib6_groups)", n);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		pool.free[i] = n - 1 - i;
	pool.n = pool.nfree = n;
	pool.qs = qs;
	fp_fib6_lc.groups = pool.e;
	fp_fib6_lc.meta = pool.meta;
	return 0;
}

void
fp_fib6_pool_fini(void)
{
	rte_free(pool.e);
	rte_free(pool.meta);
	free(pool.dep);
	free(pool.ctl);
	free(pool.free);
	free(pool.dq);
	memset(&pool, 0, sizeof(pool));
}

#ifdef FP_FIB6_DEBUG
/* Test builds: the FIB being updated, to check that a group is unreachable
 * when it is queued for reuse. A group can only be reached along its
 * prefix, so the check follows that path from the root, for every group
 * it meets (not only g: a stale pointer to g's place is caught too). */
static const struct fp_fib6 *dbg_fib;
static bool
dbg_reaches(uint32_t root, uint32_t g)
{
	const struct fp_fib6_meta *m = &pool.meta[g];
	uint32_t at = root;

	while (at != g) {
		unsigned d = pool.meta[at].depth;
		uint32_t e;

		if (d >= m->depth)
			return false;
		e = __atomic_load_n(&grp_e(at)[(uint8_t)(d < 8 ? m->hi >> (56 - 8 * d) :
							  m->lo >> (120 - 8 * d))],
				    __ATOMIC_RELAXED);
		if (!(e & FP_FIB6_PTR))
			return false;
		at = e & FP_FIB6_GMASK;
	}
	return true;
}
#define DBG_FIB(c) (dbg_fib = (c))
#else
#define DBG_FIB(c) do { } while (0)
#endif

/* Recycle what every lcore is done with. wait: if no group is free, wait
 * for the oldest pending one's grace period (microseconds). */
static void
reclaim(bool wait)
{
	while (pool.dq_len > 0) {
		struct dq6_item *it = &pool.dq[pool.dq_head];

		if (rte_rcu_qsbr_check(pool.qs, it->token, false) != 1) {
			if (!wait || pool.nfree > 0)
				break;
			fp_rcu_wait(pool.qs, it->token);
		}
		pool.free[pool.nfree++] = it->group;
		pool.npending--;
		pool.dq_head = (pool.dq_head + 1) % pool.dq_cap;
		pool.dq_len--;
	}
}

/* g was just unlinked by a store of the caller: queue it, with a token
 * taken after that store. The queue has room for every group. */
static void
defer(uint32_t g)
{
	uint64_t token = rte_rcu_qsbr_start(pool.qs);

#ifdef FP_FIB6_DEBUG
	if (dbg_fib != NULL && dbg_reaches(dbg_fib->root, g))
		rte_panic("fp_fib6: group %u queued for reuse while lookups reach it\n", g);
#endif
	RTE_VERIFY(pool.dq_len < pool.dq_cap);
	pool.npending++;
	pool.dq[(pool.dq_head + pool.dq_len) % pool.dq_cap] =
		(struct dq6_item){.token = token, .group = g};
	pool.dq_len++;
}

static inline uint32_t
pool_avail(void)
{
	return pool.nfree + pool.npending;
}

static uint32_t
grp_alloc(void)
{
	if (pool.nfree == 0)
		reclaim(true);
	RTE_VERIFY(pool.nfree > 0);
	return pool.free[--pool.nfree];
}

/* A new group at depth (the first depth bytes of hi:lo are its prefix),
 * holding v (of prefix length d) everywhere, which is also its miss. Not
 * reachable by lookups until the caller links it. */
static uint32_t
grp_take(struct fp_fib6 *c, unsigned depth, uint64_t hi, uint64_t lo, uint32_t v, uint8_t d)
{
	uint32_t g = grp_alloc(), i, *e = grp_e(g);
	struct fp_fib6_meta *m = &pool.meta[g];

	for (i = 0; i < FP_FIB6_GROUP; i++)
		e[i] = v;
	memset(grp_d(g), d, FP_FIB6_GROUP);
	mask_bits(&hi, &lo, 8 * depth);
	memset(m, 0, sizeof(*m));
	m->hi = hi;
	m->lo = lo;
	m->miss = v;
	m->depth = (uint8_t)depth;
	pool.ctl[g] = (struct gctl){.missdep = d};
	c->ngroups++;
	return g;
}

/* A copy of group g (its pointers shared), unreachable until linked. */
static uint32_t
grp_clone(struct fp_fib6 *c, uint32_t g)
{
	uint32_t n = grp_alloc();

	memcpy(grp_e(n), grp_e(g), FP_FIB6_GROUP * sizeof(uint32_t));
	memcpy(grp_d(n), grp_d(g), FP_FIB6_GROUP);
	pool.meta[n] = pool.meta[g];
	pool.ctl[n] = pool.ctl[g];
	c->ngroups++;
	return n;
}

static void
grp_drop(struct fp_fib6 *c, uint32_t g)
{
	c->ngroups--;
	defer(g);
}

/* ---- the route table ----------------------------------------------------- */

static inline uint32_t
rt_home(uint64_t hi, uint64_t lo, uint8_t len1, unsigned bits)
{
	uint64_t h = (hi ^ (lo * 0xff51afd7ed558ccdull) ^ len1) * 0x9e3779b97f4a7c15ull;

	h ^= h >> 29;
	h *= 0xc4ceb9fe1a85ec53ull;
	return (uint32_t)(h >> (64 - bits));
}

static struct rt6 *
rt_find(const struct fp_fib6 *c, uint64_t hi, uint64_t lo, uint8_t len)
{
	uint32_t mask = (1u << c->rt_bits) - 1, i = rt_home(hi, lo, len + 1, c->rt_bits);

	for (;; i = (i + 1) & mask) {
		struct rt6 *s = &c->rt[i];

		if (s->len1 == 0)
			return NULL;
		if (s->len1 == len + 1 && s->hi == hi && s->lo == lo)
			return s;
	}
}

static void
rt_put(struct rt6 *rt, unsigned bits, const struct rt6 *s)
{
	uint32_t mask = (1u << bits) - 1, i = rt_home(s->hi, s->lo, s->len1, bits);

	while (rt[i].len1 != 0)
		i = (i + 1) & mask;
	rt[i] = *s;
}

static int
rt_resize(struct fp_fib6 *c, unsigned bits)
{
	struct rt6 *rt = calloc((size_t)1 << bits, sizeof(*rt));
	size_t i;

	if (rt == NULL)
		return -ENOMEM;
	for (i = 0; i < ((size_t)1 << c->rt_bits); i++)
		if (c->rt[i].len1 != 0)
			rt_put(rt, bits, &c->rt[i]);
	free(c->rt);
	c->rt = rt;
	c->rt_bits = bits;
	return 0;
}

/* Backward-shift deletion: no tombstones. */
static void
rt_remove(struct fp_fib6 *c, struct rt6 *slot)
{
	uint32_t mask = (1u << c->rt_bits) - 1;
	uint32_t i = (uint32_t)(slot - c->rt), j = i;

	for (;;) {
		uint32_t k;

		j = (j + 1) & mask;
		if (c->rt[j].len1 == 0)
			break;
		k = rt_home(c->rt[j].hi, c->rt[j].lo, c->rt[j].len1, c->rt_bits);
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		c->rt[i] = c->rt[j];
		i = j;
	}
	memset(&c->rt[i], 0, sizeof(c->rt[i]));
}

/* ---- the trie ------------------------------------------------------------ */

/* Entries [i, i + n) of group g and everything under them: those whose
 * value comes from a route of length <= len (le: adding a route of that
 * length) or == len (replacing or deleting it) become val of depth d; the
 * same for the misses of the groups below (their region is inside the
 * entry's). Recursion depth <= 16; a subtree whose miss stays is skipped:
 * the cost is the entries that change, as leaf pushing must pay. */
static void
apply(uint32_t g, uint32_t i, uint32_t n, uint8_t len, bool le, uint32_t val, uint8_t d)
{
	uint32_t *t = grp_e(g);
	uint8_t *dep = grp_d(g);

	for (; n > 0; n--, i++) {
		uint32_t e = t[i];

		if (e & FP_FIB6_PTR) {
			uint32_t cg = e & FP_FIB6_GMASK;
			struct gctl *cc = &pool.ctl[cg];

			/* Every entry under cg comes from its miss's route or
			 * from routes longer than len (expressed below this
			 * group): nothing there to change unless its miss is. */
			if (!(le ? cc->missdep <= len : cc->missdep == len))
				continue;
			__atomic_store_n(&pool.meta[cg].miss, val, __ATOMIC_RELAXED);
			cc->missdep = d;
			apply(cg, 0, FP_FIB6_GROUP, len, le, val, d);
			continue;
		}
		if (le ? dep[i] <= len : dep[i] == len) {
			if (e != val)
				__atomic_store_n(&t[i], val, __ATOMIC_RELEASE);
			dep[i] = d;
		}
	}
}

/* The first byte in [from, to) where p and group g's prefix differ, or to. */
static unsigned
first_diff(const uint8_t *p, uint32_t g, unsigned from, unsigned to)
{
	const struct fp_fib6_meta *m = &pool.meta[g];

	for (; from < to; from++)
		if (p[from] != meta_byte(m, from))
			break;
	return from;
}

/* Groups an add of p/len needs: 0 (its group exists), 1 (a group under a
 * value), 2 (a group between a slot and its child, and the child's copy)
 * or 3 (a group where the route parts from a child, the route's group,
 * the child's copy). */
static uint32_t
groups_needed(const struct fp_fib6 *c, const uint8_t *p, uint8_t len)
{
	unsigned k = expr_depth(len);
	uint32_t g = c->root;

	for (;;) {
		unsigned d = pool.meta[g].depth, cd, lim, m;
		uint32_t e, cg;

		if (k == d)
			return 0;
		e = grp_e(g)[p[d]];
		if (!(e & FP_FIB6_PTR))
			return 1;
		cg = e & FP_FIB6_GMASK;
		cd = pool.meta[cg].depth;
		lim = RTE_MIN(cd, k);
		m = first_diff(p, cg, d + 1, lim);
		if (m == lim && cd <= k) {
			g = cg;
			continue;
		}
		return m == lim ? 2 : 3;
	}
}

static void
trie_add(struct fp_fib6 *c, const uint8_t *p, uint8_t len, uint32_t val)
{
	unsigned k = expr_depth(len);
	uint32_t n = 1u << (8 * (k + 1) - len), g = c->root;
	uint64_t hi, lo;

	load_hilo(p, &hi, &lo);
	for (;;) {
		unsigned d = pool.meta[g].depth, cd, lim, m;
		uint32_t e, cg, cg2, ng, rg, miss;
		uint8_t s = p[d], missdep;

		if (k == d) {
			apply(g, p[k], n, len, true, val, len);
			pool.ctl[g].nroutes++;
			return;
		}
		e = grp_e(g)[s];
		if (!(e & FP_FIB6_PTR)) {
			/* the slot's value everywhere in the new group: lookups
			 * through it answer as before until apply */
			rg = grp_take(c, k, hi, lo, e, grp_d(g)[s]);
			apply(rg, p[k], n, len, true, val, len);
			pool.ctl[rg].nroutes = 1;
			pool.ctl[g].nptr++;
			__atomic_store_n(&grp_e(g)[s], mkptr(rg, k, d), __ATOMIC_RELEASE);
			return;
		}
		cg = e & FP_FIB6_GMASK;
		cd = pool.meta[cg].depth;
		lim = RTE_MIN(cd, k);
		m = first_diff(p, cg, d + 1, lim);
		if (m == lim && cd <= k) {
			g = cg;
			continue;
		}
		/* A new group ng at depth m, between slot s and the child:
		 * where the route parts from the child (m < k), or the
		 * route's own group (m == k < cd). The child's region would
		 * narrow: a copy takes its place and it is queued. */
		miss = pool.meta[cg].miss;
		missdep = pool.ctl[cg].missdep;
		cg2 = grp_clone(c, cg);
		ng = grp_take(c, m, hi, lo, miss, missdep);
		grp_e(ng)[meta_byte(&pool.meta[cg], m)] = mkptr(cg2, cd, m);
		pool.ctl[ng].nptr = 1;
		if (m == k) {
			apply(ng, p[k], n, len, true, val, len);
			pool.ctl[ng].nroutes = 1;
		} else {
			rg = grp_take(c, k, hi, lo, miss, missdep);
			apply(rg, p[k], n, len, true, val, len);
			pool.ctl[rg].nroutes = 1;
			grp_e(ng)[p[m]] = mkptr(rg, k, m);
			pool.ctl[ng].nptr = 2;
		}
		__atomic_store_n(&grp_e(g)[s], mkptr(ng, m, d), __ATOMIC_RELEASE);
		grp_drop(c, cg);
		return;
	}
}

/* The group a route of p/len is expressed in (it exists), and the path to
 * it: path[i] is a group, slot[i] the slot of path[i] leading on. */
static uint32_t
trie_find(const struct fp_fib6 *c, const uint8_t *p, uint8_t len, uint32_t *path,
	  uint8_t *slot, unsigned *np)
{
	unsigned k = expr_depth(len);
	uint32_t g = c->root;

	*np = 0;
	while (pool.meta[g].depth != k) {
		uint8_t s = p[pool.meta[g].depth];
		uint32_t e = grp_e(g)[s];

		RTE_VERIFY(e & FP_FIB6_PTR);
		path[*np] = g;
		slot[*np] = s;
		(*np)++;
		g = e & FP_FIB6_GMASK;
	}
	return g;
}

static void
trie_replace(struct fp_fib6 *c, const uint8_t *p, uint8_t len, uint32_t val)
{
	uint32_t path[16];
	uint8_t slot[16];
	unsigned np, k = expr_depth(len);
	uint32_t g = trie_find(c, p, len, path, slot, &np);

	apply(g, p[k], 1u << (8 * (k + 1) - len), len, false, val, len);
}

/* The parent slot of g points past g to g's only child, whose miss is
 * g's value (g holds no route): right for the larger region it then
 * answers for. g is queued. */
static void
fold_ptr(struct fp_fib6 *c, uint32_t pg, uint8_t s, uint32_t g)
{
	unsigned i;

	for (i = 0; i < FP_FIB6_GROUP; i++) {
		uint32_t e = grp_e(g)[i];

		if (e & FP_FIB6_PTR) {
			uint32_t cg = e & FP_FIB6_GMASK;

			__atomic_store_n(&grp_e(pg)[s],
					 mkptr(cg, pool.meta[cg].depth, pool.meta[pg].depth),
					 __ATOMIC_RELEASE);
			break;
		}
	}
	grp_drop(c, g);
}

/* A route goes: its entries take the covering route's value (cv, of
 * length cd), then groups left with neither route nor pointer are folded
 * into their parent slot, deepest first. A group left with one pointer
 * and no route is folded by fp_fib6_settle (fold_pending): until then it
 * is only a level more for its lookups, and a batch undone re-adds its
 * deletes with no more groups than they gave back. */
static void
trie_del(struct fp_fib6 *c, const uint8_t *p, uint8_t len, uint32_t cv, uint8_t cd)
{
	uint32_t path[16], gone[16];
	uint8_t slot[16];
	unsigned np, k = expr_depth(len), ngone = 0, i;
	uint32_t g = trie_find(c, p, len, path, slot, &np);

	apply(g, p[k], 1u << (8 * (k + 1) - len), len, false, cv, cd);
	pool.ctl[g].nroutes--;
	while (np > 0 && pool.ctl[g].nroutes == 0 && pool.ctl[g].nptr == 0) {
		uint32_t pg = path[--np];
		uint8_t s = slot[np];

		/* one value everywhere, its miss: the parent slot takes it */
		__atomic_store_n(&grp_e(pg)[s], grp_e(g)[0], __ATOMIC_RELEASE);
		grp_d(pg)[s] = grp_d(g)[0];
		pool.ctl[pg].nptr--;
		gone[ngone++] = g;
		g = pg;
	}
	if (np > 0 && pool.ctl[g].nroutes == 0 && pool.ctl[g].nptr == 1) {
		if (c->nfold < RTE_DIM(c->fold))
			c->fold[c->nfold++] = g;
		else
			c->fold_all = true;
	}
	for (i = 0; i < ngone; i++)
		grp_drop(c, gone[i]);
}

/* Fold every group under g that holds no route and one pointer. */
static void
fold_under(struct fp_fib6 *c, uint32_t g)
{
	unsigned i;

	for (i = 0; i < FP_FIB6_GROUP; i++) {
		uint32_t e = grp_e(g)[i], cg;

		if (!(e & FP_FIB6_PTR))
			continue;
		cg = e & FP_FIB6_GMASK;
		fold_under(c, cg);
		if (pool.ctl[cg].nroutes == 0 && pool.ctl[cg].nptr == 1)
			fold_ptr(c, g, (uint8_t)i, cg);
	}
}

/* The groups trie_del left with one pointer and no route, if they still
 * are: found again from the root by their prefix (they may have been
 * replaced by a copy or folded since). */
static void
fold_pending(struct fp_fib6 *c)
{
	unsigned i;

	if (c->fold_all) {
		fold_under(c, c->root);
		c->fold_all = false;
		c->nfold = 0;
		return;
	}
	for (i = 0; i < c->nfold; i++) {
		uint32_t want = c->fold[i], g = c->root;
		const struct fp_fib6_meta *wm = &pool.meta[want];

		for (;;) {
			uint8_t s = meta_byte(wm, pool.meta[g].depth);
			uint32_t e = grp_e(g)[s], cg;

			if (!(e & FP_FIB6_PTR))
				break;
			cg = e & FP_FIB6_GMASK;
			if (cg == want) {
				if (pool.ctl[cg].nroutes == 0 && pool.ctl[cg].nptr == 1)
					fold_ptr(c, g, s, cg);
				break;
			}
			if (pool.meta[cg].depth >= wm->depth)
				break;
			g = cg;
		}
	}
	c->nfold = 0;
}

/* ---- API ----------------------------------------------------------------- */

struct fp_fib6 *
fp_fib6_create(uint32_t max_routes, uint32_t *slot, char *err)
{
	struct fp_fib6 *c = calloc(1, sizeof(*c));
	struct rt6 *rt = calloc(1u << RT_MIN_BITS, sizeof(*rt));

	if (c == NULL || rt == NULL) {
		free(c);
		free(rt);
		fp_err(err, "no memory for an IPv6 FIB");
		return NULL;
	}
	if (pool_avail() == 0) {
		free(c);
		free(rt);
		fp_err(err, "IPv6 FIB full (all %u groups in use, fib6_groups)", pool.n);
		return NULL;
	}
	c->slot = slot;
	c->rt = rt;
	c->rt_bits = RT_MIN_BITS;
	c->max_routes = max_routes;
	c->root = grp_take(c, 0, 0, 0, 0, 0);
	pool.vrfs++;
	__atomic_store_n(slot, FP_FIB6_PTR | c->root, __ATOMIC_RELEASE);
	return c;
}

static void
free_groups(uint32_t g)
{
	const uint32_t *e = grp_e(g);
	unsigned i;

	for (i = 0; i < FP_FIB6_GROUP; i++)
		if (e[i] & FP_FIB6_PTR)
			free_groups(e[i] & FP_FIB6_GMASK);
	pool.free[pool.nfree++] = g;
}

void
fp_fib6_free(struct fp_fib6 *c)
{
	if (c == NULL)
		return;
	free_groups(c->root);
	free(c->rt);
	free(c);
	pool.vrfs--;
}

void
fp_fib6_retire(struct fp_fib6 *c)
{
	if (c->routes != 0 || c->ngroups != 1)
		RTE_LOG(ERR, USER1, "IPv6 FIB retired with %u routes, %u groups: leaked\n",
			c->routes, c->ngroups);
	__atomic_store_n(c->slot, 0, __ATOMIC_RELEASE);
	DBG_FIB(NULL);
	defer(c->root);
	free(c->rt);
	free(c);
	pool.vrfs--;
}

uint32_t
fp_fib6_routes(const struct fp_fib6 *c)
{
	return c->routes;
}

int
fp_fib6_get(const struct fp_fib6 *c, const uint8_t *p, uint8_t len, uint32_t *nh)
{
	uint64_t hi, lo;
	const struct rt6 *s;

	load_hilo(p, &hi, &lo);
	s = rt_find(c, hi, lo, len);
	if (s == NULL)
		return -ENOENT;
	*nh = s->nh;
	return 0;
}

int
fp_fib6_add(struct fp_fib6 *c, const uint8_t *p, uint8_t len, uint32_t nh, uint32_t *old,
	    char *err)
{
	uint64_t hi, lo;
	struct rt6 *s, r;
	uint32_t need;

	DBG_FIB(c);
	RTE_ASSERT(len <= 128 && nh < FP_FIB6_NH_MAX);
	load_hilo(p, &hi, &lo);
	s = rt_find(c, hi, lo, len);
	if (s != NULL) {
		*old = s->nh;
		if (*old != nh) {
			s->nh = nh;
			trie_replace(c, p, len, nh + 1);
		}
		return 0;
	}
	*old = FP_NH_INVALID;
	if (c->routes >= c->max_routes) {
		fp_err(err, "IPv6 FIB full (%u routes in the VRF, tables.fib6_routes)", c->max_routes);
		return -ENOSPC;
	}
	need = groups_needed(c, p, len);
	if (need > pool_avail()) {
		fp_err(err, "IPv6 FIB full (all %u groups of 256 entries in use, "
			    "fib6_groups; the route needs %u)", pool.n, need);
		return -ENOSPC;
	}
	if ((size_t)(c->routes + 1) * 10 > ((size_t)7 << c->rt_bits) &&
	    rt_resize(c, c->rt_bits + 1) < 0) {
		fp_err(err, "no memory for IPv6 route %u of the VRF", c->routes + 1);
		return -ENOMEM;
	}
	r = (struct rt6){.hi = hi, .lo = lo, .nh = nh, .len1 = (uint8_t)(len + 1)};
	rt_put(c->rt, c->rt_bits, &r);
	c->routes++;
	c->nlen[len]++;
	trie_add(c, p, len, nh + 1);
	return 0;
}

int
fp_fib6_del(struct fp_fib6 *c, const uint8_t *p, uint8_t len, uint32_t *old, char *err)
{
	uint64_t hi, lo;
	struct rt6 *s;
	uint32_t cv = 0;
	uint8_t cd = 0;
	int l;

	DBG_FIB(c);
	load_hilo(p, &hi, &lo);
	s = rt_find(c, hi, lo, len);
	if (s == NULL) {
		fp_err(err, "no such route");
		return -ENOENT;
	}
	*old = s->nh;
	rt_remove(c, s);
	c->routes--;
	c->nlen[len]--;
	/* the covering route: the longest shorter one, among lengths in use */
	for (l = (int)len - 1; l >= 0; l--) {
		uint64_t h = hi, o = lo;
		const struct rt6 *cs;

		if (c->nlen[l] == 0)
			continue;
		mask_bits(&h, &o, (unsigned)l);
		cs = rt_find(c, h, o, (uint8_t)l);
		if (cs != NULL) {
			cv = cs->nh + 1;
			cd = (uint8_t)l;
			break;
		}
	}
	trie_del(c, p, len, cv, cd);
	return 0;
}

void
fp_fib6_settle(struct fp_fib6 *c)
{
	unsigned bits = RT_MIN_BITS;

	DBG_FIB(c);
	fold_pending(c);
	reclaim(false);
	while (((size_t)1 << bits) < (size_t)c->routes * 4)
		bits++;
	if (bits < c->rt_bits && (size_t)c->routes * 8 < ((size_t)1 << c->rt_bits))
		rt_resize(c, bits); /* no memory: stays bigger */
}

int
fp_fib6_walk(const struct fp_fib6 *c,
	     int (*cb)(const uint8_t *prefix, uint8_t len, uint32_t nh, void *arg), void *arg)
{
	size_t i;
	int ret;

	for (i = 0; i < ((size_t)1 << c->rt_bits); i++) {
		const struct rt6 *s = &c->rt[i];
		uint8_t p[16];

		if (s->len1 == 0)
			continue;
		store_hilo(s->hi, s->lo, p);
		ret = cb(p, (uint8_t)(s->len1 - 1), s->nh, arg);
		if (ret != 0)
			return ret;
	}
	return 0;
}

void
fp_fib6_vrf_stats(const struct fp_fib6 *c, struct fp_fib6_stats *out)
{
	out->routes = 0;
	out->groups = 0;
	out->bytes = 0;
	out->ctl_bytes = 0;
	if (c == NULL)
		return;
	out->routes = c->routes;
	out->groups = c->ngroups;
	out->bytes = sizeof(uint32_t) +
		     (uint64_t)c->ngroups * (FP_FIB6_GROUP * sizeof(uint32_t) + sizeof(struct fp_fib6_meta));
	out->ctl_bytes = sizeof(*c) + (sizeof(struct rt6) << c->rt_bits) +
			 (uint64_t)c->ngroups * (FP_FIB6_GROUP + sizeof(struct gctl));
}

void
fp_fib6_pool_stats(struct fp_fib6_stats *out)
{
	reclaim(false);
	out->vrfs = pool.vrfs;
	out->pool_groups = pool.n;
	out->pool_free = pool.nfree;
	out->pool_pending = pool.npending;
	out->pool_bytes = (uint64_t)pool.n * (FP_FIB6_GROUP * sizeof(uint32_t) + sizeof(*pool.meta));
	out->pool_ctl_bytes = (uint64_t)pool.n * (FP_FIB6_GROUP + sizeof(*pool.ctl) + sizeof(uint32_t)) +
			      (uint64_t)pool.dq_cap * sizeof(*pool.dq);
}
