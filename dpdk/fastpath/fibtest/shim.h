/* SPDX-License-Identifier: Apache-2.0
 * Included first in every C file of this package (-include in harness.go):
 * fp_fib4.c runs here without EAL, its tables come from libc, cache-line
 * aligned like rte_malloc's.
 */
#ifndef FIBTEST_SHIM_H
#define FIBTEST_SHIM_H

#include <stdlib.h>
#include <string.h>

#include <rte_malloc.h>

static inline void *
ft_alloc(size_t size, unsigned align, int zero)
{
	void *p;

	if (posix_memalign(&p, align < 64 ? 64 : align, size ? size : 1) != 0)
		return NULL;
	if (zero)
		memset(p, 0, size);
	return p;
}

#define rte_malloc(type, size, align) ft_alloc((size), (align), 0)
#define rte_zmalloc(type, size, align) ft_alloc((size), (align), 1)
#define rte_free(p) free(p)

#endif
