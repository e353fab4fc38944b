package main

// The tests run the real fast path (tables for a million routes) behind
// the real server on a real unix socket, through the real client, in this
// process: TestRoutes (always run) programs 100K routes through the API
// and checks them; BenchmarkApplyRoutes is the figure of
// docs/benchmarks/dataplane-api.md:
//
//	go test -run '^$' -bench ApplyRoutes -benchtime 1x ./dpdk/apibench

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/dpdk/apiclient"
	"github.com/filament-net/filament/dpdk/apiserver"
	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/dpdk/hugepages"
)

var (
	dp *fastpath.Dataplane
	cl *apiclient.Client
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("apibench tests: skipped, DPDK needs root here")
		os.Exit(0)
	}
	cfg := fastpath.DefaultConfig() // a VRF of 2M routes, groups for 1M
	cfg.NextHops, cfg.VRFs, cfg.Mbufs = 4096, 16, 2047
	mem, huge := hugepages.EALArgs(512)
	prefix := fmt.Sprintf("fil-apibench-%d", os.Getpid())
	cfg.EALArgs = append([]string{"-l", "0,1", "--no-pci", "--log-level=*:notice", "--file-prefix", prefix}, mem...)
	log.Printf("apibench tests: DPDK with %s (hugepages %v)", strings.Join(mem, " "), huge)
	d, err := fastpath.Start(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: cannot start the fast path: %v\n", err)
		os.Exit(1)
	}
	dp = d
	dir, err := os.MkdirTemp("", "fil-apibench")
	if err != nil {
		log.Fatal(err)
	}
	sock := filepath.Join(dir, "dp.sock")
	srv := apiserver.New(d, apiserver.Options{Config: cfg, Version: "apibench"})
	lis, err := net.Listen("unix", sock)
	if err != nil {
		log.Fatal(err)
	}
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(apiclient.MaxMessage))
	srv.Register(gs) // with filament-dataplane's bound on requests (apiMaxMessage)
	go gs.Serve(lis) //nolint:errcheck // stopped below
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	cl, err = apiclient.Dial(ctx, sock, apiclient.WithName("apibench-test"))
	cancel()
	if err != nil {
		log.Fatal(err)
	}
	code := m.Run()
	cl.Close()
	gs.Stop()
	d.Close()
	os.RemoveAll(dir)
	os.RemoveAll("/var/run/dpdk/" + prefix)
	os.Exit(code)
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return c
}

func apply(t testing.TB, b *apiclient.Batch) *pb.ApplyResponse {
	t.Helper()
	r, err := cl.ApplyBatch(ctx(t), b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func discard(id uint32) *pb.NextHop {
	return &pb.NextHop{Id: id, Type: pb.NextHopType_NEXT_HOP_TYPE_DISCARD}
}

// inside is an address a route covers, and not a longer one of the set.
func inside(p netip.Prefix) netip.Addr {
	if p.Bits() == 32 {
		return p.Addr()
	}
	return p.Addr().Next()
}

// TestRoutes programs 100K routes (75K /24s, 25K /32s) through the API in
// batches of 10K and checks the FIB, the lists, resync, a refused batch
// at that scale, references, and deleting them all.
func TestRoutes(t *testing.T) {
	const (
		vrf         = 2
		n, batch    = 100_000, 10_000
		nh1, nh2    = 10, 11
		sampleEvery = 97
	)
	apply(t, (&apiclient.Batch{}).Create(discard(nh1), discard(nh2)))
	t.Cleanup(func() {
		cl.ApplyBatch(context.Background(), (&apiclient.Batch{}).Delete(discard(nh1), discard(nh2))) //nolint:errcheck
	})
	want := make([]netip.Prefix, n)
	for i := range want {
		want[i] = routePrefix(i, n)
	}
	if !slices.IsSortedFunc(want, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) }) {
		t.Fatal("the route set is not in address order")
	}
	// checkFIB: the FIB holds the n routes, to next-hop nh1 but routes
	// [from, to), to nh2; a sample is looked up.
	checkFIB := func(what string, from, to int) {
		t.Helper()
		nhOf := func(i int) uint32 {
			if i >= from && i < to {
				return nh2
			}
			return nh1
		}
		s, err := dp.FIB4Stats(vrf)
		if err != nil || s.Routes != n {
			t.Fatalf("%s: the FIB of VRF %d holds %d routes (%v), want %d", what, vrf, s.Routes, err, n)
		}
		var addrs []netip.Addr
		var idx []int
		for i := 0; i < n; i += sampleEvery {
			addrs, idx = append(addrs, inside(want[i])), append(idx, i)
		}
		for i, got := range dp.LookupRoutes4(vrf, addrs) {
			if w := nhOf(idx[i]); got != w {
				t.Fatalf("%s: %v (route %d, %v) goes to next-hop %d, want %d", what, addrs[i], idx[i], want[idx[i]], got, w)
			}
		}
		// Not routed: the /16s' other /24s, the /24s' other addresses.
		for _, a := range dp.LookupRoutes4(vrf, []netip.Addr{netip.MustParseAddr("32.0.48.1"), netip.MustParseAddr("96.0.0.65")}) {
			if a != fastpath.NoNextHop {
				t.Fatalf("%s: an address out of the set is routed to %d", what, a)
			}
		}
		// The list is the FIB, in order.
		v := uint32(vrf)
		rs, _, err := cl.Routes(ctx(t), &v)
		if err != nil || len(rs) != n {
			t.Fatalf("%s: ListRoutes: %d routes (%v), want %d", what, len(rs), err, n)
		}
		fib, err := dp.Routes4(vrf)
		if err != nil || len(fib) != n {
			t.Fatalf("%s: the FIB's walk: %d routes (%v)", what, len(fib), err)
		}
		for i, r := range rs {
			if r.Vrf != vrf || r.Prefix != want[i].String() || r.NextHop != nhOf(i) ||
				fib[i].Prefix != want[i] || fib[i].NextHop != r.NextHop {
				t.Fatalf("%s: route %d listed %v, FIB %v; want %v to %d", what, i, r, fib[i], want[i], nhOf(i))
			}
		}
		nhs, err := cl.ListNextHops(ctx(t), &pb.ListNextHopsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range nhs.NextHops {
			if w := map[uint32]int{nh1: n - (to - from), nh2: to - from}[e.NextHop.Id]; int(e.Routes) != w {
				t.Errorf("%s: next-hop %d has %d routes, want %d", what, e.NextHop.Id, e.Routes, w)
			}
		}
	}

	add, err := program(ctx(t), cl, pb.Action_ACTION_CREATE, "created", vrf, nh1, n, batch)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("added %d routes in %d batches in %v (%.0f routes/s)", n, add.Batches, add.Duration, add.rate())
	checkFIB("created", 0, 0)

	// Resync: the same routes again change nothing.
	if _, err := program(ctx(t), cl, pb.Action_ACTION_REPLACE, "unchanged", vrf, nh1, n, batch); err != nil {
		t.Fatal(err)
	}
	if _, err := program(ctx(t), cl, pb.Action_ACTION_CREATE, "unchanged", vrf, nh1, n, batch); err != nil {
		t.Fatal(err)
	}
	// Repoint the second batch.
	if r := apply(t, routeOps(pb.Action_ACTION_REPLACE, vrf, nh2, batch, 2*batch, n)); r.Updated != batch {
		t.Fatalf("repoint: %v", r)
	}
	checkFIB("repointed", batch, 2*batch)

	// A batch of 10K refused for its last op changes nothing.
	bad := routeOps(pb.Action_ACTION_DELETE, vrf, 0, 3*batch, 4*batch, n)
	bad.Create(&pb.Route{Vrf: vrf, Prefix: "200.0.0.0/8", NextHop: 99})
	_, err = cl.ApplyBatch(ctx(t), bad)
	if st := status.Convert(err); st.Code() != codes.InvalidArgument ||
		!strings.Contains(st.Message(), fmt.Sprintf("ops[%d].route.next_hop: next-hop 99 does not exist", batch)) {
		t.Fatalf("a batch with a route to a missing next-hop: %v", err)
	}
	// So is a next-hop routes still use.
	_, err = cl.ApplyBatch(ctx(t), (&apiclient.Batch{}).Delete(discard(nh2)))
	if st := status.Convert(err); st.Code() != codes.InvalidArgument ||
		!strings.Contains(st.Message(), fmt.Sprintf("next-hop %d is used by %d routes", nh2, batch)) {
		t.Fatalf("deleting a next-hop in use: %v", err)
	}
	checkFIB("refused", batch, 2*batch)

	del, err := program(ctx(t), cl, pb.Action_ACTION_DELETE, "deleted", vrf, 0, n, batch)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("deleted %d routes in %d batches in %v (%.0f routes/s)", n, del.Batches, del.Duration, del.rate())
	if s, err := dp.FIB4Stats(vrf); err != nil || s.Routes != 0 {
		t.Errorf("the FIB of VRF %d holds %d routes after deleting them all (%v)", vrf, s.Routes, err)
	}
	v := uint32(vrf)
	if rs, _, err := cl.Routes(ctx(t), &v); err != nil || len(rs) != 0 {
		t.Errorf("ListRoutes after deleting them all: %d routes (%v)", len(rs), err)
	}
	if got := dp.LookupRoutes4(vrf, []netip.Addr{inside(want[0]), inside(want[n-1])}); got[0] != fastpath.NoNextHop || got[1] != fastpath.NoNextHop {
		t.Errorf("still routed after deleting them all: %v", got)
	}
}

// BenchmarkApplyRoutes adds then deletes a million routes (786,432 /24s,
// 262,144 /32s) through the API, in batches of each size; routes/s counts
// the Apply calls only. heap-MiB is the process's live Go heap with the
// routes loaded, less that before (the server's record: the client keeps
// nothing).
func BenchmarkApplyRoutes(b *testing.B) {
	const vrf, nh, n = 3, 12, 1 << 20
	apply(b, (&apiclient.Batch{}).Create(discard(nh)))
	b.Cleanup(func() { cl.ApplyBatch(context.Background(), (&apiclient.Batch{}).Delete(discard(nh))) }) //nolint:errcheck
	for _, batch := range []int{10_000, 50_000, 100_000, 1 << 20} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			var add, del phase
			var heap float64
			for b.Loop() {
				h0 := liveHeap()
				p, err := program(ctx(b), cl, pb.Action_ACTION_CREATE, "created", vrf, nh, n, batch)
				if err != nil {
					b.Fatal(err)
				}
				add.Routes, add.Duration = add.Routes+p.Routes, add.Duration+p.Duration
				heap = float64(liveHeap()-h0) / (1 << 20)
				if p, err = program(ctx(b), cl, pb.Action_ACTION_DELETE, "deleted", vrf, nh, n, batch); err != nil {
					b.Fatal(err)
				}
				del.Routes, del.Duration = del.Routes+p.Routes, del.Duration+p.Duration
			}
			b.ReportMetric(add.rate(), "add-routes/s")
			b.ReportMetric(del.rate(), "del-routes/s")
			b.ReportMetric(heap, "heap-MiB")
		})
	}
}

// liveHeap is the Go heap in use after a collection.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
