/* SPDX-License-Identifier: Apache-2.0
 * IPv6 routes: validated and their next-hops reference-counted here, the
 * per-VRF tables changed in fp_fib6.c. The same contracts as the IPv4
 * calls of fp_tables.c (fp.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_log.h>

#include "fp_priv.h"

static struct fp_fib6 *
fib6_get(uint16_t vrf, bool create, char *err)
{
	struct fp_fib6 *f = fp_dp->fib6_ctl[vrf];

	if (f != NULL || !create)
		return f;
	/* publishes its (empty) root in fp_dp->fib6[vrf] */
	f = fp_fib6_create(fp_dp->cfg.fib6_rules, &fp_dp->fib6[vrf], err);
	fp_dp->fib6_ctl[vrf] = f;
	return f;
}

/* A VRF left without IPv6 routes gives its FIB back (its root group). */
static void
fib6_done(uint16_t vrf, struct fp_fib6 *f)
{
	if (fp_fib6_routes(f) != 0) {
		fp_fib6_settle(f);
		return;
	}
	fp_fib6_retire(f);
	fp_dp->fib6_ctl[vrf] = NULL;
}

static void
fmt6(const uint8_t *p, char *buf, size_t len)
{
	snprintf(buf, len, "%x:%x:%x:%x:%x:%x:%x:%x", p[0] << 8 | p[1], p[2] << 8 | p[3],
		 p[4] << 8 | p[5], p[6] << 8 | p[7], p[8] << 8 | p[9], p[10] << 8 | p[11],
		 p[12] << 8 | p[13], p[14] << 8 | p[15]);
}

static int
route6_check(uint16_t vrf, const uint8_t *p, uint8_t len, char *err)
{
	unsigned i;

	if (vrf >= fp_dp->cfg.vrf_max) {
		fp_err(err, "VRF %u out of range 0..%u", vrf, fp_dp->cfg.vrf_max - 1);
		return -EINVAL;
	}
	if (len > 128) {
		fp_err(err, "prefix length %u > 128", len);
		return -EINVAL;
	}
	for (i = len / 8; i < 16; i++) {
		uint8_t host = i == len / 8 ? (uint8_t)(0xff >> (len % 8)) : 0xff;

		if (p[i] & host) {
			char a[48];

			fmt6(p, a, sizeof(a));
			fp_err(err, "prefix %s/%u has host bits set", a, len);
			return -EINVAL;
		}
	}
	return 0;
}

static int
route6_nh_check(uint16_t vrf, uint32_t nh, char *err)
{
	/* nh_max <= FP_FIB6_NH_MAX (check_config): every id fits an entry */
	if (nh >= fp_dp->cfg.nh_max || fp_dp->nh[nh] == NULL) {
		fp_err(err, "route in VRF %u: next-hop %u does not exist", vrf, nh);
		return -EINVAL;
	}
	return 0;
}

int
fp_route6_add(uint16_t vrf, const uint8_t *prefix, uint8_t len, uint32_t nh, char *err)
{
	return fp_route6_add_bulk(vrf, prefix, &len, &nh, 1, err);
}

int
fp_route6_del(uint16_t vrf, const uint8_t *prefix, uint8_t len, char *err)
{
	uint32_t nh = FP_NH_INVALID;

	return fp_route6_add_bulk(vrf, prefix, &len, &nh, 1, err);
}

int
fp_route6_add_bulk(uint16_t vrf, const uint8_t *prefix, const uint8_t *len, const uint32_t *nh,
		   unsigned n, char *err)
{
	char msg[FP_ERRLEN] = "", a[48];
	struct fp_fib6 *f;
	uint32_t *old, unused;
	bool adds = false;
	unsigned i, j;
	int ret = 0;

	if (vrf >= fp_dp->cfg.vrf_max) {
		fp_err(err, "VRF %u out of range 0..%u", vrf, fp_dp->cfg.vrf_max - 1);
		return -EINVAL;
	}
	/* Everything the FIB cannot tell is checked first: nothing is applied
	 * if one entry is malformed. */
	for (i = 0; i < n; i++) {
		ret = route6_check(vrf, &prefix[16 * i], len[i], msg);
		if (ret == 0 && nh[i] != FP_NH_INVALID) {
			adds = true;
			ret = route6_nh_check(vrf, nh[i], msg);
		}
		if (ret < 0) {
			fp_err(err, "route %u of %u: %s", i, n, msg);
			return ret;
		}
	}
	if (n == 0)
		return 0;
	f = fib6_get(vrf, adds, msg);
	if (f == NULL) {
		if (adds) {
			fp_err(err, "VRF %u: %s", vrf, msg);
			return -ENOSPC;
		}
		fp_err(err, "VRF %u: route 0 of %u: no such route", vrf, n);
		return -ENOENT;
	}
	old = malloc(sizeof(*old) * n);
	if (old == NULL) {
		fp_err(err, "VRF %u: no memory for a batch of %u routes", vrf, n);
		fib6_done(vrf, f);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		ret = nh[i] == FP_NH_INVALID ?
			      fp_fib6_del(f, &prefix[16 * i], len[i], &old[i], msg) :
			      fp_fib6_add(f, &prefix[16 * i], len[i], nh[i], &old[i], msg);
		if (ret < 0)
			break;
	}
	if (ret < 0) {
		/* Undo in reverse: each step brings back a state the FIB had.
		 * A delete needs no group; an add undone needs at most the
		 * groups its delete gave back (some may wait for a grace
		 * period: fp_fib6_add then waits for it). */
		for (j = i; j-- > 0;) {
			int r = old[j] == FP_NH_INVALID ?
					fp_fib6_del(f, &prefix[16 * j], len[j], &unused, NULL) :
					fp_fib6_add(f, &prefix[16 * j], len[j], old[j], &unused, NULL);

			if (r < 0)
				RTE_LOG(ERR, USER1, "VRF %u: undoing route %u of a failed batch: %s\n",
					vrf, j, strerror(-r));
		}
		fmt6(&prefix[16 * i], a, sizeof(a));
		fp_err(err, "VRF %u: route %u of %u (%s/%u): %s (batch not applied)", vrf, i, n, a,
		       len[i], msg);
	} else {
		for (i = 0; i < n; i++) {
			if (nh[i] != FP_NH_INVALID)
				fp_dp->nh_refs[nh[i]]++;
			if (old[i] != FP_NH_INVALID)
				fp_dp->nh_refs[old[i]]--;
		}
	}
	free(old);
	fib6_done(vrf, f);
	return ret;
}

int
fp_route6_lookup(uint16_t vrf, const uint8_t *addr, uint32_t *nh)
{
	uint32_t root, e;

	if (fp_dp == NULL || vrf >= fp_dp->cfg.vrf_max)
		return -EINVAL;
	root = fp_dp->fib6[vrf];
	if (root == 0)
		return -ENOENT;
	e = fp_fib6_match(root, addr);
	if (e == 0)
		return -ENOENT;
	*nh = e - 1;
	return 0;
}

int
fp_route6_lookup_bulk(uint16_t vrf, const uint8_t *addr, uint32_t *nh, unsigned n)
{
	uint32_t root;
	unsigned i;

	if (fp_dp == NULL || vrf >= fp_dp->cfg.vrf_max)
		return -EINVAL;
	root = fp_dp->fib6[vrf];
	for (i = 0; i < n; i++) {
		uint32_t e = root == 0 ? 0 : fp_fib6_match(root, &addr[16 * i]);

		nh[i] = e == 0 ? FP_NH_INVALID : e - 1;
	}
	return 0;
}

int
fp_route6_walk(uint16_t vrf, int (*cb)(const uint8_t *prefix, uint8_t len, uint32_t nh, void *arg),
	       void *arg)
{
	if (fp_dp == NULL || vrf >= fp_dp->cfg.vrf_max)
		return -EINVAL;
	if (fp_dp->fib6_ctl[vrf] == NULL)
		return 0;
	return fp_fib6_walk(fp_dp->fib6_ctl[vrf], cb, arg);
}

int
fp_fib6_stats(uint16_t vrf, struct fp_fib6_stats *out)
{
	struct fp_fib6_stats s;
	uint32_t v;

	memset(out, 0, sizeof(*out));
	if (fp_dp == NULL || vrf >= fp_dp->cfg.vrf_max)
		return -EINVAL;
	fp_fib6_pool_stats(out);
	out->all_bytes = out->pool_bytes;
	out->all_ctl_bytes = out->pool_ctl_bytes;
	for (v = 0; v < fp_dp->cfg.vrf_max; v++) {
		if (fp_dp->fib6_ctl[v] == NULL)
			continue;
		fp_fib6_vrf_stats(fp_dp->fib6_ctl[v], &s);
		out->all_routes += s.routes;
		out->all_bytes += sizeof(uint32_t); /* its root word; groups are the pool's */
		out->all_ctl_bytes += s.ctl_bytes;
	}
	fp_fib6_vrf_stats(fp_dp->fib6_ctl[vrf], out);
	return 0;
}
