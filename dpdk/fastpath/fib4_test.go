package fastpath_test

// The IPv4 FIB (fp_fib4.c): longest-prefix match against a Go model under
// random updates, batches that fail and are undone, next-hop references,
// root promotion and demotion, memory per VRF, and a million routes added
// and deleted while traffic flows.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/dpdk/frames"
)

// ---- a reference longest-prefix match --------------------------------------

type lpmModel map[netip.Prefix]uint32

func (m lpmModel) lookup(a netip.Addr) uint32 {
	for l := 32; l >= 0; l-- {
		p, _ := a.Prefix(l)
		if nh, ok := m[p]; ok {
			return nh
		}
	}
	return fastpath.NoNextHop
}

func (m lpmModel) clone() lpmModel {
	c := make(lpmModel, len(m))
	for p, nh := range m {
		c[p] = nh
	}
	return c
}

func (m lpmModel) routes() []fastpath.Route4 {
	out := make([]fastpath.Route4, 0, len(m))
	for p, nh := range m {
		out = append(out, fastpath.Route4{Prefix: p, NextHop: nh})
	}
	slices.SortFunc(out, func(a, b fastpath.Route4) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return a.Prefix.Bits() - b.Prefix.Bits()
	})
	return out
}

func addrU(u uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func pfxU(u uint32, l int) netip.Prefix {
	p, _ := addrU(u).Prefix(l)
	return p
}

// probes are addresses that tell routes apart: both ends of every prefix
// and their outside neighbours, plus random ones.
func probes(r *rand.Rand, ps []netip.Prefix, random int) []netip.Addr {
	out := make([]netip.Addr, 0, 4*len(ps)+random)
	for _, p := range ps {
		first := u32(p.Addr())
		last := first | uint32(uint64(1)<<(32-p.Bits())-1)
		out = append(out, addrU(first), addrU(last), addrU(first-1), addrU(last+1))
	}
	for range random {
		out = append(out, addrU(r.Uint32()))
	}
	return out
}

// checkModel compares the fast path's lookups and route list with m.
func checkModel(t *testing.T, vrf uint16, m lpmModel, addrs []netip.Addr) {
	t.Helper()
	got := dp.LookupRoutes4(vrf, addrs)
	bad := 0
	for i, a := range addrs {
		if want := m.lookup(a); got[i] != want {
			if bad++; bad <= 10 {
				t.Errorf("vrf %d lookup %v: next-hop %d, model says %d", vrf, a, int32(got[i]), int32(want))
			}
		}
	}
	if bad > 10 {
		t.Errorf("... %d wrong lookups of %d", bad, len(addrs))
	}
	rs, err := dp.Routes4(vrf)
	if err != nil {
		t.Fatalf("Routes4: %v", err)
	}
	if want := m.routes(); !slices.Equal(rs, want) {
		t.Errorf("vrf %d: %d routes listed, model has %d (or they differ)", vrf, len(rs), len(want))
	}
	if bad > 0 || t.Failed() {
		t.FailNow()
	}
}

func fib4Stats(t *testing.T, vrf uint16) fastpath.FIB4Stats {
	t.Helper()
	s, err := dp.FIB4Stats(vrf)
	if err != nil {
		t.Fatalf("FIB4Stats(%d): %v", vrf, err)
	}
	return s
}

// randPrefix draws prefixes of every length 0..32 that overlap a lot: most
// are near a few hot addresses.
func randPrefix(r *rand.Rand, hot []uint32) netip.Prefix {
	a := r.Uint32()
	if r.IntN(10) < 8 {
		a = hot[r.IntN(len(hot))] ^ (r.Uint32() >> r.IntN(33))
	}
	return pfxU(a, r.IntN(33))
}

// deleteAll removes every route of the model in one batch.
func deleteAll(t *testing.T, vrf uint16, m lpmModel) {
	t.Helper()
	ps := make([]netip.Prefix, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	if err := dp.DelRoutes4(vrf, ps); err != nil {
		t.Errorf("deleting the %d routes left: %v", len(ps), err)
	}
	clear(m)
}

// Random adds, repoints and deletes, one by one and in batches, give the
// lookups a longest-prefix match over the same routes gives; failed batches
// change nothing; next-hop references stay exact; a VRF grown past the
// promotion thresholds gets a bigger root and gets back a smaller one.
func TestFIB4Model(t *testing.T) {
	e := newEnv(t)
	const vrf = 41
	nhs := make([]uint32, 6)
	for i := range nhs {
		nhs[i] = e.nh(fastpath.NextHop{Type: fastpath.NHDiscard})
	}
	seed := uint64(41)
	if v, err := strconv.ParseUint(os.Getenv("FIB4_SEED"), 10, 64); err == nil {
		seed = v // FIB4_SEED=n go test -run TestFIB4Model: another draw
	}
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	hot := make([]uint32, 8)
	for i := range hot {
		hot[i] = r.Uint32()
	}
	m := lpmModel{}
	t.Cleanup(func() { deleteAll(t, vrf, m) })
	base := fib4Stats(t, vrf)
	if base.RootBits != 0 || base.Routes != 0 {
		t.Fatalf("VRF %d has a FIB before its first route: %+v", vrf, base)
	}
	existing := func() netip.Prefix {
		for p := range m {
			return p
		}
		return netip.Prefix{}
	}
	var touched []netip.Prefix
	check := func(what string) {
		t.Helper()
		ps := touched
		for p := range m {
			ps = append(ps, p)
		}
		t.Run(what, func(t *testing.T) { checkModel(t, vrf, m, probes(r, ps, 2000)) })
		if t.Failed() {
			t.FailNow()
		}
		touched = touched[:0]
	}

	// One by one.
	for i := range 3000 {
		switch op := r.IntN(20); {
		case op < 10 || len(m) == 0: // add, or repoint if it exists
			p, nh := randPrefix(r, hot), nhs[r.IntN(len(nhs))]
			if err := dp.AddRoute4(vrf, p, nh); err != nil {
				t.Fatalf("op %d: add %v: %v", i, p, err)
			}
			m[p] = nh
			touched = append(touched, p)
		case op < 14: // repoint
			p, nh := existing(), nhs[r.IntN(len(nhs))]
			if err := dp.AddRoute4(vrf, p, nh); err != nil {
				t.Fatalf("op %d: repoint %v: %v", i, p, err)
			}
			m[p] = nh
		case op < 19:
			p := existing()
			if err := dp.DelRoute4(vrf, p); err != nil {
				t.Fatalf("op %d: delete %v: %v", i, p, err)
			}
			delete(m, p)
			touched = append(touched, p)
		default:
			p := randPrefix(r, hot)
			if _, ok := m[p]; ok {
				continue
			}
			wantErr(t, "delete a missing route", dp.DelRoute4(vrf, p), syscall.ENOENT, "no such route")
		}
		if i%500 == 499 {
			check(fmt.Sprintf("single-op-%d", i+1))
		}
	}

	// A walk stops at its callback's first error.
	walked, errStop := 0, errors.New("stop")
	if err := dp.WalkRoutes4(vrf, func(fastpath.Route4) error {
		if walked++; walked == 3 {
			return errStop
		}
		return nil
	}); err != errStop || walked != 3 {
		t.Errorf("WalkRoutes4 stopped by its callback after 3: %v after %d", err, walked)
	}

	// In batches; some fail part way and must change nothing.
	for b := range 40 {
		next := m.clone()
		var batch []fastpath.Route4
		for range 400 {
			switch op := r.IntN(10); {
			case op < 6 || len(next) == 0:
				p := randPrefix(r, hot)
				nh := nhs[r.IntN(len(nhs))]
				batch = append(batch, fastpath.Route4{Prefix: p, NextHop: nh})
				next[p] = nh
			default:
				var p netip.Prefix
				for p = range next {
					break
				}
				batch = append(batch, fastpath.Route4{Prefix: p, NextHop: fastpath.NoNextHop})
				delete(next, p)
			}
			touched = append(touched, batch[len(batch)-1].Prefix)
		}
		before := fib4Stats(t, vrf)
		switch b % 5 {
		case 3: // a delete of a missing route, late in the batch: undone
			var missing netip.Prefix
			for missing = randPrefix(r, hot); ; missing = randPrefix(r, hot) {
				if _, ok := next[missing]; !ok {
					break
				}
			}
			batch = slices.Insert(batch, len(batch)-5, fastpath.Route4{Prefix: missing, NextHop: fastpath.NoNextHop})
			wantErr(t, "batch with a missing route", dp.UpdateRoutes4(vrf, batch), syscall.ENOENT, "no such route")
		case 4: // malformed: refused before anything is applied
			batch[len(batch)/2].Prefix = netip.PrefixFrom(batch[len(batch)/2].Prefix.Addr(), 33)
			err := dp.UpdateRoutes4(vrf, batch)
			if !errors.Is(err, syscall.EINVAL) {
				t.Fatalf("batch with a /33: %v, want EINVAL", err)
			}
			batch[len(batch)/2].NextHop = 60001 // no such next-hop
			batch[len(batch)/2].Prefix = pfxU(1, 32)
			wantErr(t, "batch with a missing next-hop", dp.UpdateRoutes4(vrf, batch), syscall.EINVAL, "does not exist")
		default:
			if err := dp.UpdateRoutes4(vrf, batch); err != nil {
				t.Fatalf("batch %d: %v", b, err)
			}
			m = next
		}
		if b%5 >= 3 {
			after := fib4Stats(t, vrf)
			if after.Routes != before.Routes || after.Groups != before.Groups || after.RootBits != before.RootBits {
				t.Errorf("batch %d failed but the FIB changed: %+v -> %+v", b, before, after)
			}
		}
		if b%5 >= 3 || b%10 == 9 {
			check(fmt.Sprintf("batch-%d", b))
		}
	}

	// Next-hop references are exact: every next-hop a route uses is busy,
	// the others can go.
	used := map[uint32]bool{}
	for _, nh := range m {
		used[nh] = true
	}
	for _, nh := range nhs {
		err := dp.DelNextHop(nh)
		switch {
		case used[nh] && !errors.Is(err, syscall.EBUSY):
			t.Errorf("next-hop %d is used by routes; delete: %v, want EBUSY", nh, err)
		case !used[nh] && err != nil:
			t.Errorf("next-hop %d is used by no route; delete: %v", nh, err)
		case !used[nh]:
			if err := dp.SetNextHop(nh, fastpath.NextHop{Type: fastpath.NHDiscard}); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Grow past both promotion thresholds: 20,000 routes longer than /24
	// spread over the whole space take a group each (and one per /16).
	s0 := fib4Stats(t, vrf)
	big := map[netip.Prefix]uint32{}
	var batch []fastpath.Route4
	for len(big) < 20000 {
		p := pfxU(r.Uint32(), 17+r.IntN(16))
		if _, ok := m[p]; ok {
			continue
		}
		if _, ok := big[p]; !ok {
			big[p] = nhs[r.IntN(len(nhs))]
			batch = append(batch, fastpath.Route4{Prefix: p, NextHop: big[p]})
		}
	}
	if err := dp.AddRoutes4(vrf, batch); err != nil {
		t.Fatal(err)
	}
	for p, nh := range big {
		m[p] = nh
	}
	s1 := fib4Stats(t, vrf)
	t.Logf("%d routes: root %d bits, %d groups, %d KiB read by lookups, %d KiB control", s1.Routes, s1.RootBits, s1.Groups, s1.Bytes>>10, s1.CtlBytes>>10)
	if s1.RootBits != 24 {
		t.Errorf("%d routes in %d groups: root of %d bits, want 24", s1.Routes, s1.Groups, s1.RootBits)
	}
	var sample []netip.Prefix
	for p := range big {
		if len(sample) == 5000 {
			break
		}
		sample = append(sample, p)
	}
	t.Run("promoted", func(t *testing.T) { checkModel(t, vrf, m, probes(r, sample, 20000)) })
	var ps []netip.Prefix
	for p := range big {
		ps = append(ps, p)
		delete(m, p)
	}
	if err := dp.DelRoutes4(vrf, ps); err != nil {
		t.Fatal(err)
	}
	s2 := fib4Stats(t, vrf)
	t.Logf("back to %d routes: root %d bits, %d groups (%d before growing, root %d bits)", s2.Routes, s2.RootBits, s2.Groups, s0.Groups, s0.RootBits)
	if s2.RootBits == 24 || s2.Routes != s0.Routes {
		t.Errorf("after deleting what was added: %+v, before %+v", s2, s0)
	}
	t.Run("demoted", func(t *testing.T) { checkModel(t, vrf, m, probes(r, sample, 20000)) })

	// Down to 3 routes (at most 9 groups): back to the 8-bit root.
	ps = ps[:0]
	for p := range m {
		if len(m)-len(ps) > 3 {
			ps = append(ps, p)
		}
	}
	if err := dp.DelRoutes4(vrf, ps); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		delete(m, p)
	}
	if s := fib4Stats(t, vrf); s.RootBits != 8 || s.Routes != 3 {
		t.Errorf("3 routes left: root %d bits, %d routes, %d groups; want 8 bits", s.RootBits, s.Routes, s.Groups)
	}
	t.Run("small", func(t *testing.T) { checkModel(t, vrf, m, probes(r, sample, 20000)) })

	// Empty, the VRF gives everything back.
	deleteAll(t, vrf, m)
	s3 := fib4Stats(t, vrf)
	if s3.RootBits != 0 || s3.Groups != 0 || s3.PoolFree+s3.PoolPending != base.PoolFree+base.PoolPending {
		t.Errorf("empty again: %+v; at the start: %+v", s3, base)
	}
	if got := dp.LookupRoutes4(vrf, []netip.Addr{ip("1.2.3.4")})[0]; got != fastpath.NoNextHop {
		t.Errorf("lookup in the emptied VRF: %d", got)
	}
}

// A VRF costs memory for its routes, not for existing: 4096 VRFs with a
// few routes each fit in 16 MiB (and 6 MiB of control memory), and give
// it all back when emptied.
func TestFIB4ManyVRFs(t *testing.T) {
	e := newEnv(t)
	nh := e.nh(fastpath.NextHop{Type: fastpath.NHDiscard})
	cfg := fastpath.DefaultConfig()
	s0 := fib4Stats(t, 0)
	routes := func(v int) []fastpath.Route4 {
		a := uint32(10)<<24 | uint32(v)<<12 // 10.x.y.0/20 per VRF
		return []fastpath.Route4{
			{Prefix: pfxU(0, 0), NextHop: nh},
			{Prefix: pfxU(a, 20), NextHop: nh},
			{Prefix: pfxU(a|0x100, 24), NextHop: nh},
			{Prefix: pfxU(a|0x105, 32), NextHop: nh},
			{Prefix: pfxU(a|0x106, 32), NextHop: nh},
		}
	}
	t.Cleanup(func() {
		for v := range int(cfg.VRFs) {
			var ps []netip.Prefix
			for _, r := range routes(v) {
				ps = append(ps, r.Prefix)
			}
			_ = dp.DelRoutes4(uint16(v), ps)
		}
	})
	for v := range int(cfg.VRFs) {
		if err := dp.AddRoutes4(uint16(v), routes(v)); err != nil {
			t.Fatalf("VRF %d: %v", v, err)
		}
	}
	s := fib4Stats(t, 7)
	n := uint64(cfg.VRFs)
	perVRF := (s.AllBytes - s0.AllBytes) / n
	perCtl := (s.AllCtlBytes - s0.AllCtlBytes) / n
	t.Logf("%d VRFs of %d routes: %d groups (%d per VRF), lookups read %d bytes per VRF "+
		"(root %d bits: %d B, groups %d B), control %d bytes per VRF; all VRFs %.1f MiB + control %.1f MiB (pool %d MiB allocated at start)",
		s.VRFs, s.Routes, s.PoolGroups-s.PoolFree-s.PoolPending, s.Groups, s.Bytes, s.RootBits,
		s.Bytes-uint64(s.Groups)*1024, s.Groups*1024, perCtl,
		float64(s.Bytes*n)/(1<<20), float64(perCtl*n)/(1<<20), s.PoolBytes>>20)
	if s.VRFs != int(n) || s.RootBits != 8 {
		t.Errorf("stats: %+v", s)
	}
	// One 1 KiB root per VRF (plus its 8-byte root word), and the groups
	// of the /20 (a /8 and a /16 group) and the /32s (one more, /24).
	if s.Bytes > 1024+8+3*1024 || s.Groups != 3 {
		t.Errorf("a VRF of %d routes reads %d bytes in %d groups, want <= %d in 3", s.Routes, s.Bytes, s.Groups, 1024+8+3*1024)
	}
	if perVRF > 1024+8 || perCtl > 2048 {
		t.Errorf("per VRF: %d bytes of root, %d control", perVRF, perCtl)
	}
	// Every VRF routes on its own.
	for _, v := range []int{0, 1, 2047, 4095} {
		a := uint32(10)<<24 | uint32(v)<<12
		got := dp.LookupRoutes4(uint16(v), []netip.Addr{addrU(a | 0x105), addrU(a | 0x1ff), addrU(a | 0xfff), addrU(a + 0x1000)})
		if !slices.Equal(got, []uint32{nh, nh, nh, nh}) {
			t.Errorf("VRF %d: %v", v, got)
		}
	}
	// Emptied, they give everything back.
	for v := range int(cfg.VRFs) {
		var ps []netip.Prefix
		for _, r := range routes(v) {
			ps = append(ps, r.Prefix)
		}
		if err := dp.DelRoutes4(uint16(v), ps); err != nil {
			t.Fatalf("VRF %d: %v", v, err)
		}
	}
	s = fib4Stats(t, 7)
	if s.VRFs != s0.VRFs || s.AllBytes != s0.AllBytes || s.AllCtlBytes != s0.AllCtlBytes ||
		s.PoolFree+s.PoolPending != s0.PoolFree+s0.PoolPending {
		t.Errorf("emptied: %+v; before: %+v", s, s0)
	}
}

// ---- a million routes while traffic flows ----------------------------------

// The live test's bulk routes: 786,432 /24s, 48 in each of 16,384 /16s
// from 32.0.0.0 (so the VRF outgrows the 16-bit root), and 262,144 /32s,
// 64 in each of 4,096 /24s from 96.0.0.0.
const (
	live24     = 16384 * 48
	live32     = 4096 * 64
	liveRoutes = live24 + live32
)

func liveRoute(i int) netip.Prefix {
	if i < live24 {
		k, x := uint32(i/48), uint32(i%48)
		return pfxU((32+k>>8)<<24|(k&0xff)<<16|x<<8, 24)
	}
	i -= live24
	j, h := uint32(i/64), uint32(i%64+1)
	return pfxU(96<<24|j<<8|h, 32)
}

func isLive(a netip.Addr) bool {
	u := u32(a)
	if u>>24 >= 32 && u>>24 < 96 {
		return u>>8&0xff < 48
	}
	return u>>12 == 96<<12 && u&0xff >= 1 && u&0xff <= 64 // 96.0.0.0/20
}

// ipDstOff is where an IPv4 frame's destination address is.
const ipDstOff = frames.EthernetLen + 16

// pinAwayFromWorker keeps the calling goroutine's thread off the first
// worker's CPU until the returned function runs.
func pinAwayFromWorker(t *testing.T) func() {
	t.Helper()
	_, wcpu := dp.BenchCPUs()
	var old, set [16]uint64 // 1024 CPUs
	runtime.LockOSThread()
	if _, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, 0, unsafe.Sizeof(old), uintptr(unsafe.Pointer(&old))); errno != 0 || wcpu < 0 {
		t.Logf("cannot pin the control thread (worker on CPU %d): %v", wcpu, errno)
		return runtime.UnlockOSThread
	}
	set = old
	set[wcpu/64] &^= 1 << (wcpu % 64)
	if set == ([16]uint64{}) {
		return runtime.UnlockOSThread // nothing else to run on
	}
	syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, unsafe.Sizeof(set), uintptr(unsafe.Pointer(&set)))
	return func() {
		syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, unsafe.Sizeof(old), uintptr(unsafe.Pointer(&old)))
		runtime.UnlockOSThread()
	}
}

// workerRx is what the workers received.
func workerRx(t *testing.T) uint64 {
	var n uint64
	for w := range dp.Workers() {
		s, err := dp.LcoreStats(w)
		if err != nil {
			t.Fatal(err)
		}
		n += s.RxPackets
	}
	return n
}

// isBulk says whether p is one of the million.
func isBulk(p netip.Prefix) bool {
	u := u32(p.Addr())
	return isLive(p.Addr()) && (p.Bits() == 24 && u>>24 < 96 || p.Bits() == 32 && u>>24 == 96)
}

// liveNH identifies a next-hop by the port and destination MAC of what it
// sent.
type liveNH struct {
	port fastpath.PortID
	mac  [6]byte
}

// A million routes are added and deleted in batches, and routes near the
// traffic's destinations are repointed, deleted and re-added, while the
// worker forwards: no frame is lost or dropped, a destination whose longest
// route never changes always gets its one next-hop, and every other frame
// leaves by a next-hop that one of its routes had at some point (a torn
// entry, a group reused too early or a half-built table would send it
// elsewhere, or drop it).
func TestFIB4LiveUpdate(t *testing.T) {
	if testing.Short() {
		t.Skip("a million routes")
	}
	e := newEnv(t)
	const vrf = 42
	src := e.pod(vrf, "02:00:00:2a:00:0a", "10.42.0.10")
	out := [3]pod{
		e.pod(vrf, "02:00:00:2a:00:01", "10.42.0.1"),
		e.pod(vrf, "02:00:00:2a:00:02", "10.42.0.2"),
		e.pod(vrf, "02:00:00:2a:00:03", "10.42.0.3"),
	}
	nhOf := map[liveNH]uint32{}
	mk := func(o int, mac string) uint32 {
		id := e.nh(fastpath.NextHop{Type: fastpath.NHIface, Port: out[o].id, DstMAC: frames.MustMAC(mac)})
		nhOf[liveNH{out[o].id, [6]byte(frames.MustMAC(mac))}] = id
		return id
	}
	nhS := mk(0, "02:00:00:2a:01:01")  // stable short routes
	nhS2 := mk(1, "02:00:00:2a:02:02") // stable long routes
	nh1 := mk(0, "02:00:00:2a:01:11")  // churned routes, one way ...
	nh2 := mk(1, "02:00:00:2a:02:22")  // ... or the other
	nh3 := mk(2, "02:00:00:2a:03:33")  // the million

	pfx := netip.MustParsePrefix
	stable := lpmModel{
		pfx("0.0.0.0/0"):        nhS,
		pfx("96.0.0.0/8"):       nhS,
		pfx("32.0.100.0/24"):    nhS2, // not a bulk /24
		pfx("32.0.1.77/32"):     nhS2, // inside bulk /24s
		pfx("33.100.20.200/32"): nhS2,
		pfx("96.0.0.200/32"):    nhS2, // among bulk /32s
	}
	churn := []netip.Prefix{
		pfx("32.0.200.0/24"),  // alone
		pfx("96.0.1.100/32"),  // among bulk /32s
		pfx("32.1.64.0/20"),   // 16 /24s, none bulk
		pfx("32.0.2.128/25"),  // inside a bulk /24
		pfx("96.0.2.0/24"),    // over bulk /32s
		pfx("32.0.3.0/24"),    // a bulk /24, repointed
		pfx("96.0.3.7/32"),    // a bulk /32, repointed
		pfx("33.100.21.0/24"), // a bulk /24, deleted and re-added
	}
	isChurn := map[netip.Prefix]bool{}
	for _, p := range churn {
		isChurn[p] = true
	}
	var all []fastpath.Route4
	for p, nh := range stable {
		all = append(all, fastpath.Route4{Prefix: p, NextHop: nh})
	}
	if err := dp.AddRoutes4(vrf, all); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var ps []netip.Prefix
		for p := range stable {
			ps = append(ps, p)
		}
		if err := dp.DelRoutes4(vrf, ps); err != nil {
			t.Errorf("deleting the stable routes: %v", err)
		}
	})

	// What each destination may get: the next-hop of its longest stable
	// route, and any next-hop of a longer route that comes and goes.
	allowed := func(a netip.Addr) map[uint32]bool {
		ok := map[uint32]bool{}
		sl := -1
		for l := 32; l >= 0 && sl < 0; l-- {
			p, _ := a.Prefix(l)
			if nh, in := stable[p]; in {
				ok[nh], sl = true, l
			}
		}
		for _, p := range churn {
			if p.Contains(a) && p.Bits() > sl {
				ok[nh1], ok[nh2] = true, true
				if isBulk(p) {
					ok[nh3] = true
				}
			}
		}
		if isLive(a) && (u32(a)>>24 < 96 && sl < 24 || u32(a)>>24 == 96 && sl < 32) {
			ok[nh3] = true
		}
		return ok
	}
	var dsts []netip.Addr
	for _, s := range []string{"32.0.1.77", "33.100.20.200", "96.0.0.200", "32.0.100.5", "97.1.2.3",
		"32.0.1.5", "33.100.20.1", "96.0.0.5", "32.0.200.9", "96.0.1.100", "32.1.70.1", "32.0.2.130",
		"32.0.2.5", "96.0.2.7", "96.0.2.100", "32.0.3.3", "96.0.3.7", "33.100.21.21", "95.255.47.255", "96.0.15.64"} {
		dsts = append(dsts, ip(s))
	}
	r := rand.New(rand.NewPCG(42, 1))
	for range 300 {
		dsts = append(dsts, addrU(32<<24|r.Uint32N(64<<24)), addrU(96<<24|r.Uint32N(1<<12)))
	}
	type dstInfo struct {
		ok   map[uint32]bool
		sent int
		got  map[uint32]int
	}
	info := map[netip.Addr]*dstInfo{}
	var fs [][]byte      // frames, sent round robin
	var fsDst []*dstInfo // and where each goes
	for i, d := range dsts {
		if info[d] == nil {
			info[d] = &dstInfo{ok: allowed(d), got: map[uint32]int{}}
		}
		f := src.from(pkt{src: src.ip, dst: d, sport: uint16(1000 + i), dport: 9}.ip4(64))
		// Most frames go where routes change: there a lookup can meet
		// a table being changed.
		w := 1
		for _, p := range churn {
			if p.Contains(d) {
				w = 16
			}
		}
		for range w {
			fs, fsDst = append(fs, f), append(fsDst, info[d])
		}
	}
	fixed := 0
	for _, in := range info {
		if len(in.ok) == 1 {
			fixed++
		}
	}
	t.Logf("%d destinations, %d with a route that never changes; %d frames in the cycle", len(info), fixed, len(fs))

	// Control calls must run beside the worker, not take turns with it on
	// its CPU.
	defer pinAwayFromWorker(t)()

	// The driver keeps the worker busy while control calls run: it sends a
	// window of frames, runs updates until the worker has received them
	// all, takes every frame back and checks it, and again.
	const window = 3000
	drops0 := dp.Drops()
	rxBase := workerRx(t)
	next, sent, outN, bad, calls, overlapped := 0, 0, 0, 0, 0, 0
	collect := func(what string) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for outN < sent {
			n := 0
			for _, o := range out {
				got, err := dp.Drain(o.id, 512)
				if err != nil {
					t.Fatal(err)
				}
				n += len(got)
				for _, f := range got {
					d := netip.AddrFrom4([4]byte(f[ipDstOff : ipDstOff+4]))
					nh, known := nhOf[liveNH{o.id, [6]byte(f[0:6])}]
					in := info[d]
					switch {
					case in == nil || !known:
						bad++
						t.Errorf("%s: a frame to %v left %s with MAC %x: no such next-hop", what, d, o.name, f[0:6])
					case !in.ok[nh]:
						bad++
						t.Errorf("%s: a frame to %v went by next-hop %d; its routes only ever had %v", what, d, nh, in.ok)
					default:
						in.got[nh]++
					}
					outN++
				}
			}
			if bad > 20 {
				t.FailNow()
			}
			if n == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("%s: %d of %d frames came out; drops %v", what, outN, sent, dropDelta(drops0))
				}
				runtime.Gosched()
			}
		}
	}
	// run calls op(0), op(1), ... op(n-1) with traffic flowing.
	run := func(what string, n int, op func(i int) error) {
		t.Helper()
		for i := 0; i < n; {
			batch := make([][]byte, window)
			for k := range batch {
				batch[k] = fs[next%len(fs)]
				fsDst[next%len(fs)].sent++
				next++
			}
			e.inject(src.id, batch...)
			sent += window
			for i < n {
				if err := op(i); err != nil {
					t.Fatalf("%s %d: %v", what, i, err)
				}
				i++
				calls++
				if workerRx(t) >= rxBase+uint64(sent) {
					break
				}
				overlapped++ // the worker was still forwarding after it
			}
			collect(fmt.Sprintf("%s %d", what, i-1))
		}
	}

	// A million routes in, in batches of 512.
	const chunk = 512
	batch := make([]fastpath.Route4, chunk)
	start := time.Now()
	run("adding batch", liveRoutes/chunk, func(i int) error {
		for k := range batch {
			batch[k] = fastpath.Route4{Prefix: liveRoute(i*chunk + k), NextHop: nh3}
		}
		return dp.AddRoutes4(vrf, batch)
	})
	addTime := time.Since(start)
	s := fib4Stats(t, vrf)
	t.Logf("%d routes added in %v (%.0f routes/s, with traffic): root %d bits, %d groups, lookups read %.1f MiB, control %.1f MiB",
		liveRoutes, addTime.Round(time.Millisecond), liveRoutes/addTime.Seconds(), s.RootBits, s.Groups,
		float64(s.Bytes)/(1<<20), float64(s.CtlBytes)/(1<<20))
	if s.Routes != liveRoutes+len(stable) || s.RootBits != 24 {
		t.Errorf("after adding: %+v", s)
	}

	// Churn where the traffic goes: routes repointed, deleted, re-added,
	// their groups folded and new ones taken.
	present := map[netip.Prefix]bool{}
	for _, p := range churn {
		present[p] = isBulk(p)
	}
	churnOps := func(final bool) []fastpath.Route4 {
		var ops []fastpath.Route4
		for _, p := range churn {
			switch x := r.IntN(4); {
			case final && isBulk(p): // back as they were, for the deletes
				ops = append(ops, fastpath.Route4{Prefix: p, NextHop: nh3})
			case (final || x == 0) && present[p]:
				ops = append(ops, fastpath.Route4{Prefix: p, NextHop: fastpath.NoNextHop})
				present[p] = false
			case final:
			case x == 1:
				ops = append(ops, fastpath.Route4{Prefix: p, NextHop: nh1})
				present[p] = true
			case x == 2:
				ops = append(ops, fastpath.Route4{Prefix: p, NextHop: nh2})
				present[p] = true
			}
		}
		return ops
	}
	run("churn", 20000, func(int) error { return dp.UpdateRoutes4(vrf, churnOps(false)) })
	run("churn end", 1, func(int) error { return dp.UpdateRoutes4(vrf, churnOps(true)) })

	// And out again.
	dels := make([]netip.Prefix, chunk)
	start = time.Now()
	run("deleting batch", liveRoutes/chunk, func(i int) error {
		for k := range dels {
			dels[k] = liveRoute(i*chunk + k)
		}
		return dp.DelRoutes4(vrf, dels)
	})
	delTime := time.Since(start)
	s = fib4Stats(t, vrf)
	t.Logf("%d routes deleted in %v (%.0f routes/s, with traffic): root %d bits, %d groups; "+
		"%d frames forwarded, %d of %d control calls returned while the worker was forwarding",
		liveRoutes, delTime.Round(time.Millisecond), liveRoutes/delTime.Seconds(), s.RootBits, s.Groups,
		outN, overlapped, calls)
	if s.Routes != len(stable) || s.RootBits != 8 {
		t.Errorf("after deleting: %+v", s)
	}
	e.checkDrops(drops0, nil)
	for d, in := range info {
		n := 0
		for _, c := range in.got {
			n += c
		}
		if n != in.sent {
			t.Errorf("%v: %d frames sent, %d came out", d, in.sent, n)
		}
	}
}

// ---- benchmarks -------------------------------------------------------------

// benchNH is a discard next-hop for the benchmarks' routes.
func benchNH(b *testing.B, id uint32) uint32 {
	b.Helper()
	if err := dp.SetNextHop(id, fastpath.NextHop{Type: fastpath.NHDiscard}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dp.DelNextHop(id) })
	return id
}

// scatteredRoutes are 983,040 /24s and 65,536 /32s at random in
// 1.0.0.0-223.255.255.255, each /32 in a /24 of its own (a group each).
func scatteredRoutes() []netip.Prefix {
	r := rand.New(rand.NewPCG(43, 1))
	seen := map[uint32]bool{}
	out := make([]netip.Prefix, 0, liveRoutes)
	for len(out) < liveRoutes {
		a := (1<<24 + r.Uint32N(223<<24)) &^ 0xff
		if seen[a] {
			continue
		}
		seen[a] = true
		if len(out) < live24+live32-65536 {
			out = append(out, pfxU(a, 24))
		} else {
			out = append(out, pfxU(a|1+r.Uint32N(254), 32))
		}
	}
	return out
}

// BenchmarkRouteAddBulk programs a million routes through AddRoutes4 in
// batches, and deletes them through DelRoutes4: routes/s for each (Go
// conversion, validation, next-hop references and the FIB, with the worker
// running), for two mixes of /24s and /32s: clustered (the /32s 64 to a
// /24, as pods' routes are) and scattered.
func BenchmarkRouteAddBulk(b *testing.B) {
	const vrf = 43
	nh := benchNH(b, 990)
	clustered := make([]netip.Prefix, liveRoutes)
	for i := range clustered {
		clustered[i] = liveRoute(i)
	}
	for _, mix := range []struct {
		name string
		ps   []netip.Prefix
	}{{"clustered", clustered}, {"scattered", scatteredRoutes()}} {
		for _, batch := range []int{4096, 65536, liveRoutes} {
			b.Run(fmt.Sprintf("%s/batch=%d", mix.name, batch), func(b *testing.B) {
				rs := make([]fastpath.Route4, len(mix.ps))
				for i, p := range mix.ps {
					rs[i] = fastpath.Route4{Prefix: p, NextHop: nh}
				}
				var add, del time.Duration
				var s fastpath.FIB4Stats
				for b.Loop() {
					t0 := time.Now()
					for off := 0; off < len(rs); off += batch {
						if err := dp.AddRoutes4(vrf, rs[off:min(off+batch, len(rs))]); err != nil {
							b.Fatal(err)
						}
					}
					add += time.Since(t0)
					s, _ = dp.FIB4Stats(vrf)
					t0 = time.Now()
					for off := 0; off < len(rs); off += batch {
						if err := dp.DelRoutes4(vrf, mix.ps[off:min(off+batch, len(rs))]); err != nil {
							b.Fatal(err)
						}
					}
					del += time.Since(t0)
				}
				b.ReportMetric(float64(len(rs))*float64(b.N)/add.Seconds(), "routes/s")
				b.ReportMetric(float64(len(rs))*float64(b.N)/del.Seconds(), "del-routes/s")
				b.ReportMetric(float64(s.Groups), "groups")
				b.ReportMetric(float64(s.Bytes)/(1<<20), "MiB")
			})
		}
	}
}

// BenchmarkFIB4Forward is the worker's cycles per packet routing 64-byte
// frames from one pod to another (fastpath.Bench's generator) to 65,536
// destinations at random among a million routes, against the same with
// one route: what a big FIB costs a packet (cache and TLB misses).
func BenchmarkFIB4Forward(b *testing.B) {
	const vrf = 44
	a, err := dp.AddRingPort("fwd_a", fastpath.PortConfig{Kind: fastpath.PortPod, VRF: vrf,
		MAC: frames.MustMAC("02:00:00:2c:00:0a"), IPv4: []netip.Addr{ip("10.44.0.10")}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dp.DelPort(a) })
	o, err := dp.AddRingPort("fwd_b", fastpath.PortConfig{Kind: fastpath.PortPod, VRF: vrf,
		MAC: frames.MustMAC("02:00:00:2c:00:0b"), IPv4: []netip.Addr{ip("10.44.0.11")}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dp.DelPort(o) })
	if err := dp.SetNextHop(991, fastpath.NextHop{Type: fastpath.NHIface, Port: o, DstMAC: frames.MustMAC("02:00:00:2c:00:0b")}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dp.DelNextHop(991) })
	src := pod{id: a, mac: frames.MustMAC("02:00:00:2c:00:0a"), ip: ip("10.44.0.10")}
	r := rand.New(rand.NewPCG(44, 1))
	fs := make([][]byte, 65536)
	for i := range fs {
		d := liveRoute(r.IntN(liveRoutes))
		u := u32(d.Addr())
		if d.Bits() == 24 {
			u |= r.Uint32N(256)
		}
		fs[i] = src.from(pkt{src: src.ip, dst: addrU(u), sport: uint16(i), dport: 9}.ip4(64))
	}
	for _, big := range []bool{false, true} {
		name := "routes=1"
		var ps []netip.Prefix
		if big {
			name = fmt.Sprintf("routes=%d", liveRoutes)
			for i := range liveRoutes {
				ps = append(ps, liveRoute(i))
			}
		} else {
			ps = []netip.Prefix{pfxU(0, 1)} // 0.0.0.0/1 covers them all
		}
		b.Run(name, func(b *testing.B) {
			rs := make([]fastpath.Route4, len(ps))
			for i, p := range ps {
				rs[i] = fastpath.Route4{Prefix: p, NextHop: 991}
			}
			if err := dp.AddRoutes4(vrf, rs); err != nil {
				b.Fatal(err)
			}
			defer dp.DelRoutes4(vrf, ps)
			var cyc, mpps float64
			for b.Loop() {
				res, err := dp.Bench(fastpath.BenchConfig{In: a, Out: o, Frames: fs, Warmup: 200000,
					Duration: 300 * time.Millisecond, Slice: time.Millisecond})
				if err == nil {
					err = res.Check()
				}
				if err != nil {
					b.Fatal(err)
				}
				cyc += res.SliceCyclesPerPacket()
				mpps += res.WorkerMpps()
			}
			b.ReportMetric(cyc/float64(b.N), "cycles/pkt")
			b.ReportMetric(mpps/float64(b.N), "worker-Mpps")
		})
	}
}
