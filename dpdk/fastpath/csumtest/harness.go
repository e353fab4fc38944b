// Package csumtest holds the fast path's IPv4 header checksum check
// (../fp_ip4csum.h, through a symbolic link so that the go command rebuilds
// this package when it changes) against the computation it replaced, for
// tests: the verdict must be the same on every header.
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
