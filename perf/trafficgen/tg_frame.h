/* SPDX-License-Identifier: Apache-2.0
 * Writing a stream's frame: shared by the worker (frames it builds) and the
 * control side (templates for clones).
 */
#ifndef TG_FRAME_H
#define TG_FRAME_H

#include <string.h>

#include <rte_byteorder.h>
#include <rte_ip.h>
#include <rte_memcpy.h>

#include "tg.h"

static inline void
tg_put16(uint8_t *p, uint16_t v)
{
	v = rte_cpu_to_be_16(v);
	memcpy(p, &v, 2);
}

static inline void
tg_put32(uint8_t *p, uint32_t v)
{
	v = rte_cpu_to_be_32(v);
	memcpy(p, &v, 4);
}

/* The ones' complement checksum of the L4 segment [l4_off, len) of a frame
 * whose bytes between the headers (hdr_len) and the signature (sig) are
 * zero: only those two parts are summed, plus the pseudo-header. */
static inline uint16_t
tg_l4_cksum(const uint8_t *p, const struct tg_l4csum *l, uint16_t hdr_len, uint16_t sig,
	    uint16_t len)
{
	uint32_t sum, sig_sum;
	uint8_t proto;

	if (l->v6) {
		sum = __rte_raw_cksum(p + l->l3_off + 8, 32, 0);
		proto = p[l->l3_off + 6];
	} else {
		sum = __rte_raw_cksum(p + l->l3_off + 12, 8, 0);
		proto = p[l->l3_off + 9];
	}
	sum += rte_cpu_to_be_16((uint16_t)proto) + rte_cpu_to_be_16((uint16_t)(len - l->l4_off));
	sum = __rte_raw_cksum(p + l->l4_off, hdr_len - l->l4_off, sum);
	/* At an odd distance from the L4 header the signature's bytes sit in
	 * the other half of each 16-bit word: its sum has its bytes swapped. */
	sig_sum = __rte_raw_cksum_reduce(__rte_raw_cksum(p + sig, TG_SIG_LEN, 0));
	if ((sig - l->l4_off) & 1)
		sig_sum = rte_bswap16((uint16_t)sig_sum);
	sum = (uint16_t)~__rte_raw_cksum_reduce(sum + sig_sum);
	/* UDP sends 0 as "no checksum": a computed 0 goes as 0xffff. */
	if (sum == 0 && proto == IPPROTO_UDP)
		sum = 0xffff;
	return (uint16_t)sum;
}

/* Writes a frame of len bytes of stream c into p, whose bytes between the
 * headers and the signature must be zero already: template, per-flow
 * fields (fval), lengths, signature, then checksums (IPv4 headers first,
 * then L4 inner before outer: an outer one covers the inner headers). */
static inline void
tg_frame_fill(const struct tg_stream_conf *c, uint8_t *p, const uint32_t *fval, uint16_t len,
	      unsigned si, uint64_t seq, uint64_t tsc)
{
	uint16_t sig = (uint16_t)(len - TG_SIG_LEN);
	unsigned k;

	rte_memcpy(p, c->hdr, c->hdr_len);
	for (k = 0; k < c->nb_fields; k++) {
		if (c->fields[k].width == 4)
			tg_put32(p + c->fields[k].off, fval[k]);
		else
			tg_put16(p + c->fields[k].off, (uint16_t)fval[k]);
	}
	for (k = 0; k < c->nb_lens; k++)
		tg_put16(p + c->lens[k].off, (uint16_t)(len - c->lens[k].delta));
	tg_sig_write(p + sig, (uint16_t)si, seq, tsc);
	for (k = 0; k < c->nb_ip4csum; k++) {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(p + c->ip4csum[k]);

		ip->hdr_checksum = 0;
		ip->hdr_checksum = rte_ipv4_cksum(ip);
	}
	for (k = 0; k < c->nb_l4csum; k++) {
		const struct tg_l4csum *l = &c->l4csum[k];
		uint16_t sum;

		memset(p + l->l4_off + l->csum_at, 0, 2);
		sum = tg_l4_cksum(p, l, c->hdr_len, sig, len);
		memcpy(p + l->l4_off + l->csum_at, &sum, 2);
	}
}

#endif
