package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/dpdk/apiclient"
)

// The route set: of n routes, 3/4 are /24s, 48 in each /16 from 32.0.0.0
// (so a VRF outgrows the FIB's 16-bit root), the rest /32s, 64 in each /24
// from 96.0.0.0 (pods' addresses, clustered). For n = 2^20 it is the FIB's
// own benchmark set (dpdk/fastpath fib4_test.go, liveRoute): 786,432 /24s
// and 262,144 /32s in 4,096 /24s.
func routeCount24(n int) int { return n * 3 / 4 }

func routePrefix(i, n int) netip.Prefix {
	n24 := routeCount24(n)
	if i < n24 {
		k, x := uint32(i/48), uint32(i%48)
		return pfx((32+k>>8)<<24|(k&0xff)<<16|x<<8, 24)
	}
	i -= n24
	j, h := uint32(i/64), uint32(i%64+1)
	return pfx(96<<24|j<<8|h, 32)
}

func pfx(a uint32, bits int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), bits)
}

// routeOps are the ops of routes [from, to) of the set of n: to next-hop
// nh, or to be deleted.
func routeOps(a pb.Action, vrf, nh uint32, from, to, n int) *apiclient.Batch {
	b := &apiclient.Batch{Ops: make([]*pb.Op, 0, to-from)}
	for i := from; i < to; i++ {
		r := &pb.Route{Vrf: vrf, Prefix: routePrefix(i, n).String()}
		if a != pb.Action_ACTION_DELETE {
			r.NextHop = nh
		}
		b.Ops = append(b.Ops, &pb.Op{Action: a, Object: &pb.Op_Route{Route: r}})
	}
	return b
}

// phase is one pass over the route set in batches.
type phase struct {
	Batches  int
	Routes   int
	Duration time.Duration // in Apply calls only (building the ops is not counted)
	Slowest  time.Duration // the slowest Apply
}

func (p phase) rate() float64 { return float64(p.Routes) / p.Duration.Seconds() }

// program applies the route set of n in batches of batch with action a,
// and checks that each response counts every op as want: created,
// updated, deleted or unchanged.
func program(ctx context.Context, cl *apiclient.Client, a pb.Action, want string, vrf, nh uint32, n, batch int) (phase, error) {
	var p phase
	for off := 0; off < n; off += batch {
		end := min(off+batch, n)
		b := routeOps(a, vrf, nh, off, end, n)
		t0 := time.Now()
		r, err := cl.ApplyBatch(ctx, b)
		d := time.Since(t0)
		if err != nil {
			return p, fmt.Errorf("%v of routes %d..%d: %w", a, off, end-1, err)
		}
		got := map[string]uint32{"created": r.Created, "updated": r.Updated, "deleted": r.Deleted, "unchanged": r.Unchanged}
		if int(got[want]) != end-off {
			return p, fmt.Errorf("%v of routes %d..%d: %v, want %d %s", a, off, end-1, r, end-off, want)
		}
		p.Batches++
		p.Routes += end - off
		p.Duration += d
		p.Slowest = max(p.Slowest, d)
	}
	return p, nil
}

// memory is a process's memory (/proc/PID/status), in KiB: its resident
// set (the Go heap, C's malloc: not DPDK's hugepages, HugetlbPages).
type memory struct {
	RSS uint64
}

func readMemory(pid int) (memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	defer f.Close()
	var m memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			m.RSS, _ = strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return m, sc.Err()
}

// peerPID is the process serving the unix socket (SO_PEERCRED).
func peerPID(sock string) (int, error) {
	c, err := net.Dial("unix", sock)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	raw, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, cerr
	}
	return int(cred.Pid), nil
}
