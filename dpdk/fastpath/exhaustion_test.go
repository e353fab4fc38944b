package fastpath_test

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/filament-net/filament/dpdk/fastpath"
)

// A full FIB refuses the route with ENOSPC and a message saying which table
// is full; what was already there keeps forwarding.
func TestFIBFull(t *testing.T) {
	e := newEnv(t)
	const vrf = 33
	cfg := fastpath.DefaultConfig()
	a := e.pod(vrf, "02:00:00:21:00:0a", "10.33.0.10")
	b := e.pod(vrf, "02:00:00:21:00:0b", "10.33.0.11")
	nh := e.toPod(b)
	// Every /32 outside a /24 that has one takes a tbl8 group of its own.
	var added []netip.Prefix
	t.Cleanup(func() {
		for _, p := range added {
			_ = dp.DelRoute4(vrf, p)
		}
	})
	var err error
	for i := 0; i <= int(cfg.FIB4Tbl8s); i++ {
		p := netip.MustParsePrefix(fmt.Sprintf("172.%d.%d.1/32", 16+i/256, i%256))
		if err = dp.AddRoute4(vrf, p, nh); err != nil {
			break
		}
		added = append(added, p)
	}
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "full") {
		t.Fatalf("route %d of %d tbl8 groups: err %v, want ENOSPC saying the FIB is full", len(added)+1, cfg.FIB4Tbl8s, err)
	}
	if len(added) != int(cfg.FIB4Tbl8s)-1 { // b's /32 holds one group
		t.Errorf("%d routes fitted, want %d", len(added), cfg.FIB4Tbl8s-1)
	}
	p := pkt{src: a.ip, dst: b.ip, sport: 1, dport: 2}
	e.inject(a.id, a.from(p.ip4(64)))
	e.expectFrame(b.id, b.to(p.ip4(63)))
	// Freeing one group makes room again (reclaimed after a grace period).
	if err := dp.DelRoute4(vrf, added[0]); err != nil {
		t.Fatal(err)
	}
	added = added[1:]
	last := netip.MustParsePrefix("172.31.255.1/32")
	if err := dp.AddRoute4(vrf, last, nh); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
	added = append(added, last)
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
