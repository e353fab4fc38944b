package fastpath

/*
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "fp.h"

// A VRF's IPv6 routes, copied out in two walks: count, then collect.
struct route6_buf {
	uint8_t *prefix; // 16 bytes each
	uint8_t *len;
	uint32_t *nh;
	size_t n, cap;
};

static int
route6_count(const uint8_t *prefix, uint8_t len, uint32_t nh, void *arg)
{
	(*(size_t *)arg)++;
	return 0;
}

static int
route6_collect(const uint8_t *prefix, uint8_t len, uint32_t nh, void *arg)
{
	struct route6_buf *b = arg;

	if (b->n == b->cap)
		return -ENOSPC;
	memcpy(&b->prefix[16 * b->n], prefix, 16);
	b->len[b->n] = len;
	b->nh[b->n] = nh;
	b->n++;
	return 0;
}

static void
route6_buf_free(struct route6_buf *b)
{
	free(b->prefix);
	free(b->len);
	free(b->nh);
}

static int
route6_dump(uint16_t vrf, struct route6_buf *b)
{
	size_t n = 0;
	int ret = fp_route6_walk(vrf, route6_count, &n);

	if (ret < 0 || n == 0)
		return ret;
	b->prefix = malloc(n * 16);
	b->len = malloc(n);
	b->nh = malloc(n * sizeof(uint32_t));
	b->cap = n;
	if (b->prefix == NULL || b->len == NULL || b->nh == NULL)
		return -ENOMEM;
	return fp_route6_walk(vrf, route6_collect, b);
}
*/
import "C"

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"syscall"
	"unsafe"
)

// Route6 is an IPv6 route: a prefix and the next-hop it points to.
type Route6 struct {
	Prefix  netip.Prefix
	NextHop uint32
}

func prefix6(p netip.Prefix) ([16]byte, uint8, bool) {
	if !p.IsValid() || !p.Addr().Is6() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
		return [16]byte{}, 0, false
	}
	return p.Addr().As16(), uint8(p.Bits()), true
}

// UpdateRoutes6 applies a batch of IPv6 route changes to one VRF in one
// control call, all or none, as UpdateRoutes4: each route is added (or
// repointed) to its NextHop, or deleted if NextHop is NoNextHop.
func (d *Dataplane) UpdateRoutes6(vrf uint16, rs []Route6) error {
	if len(rs) == 0 {
		return nil
	}
	op := fmt.Sprintf("update %d IPv6 routes in vrf %d", len(rs), vrf)
	pfx := make([]byte, 16*len(rs))
	lens := make([]C.uint8_t, len(rs))
	nhs := make([]C.uint32_t, len(rs))
	for i, r := range rs {
		a, l, ok := prefix6(r.Prefix)
		if !ok {
			return &Error{Op: op, Errno: syscall.EINVAL, Msg: fmt.Sprintf("route %d of %d: %v is not an IPv6 prefix", i, len(rs), r.Prefix)}
		}
		copy(pfx[16*i:], a[:])
		lens[i], nhs[i] = C.uint8_t(l), C.uint32_t(r.NextHop)
	}
	return d.call(op, func(e *C.char) C.int {
		return C.fp_route6_add_bulk(C.uint16_t(vrf), (*C.uint8_t)(unsafe.Pointer(&pfx[0])), &lens[0], &nhs[0], C.unsigned(len(rs)), e)
	})
}

// AddRoutes6 adds (or repoints) a batch of IPv6 routes, all or none.
func (d *Dataplane) AddRoutes6(vrf uint16, rs []Route6) error {
	for i, r := range rs {
		if r.NextHop == NoNextHop {
			return &Error{Op: fmt.Sprintf("add %d IPv6 routes in vrf %d", len(rs), vrf), Errno: syscall.EINVAL,
				Msg: fmt.Sprintf("route %d of %d (%v): next-hop %d does not exist", i, len(rs), r.Prefix, r.NextHop)}
		}
	}
	return d.UpdateRoutes6(vrf, rs)
}

// DelRoutes6 deletes a batch of IPv6 routes, all or none.
func (d *Dataplane) DelRoutes6(vrf uint16, ps []netip.Prefix) error {
	rs := make([]Route6, len(ps))
	for i, p := range ps {
		rs[i] = Route6{Prefix: p, NextHop: NoNextHop}
	}
	return d.UpdateRoutes6(vrf, rs)
}

// AddRoute6 adds (or repoints) one IPv6 route.
func (d *Dataplane) AddRoute6(vrf uint16, p netip.Prefix, nh uint32) error {
	return d.AddRoutes6(vrf, []Route6{{Prefix: p, NextHop: nh}})
}

// DelRoute6 deletes one IPv6 route.
func (d *Dataplane) DelRoute6(vrf uint16, p netip.Prefix) error {
	return d.DelRoutes6(vrf, []netip.Prefix{p})
}

// Routes6 lists a VRF's IPv6 routes as the FIB holds them, sorted by
// address then prefix length.
func (d *Dataplane) Routes6(vrf uint16) ([]Route6, error) {
	var out []Route6
	err := d.call(fmt.Sprintf("list IPv6 routes of vrf %d", vrf), func(e *C.char) C.int {
		var b C.struct_route6_buf
		defer C.route6_buf_free(&b)
		if ret := C.route6_dump(C.uint16_t(vrf), &b); ret < 0 || b.n == 0 {
			return ret
		}
		pfx := unsafe.Slice((*byte)(unsafe.Pointer(b.prefix)), 16*b.n)
		lens := unsafe.Slice(b.len, b.n)
		nhs := unsafe.Slice(b.nh, b.n)
		out = make([]Route6, b.n)
		for i := range out {
			a := netip.AddrFrom16([16]byte(pfx[16*i : 16*i+16]))
			out[i] = Route6{Prefix: netip.PrefixFrom(a, int(lens[i])), NextHop: uint32(nhs[i])}
		}
		return 0
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Route6) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits())
	})
	return out, nil
}

// WalkRoutes6 calls fn for each IPv6 route of vrf, in Routes6's order, on
// a copy (so fn may call the Dataplane), and stops at fn's first error.
func (d *Dataplane) WalkRoutes6(vrf uint16, fn func(Route6) error) error {
	rs, err := d.Routes6(vrf)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// LookupRoute6 is the longest match for addr in vrf's IPv6 FIB, as lcores
// see it: the next-hop, or false.
func (d *Dataplane) LookupRoute6(vrf uint16, addr netip.Addr) (uint32, bool) {
	nh := d.LookupRoutes6(vrf, []netip.Addr{addr})[0]
	return nh, nh != NoNextHop
}

// LookupRoutes6 is LookupRoute6 for many addresses in one call: NoNextHop
// where there is no route (or the address is not IPv6).
func (d *Dataplane) LookupRoutes6(vrf uint16, addrs []netip.Addr) []uint32 {
	out := make([]uint32, len(addrs))
	if len(addrs) == 0 {
		return out
	}
	in := make([]byte, 16*len(addrs))
	bad := make([]bool, len(addrs))
	for i, a := range addrs {
		bad[i] = !a.Is6() || a.Is4In6()
		b := a.As16()
		copy(in[16*i:], b[:])
	}
	res := make([]C.uint32_t, len(addrs))
	d.mu.Lock()
	ret := C.int(-C.ENODEV)
	if !d.closed {
		ret = C.fp_route6_lookup_bulk(C.uint16_t(vrf), (*C.uint8_t)(unsafe.Pointer(&in[0])), &res[0], C.unsigned(len(addrs)))
	}
	d.mu.Unlock()
	for i := range out {
		out[i] = uint32(res[i])
		if ret < 0 || bad[i] {
			out[i] = NoNextHop
		}
	}
	return out
}

// FIB6Stats is the IPv6 FIB's occupancy and memory: of one VRF, and of all.
type FIB6Stats struct {
	// The VRF asked for.
	Routes   int
	Groups   int    // groups of 256 entries it uses from the pool, its root among them; 0 = no FIB
	Bytes    uint64 // what its lookups read: its groups and their meta
	CtlBytes uint64 // its control side: route table, prefix lengths
	// All VRFs.
	VRFs         int // VRFs with an IPv6 FIB
	AllRoutes    uint64
	PoolGroups   int    // Config.FIB6Groups
	PoolFree     int    // free groups
	PoolPending  int    // released groups, free after an RCU grace period
	PoolBytes    uint64 // the pool, allocated at start
	PoolCtlBytes uint64
	AllBytes     uint64 // the pool and every VRF's root word
	AllCtlBytes  uint64
}

// FIB6Stats reads the IPv6 FIB's counters for vrf and for all VRFs.
func (d *Dataplane) FIB6Stats(vrf uint16) (FIB6Stats, error) {
	var s C.struct_fp_fib6_stats
	err := d.call(fmt.Sprintf("IPv6 FIB stats of vrf %d", vrf), func(*C.char) C.int {
		return C.fp_fib6_stats(C.uint16_t(vrf), &s)
	})
	return FIB6Stats{
		Routes: int(s.routes), Groups: int(s.groups),
		Bytes: uint64(s.bytes), CtlBytes: uint64(s.ctl_bytes),
		VRFs: int(s.vrfs), AllRoutes: uint64(s.all_routes),
		PoolGroups: int(s.pool_groups), PoolFree: int(s.pool_free), PoolPending: int(s.pool_pending),
		PoolBytes: uint64(s.pool_bytes), PoolCtlBytes: uint64(s.pool_ctl_bytes),
		AllBytes: uint64(s.all_bytes), AllCtlBytes: uint64(s.all_ctl_bytes),
	}, err
}
