package ipam

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

var pools = map[string]Pool{"red": {
	Subnet:  netip.MustParsePrefix("10.20.0.0/16"),
	Block:   netip.MustParsePrefix("10.20.0.0/29"), // .0 network, .1 gateway, .7 the block's last
	Gateway: netip.MustParseAddr("10.20.0.1"),
}}

func TestAllocate(t *testing.T) {
	dir := t.TempDir()
	m, err := Open(dir, pools)
	if err != nil {
		t.Fatal(err)
	}
	a := Key{"c1", "eth0"}
	got, err := m.Allocate("red", a)
	ip := got.IPv4
	if err != nil || ip.String() != "10.20.0.2" || got.IPv6.IsValid() {
		t.Fatalf("first: %v %v", got, err)
	}
	if again, _ := m.Allocate("red", a); again.IPv4 != ip {
		t.Errorf("idempotent ADD gave %v, want %v", again, ip)
	}
	var all []string
	for i := range 4 {
		ip, err := m.Allocate("red", Key{"x", string(rune('a' + i))})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ip.IPv4.String())
	}
	if all[3] != "10.20.0.6" {
		t.Errorf("allocations %v", all)
	}
	if _, err := m.Allocate("red", Key{"y", "eth0"}); err == nil {
		t.Error("block full: no error")
	}
	if _, err := m.Allocate("blue", a); err == nil {
		t.Error("unknown network: no error")
	}

	// A DEL of another (older) container with the same ifName releases nothing.
	if freed, _ := m.Release(Key{"c0", "eth0"}); freed {
		t.Error("released another container's address")
	}
	// Reload: same allocations.
	m2, err := Open(dir, pools)
	if err != nil {
		t.Fatal(err)
	}
	if ip2, ok := m2.Lookup("red", a); !ok || ip2.IPv4 != ip {
		t.Errorf("after reload: %v %v", ip2, ok)
	}
	if freed, err := m2.Release(a); !freed || err != nil {
		t.Fatalf("release: %v %v", freed, err)
	}
	m3, _ := Open(dir, pools)
	if _, ok := m3.Lookup("red", a); ok {
		t.Error("released address still allocated after reload")
	}
	if ip, _ := m3.Allocate("red", Key{"c2", "eth0"}); ip.IPv4.String() != "10.20.0.2" {
		t.Errorf("freed address not reused: %v", ip)
	}
}

func TestSmallSubnet(t *testing.T) {
	p := map[string]Pool{"s": {Subnet: netip.MustParsePrefix("10.0.0.0/30"), Block: netip.MustParsePrefix("10.0.0.0/30"),
		Gateway: netip.MustParseAddr("10.0.0.1")}}
	m, _ := Open(t.TempDir(), p)
	ip, err := m.Allocate("s", Key{"a", "eth0"})
	if err != nil || ip.IPv4.String() != "10.0.0.2" {
		t.Fatalf("%v %v", ip, err)
	}
	if _, err := m.Allocate("s", Key{"b", "eth0"}); err == nil {
		t.Error("broadcast given")
	}
}

// A crash mid-write leaves a torn temporary file: it is ignored (and
// removed), the last complete file wins.
func TestTornWrite(t *testing.T) {
	dir := t.TempDir()
	m, _ := Open(dir, pools)
	ip, _ := m.Allocate("red", Key{"c1", "eth0"})
	torn := filepath.Join(dir, FileName+".tmp-123")
	if err := os.WriteFile(torn, []byte(`{"allocations":[{"network":"red","key":{"contai`), 0o600); err != nil {
		t.Fatal(err)
	}
	m2, err := Open(dir, pools)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := m2.Lookup("red", Key{"c1", "eth0"}); !ok || got != ip {
		t.Errorf("after a torn write: %v %v", got, ok)
	}
	if _, err := os.Stat(torn); !os.IsNotExist(err) {
		t.Errorf("torn temporary file not removed: %v", err)
	}
	// A corrupt state file itself is an error, not an empty IPAM.
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, pools); err == nil {
		t.Error("corrupt state file: no error")
	}
}

var dualPools = map[string]Pool{"red": {
	Subnet:  netip.MustParsePrefix("10.20.0.0/16"),
	Block:   netip.MustParsePrefix("10.20.1.0/24"),
	Gateway: netip.MustParseAddr("10.20.0.1"),
	// the subnet's first block: fd00:20:: (anycast) and fd00:20::1 (the
	// gateway) are never given
	Subnet6:  netip.MustParsePrefix("fd00:20::/64"),
	Block6:   netip.MustParsePrefix("fd00:20::/126"),
	Gateway6: netip.MustParseAddr("fd00:20::1"),
}, "blue": pools["red"]}

// Dual stack: one address per family per attachment, persisted together,
// released together by DEL, never given twice while held, and the next
// agent continues where the last stopped.
func TestDualStack(t *testing.T) {
	dir := t.TempDir()
	m, err := Open(dir, dualPools)
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := Key{"a", "eth0"}, Key{"b", "eth0"}, Key{"c", "eth0"}
	ga, err := m.Allocate("red", a)
	if err != nil || ga.IPv4.String() != "10.20.1.1" || ga.IPv6.String() != "fd00:20::2" {
		t.Fatalf("a: %v %v", ga, err)
	}
	// An IPv4-only network of the same IPAM gives no IPv6.
	if gb, err := m.Allocate("blue", a); err != nil || gb.IPv6.IsValid() || !gb.IPv4.IsValid() {
		t.Errorf("blue: %v %v", gb, err)
	}
	if again, _ := m.Allocate("red", a); again != ga {
		t.Errorf("ADD again: %v, want %v", again, ga)
	}
	gb, err := m.Allocate("red", b)
	if err != nil || gb.IPv4.String() != "10.20.1.2" || gb.IPv6.String() != "fd00:20::3" {
		t.Fatalf("b: %v %v", gb, err)
	}
	// The IPv6 block (/126: ::0 anycast, ::1 gateway, ::2, ::3) is full:
	// c gets nothing, not even an IPv4 address it would leak.
	if gc, err := m.Allocate("red", c); !errors.Is(err, ErrExhausted) || gc.IPv4.IsValid() {
		t.Fatalf("c with the IPv6 block full: %v %v", gc, err)
	}
	if _, ok := m.Lookup("red", c); ok {
		t.Error("c holds an address after a failed ADD")
	}
	if n := len(m.All()); n != 5 { // a: 2 in red + 1 in blue; b: 2
		t.Errorf("%d allocations, want 5: %v", n, m.All())
	}

	// Restart: the same addresses; DEL of a releases both of its red ones.
	m2, err := Open(dir, dualPools)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := m2.Lookup("red", b); !ok || got != gb {
		t.Errorf("b after reload: %v %v", got, ok)
	}
	if freed, err := m2.Release(a); !freed || err != nil {
		t.Fatalf("release a: %v %v", freed, err)
	}
	m3, err := Open(dir, dualPools)
	if err != nil {
		t.Fatal(err)
	}
	for _, al := range m3.All() {
		if al.Key == a {
			t.Errorf("a's %v survived its DEL", al)
		}
	}
	// c now gets a's addresses (the lowest free of each block).
	if gc, err := m3.Allocate("red", c); err != nil || gc != ga {
		t.Errorf("c after a's DEL: %v %v, want %v", gc, err, ga)
	}
}

// An attachment made while its network was IPv4-only gets its IPv6
// address at its next ADD once the network is dual stack, keeping its
// IPv4 one.
func TestBecomesDualStack(t *testing.T) {
	dir := t.TempDir()
	v4only := map[string]Pool{"red": {Subnet: dualPools["red"].Subnet, Block: dualPools["red"].Block, Gateway: dualPools["red"].Gateway}}
	m, _ := Open(dir, v4only)
	a := Key{"a", "eth0"}
	g, err := m.Allocate("red", a)
	if err != nil || g.IPv6.IsValid() {
		t.Fatalf("%v %v", g, err)
	}
	m2, _ := Open(dir, dualPools)
	g2, err := m2.Allocate("red", a)
	if err != nil || g2.IPv4 != g.IPv4 || g2.IPv6.String() != "fd00:20::2" {
		t.Errorf("after the network became dual stack: %v %v", g2, err)
	}
}

func TestCapacity(t *testing.T) {
	for _, tc := range []struct {
		p      Pool
		v4, v6 float64
	}{
		{pools["red"], 5, 0},       // /29 at the subnet's start: .0, .1 (gateway), .7
		{dualPools["red"], 254, 2}, // /24 in the subnet: .0 and .255; /126: ::0, ::1
		{Pool{Subnet: dualPools["red"].Subnet, Block: dualPools["red"].Block, Gateway: dualPools["red"].Gateway,
			Subnet6: dualPools["red"].Subnet6, Block6: netip.MustParsePrefix("fd00:20::1:0/112"), Gateway6: dualPools["red"].Gateway6}, 254, 65535},
	} {
		if v4, v6 := tc.p.Capacity(); v4 != tc.v4 || v6 != tc.v6 {
			t.Errorf("%v: capacity %v %v, want %v %v", tc.p, v4, v6, tc.v4, tc.v6)
		}
	}
}

// A network that stops being dual stack: ReleaseIPv6 frees only the IPv6
// address (persisted), and the next attachment can have it.
func TestReleaseIPv6(t *testing.T) {
	dir := t.TempDir()
	m, _ := Open(dir, dualPools)
	a, b := Key{"a", "eth0"}, Key{"b", "eth0"}
	g, err := m.Allocate("red", a)
	if err != nil || !g.IPv6.IsValid() {
		t.Fatalf("%v %v", g, err)
	}
	if freed, err := m.ReleaseIPv6("blue", a); freed || err != nil {
		t.Errorf("release in a network where a has no IPv6: %v %v", freed, err)
	}
	if freed, err := m.ReleaseIPv6("red", a); !freed || err != nil {
		t.Fatalf("release: %v %v", freed, err)
	}
	if freed, _ := m.ReleaseIPv6("red", a); freed {
		t.Error("released twice")
	}
	m2, _ := Open(dir, dualPools)
	if got, ok := m2.Lookup("red", a); !ok || got.IPv4 != g.IPv4 || got.IPv6.IsValid() {
		t.Errorf("a after reload: %v %v, want IPv4 %v only", got, ok, g.IPv4)
	}
	if gb, err := m2.Allocate("red", b); err != nil || gb.IPv6 != g.IPv6 {
		t.Errorf("b: %v %v, want a's released %v", gb, err, g.IPv6)
	}
}
