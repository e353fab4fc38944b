// Package csumtest holds the fast path's IPv4 header checksum check and TTL
// decrement (../fp_ip4csum.h, through a symbolic link so that the go command
// rebuilds this package when it changes) against the computations they
// replaced, for tests: the same verdict and the same bytes on every header.
package csumtest

/*
#cgo pkg-config: libdpdk
#cgo CFLAGS: -O3 -Wall -Wno-address-of-packed-member -DALLOW_EXPERIMENTAL_API
#include "fp_ip4csum.h"

// The check before fp_ip4_csum_ok used wider loads: ten 16-bit words.
static bool
ref_csum_ok(const struct rte_ipv4_hdr *ip, uint16_t ihl)
{
	if (ihl == sizeof(*ip)) {
		const unaligned_uint16_t *w = (const unaligned_uint16_t *)ip;
		uint32_t sum = (uint32_t)w[0] + w[1] + w[2] + w[3] + w[4] + w[5] +
			       w[6] + w[7] + w[8] + w[9];

		sum = (sum & 0xffff) + (sum >> 16);
		sum = (sum & 0xffff) + (sum >> 16);
		return sum == 0xffff;
	}
	return rte_raw_cksum(ip, ihl) == 0xffff;
}

// The TTL decrement before fp_ttl_dec was worked out: RFC 1624 eqn. 3.
static void
ref_ttl_dec(struct rte_ipv4_hdr *ip)
{
	uint32_t sum = (uint16_t)~ip->hdr_checksum + rte_cpu_to_be_16(0xfeff);

	ip->time_to_live--;
	sum = (sum & 0xffff) + (sum >> 16);
	ip->hdr_checksum = (uint16_t)~sum;
}

static void
ttl_new(void *b) { fp_ttl_dec(b); }
static void
ttl_ref(void *b) { ref_ttl_dec(b); }

// The first 32-bit value at or after from (step apart, n of them) where
// fp_csum_fold differs from two mask-shift-add folds, or -1.
static long long
fold_mismatch(uint32_t from, uint32_t step, uint32_t n)
{
	uint32_t x = from;

	for (uint32_t i = 0; i < n; i++, x += step) {
		uint32_t r = (x & 0xffff) + (x >> 16);

		r = (r & 0xffff) + (r >> 16);
		if (fp_csum_fold(x) != r)
			return x;
	}
	return -1;
}

static int
cs_new(const void *b, uint16_t ihl) { return fp_ip4_csum_ok(b, ihl); }
static int
cs_ref(const void *b, uint16_t ihl) { return ref_csum_ok(b, ihl); }
*/
import "C"

import "unsafe"

// Verdicts of the check (New) and of the one it replaced (Ref) on the
// header at b[off:] of ihl bytes; off moves its alignment.
func Verdicts(b []byte, off, ihl int) (newOK, refOK bool) {
	p := unsafe.Pointer(&b[off])
	return C.cs_new(p, C.uint16_t(ihl)) != 0, C.cs_ref(p, C.uint16_t(ihl)) != 0
}

// FoldMismatch is the first of n 32-bit values from from, step apart,
// that fp_csum_fold folds otherwise than two mask-shift-add folds, or -1.
func FoldMismatch(from, step, n uint32) int64 {
	return int64(C.fold_mismatch(C.uint32_t(from), C.uint32_t(step), C.uint32_t(n)))
}

// TTLDec decrements the TTL of the 20-byte header h (the new way, and the
// old one on a copy) and returns both results.
func TTLDec(h []byte) (newH, refH []byte) {
	n := append([]byte(nil), h...)
	r := append([]byte(nil), h...)
	C.ttl_new(unsafe.Pointer(&n[0]))
	C.ttl_ref(unsafe.Pointer(&r[0]))
	return n, r
}
