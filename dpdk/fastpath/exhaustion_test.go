package fastpath_test

import (
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/filament-net/filament/dpdk/fastpath"
)

// A full FIB refuses the route with ENOSPC and a message saying which table
// is full; what was already there keeps forwarding. The FIB's groups of 256
// entries are one pool for all VRFs (fib4_tbl8s): fill it with /32s that
// each need a group of their own.
func TestFIBFull(t *testing.T) {
	e := newEnv(t)
	const vrf = 33
	cfg := fastpath.DefaultConfig()
	a := e.pod(vrf, "02:00:00:21:00:0a", "10.33.0.10")
	b := e.pod(vrf, "02:00:00:21:00:0b", "10.33.0.11")
	nh := e.toPod(b)
	var added []netip.Prefix
	t.Cleanup(func() {
		if err := dp.DelRoutes4(vrf, added); err != nil {
			t.Errorf("deleting the %d routes: %v", len(added), err)
		}
	})
	// One /32 in each /24 from 64.0.0.0 on.
	next := 0
	route := func() netip.Prefix {
		next++
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(64 + next>>16), byte(next >> 8), byte(next), 1}), 32)
	}
	var err error
	for err == nil { // batches of 4096 while they fit ...
		batch := make([]fastpath.Route4, 4096)
		for i := range batch {
			batch[i] = fastpath.Route4{Prefix: route(), NextHop: nh}
		}
		if err = dp.AddRoutes4(vrf, batch); err == nil {
			for _, r := range batch {
				added = append(added, r.Prefix)
			}
		}
	}
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "full") {
		t.Fatalf("batch after %d routes: %v, want ENOSPC saying the FIB is full", len(added), err)
	}
	s := fib4Stats(t, vrf)
	if s.Routes != len(added)+1 { // and b's /32: the failed batch left nothing
		t.Fatalf("%d routes in the FIB, %d added", s.Routes, len(added)+1)
	}
	for err = nil; err == nil; { // ... then one by one
		if len(added) > int(cfg.FIB4Tbl8s) {
			t.Fatalf("%d routes of a group each fitted in %d groups", len(added), cfg.FIB4Tbl8s)
		}
		p := route()
		if err = dp.AddRoute4(vrf, p, nh); err == nil {
			added = append(added, p)
		}
	}
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "full") {
		t.Fatalf("route %d: err %v, want ENOSPC saying the FIB is full", len(added)+1, err)
	}
	s = fib4Stats(t, vrf)
	t.Logf("full after %d routes: %d of %d groups used by VRF %d (root %d bits), %d free, %d pending; %v",
		len(added)+1, s.Groups, s.PoolGroups, vrf, s.RootBits, s.PoolFree, s.PoolPending, err)
	// A route needs at most one group per level below the root.
	if s.PoolGroups != int(cfg.FIB4Tbl8s) || s.PoolFree+s.PoolPending >= 3 || s.Routes != len(added)+1 {
		t.Errorf("a full FIB: %+v", s)
	}
	p := pkt{src: a.ip, dst: b.ip, sport: 1, dport: 2}
	e.inject(a.id, a.from(p.ip4(64)))
	e.expectFrame(b.id, b.to(p.ip4(63)))
	// Freeing one group makes room again (reused after a grace period).
	if err := dp.DelRoute4(vrf, added[0]); err != nil {
		t.Fatal(err)
	}
	added = added[1:]
	last := netip.MustParsePrefix("127.255.255.1/32")
	if err := dp.AddRoute4(vrf, last, nh); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
	added = append(added, last)
	if got, ok := dp.LookupRoute4(vrf, last.Addr()); !ok || got != nh {
		t.Errorf("lookup %v: %d %v", last.Addr(), got, ok)
	}
}

// Next-hop ids and VRFs outside the configured tables are refused.
func TestTableBounds(t *testing.T) {
	cfg := fastpath.DefaultConfig()
	err := dp.SetNextHop(cfg.NextHops, fastpath.NextHop{Type: fastpath.NHDiscard})
	if !errors.Is(err, syscall.EINVAL) {
		t.Errorf("next-hop id %d: %v, want EINVAL", cfg.NextHops, err)
	}
	err = dp.SetVRFAddress(uint16(cfg.VRFs), netip.MustParseAddr("10.0.0.1"))
	if !errors.Is(err, syscall.EINVAL) {
		t.Errorf("VRF %d address: %v, want EINVAL", cfg.VRFs, err)
	}
}
