/* SPDX-License-Identifier: Apache-2.0
 * Filament's IPv4 FIB: the control side of the trie described in fp_fib4.h.
 *
 * Everything here runs on the one control thread; lcores only read the
 * tables through fp_fib4_match. Invariants the code keeps:
 *
 *  - Entries are leaf-pushed: each holds the longest match over its range
 *    (nh + 1, or 0), or a pointer to a group, and dep[] (control only) says
 *    which prefix length it came from, so an update touches exactly the
 *    entries of its own prefix whose route is not more specific.
 *  - A group exists at boundary b (it covers a /b) iff some route longer
 *    than /b lies inside it; nlong[g] counts them. Groups at the /24
 *    boundary hold no pointer: a lookup ends after at most 32 bits.
 *  - Lcore-visible entries change only by one 32-bit atomic store each. A
 *    new group, or a chain of new groups, is filled before the one store
 *    that links it; when a delete leaves a group with nlong 0 (it then holds
 *    one value everywhere) that value is stored in the parent entry first,
 *    and the group is queued with an RCU token taken after that store.
 *  - An 8-bit root's lcore-visible entries may be shortcuts past groups
 *    that hold only the path to the next one (root_sync): they are
 *    recomputed after every change under them, and before anything that
 *    change unlinked is queued, since a shortcut may point past the
 *    unlinking store.
 *  - What is queued is reused (groups) or freed (root tables) only once
 *    rte_rcu_qsbr_check says every lcore passed a quiescent state since its
 *    token: no reader can still hold it. Nothing waits per update; the
 *    allocator waits for the oldest grace period only when the pool has no
 *    free group left but some pending.
 *  - A root is resized by building the new one aside from the current
 *    structure (it shares every group below its own level) and publishing
 *    it with one store of the root word; what only the old root reached is
 *    queued after that store.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_log.h>
#include <rte_malloc.h>

#include "fp_fib4.h"
#include "fp_rcu.h"

/* fp_init.c: the fast path's error messages. The module needs nothing else
 * of the fast path, so it also builds alone (dpdk/fastpath/fibtest). */
void fp_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Root resizing. A bigger root is worth it once the groups of a VRF are a
 * fair share of its size: it then costs at most about 4 times what the VRF
 * already uses and takes one level off most lookups. A VRF goes back to a
 * smaller root once it would use 4 times less than that (hysteresis: a VRF
 * near a threshold does not flap between two sizes). */
#define PROMOTE16 64u    /* groups: 8 -> 16 bits (root 256 KiB) */
#define DEMOTE16 16u     /* groups after demotion, below: 16 -> 8 */
#define PROMOTE24 16384u /* groups: 16 -> 24 bits (root 64 MiB) */
#define DEMOTE24 4096u   /* groups after demotion, below: 24 -> 16 */

#define RT_MIN_BITS 4 /* route table: 16 slots at least */

/* Something unlinked, waiting for a grace period: a group, or a root
 * table (mem). */
struct dq_item {
	uint64_t token;
	void *mem;
	uint32_t group;
};

static struct {
	uint32_t *e;        /* n groups of 256 entries, read by lcores */
	struct fp_fib4_skip *skip; /* per group: its shortcut's check */
	uint8_t *dep;       /* prefix length behind each entry */
	uint32_t *nlong;    /* per group: routes longer than its prefix in it */
	uint32_t *free;     /* stack of free groups */
	uint32_t n, nfree, npending;
	struct dq_item *dq; /* FIFO, tokens in increasing order */
	uint32_t dq_head, dq_len, dq_cap;
	struct rte_rcu_qsbr *qs;
	uint32_t vrfs;
} pool;

/* on a cache line of its own: lcores read it, nothing near it is written */
struct fp_fib4_lc fp_fib4_lc;

/* One VRF's FIB. Lcores read only the root word it publishes in *slot, and
 * the tables and groups that word leads to. */
struct fp_fib4 {
	uintptr_t *slot;    /* RCU: where the root word is published */
	uint32_t *rtbl;     /* the lcores' root table */
	uint32_t *rctl;     /* the root as updates see it: with 8 bits a table
	                     * of its own, of which rtbl may shortcut pointers
	                     * (root_sync); else rtbl itself */
	uint8_t *rdep;      /* prefix length behind each root entry */
	uint32_t *cnt8;     /* root >= 16 bits: routes longer than /8, per /8 */
	uint32_t *cnt16;    /* root of 24 bits: routes longer than /16, per /16 */
	uint32_t nz8, nz16; /* counters not 0: the groups a demotion needs */
	uint32_t ngroups;   /* groups linked under the root */
	uint8_t rbits;      /* 8, 16 or 24 */
	uint32_t routes, max_routes;
	uint32_t nlen[33];  /* routes per prefix length */
	uint64_t lenmask;   /* bit l: some route of length l */
	uint64_t *rt;       /* the routes: open addressing, linear probing */
	unsigned rt_bits;   /* 2^rt_bits slots, at most 70% used */
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

static inline uint32_t
pfx_mask(unsigned len)
{
	return len == 0 ? 0 : UINT32_MAX << (32 - len);
}

/* ---- the pool and deferred reclamation ---------------------------------- */

int
fp_fib4_pool_init(uint32_t n, struct rte_rcu_qsbr *qs, char *err)
{
	uint32_t i;

	if (n == 0 || n > FP_FIB4_GROUPS_MAX) {
		fp_err(err, "IPv4 FIB groups %u: must be 1..%u", n, FP_FIB4_GROUPS_MAX);
		return -EINVAL;
	}
	memset(&pool, 0, sizeof(pool));
	/* Not zeroed: a group is filled when it is taken. */
	pool.e = rte_malloc("fp_fib4_groups", (size_t)n * FP_FIB4_GROUP * sizeof(uint32_t),
			    RTE_CACHE_LINE_SIZE);
	pool.skip = rte_malloc("fp_fib4_skips", (size_t)n * sizeof(*pool.skip), RTE_CACHE_LINE_SIZE);
	pool.dep = malloc((size_t)n * FP_FIB4_GROUP);
	pool.nlong = malloc((size_t)n * sizeof(uint32_t));
	pool.free = malloc((size_t)n * sizeof(uint32_t));
	pool.dq_cap = n + 64;
	pool.dq = malloc(pool.dq_cap * sizeof(*pool.dq));
	if (!pool.e || !pool.skip || !pool.dep || !pool.nlong || !pool.free || !pool.dq) {
		fp_fib4_pool_fini();
		fp_err(err, "no memory for the IPv4 FIB: %u groups of 1 KiB (fib4_tbl8s)", n);
		return -ENOMEM;
	}
	/* Lowest index first: a small FIB stays in few pages. */
	for (i = 0; i < n; i++)
		pool.free[i] = n - 1 - i;
	pool.n = pool.nfree = n;
	pool.qs = qs;
	/* Biased, so that a pointer entry (FP_FIB4_PTR | g << 8) ORed with
	 * the next address byte indexes the pool directly: fp_fib4_match. */
	fp_fib4_lc.groups = (const uint32_t *)((uintptr_t)pool.e - ((uintptr_t)FP_FIB4_PTR << 2));
	fp_fib4_lc.skips = pool.skip;
	return 0;
}

void
fp_fib4_pool_fini(void)
{
	/* No lcore runs: what waits for a grace period goes now. */
	for (; pool.dq_len > 0; pool.dq_len--, pool.dq_head = (pool.dq_head + 1) % pool.dq_cap)
		rte_free(pool.dq[pool.dq_head].mem);
	rte_free(pool.e);
	rte_free(pool.skip);
	free(pool.dep);
	free(pool.nlong);
	free(pool.free);
	free(pool.dq);
	memset(&pool, 0, sizeof(pool));
}

#ifdef FP_FIB4_DEBUG
/* Test builds (dpdk/fastpath/fibtest): the FIB being updated, to check
 * that a group is unreachable by lookups when it is queued for reuse (with
 * an 8-bit root: the check walks every group the root reaches). */
static const struct fp_fib4 *dbg_fib;
static bool dbg_reaches(const struct fp_fib4 *c, uint32_t g);
#define DBG_FIB(c) (dbg_fib = (c))
#else
#define DBG_FIB(c) do { } while (0)
#endif

static void
release(uint32_t g, void *mem)
{
	if (mem != NULL) {
		rte_free(mem);
		return;
	}
	pool.free[pool.nfree++] = g;
	pool.npending--;
}

/* Recycle what every lcore is done with. wait: if no group is free, wait
 * for the oldest pending one's grace period (microseconds: lcores report a
 * quiescent state every loop and are offline while they sleep). */
static void
reclaim(bool wait)
{
	while (pool.dq_len > 0) {
		struct dq_item *it = &pool.dq[pool.dq_head];

		if (rte_rcu_qsbr_check(pool.qs, it->token, false) != 1) {
			if (!wait || pool.nfree > 0)
				break;
			fp_rcu_wait(pool.qs, it->token);
		}
		release(it->group, it->mem);
		pool.dq_head = (pool.dq_head + 1) % pool.dq_cap;
		pool.dq_len--;
	}
}

static int
dq_grow(void)
{
	uint32_t cap = pool.dq_cap * 2, i;
	struct dq_item *q = malloc(cap * sizeof(*q));

	if (q == NULL)
		return -ENOMEM;
	for (i = 0; i < pool.dq_len; i++)
		q[i] = pool.dq[(pool.dq_head + i) % pool.dq_cap];
	free(pool.dq);
	pool.dq = q;
	pool.dq_cap = cap;
	pool.dq_head = 0;
	return 0;
}

/* g (or mem) was just unlinked by a store of the caller: queue it. The
 * token is taken after that store (rte_rcu_qsbr_start is a release), so an
 * lcore that may still hold g has not reported the quiescent state the
 * token asks for. */
static void
defer(uint32_t g, void *mem)
{
	uint64_t token = rte_rcu_qsbr_start(pool.qs);

#ifdef FP_FIB4_DEBUG
	if (mem == NULL && dbg_fib != NULL && dbg_reaches(dbg_fib, g))
		rte_panic("fp_fib4: group %u queued for reuse while lookups reach it\n", g);
#endif
	if (mem == NULL)
		pool.npending++;
	if (pool.dq_len == pool.dq_cap && dq_grow() < 0) {
		/* Only root tables can overflow the queue (it has room for
		 * every group); without memory to queue one, wait here. */
		fp_rcu_wait(pool.qs, token);
		release(g, mem);
		return;
	}
	pool.dq[(pool.dq_head + pool.dq_len) % pool.dq_cap] =
		(struct dq_item){.token = token, .mem = mem, .group = g};
	pool.dq_len++;
}

/* A group filled with value v of depth d, not reachable by any lcore
 * (free, and past its grace period). The caller checked that there is one
 * free or pending. */
static uint32_t
grp_take(uint32_t v, uint8_t d)
{
	uint32_t g, i, *e;

	if (pool.nfree == 0)
		reclaim(true);
	RTE_VERIFY(pool.nfree > 0);
	g = pool.free[--pool.nfree];
	e = grp_e(g);
	for (i = 0; i < FP_FIB4_GROUP; i++)
		e[i] = v;
	memset(grp_d(g), d, FP_FIB4_GROUP);
	pool.nlong[g] = 0;
	return g;
}

static inline uint32_t
pool_avail(void)
{
	return pool.nfree + pool.npending;
}

/* ---- the route table (control side) --------------------------------------
 * One 64-bit slot per route: prefix << 32 | (len + 1) << 24 | nh, 0 = empty.
 * Sized to the routes: at most 70% full (linear probing stays short), and
 * back to at most 4 slots a route by fp_fib4_settle once below 8, so 1M
 * routes take 16 MiB and a small VRF 128 bytes. */

#define RT_KEY(p, l) (((uint64_t)(p) << 32) | ((uint64_t)(l) + 1) << 24)
#define RT_KEYMASK (~(uint64_t)0xffffff)
#define RT_NH(s) ((uint32_t)((s) & 0xffffff))
#define RT_LEN(s) ((uint8_t)((((s) >> 24) & 0x3f) - 1))
#define RT_PFX(s) ((uint32_t)((s) >> 32))

static inline uint32_t
rt_home(uint64_t key, unsigned bits)
{
	return (uint32_t)(((key >> 24) * 0x9e3779b97f4a7c15ull) >> (64 - bits));
}

static uint64_t *
rt_find(const struct fp_fib4 *c, uint64_t key)
{
	uint32_t mask = (1u << c->rt_bits) - 1, i = rt_home(key, c->rt_bits);

	for (;; i = (i + 1) & mask) {
		uint64_t s = c->rt[i];

		if (s == 0)
			return NULL;
		if ((s & RT_KEYMASK) == key)
			return &c->rt[i];
	}
}

static void
rt_put(uint64_t *rt, unsigned bits, uint64_t s)
{
	uint32_t mask = (1u << bits) - 1, i = rt_home(s & RT_KEYMASK, bits);

	while (rt[i] != 0)
		i = (i + 1) & mask;
	rt[i] = s;
}

static int
rt_resize(struct fp_fib4 *c, unsigned bits)
{
	uint64_t *rt = calloc((size_t)1 << bits, sizeof(uint64_t));
	size_t i;

	if (rt == NULL)
		return -ENOMEM;
	for (i = 0; i < ((size_t)1 << c->rt_bits); i++)
		if (c->rt[i] != 0)
			rt_put(rt, bits, c->rt[i]);
	free(c->rt);
	c->rt = rt;
	c->rt_bits = bits;
	return 0;
}

/* Backward-shift deletion: no tombstones, lookups stay short. */
static void
rt_remove(struct fp_fib4 *c, uint64_t *slot)
{
	uint32_t mask = (1u << c->rt_bits) - 1;
	uint32_t i = (uint32_t)(slot - c->rt), j = i;

	for (;;) {
		uint32_t k;

		j = (j + 1) & mask;
		if (c->rt[j] == 0)
			break;
		k = rt_home(c->rt[j] & RT_KEYMASK, c->rt_bits);
		/* the entry at j may stay iff its home is cyclically in (i, j] */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		c->rt[i] = c->rt[j];
		i = j;
	}
	c->rt[i] = 0;
}

/* ---- the trie ------------------------------------------------------------ */

/* Entries [i, i + n) of a table, and of the groups under them: those whose
 * route has length <= len (le: adding a route of that length) or == len
 * (replacing or deleting it) become val, of depth d. Recursion depth <= 3. */
static void
apply(uint32_t *t, uint8_t *dep, uint32_t i, uint32_t n, uint8_t len, bool le,
      uint32_t val, uint8_t d)
{
	for (; n > 0; n--, i++) {
		uint32_t e = t[i];

		if (e & FP_FIB4_PTR) {
			uint32_t g = FP_FIB4_GRP(e);

			apply(grp_e(g), grp_d(g), 0, FP_FIB4_GROUP, len, le, val, d);
			continue;
		}
		if (le ? dep[i] <= len : dep[i] == len) {
			if (e != val)
				__atomic_store_n(&t[i], val, __ATOMIC_RELEASE);
			dep[i] = d;
		}
	}
}

/* Groups an add of prefix/len needs: one per boundary below len that its
 * path does not cross through a group yet. */
static uint32_t
groups_needed(const struct fp_fib4 *c, uint32_t p, uint8_t len)
{
	const uint32_t *t = c->rctl;
	unsigned end = c->rbits;
	uint32_t i = p >> (32 - end);

	while (len > end) {
		uint32_t e = t[i];

		if (!(e & FP_FIB4_PTR))
			return (len - end + 7) / 8;
		t = grp_e(FP_FIB4_GRP(e));
		i = (p >> (24 - end)) & 0xff;
		end += 8;
	}
	return 0;
}

/* Group g holds one pointer (at *at) and one value everywhere else (*bg). */
static bool
lone_ptr(uint32_t g, uint32_t *at, uint32_t *bg)
{
	const uint32_t *e = grp_e(g);
	uint32_t i, ptr = FP_FIB4_GROUP, v = e[e[0] & FP_FIB4_PTR ? 1 : 0];

	for (i = 0; i < FP_FIB4_GROUP; i++) {
		if (e[i] & FP_FIB4_PTR) {
			if (ptr != FP_FIB4_GROUP)
				return false;
			ptr = i;
		} else if (e[i] != v) {
			return false;
		}
	}
	if (ptr == FP_FIB4_GROUP)
		return false;
	*at = ptr;
	*bg = v;
	return true;
}

/* The lcores' entry j of an 8-bit root: the real one (rctl[j]), or a
 * shortcut past the one or two groups below it that hold nothing but the
 * path to the next group amid one value: a small VRF's /32s then take 2
 * loads instead of 4. The shortcut's check (the skipped address bits, and
 * the value where they differ) is written before the entry that uses it;
 * the bits never change for a group (its place in the tree fixes them),
 * the value is one 32-bit store. Called after every change under j, before
 * anything it unlinked is queued for reuse (a shortcut may point past the
 * unlinking store). */
static void
root_sync(struct fp_fib4 *c, uint32_t j)
{
	uint32_t e = c->rctl[j], v = e, a, b, bg, bg2;

	if (e & FP_FIB4_PTR) {
		uint32_t g = FP_FIB4_GRP(e);

		if (lone_ptr(g, &a, &bg)) {
			uint32_t t = FP_FIB4_GRP(grp_e(g)[a]), tag = a, k = 1;

			if (lone_ptr(t, &b, &bg2) && bg2 == bg) {
				t = FP_FIB4_GRP(grp_e(t)[b]);
				tag = a << 8 | b;
				k = 2;
			}
			__atomic_store_n(&pool.skip[t].tag, tag, __ATOMIC_RELAXED);
			__atomic_store_n(&pool.skip[t].miss, bg, __ATOMIC_RELAXED);
			v = FP_FIB4_PTR_TO(t) | k << FP_FIB4_SKIP_SHIFT;
		}
	}
	if (c->rtbl[j] != v)
		__atomic_store_n(&c->rtbl[j], v, __ATOMIC_RELEASE);
}

/* root_sync for the root entries prefix/len spans. */
static void
root_sync_range(struct fp_fib4 *c, uint32_t p, uint8_t len)
{
	uint32_t j, n;

	if (c->rctl == c->rtbl)
		return;
	n = len >= c->rbits ? 1 : 1u << (c->rbits - len);
	for (j = p >> (32 - c->rbits); n > 0; n--, j++)
		root_sync(c, j);
}

/* A new route (the pool has the groups it needs). */
static void
trie_add(struct fp_fib4 *c, uint32_t p, uint8_t len, uint32_t val)
{
	uint32_t *t = c->rctl, *pub = NULL, pubval = 0;
	uint8_t *dep = c->rdep;
	unsigned end = c->rbits;
	uint32_t i = p >> (32 - end);

	while (len > end) {
		uint32_t e = t[i], g;

		if (e & FP_FIB4_PTR) {
			g = FP_FIB4_GRP(e);
		} else {
			/* The entry's value everywhere in the new group:
			 * lookups through it answer as before. */
			g = grp_take(e, dep[i]);
			c->ngroups++;
			if (pub == NULL) {
				/* linked last, once everything below is built */
				pub = &t[i];
				pubval = FP_FIB4_PTR_TO(g);
			} else {
				t[i] = FP_FIB4_PTR_TO(g); /* in a group no lcore reaches yet */
			}
		}
		pool.nlong[g]++;
		t = grp_e(g);
		dep = grp_d(g);
		i = (p >> (24 - end)) & 0xff;
		end += 8;
	}
	apply(t, dep, i, 1u << (end - len), len, true, val, len);
	if (pub != NULL)
		__atomic_store_n(pub, pubval, __ATOMIC_RELEASE);
	root_sync_range(c, p, len);
}

/* An existing route changes next-hop: only its own entries change. */
static void
trie_replace(struct fp_fib4 *c, uint32_t p, uint8_t len, uint32_t val)
{
	uint32_t *t = c->rctl;
	uint8_t *dep = c->rdep;
	unsigned end = c->rbits;
	uint32_t i = p >> (32 - end);

	while (len > end) {
		uint32_t g = FP_FIB4_GRP(t[i]);

		t = grp_e(g);
		dep = grp_d(g);
		i = (p >> (24 - end)) & 0xff;
		end += 8;
	}
	apply(t, dep, i, 1u << (end - len), len, false, val, len);
	root_sync_range(c, p, len);
}

/* A route goes: its entries take the covering route's value (cv, depth
 * cd), and groups left without a longer route are folded, deepest first. */
static void
trie_del(struct fp_fib4 *c, uint32_t p, uint8_t len, uint32_t cv, uint8_t cd)
{
	uint32_t *pt[3], pi[3], pg[3], gone[3];
	uint8_t *pd[3];
	uint32_t *t = c->rctl;
	uint8_t *dep = c->rdep;
	unsigned end = c->rbits, k = 0, n = 0;
	uint32_t i = p >> (32 - end);

	while (len > end) {
		/* the route exists, so does every group on its path */
		RTE_ASSERT(t[i] & FP_FIB4_PTR);
		pt[k] = t;
		pd[k] = dep;
		pi[k] = i;
		pg[k] = FP_FIB4_GRP(t[i]);
		t = grp_e(pg[k]);
		dep = grp_d(pg[k]);
		k++;
		i = (p >> (24 - end)) & 0xff;
		end += 8;
	}
	apply(t, dep, i, 1u << (end - len), len, false, cv, cd);
	while (k-- > 0) {
		uint32_t g = pg[k];

		if (--pool.nlong[g] != 0)
			continue;
		/* No route longer than the group's prefix is left in it: one
		 * value everywhere, which the parent entry takes over before
		 * the group waits for its grace period. */
		__atomic_store_n(&pt[k][pi[k]], grp_e(g)[0], __ATOMIC_RELEASE);
		pd[k][pi[k]] = grp_d(g)[0];
		gone[n++] = g;
		c->ngroups--;
	}
	/* no shortcut points to them any more either: then they wait */
	root_sync_range(c, p, len);
	while (n-- > 0)
		defer(gone[n], NULL);
}

/* ---- root resizing ------------------------------------------------------- */

/* Publish a new root (nt, the lcores' table; nctl, the updates' view:
 * the same but with 8 bits): one store. Returns the old lcores' table,
 * to be queued once the caller queued what only the old root linked. */
static uint32_t *
root_swap(struct fp_fib4 *c, uint32_t *nt, uint32_t *nctl, uint8_t *nd, unsigned bits)
{
	uint32_t *old = c->rtbl;

	__atomic_store_n(c->slot, (uintptr_t)nt | (32 - bits), __ATOMIC_RELEASE);
	c->rtbl = nt;
	c->rctl = nctl;
	free(c->rdep);
	c->rdep = nd;
	c->rbits = (uint8_t)bits;
	return old;
}

/* 8 -> 16 or 16 -> 24 bits: each entry of the old root expands into 256,
 * copied from the group it points to (whose own groups are shared as they
 * are) or from its value. The old root's groups are released after it. */
static void
promote(struct fp_fib4 *c)
{
	unsigned ob = c->rbits, nb = ob + 8;
	size_t on = (size_t)1 << ob, j, k;
	uint32_t *nt, *cnt, *old, *octl = c->rctl, nz = 0;
	uint8_t *nd;

	nt = rte_malloc("fp_fib4_root", sizeof(uint32_t) << nb, RTE_CACHE_LINE_SIZE);
	nd = malloc((size_t)1 << nb);
	cnt = calloc(on, sizeof(uint32_t));
	if (nt == NULL || nd == NULL || cnt == NULL) {
		/* Stay: lookups are as right, one level longer. */
		rte_free(nt);
		free(nd);
		free(cnt);
		return;
	}
	for (j = 0; j < on; j++) {
		uint32_t e = octl[j], *dt = &nt[j << 8];
		uint8_t *dd = &nd[j << 8];

		if (e & FP_FIB4_PTR) {
			uint32_t g = FP_FIB4_GRP(e);

			memcpy(dt, grp_e(g), FP_FIB4_GROUP * sizeof(uint32_t));
			memcpy(dd, grp_d(g), FP_FIB4_GROUP);
			cnt[j] = pool.nlong[g];
			nz++;
		} else {
			for (k = 0; k < FP_FIB4_GROUP; k++)
				dt[k] = e;
			memset(dd, c->rdep[j], FP_FIB4_GROUP);
		}
	}
	old = root_swap(c, nt, nt, nd, nb);
	for (j = 0; j < on; j++)
		if (octl[j] & FP_FIB4_PTR) {
			defer(FP_FIB4_GRP(octl[j]), NULL);
			c->ngroups--;
		}
	if (octl != old)
		free(octl); /* the updates' view of an 8-bit root */
	defer(0, old);
	if (nb == 16) {
		c->cnt8 = cnt;
		c->nz8 = nz;
	} else {
		c->cnt16 = cnt;
		c->nz16 = nz;
	}
}

/* 16 -> 8 or 24 -> 16 bits: each run of 256 old entries becomes one entry,
 * a value if no route longer than its prefix is inside (then all 256 hold
 * the same), else a new group holding them (and pointing to the same
 * groups). Needs the pool's groups: skipped when it lacks them. */
static void
demote(struct fp_fib4 *c)
{
	unsigned ob = c->rbits, nb = ob - 8;
	uint32_t *cnt = ob == 16 ? c->cnt8 : c->cnt16;
	uint32_t need = ob == 16 ? c->nz8 : c->nz16;
	size_t nn = (size_t)1 << nb, j;
	uint32_t *nt, *nctl;
	uint8_t *nd;

	if (need > pool_avail())
		return;
	nt = rte_malloc("fp_fib4_root", sizeof(uint32_t) << nb, RTE_CACHE_LINE_SIZE);
	nctl = nb == 8 ? malloc(sizeof(uint32_t) << nb) : nt;
	nd = malloc(nn);
	if (nt == NULL || nctl == NULL || nd == NULL) {
		rte_free(nt);
		if (nctl != nt)
			free(nctl);
		free(nd);
		return;
	}
	for (j = 0; j < nn; j++) {
		const uint32_t *st = &c->rtbl[j << 8];
		const uint8_t *sd = &c->rdep[j << 8];
		uint32_t g;

		if (cnt[j] == 0) {
			nctl[j] = nt[j] = st[0];
			nd[j] = sd[0];
			continue;
		}
		g = grp_take(0, 0);
		memcpy(grp_e(g), st, FP_FIB4_GROUP * sizeof(uint32_t));
		memcpy(grp_d(g), sd, FP_FIB4_GROUP);
		pool.nlong[g] = cnt[j];
		c->ngroups++;
		nctl[j] = nt[j] = FP_FIB4_PTR_TO(g);
	}
	/* Published with its real entries (right, if a level longer), then
	 * shortcut where it can be. */
	defer(0, root_swap(c, nt, nctl, nd, nb));
	root_sync_range(c, 0, 0);
	free(cnt);
	if (ob == 16) {
		c->cnt8 = NULL;
		c->nz8 = 0;
	} else {
		c->cnt16 = NULL;
		c->nz16 = 0;
	}
}

/* Promotion needs no group (it releases some), so it may happen in the
 * middle of a batch that is later undone: the undo then needs fewer groups
 * than the batch had, never more. */
static void
maybe_promote(struct fp_fib4 *c)
{
	if (c->rbits == 8 && c->ngroups >= PROMOTE16)
		promote(c);
	if (c->rbits == 16 && c->ngroups >= PROMOTE24)
		promote(c);
}

static void
cnt_update(struct fp_fib4 *c, uint32_t p, uint8_t len, bool add)
{
	if (c->cnt8 != NULL && len > 8) {
		uint32_t *x = &c->cnt8[p >> 24];

		if (add ? (*x)++ == 0 : --(*x) == 0)
			c->nz8 += add ? 1 : -1;
	}
	if (c->cnt16 != NULL && len > 16) {
		uint32_t *x = &c->cnt16[p >> 16];

		if (add ? (*x)++ == 0 : --(*x) == 0)
			c->nz16 += add ? 1 : -1;
	}
}

#ifdef FP_FIB4_DEBUG
static bool
dbg_reaches_from(const uint32_t *t, size_t n, uint32_t g)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint32_t e = __atomic_load_n(&t[i], __ATOMIC_RELAXED);

		if ((e & FP_FIB4_PTR) &&
		    (FP_FIB4_GRP(e) == g || dbg_reaches_from(grp_e(FP_FIB4_GRP(e)), FP_FIB4_GROUP, g)))
			return true;
	}
	return false;
}

static bool
dbg_reaches(const struct fp_fib4 *c, uint32_t g)
{
	return c->rbits == 8 && dbg_reaches_from(c->rtbl, FP_FIB4_GROUP, g);
}
#endif

/* ---- API ----------------------------------------------------------------- */

struct fp_fib4 *
fp_fib4_create(uint32_t max_routes, uintptr_t *slot, char *err)
{
	struct fp_fib4 *c = calloc(1, sizeof(*c));
	uint32_t *t = rte_zmalloc("fp_fib4_root", sizeof(uint32_t) << 8, RTE_CACHE_LINE_SIZE);
	uint32_t *ctl = calloc(1u << 8, sizeof(uint32_t));
	uint8_t *d = calloc(1u << 8, 1);
	uint64_t *rt = calloc(1u << RT_MIN_BITS, sizeof(uint64_t));

	if (c == NULL || t == NULL || ctl == NULL || d == NULL || rt == NULL) {
		free(c);
		rte_free(t);
		free(ctl);
		free(d);
		free(rt);
		fp_err(err, "no memory for an IPv4 FIB");
		return NULL;
	}
	c->slot = slot;
	c->rtbl = t;
	c->rctl = ctl;
	c->rdep = d;
	c->rbits = 8;
	c->rt = rt;
	c->rt_bits = RT_MIN_BITS;
	c->max_routes = max_routes;
	pool.vrfs++;
	/* an empty root, complete before lcores can reach it */
	__atomic_store_n(slot, (uintptr_t)t | (32 - 8), __ATOMIC_RELEASE);
	return c;
}

static void
free_groups(const uint32_t *t, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (t[i] & FP_FIB4_PTR) {
			uint32_t g = FP_FIB4_GRP(t[i]);

			free_groups(grp_e(g), FP_FIB4_GROUP);
			pool.free[pool.nfree++] = g;
		}
}

void
fp_fib4_free(struct fp_fib4 *c)
{
	if (c == NULL)
		return;
	free_groups(c->rctl, (size_t)1 << c->rbits);
	if (c->rctl != c->rtbl)
		free(c->rctl);
	rte_free(c->rtbl);
	free(c->rdep);
	free(c->cnt8);
	free(c->cnt16);
	free(c->rt);
	free(c);
	pool.vrfs--;
}

void
fp_fib4_retire(struct fp_fib4 *c)
{
	/* No route: every group was folded, the root holds values only. */
	if (c->routes != 0 || c->ngroups != 0)
		RTE_LOG(ERR, USER1, "IPv4 FIB retired with %u routes, %u groups: leaked\n",
			c->routes, c->ngroups);
	__atomic_store_n(c->slot, 0, __ATOMIC_RELEASE);
	DBG_FIB(NULL);
	defer(0, c->rtbl);
	if (c->rctl != c->rtbl)
		free(c->rctl);
	free(c->rdep);
	free(c->cnt8);
	free(c->cnt16);
	free(c->rt);
	free(c);
	pool.vrfs--;
}

uint32_t
fp_fib4_routes(const struct fp_fib4 *c)
{
	return c->routes;
}

int
fp_fib4_get(const struct fp_fib4 *f, uint32_t p, uint8_t len, uint32_t *nh)
{
	const uint64_t *s = rt_find(f, RT_KEY(p, len));

	if (s == NULL)
		return -ENOENT;
	*nh = RT_NH(*s);
	return 0;
}

int
fp_fib4_add(struct fp_fib4 *f, uint32_t p, uint8_t len, uint32_t nh, uint32_t *old, char *err)
{
	struct fp_fib4 *c = f;
	uint64_t key = RT_KEY(p, len), *s = rt_find(c, key);
	uint32_t need;

	DBG_FIB(c);
	RTE_ASSERT(len <= 32 && (p & ~pfx_mask(len)) == 0 && nh < FP_FIB4_NH_MAX);
	if (s != NULL) {
		*old = RT_NH(*s);
		if (*old != nh) {
			*s = key | nh;
			trie_replace(c, p, len, nh + 1);
		}
		return 0;
	}
	*old = FP_NH_INVALID;
	if (c->routes >= c->max_routes) {
		fp_err(err, "IPv4 FIB full (%u routes in the VRF, tables.fib4_routes)", c->max_routes);
		return -ENOSPC;
	}
	need = groups_needed(c, p, len);
	if (need > pool_avail()) {
		fp_err(err, "IPv4 FIB full (all %u groups of 256 entries in use, "
				 "fib4_tbl8s; the route needs %u)", pool.n, need);
		return -ENOSPC;
	}
	if ((size_t)(c->routes + 1) * 10 > ((size_t)7 << c->rt_bits) &&
	    rt_resize(c, c->rt_bits + 1) < 0) {
		fp_err(err, "no memory for IPv4 route %u of the VRF", c->routes + 1);
		return -ENOMEM;
	}
	rt_put(c->rt, c->rt_bits, key | nh);
	c->routes++;
	c->nlen[len]++;
	c->lenmask |= 1ull << len;
	cnt_update(c, p, len, true);
	trie_add(c, p, len, nh + 1);
	maybe_promote(c);
	return 0;
}

int
fp_fib4_del(struct fp_fib4 *f, uint32_t p, uint8_t len, uint32_t *old, char *err)
{
	struct fp_fib4 *c = f;
	uint64_t *s = rt_find(c, RT_KEY(p, len)), m;
	uint32_t cv = 0;
	uint8_t cd = 0;

	DBG_FIB(c);
	if (s == NULL) {
		fp_err(err, "no such route");
		return -ENOENT;
	}
	*old = RT_NH(*s);
	rt_remove(c, s);
	c->routes--;
	if (--c->nlen[len] == 0)
		c->lenmask &= ~(1ull << len);
	cnt_update(c, p, len, false);
	/* The covering route: the longest shorter one that exists, found
	 * among the lengths in use only (a handful in practice). */
	for (m = c->lenmask & ((1ull << len) - 1); m != 0; ) {
		unsigned l = 63 - __builtin_clzll(m);
		const uint64_t *cs = rt_find(c, RT_KEY(p & pfx_mask(l), l));

		if (cs != NULL) {
			cv = RT_NH(*cs) + 1;
			cd = (uint8_t)l;
			break;
		}
		m &= ~(1ull << l);
	}
	trie_del(c, p, len, cv, cd);
	return 0;
}

void
fp_fib4_settle(struct fp_fib4 *f)
{
	struct fp_fib4 *c = f;
	unsigned bits = RT_MIN_BITS;

	DBG_FIB(c);
	reclaim(false);
	maybe_promote(c);
	if (c->rbits == 24 && c->ngroups + c->nz16 < DEMOTE24)
		demote(c);
	if (c->rbits == 16 && c->ngroups + c->nz8 < DEMOTE16)
		demote(c);
	/* Route table: back to 1/8..1/4 full once below 1/8. */
	while (((size_t)1 << bits) < (size_t)c->routes * 4)
		bits++;
	if (bits < c->rt_bits && (size_t)c->routes * 8 < ((size_t)1 << c->rt_bits))
		rt_resize(c, bits); /* no memory: stays bigger */
}

int
fp_fib4_walk(const struct fp_fib4 *f,
	     int (*cb)(uint32_t prefix, uint8_t len, uint32_t nh, void *arg), void *arg)
{
	const struct fp_fib4 *c = f;
	size_t i;
	int ret;

	for (i = 0; i < ((size_t)1 << c->rt_bits); i++) {
		uint64_t s = c->rt[i];

		if (s != 0 && (ret = cb(RT_PFX(s), RT_LEN(s), RT_NH(s), arg)) != 0)
			return ret;
	}
	return 0;
}

void
fp_fib4_vrf_stats(const struct fp_fib4 *f, struct fp_fib4_stats *out)
{
	const struct fp_fib4 *c;

	out->routes = 0;
	out->root_bits = 0;
	out->groups = 0;
	out->bytes = 0;
	out->ctl_bytes = 0;
	if (f == NULL)
		return;
	c = f;
	out->routes = c->routes;
	out->root_bits = c->rbits;
	out->groups = c->ngroups;
	out->bytes = sizeof(uintptr_t) + (sizeof(uint32_t) << c->rbits) +
		     (uint64_t)c->ngroups * FP_FIB4_GROUP * sizeof(uint32_t);
	out->ctl_bytes = sizeof(*c) + (sizeof(uint64_t) << c->rt_bits) + ((size_t)1 << c->rbits) +
			 (c->rctl != c->rtbl ? sizeof(uint32_t) << c->rbits : 0) +
			 (c->cnt8 ? 256 * sizeof(uint32_t) : 0) +
			 (c->cnt16 ? 65536 * sizeof(uint32_t) : 0);
}

void
fp_fib4_pool_stats(struct fp_fib4_stats *out)
{
	reclaim(false);
	out->vrfs = pool.vrfs;
	out->pool_groups = pool.n;
	out->pool_free = pool.nfree;
	out->pool_pending = pool.npending;
	out->pool_bytes = (uint64_t)pool.n * (FP_FIB4_GROUP * sizeof(uint32_t) + sizeof(*pool.skip));
	out->pool_ctl_bytes = (uint64_t)pool.n * (FP_FIB4_GROUP + 2 * sizeof(uint32_t)) +
			      (uint64_t)pool.dq_cap * sizeof(*pool.dq);
}
