package fibtest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func a4(s string) uint32 {
	b := netip.MustParseAddr(s).As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func mask(l int) uint32 {
	if l == 0 {
		return 0
	}
	return ^uint32(0) << (32 - l)
}

type route struct {
	p uint32
	l int
}

func (r route) contains(a uint32) bool { return a&mask(r.l) == r.p }

// model is a longest-prefix match by brute force.
type model map[route]uint32

func (m model) lookup(a uint32) uint32 {
	for l := 32; l >= 0; l-- {
		if nh, ok := m[route{a & mask(l), l}]; ok {
			return nh
		}
	}
	return NoRoute
}

func start(t *testing.T, groups, maxRoutes uint32, readers int) {
	t.Helper()
	if err := Init(groups, maxRoutes, readers); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(Fini)
}

func add(t *testing.T, p string, l int, nh uint32) {
	t.Helper()
	if _, err := Add(a4(p), l, nh); err != nil {
		t.Fatalf("add %s/%d: %v", p, l, err)
	}
	Settle()
}

func del(t *testing.T, p string, l int) {
	t.Helper()
	if _, err := Del(a4(p), l); err != nil {
		t.Fatalf("delete %s/%d: %v", p, l, err)
	}
	Settle()
}

func wantStats(t *testing.T, what string, groups, free, pending int) {
	t.Helper()
	s := GetStats()
	if s.Groups != groups || s.PoolFree != free || s.PoolPending != pending {
		t.Errorf("%s: %d groups used, %d free, %d pending; want %d, %d, %d", what,
			s.Groups, s.PoolFree, s.PoolPending, groups, free, pending)
	}
}

// cpus are the CPUs readers run on (all but the first, or the only one),
// and whether the writer has a CPU of its own.
func cpus(n int) ([]int, bool) {
	if runtime.NumCPU() < 2 {
		return make([]int, n), false
	}
	c := make([]int, n)
	for i := range c {
		c[i] = 1 + i%(runtime.NumCPU()-1)
	}
	return c, true
}

// A route takes one group per 8-bit level between the root's and its own
// length; a group goes when the last route longer than its prefix goes;
// the route limit and an exhausted pool refuse with ENOSPC.
func TestGroupAccounting(t *testing.T) {
	start(t, 16, 8, 1)
	add(t, "10.0.0.0", 8, 1) // in the 8-bit root
	wantStats(t, "a /8", 0, 16, 0)
	add(t, "10.1.0.0", 16, 2) // a group for 10/8
	add(t, "10.1.2.0", 24, 3) // and for 10.1/16
	add(t, "10.1.2.3", 32, 4) // and for 10.1.2/24
	wantStats(t, "/16, /24, /32 under a /8", 3, 13, 0)
	add(t, "20.1.2.3", 32, 5)
	add(t, "0.0.0.0", 0, 6)
	add(t, "10.1.2.128", 25, 7)
	wantStats(t, "a /32 elsewhere, the default route, a /25", 6, 10, 0)
	for _, c := range []struct {
		a  string
		nh uint32
	}{{"10.1.2.3", 4}, {"10.1.2.4", 3}, {"10.1.2.200", 7}, {"10.1.3.1", 2}, {"10.2.0.0", 1},
		{"20.1.2.3", 5}, {"20.1.2.2", 6}, {"9.255.255.255", 6}, {"255.255.255.255", 6}} {
		if got := Match(a4(c.a)); got != c.nh {
			t.Errorf("match %s: %d, want %d", c.a, got, c.nh)
		}
	}
	// Repointing changes no group.
	add(t, "10.1.2.0", 24, 9)
	wantStats(t, "repointed", 6, 10, 0)
	if got := Match(a4("10.1.2.4")); got != 9 {
		t.Errorf("after repointing: %d", got)
	}
	// The route limit.
	add(t, "30.0.0.0", 8, 8)
	_, err := Add(a4("40.0.0.0"), 8, 8)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "routes") {
		t.Errorf("route 9 of 8: %v, want ENOSPC", err)
	}
	// Deletes fold groups, deepest first; they come back after a grace
	// period (the reader is not running: at once).
	del(t, "20.1.2.3", 32)
	wantStats(t, "the lone /32 deleted", 3, 13, 0)
	del(t, "10.1.2.3", 32)
	wantStats(t, "the /32 deleted, the /25 keeps its /24 group", 3, 13, 0)
	del(t, "10.1.2.128", 25)
	wantStats(t, "the /25 deleted", 2, 14, 0)
	del(t, "10.1.0.0", 16)
	wantStats(t, "the /16 deleted, the /24 keeps two groups", 2, 14, 0)
	del(t, "10.1.2.0", 24)
	wantStats(t, "nothing longer than /8", 0, 16, 0)
	// An exhausted pool: 5 lone /32s take 15 groups, the 6th needs 3.
	del(t, "30.0.0.0", 8)
	for i := range 5 {
		if _, err := Add(uint32(50+i)<<24|0x010101, 32, 10); err != nil {
			t.Fatal(err)
		}
	}
	wantStats(t, "5 lone /32s", 15, 1, 0)
	_, err = Add(60<<24|0x010101, 32, 10)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "full") {
		t.Errorf("a /32 needing 3 groups with 1 free: %v, want ENOSPC", err)
	}
	if _, err := Add(50<<24|0x010102, 32, 11); err != nil {
		t.Errorf("a /32 in an existing /24 group: %v", err)
	}
	wantStats(t, "full, and refused", 15, 1, 0)
	if got := Match(60<<24 | 0x010101); got != 6 {
		t.Errorf("the refused route is in the FIB: %d", got)
	}
}

// A group released while a reader may still hold it is not reused before
// that reader passes a quiescent state: an add that needs it waits, and
// one that needs more than the pool has is refused at once.
func TestGracePeriod(t *testing.T) {
	start(t, 16, 1000, 1)
	c, _ := cpus(1)
	if err := SetProbes([]uint32{a4("10.1.1.1")}, [][]uint32{{NoRoute, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := StartReaders(c); err != nil {
		t.Fatal(err)
	}
	add(t, "10.1.1.1", 32, 1)
	Stall(0) // as an lcore in the middle of a burst
	del(t, "10.1.1.1", 32)
	wantStats(t, "a /32 deleted, reader stalled", 0, 13, 3)
	for i := range 4 { // 12 groups ...
		if _, err := Add(uint32(11+i)<<24|0x010101, 32, 2); err != nil {
			t.Fatal(err)
		}
	}
	add(t, "15.1.0.0", 16, 2) // ... and 1: only free ones were taken
	wantStats(t, "the free groups used", 13, 0, 3)
	// 16.1.1.1/32 needs 3 groups: the 3 pending ones, once the reader
	// has moved on. Until then the add waits.
	if err := AddAsync(a4("16.1.1.1"), 32, 2); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(100 * time.Millisecond); time.Now().Before(deadline); {
		if AsyncDone() {
			t.Fatal("an add took groups a stalled reader may still hold")
		}
		time.Sleep(time.Millisecond) // a bound for what must not happen
	}
	Unstall(0)
	if err := AsyncJoin(); err != nil {
		t.Fatalf("the add after the grace period: %v", err)
	}
	wantStats(t, "after the grace period", 16, 0, 0)
	// Nothing free, nothing pending: refused at once.
	Stall(0)
	_, err := Add(a4("17.0.0.0"), 9, 3)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("a /9 with no group left: %v, want ENOSPC", err)
	}
	add(t, "17.0.0.0", 8, 3) // in the root: needs none
	Unstall(0)
	StopReaders()
	if r := Reader(0); r.Bad != 0 || r.Lookups == 0 {
		t.Errorf("reader: %+v", r)
	}
}

// Readers look up addresses in a tight loop, each answer checked against
// the next-hops its routes can have, while the writer repoints, deletes and
// adds routes over them (groups taken, folded, reused) and grows and
// shrinks the FIB past both root promotions far from them. No reader ever
// gets an answer its routes never had: no torn entry, no group seen before
// it was complete, none reused under a reader.
func TestStress(t *testing.T) {
	readers := max(1, runtime.NumCPU()-1)
	start(t, 65536, 1<<20, readers)
	rcpu, own := cpus(readers)
	if own {
		defer PinWriter(rcpu)()
	}
	r := rand.New(rand.NewPCG(7, 7))
	m := model{}
	// The default route stays: "no route" is never a right answer.
	if _, err := Add(0, 0, 1); err != nil {
		t.Fatal(err)
	}
	m[route{0, 0}] = 1
	// The churned routes, in 10.0.0.0/8 around a few hot spots, each
	// with two next-hops of its own.
	var churn []route
	seen := map[route]bool{}
	for len(churn) < 300 {
		hot := uint32(10<<24) | (r.Uint32N(4) << 14)
		l := 8 + r.IntN(25)
		rt := route{(hot ^ r.Uint32N(1<<18)) & mask(l), l} // overlapping, within a /14
		if !seen[rt] {
			seen[rt] = true
			churn = append(churn, rt)
		}
	}
	nhs := func(i int) [2]uint32 { return [2]uint32{uint32(1000 + 2*i), uint32(1001 + 2*i)} }
	var addrs []uint32
	var ok [][]uint32
	// Probes inside the churned routes, mostly the long ones, whose groups
	// come and go: there a lookup can meet a group being built or folded.
	var long []route
	for _, rt := range churn {
		if rt.l > 16 {
			long = append(long, rt)
		}
	}
	for i := range 1024 {
		var a uint32
		rt := churn[r.IntN(len(churn))]
		if i%4 != 0 {
			rt = long[r.IntN(len(long))]
		}
		if r.IntN(2) == 0 {
			a = rt.p | r.Uint32()&^mask(rt.l)
		} else {
			a = rt.p | (^mask(rt.l) & uint32(r.IntN(2)*-1)) // first or last
		}
		allowed := []uint32{1}
		for i, rt := range churn {
			if rt.contains(a) {
				n := nhs(i)
				allowed = append(allowed, n[0], n[1])
			}
		}
		addrs, ok = append(addrs, a), append(ok, allowed)
	}
	if err := SetProbes(addrs, ok); err != nil {
		t.Fatal(err)
	}
	if err := StartReaders(rcpu); err != nil {
		t.Fatal(err)
	}

	// Far away (64.0.0.0/2): 20,000 routes longer than /24 take a /16 and
	// a /24 group each, which promotes the root to 16 and 24 bits, and
	// deleting them demotes it back; without the churned routes, it goes
	// back to 8 bits.
	var far []route
	for range 20000 {
		l := 25 + r.IntN(8)
		far = append(far, route{(64<<24 | r.Uint32N(1<<30)) & mask(l), l})
	}
	farIn := false
	roots := map[int]int{}
	deadline := time.Now().Add(1500 * time.Millisecond)
	ops := 0
	for i := 0; time.Now().Before(deadline) || i < 400; i++ {
		for range 16 {
			k := r.IntN(len(churn))
			rt := churn[k]
			if _, in := m[rt]; in && r.IntN(3) == 0 {
				if _, err := Del(rt.p, rt.l); err != nil {
					t.Fatal(err)
				}
				delete(m, rt)
			} else {
				nh := nhs(k)[r.IntN(2)]
				if _, err := Add(rt.p, rt.l, nh); err != nil {
					t.Fatal(err)
				}
				m[rt] = nh
			}
			ops++
		}
		Settle()
		if i%250 == 124 && !farIn { // every churned route out: back to 8 bits
			for rt := range m {
				if rt.l > 0 {
					if _, err := Del(rt.p, rt.l); err != nil {
						t.Fatal(err)
					}
					delete(m, rt)
				}
			}
			Settle()
			roots[GetStats().RootBits]++
		}
		if i%100 == 99 { // far routes in or out, 2,000 at a time
			for j, rt := range far {
				var err error
				if farIn {
					_, err = Del(rt.p, rt.l)
				} else {
					_, err = Add(rt.p, rt.l, 2)
				}
				if err != nil && !(errors.Is(err, syscall.ENOENT) || err == nil) {
					t.Fatal(err)
				}
				if j%2000 == 1999 {
					Settle()
					roots[GetStats().RootBits]++
				}
			}
			farIn = !farIn
			ops += len(far)
		}
	}
	StopReaders()
	var lookups uint64
	for i := range readers {
		res := Reader(i)
		lookups += res.Lookups
		if res.Bad != 0 {
			t.Errorf("reader %d: %d of %d answers wrong; first: %08x got entry %d", i, res.Bad, res.Lookups, res.BadAddr, res.BadVal)
		}
	}
	t.Logf("%d updates, %d checked lookups by %d reader(s); roots seen (bits: times) %v", ops, lookups, readers, roots)
	if roots[16] == 0 || roots[24] == 0 || roots[8] == 0 {
		t.Errorf("the root was not promoted and demoted: %v", roots)
	}
	// And the answers are right once quiet.
	if farIn {
		for _, rt := range far {
			m[rt] = 2
		}
	}
	got := MatchBulk(addrs)
	for i, a := range addrs {
		if want := m.lookup(a); got[i] != want || Match(a) != want {
			t.Fatalf("match %08x: %d (bulk) %d, want %d", a, got[i], Match(a), want)
		}
	}
}

// checkAll compares Match and MatchBulk with the model at both ends of
// every route, just outside them, and at random addresses.
func checkAll(t *testing.T, what string, m model, r *rand.Rand) {
	t.Helper()
	var addrs []uint32
	for rt := range m {
		last := rt.p | ^mask(rt.l)
		addrs = append(addrs, rt.p, last, rt.p-1, last+1, rt.p|r.Uint32()&^mask(rt.l))
	}
	for range 256 {
		addrs = append(addrs, r.Uint32(), 10<<24|r.Uint32N(1<<24), 10<<24|1<<16|r.Uint32N(1<<16))
	}
	bulk := MatchBulk(addrs)
	for i, a := range addrs {
		want := m.lookup(a)
		if got := Match(a); got != want || bulk[i] != want {
			t.Fatalf("%s: match %d.%d.%d.%d: %d (bulk %d), want %d", what, a>>24, a>>16&0xff, a>>8&0xff, a&0xff,
				int32(got), int32(bulk[i]), int32(want))
		}
	}
}

// An 8-bit root's entry skips the levels that hold only the path to the
// next group, with the value everywhere else: a small VRF's /32 is then
// 2 loads. The shortcut follows every change under it: it appears,
// shortens, goes and comes back, and lookups stay right throughout.
func TestShortcuts(t *testing.T) {
	start(t, 64, 1000, 1)
	r := rand.New(rand.NewPCG(3, 3))
	m := model{}
	step := func(what string, k1, k2 int) {
		t.Helper()
		Settle()
		if s := GetStats(); s.RootBits != 8 {
			t.Fatalf("%s: root of %d bits", what, s.RootBits)
		}
		if a, b := Shortcuts(); a != k1 || b != k2 {
			t.Errorf("%s: %d shortcuts past one level, %d past two; want %d, %d", what, a, b, k1, k2)
		}
		checkAll(t, what, m, r)
	}
	set := func(p string, l int, nh uint32) {
		t.Helper()
		if _, err := Add(a4(p), l, nh); err != nil {
			t.Fatal(err)
		}
		m[route{a4(p), l}] = nh
	}
	unset := func(p string, l int) {
		t.Helper()
		if _, err := Del(a4(p), l); err != nil {
			t.Fatal(err)
		}
		delete(m, route{a4(p), l})
	}
	set("10.1.1.5", 32, 1)
	step("a lone /32: past 10/8 and 10.1/16", 0, 1)
	set("10.1.1.6", 32, 2)
	set("10.1.1.0", 24, 3)
	step("its /24, another /32 in it", 0, 1)
	set("10.1.2.0", 24, 4)
	step("a second /24 in 10.1/16: only past 10/8", 1, 0)
	set("10.0.0.0", 8, 5)
	step("a /8 over them: the value elsewhere changes", 1, 0)
	unset("10.1.2.0", 24)
	step("the second /24 gone: past two again", 0, 1)
	set("0.0.0.0", 0, 6)
	unset("10.0.0.0", 8)
	step("the /8 gone under a default route", 0, 1)
	set("0.0.0.0", 0, 12)
	step("the default route repointed", 0, 1)
	set("10.2.0.0", 16, 7)
	step("a /16 beside: 10/8 holds two things", 0, 0)
	set("10.2.3.4", 32, 8)
	set("20.1.1.1", 32, 9)
	step("a /32 in it, and one in 20/8", 0, 1)
	unset("10.2.3.4", 32)
	unset("10.2.0.0", 16)
	step("10.2/16 gone", 0, 2)
	set("10.1.1.128", 25, 10)
	set("10.1.1.0", 24, 11) // repointed
	step("a /25 and a repointed /24", 0, 2)
	for _, rt := range []struct {
		p string
		l int
	}{{"10.1.1.0", 24}, {"10.1.1.5", 32}, {"10.1.1.6", 32}, {"10.1.1.128", 25}} {
		unset(rt.p, rt.l)
	}
	step("10/8 empty again", 0, 1)
	wantStats(t, "one lone /32 left", 3, 61, 0)
}

// readersOn starts readers checking addrs (each may get the default
// route's next-hop 1 or any next-hop of a route in churn that covers it:
// nhs(i) for churn[i]); the returned function stops them and fails the
// test on any wrong answer.
func readersOn(t *testing.T, churn []route, nhs func(int) [2]uint32, addrs []uint32) func() uint64 {
	t.Helper()
	var ok [][]uint32
	for _, a := range addrs {
		allowed := []uint32{1}
		for i, rt := range churn {
			if rt.contains(a) {
				n := nhs(i)
				allowed = append(allowed, n[0], n[1])
			}
		}
		ok = append(ok, allowed)
	}
	if err := SetProbes(addrs, ok); err != nil {
		t.Fatal(err)
	}
	rcpu, _ := cpus(readersN)
	if err := StartReaders(rcpu); err != nil {
		t.Fatal(err)
	}
	return func() uint64 {
		StopReaders()
		var lookups uint64
		for i := range readersN {
			res := Reader(i)
			lookups += res.Lookups
			if res.Bad != 0 {
				t.Errorf("reader %d: %d of %d answers wrong; first: %08x got entry %d", i, res.Bad, res.Lookups, res.BadAddr, res.BadVal)
			}
		}
		return lookups
	}
}

// readersN is how many reader threads the stress tests run: one per CPU
// but the writer's.
var readersN = max(1, runtime.NumCPU()-1)

// A small VRF (8-bit root) under readers while its shortcuts come and go:
// routes added and deleted under them, beside them (a second path under a
// root entry ends its shortcut), and over them (the value a shortcut
// answers outside its path changes).
func TestStressShortcuts(t *testing.T) {
	start(t, 256, 10000, readersN)
	rcpu, own := cpus(readersN)
	if own {
		defer PinWriter(rcpu)()
	}
	r := rand.New(rand.NewPCG(5, 5))
	m := model{route{0, 0}: 1}
	if _, err := Add(0, 0, 1); err != nil {
		t.Fatal(err)
	}
	var churn []route
	for _, s := range []string{"10.1.1.128/25", "10.1.1.64/26", "10.1.1.16/28", "10.1.1.4/30",
		"10.1.1.1/32", "10.1.1.2/32", "10.1.1.77/32", "10.1.1.200/32", "10.1.1.255/32", "10.1.1.0/24",
		"10.1.2.0/24", "10.1.128.0/17", "10.0.0.0/8", "10.1.0.0/16", "10.200.0.0/16", "10.200.5.5/32",
		"10.1.9.9/32", "20.5.5.5/32", "20.5.5.0/24", "20.0.0.0/8", "20.5.0.0/16", "20.6.6.6/32"} {
		p := netip.MustParsePrefix(s)
		churn = append(churn, route{a4(p.Addr().String()), p.Bits()})
	}
	nhs := func(i int) [2]uint32 { return [2]uint32{uint32(100 + 2*i), uint32(101 + 2*i)} }
	var addrs []uint32
	for _, rt := range churn {
		last := rt.p | ^mask(rt.l)
		addrs = append(addrs, rt.p, last, rt.p-1, last+1)
		for range 8 {
			addrs = append(addrs, rt.p|r.Uint32()&^mask(rt.l))
		}
	}
	stop := readersOn(t, churn, nhs, addrs)
	seen := map[[2]int]int{}
	deadline := time.Now().Add(time.Second)
	ops := 0
	for i := 0; time.Now().Before(deadline) || i < 1000; i++ {
		for range 3 {
			k := r.IntN(len(churn))
			rt := churn[k]
			if _, in := m[rt]; in && r.IntN(2) == 0 {
				if _, err := Del(rt.p, rt.l); err != nil {
					t.Fatal(err)
				}
				delete(m, rt)
			} else {
				nh := nhs(k)[r.IntN(2)]
				if _, err := Add(rt.p, rt.l, nh); err != nil {
					t.Fatal(err)
				}
				m[rt] = nh
			}
			ops++
		}
		Settle()
		k1, k2 := Shortcuts()
		seen[[2]int{k1, k2}]++
	}
	lookups := stop()
	t.Logf("%d updates, %d checked lookups; (shortcuts past 1, past 2 levels): times seen %v", ops, lookups, seen)
	if s := GetStats(); s.RootBits != 8 {
		t.Errorf("root of %d bits", s.RootBits)
	}
	k1, k2 := 0, 0
	for k, n := range seen {
		if k[0] > 0 {
			k1 += n
		}
		if k[1] > 0 {
			k2 += n
		}
	}
	if k1 == 0 || k2 == 0 {
		t.Errorf("shortcuts past one level seen %d times, past two %d times", k1, k2)
	}
	checkAll(t, "after the stress", m, r)
}

// liveMix is the dataplane tests' million routes (fib4_test.go): 786,432
// /24s, 48 in each of 16,384 /16s from 32.0.0.0, and 262,144 /32s, 64 in
// each of 4,096 /24s from 96.0.0.0.
func liveMix(i int) route {
	if i < 16384*48 {
		k, x := uint32(i/48), uint32(i%48)
		return route{(32+k>>8)<<24 | (k&0xff)<<16 | x<<8, 24}
	}
	i -= 16384 * 48
	j, h := uint32(i/64), uint32(i%64+1)
	return route{96<<24 | j<<8 | h, 32}
}

// BenchmarkMatch is the cost of a lookup alone, in C, over 1M addresses
// at random among a million routes (root of 24 bits, 64 MiB: mostly cache
// misses) and among 64 routes under an 8-bit root (all in cache), one
// address at a time and in bursts of 32 (fp_fib4_match_bulk).
func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{64, 16384*48 + 4096*64} {
		if err := Init(65536, 1<<21, 1); err != nil {
			b.Fatal(err)
		}
		r := rand.New(rand.NewPCG(9, 9))
		step := (16384*48 + 4096*64) / n
		var rs []route
		for i := 0; i < n; i++ {
			rt := liveMix(i * step)
			if _, err := Add(rt.p, rt.l, uint32(i)); err != nil {
				b.Fatal(err)
			}
			rs = append(rs, rt)
		}
		Settle()
		addrs := make([]uint32, 1<<20)
		for i := range addrs {
			rt := rs[r.IntN(len(rs))]
			addrs[i] = rt.p | r.Uint32()&^mask(rt.l)
		}
		for _, bulk := range []bool{false, true} {
			b.Run(fmt.Sprintf("routes=%d/root=%d/bulk=%v", n, GetStats().RootBits, bulk), func(b *testing.B) {
				for b.Loop() {
					Bench(addrs, 1, bulk)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(addrs)), "ns/lookup")
			})
		}
		Fini()
	}
}
