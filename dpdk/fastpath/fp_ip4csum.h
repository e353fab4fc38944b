/* SPDX-License-Identifier: Apache-2.0
 * IPv4 header checksum verification and TTL decrement of the fast path
 * (fp_worker.c), in a header of their own so that csumtest can hold them
 * against the computations they replaced.
 */
#ifndef FP_IP4CSUM_H
#define FP_IP4CSUM_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <rte_branch_prediction.h>
#include <rte_common.h>
#include <rte_ip.h>

/* A 32-bit one's complement sum folded to 16 bits: the high half of x +
 * ror(x, 16) is the halves' sum with its carry added back, which cannot
 * carry again (Linux's csum_fold): a rotate and an add where two
 * mask-shift-add folds take more (callgrind: 2 instructions a packet on
 * VXLAN encap). csumtest checks it against the two folds. */
static __rte_always_inline uint32_t
fp_csum_fold(uint32_t x)
{
	return (x + (x >> 16 | x << 16)) >> 16; /* <= 0xffff */
}

/* Header checksum check: the one's complement sum of the header's 16-bit
 * words must be 0xffff. The 20-byte header is the common case: two 64-bit
 * loads and a 32-bit one, added with end-around carries, then folded
 * (ten 16-bit loads and adds cost 29 instructions a packet, callgrind;
 * DPDK 22.11's rte_raw_cksum loops word by word). Any grouping of the
 * words gives the same sum modulo 0xffff, and a nonzero one for a nonzero
 * header: the same verdict. memcpy: an MPLSoUDP inner header is only
 * 2-byte aligned. */
static __rte_always_inline bool
fp_ip4_csum_ok(const struct rte_ipv4_hdr *ip, uint16_t ihl)
{
	if (likely(ihl == sizeof(*ip))) {
		const uint8_t *b = (const uint8_t *)ip;
		uint64_t a0, a1, s;
		uint32_t a2, x;

		memcpy(&a0, b, sizeof(a0));
		memcpy(&a1, b + 8, sizeof(a1));
		memcpy(&a2, b + 16, sizeof(a2));
		s = a0 + a1;
		s += s < a1; /* end-around carry: add, adc */
		s += a2;
		s += s < a2;
		/* 64 to 32 bits: the high half of s + ror(s, 32) is lo + hi with
		 * its carry added back, which cannot carry again */
		x = (uint32_t)((s + (s >> 32 | s << 32)) >> 32);
		return fp_csum_fold(x) == 0xffff; /* 32 to 16 bits, the same way */
	}
	return rte_raw_cksum(ip, ihl) == 0xffff;
}

/* RFC 1624 incremental update for a TTL decrement (the TTL is the high byte
 * of its 16-bit word, so the word drops by 0x0100): HC' = ~(~HC + ~m + m')
 * = ~(~HC + 0xfeff). Eqn. 3, not HC + 0x0100, which gives 0xffff where a
 * full recomputation gives 0x0000 (HC = 0xfeff). Worked out, eqn. 3 is
 * HC + 0x0100 less 0xffff when that reaches 0xffff (csumtest checks it on
 * every HC): no complement and no fold. */
static __rte_always_inline void
fp_ttl_dec(struct rte_ipv4_hdr *ip)
{
	uint32_t c = (uint32_t)ip->hdr_checksum + rte_cpu_to_be_16(0x0100);

	ip->time_to_live--;
	/* c - 0xffff is c + 1 in 16 bits: a compare and an add with carry */
	ip->hdr_checksum = (uint16_t)(c + (c >= 0xffff));
}

#endif
