package fib6test

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"
)

// ---- a reference longest-prefix match --------------------------------------

type model map[netip.Prefix]uint32

// lookup is the longest match and its length (-1: none).
func (m model) lookup(a netip.Addr) (uint32, int) {
	for l := 128; l >= 0; l-- {
		p, _ := a.Prefix(l)
		if nh, ok := m[p]; ok {
			return nh, l
		}
	}
	return NoRoute, -1
}

func start(t *testing.T, groups, maxRoutes uint32, readers int) {
	t.Helper()
	if err := Init(groups, maxRoutes, readers); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(Fini)
}

func add(t *testing.T, m model, p netip.Prefix, nh uint32) {
	t.Helper()
	if _, err := Add(p, nh); err != nil {
		t.Fatalf("add %v: %v", p, err)
	}
	if m != nil {
		m[p] = nh
	}
}

func del(t *testing.T, m model, p netip.Prefix) {
	t.Helper()
	if _, err := Del(p); err != nil {
		t.Fatalf("del %v: %v", p, err)
	}
	delete(m, p)
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func wantGroups(t *testing.T, what string, groups int) {
	t.Helper()
	if s := GetStats(); s.Groups != groups {
		t.Fatalf("%s: %d groups, want %d (%+v)", what, s.Groups, groups, s)
	}
}

// addrAt is base with its last 8 bytes replaced by lo.
func addrAt(base netip.Addr, lo uint64) netip.Addr {
	b := base.As16()
	for i := range 8 {
		b[15-i] = byte(lo >> (8 * i))
	}
	return netip.AddrFrom16(b)
}

// randomise bits [from, 128) of a.
func scramble(r *rand.Rand, a netip.Addr, from int) netip.Addr {
	b := a.As16()
	for i := from; i < 128; i++ {
		if r.IntN(2) == 1 {
			b[i/8] ^= 0x80 >> (i % 8)
		}
	}
	return netip.AddrFrom16(b)
}

var hot = []netip.Addr{
	netip.MustParseAddr("2001:db8::"), netip.MustParseAddr("2001:db8:0:1::"),
	netip.MustParseAddr("2001:db8:1::"), netip.MustParseAddr("fd00::"),
	netip.MustParseAddr("fd00:0:0:ff::"), netip.MustParseAddr("fe80::"),
}

// randPrefix: mostly near a few hot prefixes, so routes nest and part at
// every depth; lengths favour the ones networks use.
func randPrefix(r *rand.Rand) netip.Prefix {
	lens := []int{0, 3, 8, 16, 29, 32, 40, 47, 48, 52, 56, 60, 63, 64, 65, 72, 80, 96, 112, 120, 121, 126, 127, 128, 128, 128}
	l := lens[r.IntN(len(lens))]
	var a netip.Addr
	if r.IntN(8) == 0 {
		a = scramble(r, netip.IPv6Unspecified(), 0)
	} else {
		a = scramble(r, hot[r.IntN(len(hot))], 32+r.IntN(97))
	}
	p, _ := a.Prefix(l)
	return p
}

// probes tell routes apart: both ends of every prefix, their outside
// neighbours, and random addresses.
func probes(r *rand.Rand, ps []netip.Prefix, random int) []netip.Addr {
	out := make([]netip.Addr, 0, 4*len(ps)+random)
	for _, p := range ps {
		first := p.Masked().Addr()
		last := first.As16()
		for i := p.Bits(); i < 128; i++ {
			last[i/8] |= 0x80 >> (i % 8)
		}
		l := netip.AddrFrom16(last)
		out = append(out, first, l)
		if pr := first.Prev(); pr.IsValid() {
			out = append(out, pr)
		}
		if nx := l.Next(); nx.IsValid() {
			out = append(out, nx)
		}
	}
	for range random {
		out = append(out, scramble(r, hot[r.IntN(len(hot))], 16+r.IntN(100)))
	}
	return out
}

func checkModel(t *testing.T, what string, m model, addrs []netip.Addr) {
	t.Helper()
	got := Match(addrs)
	bad := 0
	for i, a := range addrs {
		if want, _ := m.lookup(a); got[i] != want {
			if bad++; bad <= 5 {
				t.Errorf("%s: %v -> %d, want %d", what, a, int32(got[i]), int32(want))
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%s: %d of %d lookups wrong", what, bad, len(addrs))
	}
}

// cpus are the CPUs readers run on (all but the first), and whether the
// writer has a CPU of its own.
func cpus(n int) []int {
	c := make([]int, n)
	for i := range c {
		c[i] = -1
		if runtime.NumCPU() > 1 {
			c[i] = 1 + i%(runtime.NumCPU()-1)
		}
	}
	return c
}

// ---- tests ------------------------------------------------------------------

// Path compression, exactly: a group where a route ends or two part, and
// nowhere else; deletes give them back (one-pointer groups at settle).
func TestGroupAccounting(t *testing.T) {
	start(t, 64, 16, 1)
	m := model{}
	wantGroups(t, "empty", 1) // the root
	add(t, m, pfx("::/0"), 1)
	wantGroups(t, "::/0, in the root", 1)
	add(t, m, pfx("2001:db8::/32"), 2)
	wantGroups(t, "a /32: its group at depth 3", 2)
	add(t, m, pfx("2001:db8::1/128"), 3)
	wantGroups(t, "a /128 below: one group at depth 15", 3)
	add(t, m, pfx("2001:db8::2/128"), 4)
	wantGroups(t, "a second /128 in the same group", 3)
	add(t, m, pfx("2001:db8::1:0/112"), 5)
	// its group (depth 13) goes between the /32's and the /128s': the
	// /128s' group is copied (the region its miss answers for narrows) and
	// the original waits for a grace period
	wantGroups(t, "a /112 above them", 4)
	add(t, m, pfx("2001:db8:1::/48"), 6)
	wantGroups(t, "a /48 beside", 5)
	checkModel(t, "built", m, probes(rand.New(rand.NewPCG(1, 2)), slices.Collect(mapKeys(m)), 200))

	// ENOSPC: the route limit, then the pool
	for i := range 16 - len(m) {
		add(t, m, netip.PrefixFrom(addrAt(netip.MustParseAddr("fd00::"), uint64(i)<<32), 96), 10)
	}
	if _, err := Add(pfx("fd01::/16"), 1); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("add beyond the route limit: %v, want ENOSPC", err)
	}
	checkModel(t, "full", m, probes(rand.New(rand.NewPCG(3, 4)), slices.Collect(mapKeys(m)), 200))

	for p := range m {
		del(t, m, p)
	}
	Settle()
	wantGroups(t, "all deleted", 1)
	if s := GetStats(); s.PoolFree+s.PoolPending != s.PoolGroups-1 || s.Routes != 0 {
		t.Fatalf("all deleted: %+v, want every group but the root back", s)
	}
}

func mapKeys(m model) func(func(netip.Prefix) bool) {
	return func(yield func(netip.Prefix) bool) {
		for p := range m {
			if !yield(p) {
				return
			}
		}
	}
}

// A pool too small refuses with ENOSPC and leaves the FIB as it was.
func TestPoolExhausted(t *testing.T) {
	start(t, 4, 1000, 1)
	m := model{}
	add(t, m, pfx("2001:db8::/32"), 1)   // group 2
	add(t, m, pfx("2001:db8::1/128"), 2) // group 3
	add(t, m, pfx("2001:db9::1/128"), 3) // group 4: the pool is empty
	before := GetStats()
	for _, p := range []string{"2001:db8:1::1/128", "fd00::/16", "2001:db8::100/120"} {
		if _, err := Add(pfx(p), 9); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("add %s with an empty pool: %v, want ENOSPC", p, err)
		}
	}
	if after := GetStats(); after != before {
		t.Fatalf("failed adds changed the FIB: %+v, was %+v", after, before)
	}
	// a route in a group that exists needs none
	add(t, m, pfx("2001:db8::2/128"), 4)
	checkModel(t, "full pool", m, probes(rand.New(rand.NewPCG(5, 6)), slices.Collect(mapKeys(m)), 100))
}

// Random adds, repoints and deletes against the reference, in batches
// with a settle between.
func TestModel(t *testing.T) {
	start(t, 1<<16, 1<<20, 1)
	r := rand.New(rand.NewPCG(7, 8))
	m := model{}
	var ps []netip.Prefix
	for round := range 30 {
		for range 400 {
			if len(ps) > 0 && r.IntN(10) < 3 {
				i := r.IntN(len(ps))
				del(t, m, ps[i])
				ps[i] = ps[len(ps)-1]
				ps = ps[:len(ps)-1]
				continue
			}
			p := randPrefix(r)
			if _, ok := m[p]; !ok {
				ps = append(ps, p)
			}
			add(t, m, p, uint32(r.IntN(1<<24)))
		}
		Settle()
		if s := GetStats(); s.Routes != len(m) {
			t.Fatalf("round %d: %d routes, model %d", round, s.Routes, len(m))
		}
		checkModel(t, "round", m, probes(r, ps, 2000))
	}
	for _, p := range ps {
		del(t, m, p)
	}
	Settle()
	wantGroups(t, "all deleted", 1)
	if s := GetStats(); s.PoolFree != s.PoolGroups-1 {
		t.Fatalf("all deleted: %+v, want every group but the root free", s)
	}
}

// allowed is what a reader may see for a while stay's routes stay and any
// subset of churn's is present: the stay match, or a churn route longer.
func allowed(stay, churn model, a netip.Addr) []uint32 {
	nh, l := stay.lookup(a)
	ok := []uint32{nh}
	for k := 128; k > l; k-- {
		p, _ := a.Prefix(k)
		if c, in := churn[p]; in {
			ok = append(ok, c)
		}
	}
	return ok
}

// Lookups on reader threads (the lcores) never give a wrong answer while
// routes come and go around routes that stay: 100,000 routes added and
// deleted in bulk, then random churn.
func TestLiveUpdate(t *testing.T) {
	if testing.Short() {
		t.Skip("seconds of churn")
	}
	start(t, 1<<18, 1<<20, 1)
	r := rand.New(rand.NewPCG(9, 10))
	stay, churn := model{}, model{}
	for len(stay) < 3000 {
		p := randPrefix(r)
		stay[p] = uint32(len(stay))
		add(t, nil, p, stay[p])
	}
	// 100K churn routes: pod /128s in /64s, scattered /48../64s and /128s,
	// and some of the hot, nesting kind
	var pods []netip.Addr // fd00:10:0:i::/64
	for i := range 64 {
		b := netip.MustParseAddr("fd00:10::").As16()
		b[7] = byte(i)
		pods = append(pods, netip.AddrFrom16(b))
	}
	for len(churn) < 100000 {
		var p netip.Prefix
		switch x := r.IntN(10); {
		case x < 6:
			p = netip.PrefixFrom(addrAt(pods[r.IntN(len(pods))], uint64(r.IntN(1<<16))), 128)
		case x < 8:
			p, _ = scramble(r, netip.IPv6Unspecified(), 0).Prefix(48 + r.IntN(17))
		case x < 9:
			p = netip.PrefixFrom(scramble(r, netip.IPv6Unspecified(), 0), 128)
		default:
			// nesting ones, but not the short covering kind: adding
			// one rewrites every entry under it (leaf pushing), which
			// stay's routes cover
			if p = randPrefix(r); p.Bits() < 40 {
				continue
			}
		}
		if _, in := stay[p]; in {
			continue
		}
		churn[p] = 100000 + uint32(len(churn))
	}
	cps := slices.Collect(mapKeys(churn))
	sps := slices.Collect(mapKeys(stay))
	var addrs []netip.Addr
	var oks [][]uint32
	for _, a := range probes(r, append(sps, cps[:3000]...), 5000) {
		if ok := allowed(stay, churn, a); len(ok) <= 8 {
			addrs, oks = append(addrs, a), append(oks, ok)
		}
	}
	if len(addrs) < 10000 {
		t.Fatalf("only %d probes", len(addrs))
	}
	if err := SetProbes(addrs, oks); err != nil {
		t.Fatal(err)
	}
	base := GetStats().Groups
	if err := StartReaders(cpus(1)); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	for i, p := range cps {
		add(t, nil, p, churn[p])
		if i%4096 == 4095 {
			Settle()
		}
	}
	Settle()
	full := GetStats()
	all := model{}
	for p, nh := range stay {
		all[p] = nh
	}
	for p, nh := range churn {
		all[p] = nh
	}
	checkModel(t, "103,000 routes", all, addrs)
	t.Logf("103,000 routes added in %v: %d groups (%d MiB read by lookups), control %d MiB",
		time.Since(begin), full.Groups, full.Bytes>>20, full.CtlBytes>>20)
	begin = time.Now()
	for i, p := range cps {
		del(t, nil, p)
		if i%4096 == 4095 {
			Settle()
		}
	}
	Settle()
	t.Logf("100,000 routes deleted in %v", time.Since(begin))
	checkModel(t, "churn deleted", stay, addrs)
	// random churn: a few thousand in, some out, repeatedly
	deadline := time.Now().Add(2 * time.Second)
	in := map[netip.Prefix]bool{}
	for rounds := 0; time.Now().Before(deadline) || rounds < 3; rounds++ {
		for range 2000 {
			p := cps[r.IntN(20000)]
			if in[p] {
				del(t, nil, p)
				delete(in, p)
			} else {
				add(t, nil, p, churn[p])
				in[p] = true
			}
		}
		Settle()
	}
	for p := range in {
		del(t, nil, p)
	}
	Settle()
	StopReaders()
	res := Reader(0)
	if res.Bad != 0 {
		t.Fatalf("reader: %d wrong answers of %d; first: %v -> %d, allowed %v", res.Bad, res.Lookups,
			addrs[res.BadIdx], int32(res.BadVal)-1, oks[res.BadIdx])
	}
	if res.Lookups < uint64(len(addrs)) {
		t.Fatalf("reader: only %d lookups", res.Lookups)
	}
	t.Logf("reader: %d lookups over %d probes, none wrong", res.Lookups, len(addrs))
	checkModel(t, "after churn", stay, addrs)
	// the compressed trie is a function of the routes: back to its groups
	if s := GetStats(); s.Groups != base || s.Routes != len(stay) {
		t.Fatalf("after churn: %+v, want %d groups, %d routes", s, base, len(stay))
	}
}

// Lookup cost (ns/op per lookup) on pod /128s in a /64, and on scattered
// /48s.
func BenchmarkMatch(b *testing.B) {
	if err := Init(1<<16, 1<<20, 1); err != nil {
		b.Fatal(err)
	}
	defer Fini()
	r := rand.New(rand.NewPCG(11, 12))
	var addrs []netip.Addr
	base := netip.MustParseAddr("fd00:10:0:1::")
	for i := range 4096 {
		a := addrAt(base, uint64(i+1))
		if _, err := Add(netip.PrefixFrom(a, 128), uint32(i)); err != nil {
			b.Fatal(err)
		}
		addrs = append(addrs, a)
	}
	for i := range 4096 {
		p, _ := scramble(r, netip.IPv6Unspecified(), 0).Prefix(48)
		if _, err := Add(p, uint32(i)); err != nil {
			b.Fatal(err)
		}
		addrs = append(addrs, scramble(r, p.Addr(), 48))
	}
	r.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
	b.ResetTimer()
	Bench(addrs, b.N/len(addrs)+1)
}
