package fastpath_test

// The IPv6 FIB through the dataplane's control calls (route6.go,
// fp_route6.c): longest-prefix match against a Go model under random
// updates, batches that fail and are undone, validation, next-hop
// references, a VRF's FIB given back. Concurrency (lookups on other
// threads while routes change) is dpdk/fastpath/fib6test's.

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"syscall"
	"testing"

	"github.com/filament-net/filament/dpdk/fastpath"
)

type lpm6 map[netip.Prefix]uint32

func (m lpm6) lookup(a netip.Addr) uint32 {
	for l := 128; l >= 0; l-- {
		p, _ := a.Prefix(l)
		if nh, ok := m[p]; ok {
			return nh
		}
	}
	return fastpath.NoNextHop
}

func (m lpm6) routes() []fastpath.Route6 {
	out := make([]fastpath.Route6, 0, len(m))
	for p, nh := range m {
		out = append(out, fastpath.Route6{Prefix: p, NextHop: nh})
	}
	slices.SortFunc(out, func(a, b fastpath.Route6) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return a.Prefix.Bits() - b.Prefix.Bits()
	})
	return out
}

// scramble6 randomises bits [from, 128) of a.
func scramble6(r *rand.Rand, a netip.Addr, from int) netip.Addr {
	b := a.As16()
	for i := from; i < 128; i++ {
		if r.IntN(2) == 1 {
			b[i/8] ^= 0x80 >> (i % 8)
		}
	}
	return netip.AddrFrom16(b)
}

var hot6 = []netip.Addr{ip("2001:db8::"), ip("2001:db8:0:1::"), ip("fd00::"), ip("fd00:0:0:ff::")}

func randPrefix6(r *rand.Rand) netip.Prefix {
	lens := []int{0, 8, 16, 32, 47, 48, 56, 63, 64, 65, 96, 112, 120, 127, 128, 128}
	a := scramble6(r, hot6[r.IntN(len(hot6))], 32+r.IntN(97))
	if r.IntN(8) == 0 {
		a = scramble6(r, netip.IPv6Unspecified(), 0)
	}
	p, _ := a.Prefix(lens[r.IntN(len(lens))])
	return p
}

func probes6(r *rand.Rand, ps []netip.Prefix, random int) []netip.Addr {
	out := make([]netip.Addr, 0, 4*len(ps)+random)
	for _, p := range ps {
		first := p.Addr()
		b := first.As16()
		for i := p.Bits(); i < 128; i++ {
			b[i/8] |= 0x80 >> (i % 8)
		}
		last := netip.AddrFrom16(b)
		out = append(out, first, last)
		if a := first.Prev(); a.IsValid() {
			out = append(out, a)
		}
		if a := last.Next(); a.IsValid() {
			out = append(out, a)
		}
	}
	for range random {
		out = append(out, scramble6(r, hot6[r.IntN(len(hot6))], 16+r.IntN(100)))
	}
	return out
}

func checkModel6(t *testing.T, vrf uint16, m lpm6, addrs []netip.Addr) {
	t.Helper()
	got := dp.LookupRoutes6(vrf, addrs)
	bad := 0
	for i, a := range addrs {
		if want := m.lookup(a); got[i] != want {
			if bad++; bad <= 10 {
				t.Errorf("vrf %d lookup %v: next-hop %d, model says %d", vrf, a, int32(got[i]), int32(want))
			}
		}
	}
	rs, err := dp.Routes6(vrf)
	if err != nil {
		t.Fatalf("Routes6: %v", err)
	}
	if want := m.routes(); !slices.Equal(rs, want) {
		t.Errorf("vrf %d: %d routes listed, model has %d (or they differ)", vrf, len(rs), len(want))
	}
	if s, err := dp.FIB6Stats(vrf); err != nil || s.Routes != len(m) {
		t.Errorf("FIB6Stats: %+v, %v; want %d routes", s, err, len(m))
	}
	if t.Failed() {
		t.FailNow()
	}
}

// Random adds, repoints and deletes, one by one and in batches, against
// the model; failed batches change nothing; next-hop references are
// exact; a VRF left without routes gives its FIB back.
func TestFIB6Model(t *testing.T) {
	e := newEnv(t)
	const vrf = 43
	nhs := make([]uint32, 6)
	for i := range nhs {
		nhs[i] = e.nh(fastpath.NextHop{Type: fastpath.NHDiscard})
	}
	r := rand.New(rand.NewPCG(43, 1))
	m := lpm6{}
	t.Cleanup(func() {
		ps := make([]netip.Prefix, 0, len(m))
		for p := range m {
			ps = append(ps, p)
		}
		if err := dp.DelRoutes6(vrf, ps); err != nil {
			t.Errorf("deleting the %d routes left: %v", len(ps), err)
		}
	})
	if s, _ := dp.FIB6Stats(vrf); s.Groups != 0 {
		t.Fatalf("VRF %d has an IPv6 FIB before its first route: %+v", vrf, s)
	}
	keys := func() []netip.Prefix {
		ps := make([]netip.Prefix, 0, len(m))
		for p := range m {
			ps = append(ps, p)
		}
		return ps
	}

	// One by one.
	for i := range 2000 {
		switch op := r.IntN(10); {
		case op < 6 || len(m) == 0:
			p, nh := randPrefix6(r), nhs[r.IntN(len(nhs))]
			if err := dp.AddRoute6(vrf, p, nh); err != nil {
				t.Fatalf("op %d: add %v: %v", i, p, err)
			}
			m[p] = nh
		case op < 9:
			p := keys()[r.IntN(len(m))]
			if err := dp.DelRoute6(vrf, p); err != nil {
				t.Fatalf("op %d: delete %v: %v", i, p, err)
			}
			delete(m, p)
		default:
			p := randPrefix6(r)
			if _, ok := m[p]; !ok {
				wantErr(t, "delete a missing route", dp.DelRoute6(vrf, p), syscall.ENOENT, "no such route")
			}
		}
	}
	checkModel6(t, vrf, m, probes6(r, keys(), 3000))

	// Batches: adds, repoints and deletes at once.
	for b := range 20 {
		var batch []fastpath.Route6
		seen := map[netip.Prefix]bool{}
		next := lpm6{}
		for p, nh := range m {
			next[p] = nh
		}
		for range 300 {
			p := randPrefix6(r)
			if len(m) > 0 && r.IntN(3) == 0 {
				p = keys()[r.IntN(len(m))]
			}
			if seen[p] {
				continue
			}
			seen[p] = true
			if _, in := next[p]; in && r.IntN(2) == 0 {
				batch = append(batch, fastpath.Route6{Prefix: p, NextHop: fastpath.NoNextHop})
				delete(next, p)
				continue
			}
			nh := nhs[r.IntN(len(nhs))]
			batch = append(batch, fastpath.Route6{Prefix: p, NextHop: nh})
			next[p] = nh
		}
		if b%4 == 3 {
			// the last entry deletes a route that is not there: the
			// whole batch is undone
			missing := randPrefix6(r)
			for _, in := next[missing]; in || seen[missing]; _, in = next[missing] {
				missing = randPrefix6(r)
			}
			batch = append(batch, fastpath.Route6{Prefix: missing, NextHop: fastpath.NoNextHop})
			wantErr(t, "batch ending in a missing delete", dp.UpdateRoutes6(vrf, batch), syscall.ENOENT, "batch not applied")
			ps := keys()
			for p := range seen {
				ps = append(ps, p)
			}
			checkModel6(t, vrf, m, probes6(r, ps, 500))
			continue
		}
		if err := dp.UpdateRoutes6(vrf, batch); err != nil {
			t.Fatalf("batch %d: %v", b, err)
		}
		m = next
		checkModel6(t, vrf, m, probes6(r, keys(), 1000))
	}

	// Validation: nothing of a batch is applied if one entry is malformed.
	good := fastpath.Route6{Prefix: netip.MustParsePrefix("2001:db8:77::/48"), NextHop: nhs[0]}
	for _, c := range []struct {
		what string
		r    fastpath.Route6
		msg  string
	}{
		{"host bits", fastpath.Route6{Prefix: netip.PrefixFrom(ip("2001:db8::1"), 64), NextHop: nhs[0]}, "host bits set"},
		{"no such next-hop", fastpath.Route6{Prefix: netip.MustParsePrefix("2001:db8:78::/48"), NextHop: 999999}, "does not exist"},
		{"an IPv4 prefix", fastpath.Route6{Prefix: netip.MustParsePrefix("10.0.0.0/8"), NextHop: nhs[0]}, "not an IPv6 prefix"},
	} {
		wantErr(t, c.what, dp.UpdateRoutes6(vrf, []fastpath.Route6{good, c.r}), syscall.EINVAL, c.msg)
	}
	// good's prefix among the probes: it must not be there
	checkModel6(t, vrf, m, probes6(r, append(keys(), good.Prefix), 200))

	// References: a next-hop a route uses cannot go.
	used := fastpath.NoNextHop
	for _, nh := range m {
		used = nh
		break
	}
	wantErr(t, "delete a used next-hop", dp.DelNextHop(used), syscall.EBUSY, "used by")

	// Everything out: the VRF's FIB goes, its groups back to the pool.
	before, _ := dp.FIB6Stats(vrf)
	if err := dp.DelRoutes6(vrf, keys()); err != nil {
		t.Fatal(err)
	}
	clear(m)
	after, _ := dp.FIB6Stats(vrf)
	if after.Groups != 0 || after.Routes != 0 || after.VRFs != before.VRFs-1 {
		t.Fatalf("all routes deleted: %+v (before: %d groups, %d VRFs)", after, before.Groups, before.VRFs)
	}
	if after.PoolFree+after.PoolPending != after.PoolGroups-groupsOfOtherVRFs(t, vrf) {
		t.Fatalf("groups not back in the pool: %+v", after)
	}
	t.Logf("%d groups for %d routes before the last delete", before.Groups, before.Routes)
}

func groupsOfOtherVRFs(t *testing.T, except uint16) int {
	t.Helper()
	n := 0
	for v := range uint16(fastpath.DefaultConfig().VRFs) {
		if v == except {
			continue
		}
		s, err := dp.FIB6Stats(v)
		if err != nil {
			t.Fatal(err)
		}
		n += s.Groups
	}
	return n
}

// Pod /128s in a few /64s, 100,000 of them in one VRF, in batches: few
// groups (path compression), the right answer for each, and all gone.
func TestFIB6HundredThousand(t *testing.T) {
	e := newEnv(t)
	const vrf = 44
	nh := e.nh(fastpath.NextHop{Type: fastpath.NHDiscard})
	var rs []fastpath.Route6
	for i := range 100000 {
		a := ip(fmt.Sprintf("fd00:44:0:%x::%x", i/6250, i%6250+1))
		rs = append(rs, fastpath.Route6{Prefix: netip.PrefixFrom(a, 128), NextHop: nh})
	}
	t.Cleanup(func() {
		ps := make([]netip.Prefix, len(rs))
		for i, r := range rs {
			ps[i] = r.Prefix
		}
		dp.DelRoutes6(vrf, ps) // after a failure: may be gone already
	})
	for i := 0; i < len(rs); i += 10000 {
		if err := dp.AddRoutes6(vrf, rs[i:i+10000]); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := dp.FIB6Stats(vrf)
	// per /64: a group per 256 addresses, one where they part (byte 14)
	if s.Routes != 100000 || s.Groups > 16*(6250/256+3) {
		t.Fatalf("100,000 /128s: %+v", s)
	}
	t.Logf("100,000 /128s in 16 /64s: %d groups, %d KiB read by lookups, %d KiB control", s.Groups, s.Bytes>>10, s.CtlBytes>>10)
	// every route's address, and beside each one that is none's (a bit
	// of the interface id's first half set)
	var addrs []netip.Addr
	for _, r := range rs {
		b := r.Prefix.Addr().As16()
		b[9] |= 1
		addrs = append(addrs, r.Prefix.Addr(), netip.AddrFrom16(b))
	}
	got := dp.LookupRoutes6(vrf, addrs)
	for i, a := range addrs {
		want := nh
		if i%2 == 1 {
			want = fastpath.NoNextHop
		}
		if got[i] != want {
			t.Fatalf("lookup %v: %d, want %d", a, int32(got[i]), int32(want))
		}
	}
	ps := make([]netip.Prefix, len(rs))
	for i, r := range rs {
		ps[i] = r.Prefix
	}
	if err := dp.DelRoutes6(vrf, ps); err != nil {
		t.Fatal(err)
	}
	if s, _ := dp.FIB6Stats(vrf); s.Groups != 0 || s.Routes != 0 {
		t.Fatalf("all deleted: %+v", s)
	}
}
