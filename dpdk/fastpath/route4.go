package fastpath

/*
#include <errno.h>
#include <stdlib.h>
#include "fp.h"

// A VRF's routes, copied out in two walks: count, then collect (control
// calls are serialised: the routes cannot change in between).
struct route4_buf {
	uint32_t *prefix;
	uint8_t *len;
	uint32_t *nh;
	size_t n, cap;
};

static int
route4_count(uint32_t prefix, uint8_t len, uint32_t nh, void *arg)
{
	(*(size_t *)arg)++;
	return 0;
}

static int
route4_collect(uint32_t prefix, uint8_t len, uint32_t nh, void *arg)
{
	struct route4_buf *b = arg;

	if (b->n == b->cap)
		return -ENOSPC;
	b->prefix[b->n] = prefix;
	b->len[b->n] = len;
	b->nh[b->n] = nh;
	b->n++;
	return 0;
}

static void
route4_buf_free(struct route4_buf *b)
{
	free(b->prefix);
	free(b->len);
	free(b->nh);
}

static int
route4_dump(uint16_t vrf, struct route4_buf *b)
{
	size_t n = 0;
	int ret = fp_route4_walk(vrf, route4_count, &n);

	if (ret < 0 || n == 0)
		return ret;
	b->prefix = malloc(n * sizeof(uint32_t));
	b->len = malloc(n);
	b->nh = malloc(n * sizeof(uint32_t));
	b->cap = n;
	if (b->prefix == NULL || b->len == NULL || b->nh == NULL)
		return -ENOMEM;
	return fp_route4_walk(vrf, route4_collect, b);
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

// NoNextHop is the next-hop of "no route" in LookupRoutes4's answers, and
// of a deletion in UpdateRoutes4.
const NoNextHop = uint32(C.FP_NH_INVALID)

// Route4 is an IPv4 route: a prefix and the next-hop it points to.
type Route4 struct {
	Prefix  netip.Prefix
	NextHop uint32
}

// UpdateRoutes4 applies a batch of route changes to one VRF in one control
// call: each route is added (or repointed) to its NextHop, or deleted if
// NextHop is NoNextHop. Every entry is validated before any is applied
// (EINVAL), and a batch that fails part way (ENOENT: deleting a missing
// route; ENOSPC: FIB full) is undone, so the FIB is as before. Lcores
// forward throughout with the old or the new route of each prefix.
func (d *Dataplane) UpdateRoutes4(vrf uint16, rs []Route4) error {
	if len(rs) == 0 {
		return nil
	}
	op := fmt.Sprintf("update %d routes in vrf %d", len(rs), vrf)
	pfx := make([]C.uint32_t, len(rs))
	lens := make([]C.uint8_t, len(rs))
	nhs := make([]C.uint32_t, len(rs))
	for i, r := range rs {
		a, l, err := prefix4(r.Prefix)
		if err != nil {
			return &Error{Op: op, Errno: syscall.EINVAL, Msg: fmt.Sprintf("route %d of %d: %v is not an IPv4 prefix", i, len(rs), r.Prefix)}
		}
		pfx[i], lens[i], nhs[i] = a, l, C.uint32_t(r.NextHop)
	}
	return d.call(op, func(e *C.char) C.int {
		return C.fp_route4_add_bulk(C.uint16_t(vrf), &pfx[0], &lens[0], &nhs[0], C.unsigned(len(rs)), e)
	})
}

// AddRoutes4 adds (or repoints) a batch of routes, all or none: see
// UpdateRoutes4.
func (d *Dataplane) AddRoutes4(vrf uint16, rs []Route4) error {
	for i, r := range rs {
		if r.NextHop == NoNextHop {
			return &Error{Op: fmt.Sprintf("add %d routes in vrf %d", len(rs), vrf), Errno: syscall.EINVAL,
				Msg: fmt.Sprintf("route %d of %d (%v): next-hop %d does not exist", i, len(rs), r.Prefix, r.NextHop)}
		}
	}
	return d.UpdateRoutes4(vrf, rs)
}

// DelRoutes4 deletes a batch of routes, all or none: see UpdateRoutes4.
func (d *Dataplane) DelRoutes4(vrf uint16, ps []netip.Prefix) error {
	rs := make([]Route4, len(ps))
	for i, p := range ps {
		rs[i] = Route4{Prefix: p, NextHop: NoNextHop}
	}
	return d.UpdateRoutes4(vrf, rs)
}

// Routes4 lists a VRF's IPv4 routes as the FIB holds them, sorted by
// address then prefix length.
func (d *Dataplane) Routes4(vrf uint16) ([]Route4, error) {
	var out []Route4
	err := d.call(fmt.Sprintf("list routes of vrf %d", vrf), func(e *C.char) C.int {
		var b C.struct_route4_buf
		defer C.route4_buf_free(&b)
		if ret := C.route4_dump(C.uint16_t(vrf), &b); ret < 0 || b.n == 0 {
			return ret
		}
		pfx := unsafe.Slice(b.prefix, b.n)
		lens := unsafe.Slice(b.len, b.n)
		nhs := unsafe.Slice(b.nh, b.n)
		out = make([]Route4, b.n)
		for i := range out {
			a := *(*[4]byte)(unsafe.Pointer(&pfx[i]))
			out[i] = Route4{Prefix: netip.PrefixFrom(netip.AddrFrom4(a), int(lens[i])), NextHop: uint32(nhs[i])}
		}
		return 0
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Route4) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits())
	})
	return out, nil
}

// WalkRoutes4 calls fn for each IPv4 route of vrf, in Routes4's order, on a
// copy taken in one control call (so fn may call the Dataplane), and stops
// at the first error fn returns, which it returns.
func (d *Dataplane) WalkRoutes4(vrf uint16, fn func(Route4) error) error {
	rs, err := d.Routes4(vrf)
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

// LookupRoutes4 is LookupRoute4 for many addresses in one call: the
// next-hop of each, NoNextHop where there is no route (or the address is
// not IPv4).
func (d *Dataplane) LookupRoutes4(vrf uint16, addrs []netip.Addr) []uint32 {
	out := make([]uint32, len(addrs))
	if len(addrs) == 0 {
		return out
	}
	in := make([]C.uint32_t, len(addrs))
	bad := make([]bool, len(addrs))
	for i, a := range addrs {
		v, err := ip4(a)
		in[i], bad[i] = v, err != nil
	}
	res := make([]C.uint32_t, len(addrs))
	d.mu.Lock()
	ret := C.int(-C.ENODEV)
	if !d.closed {
		ret = C.fp_route4_lookup_bulk(C.uint16_t(vrf), &in[0], &res[0], C.unsigned(len(addrs)))
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

// FIB4Stats is the IPv4 FIB's occupancy and memory: of one VRF, and of all.
type FIB4Stats struct {
	// The VRF asked for.
	Routes   int
	RootBits int    // root table of 2^RootBits entries: 8, 16 or 24; 0 = no FIB yet
	Groups   int    // groups of 256 entries it uses from the pool
	Bytes    uint64 // what its lookups read: root table and groups
	CtlBytes uint64 // its control side: route table, prefix lengths
	// All VRFs.
	VRFs         int // VRFs with a FIB
	AllRoutes    uint64
	PoolGroups   int    // Config.FIB4Tbl8s
	PoolFree     int    // free groups
	PoolPending  int    // released groups, free after an RCU grace period
	PoolBytes    uint64 // the pool, allocated at start
	PoolCtlBytes uint64
	AllBytes     uint64 // the pool and every VRF's root table
	AllCtlBytes  uint64
}

// FIB4Stats reads the IPv4 FIB's counters for vrf and for all VRFs.
func (d *Dataplane) FIB4Stats(vrf uint16) (FIB4Stats, error) {
	var s C.struct_fp_fib4_stats
	err := d.call(fmt.Sprintf("IPv4 FIB stats of vrf %d", vrf), func(*C.char) C.int {
		return C.fp_fib4_stats(C.uint16_t(vrf), &s)
	})
	return FIB4Stats{
		Routes: int(s.routes), RootBits: int(s.root_bits), Groups: int(s.groups),
		Bytes: uint64(s.bytes), CtlBytes: uint64(s.ctl_bytes),
		VRFs: int(s.vrfs), AllRoutes: uint64(s.all_routes),
		PoolGroups: int(s.pool_groups), PoolFree: int(s.pool_free), PoolPending: int(s.pool_pending),
		PoolBytes: uint64(s.pool_bytes), PoolCtlBytes: uint64(s.pool_ctl_bytes),
		AllBytes: uint64(s.all_bytes), AllCtlBytes: uint64(s.all_ctl_bytes),
	}, err
}
