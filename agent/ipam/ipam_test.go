package ipam

import (
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
	ip, err := m.Allocate("red", a)
	if err != nil || ip.String() != "10.20.0.2" {
		t.Fatalf("first: %v %v", ip, err)
	}
	if again, _ := m.Allocate("red", a); again != ip {
		t.Errorf("idempotent ADD gave %v, want %v", again, ip)
	}
	var got []string
	for i := range 4 {
		ip, err := m.Allocate("red", Key{"x", string(rune('a' + i))})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ip.String())
	}
	if got[3] != "10.20.0.6" {
		t.Errorf("allocations %v", got)
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
	if ip2, ok := m2.Lookup("red", a); !ok || ip2 != ip {
		t.Errorf("after reload: %v %v", ip2, ok)
	}
	if freed, err := m2.Release(a); !freed || err != nil {
		t.Fatalf("release: %v %v", freed, err)
	}
	m3, _ := Open(dir, pools)
	if _, ok := m3.Lookup("red", a); ok {
		t.Error("released address still allocated after reload")
	}
	if ip, _ := m3.Allocate("red", Key{"c2", "eth0"}); ip.String() != "10.20.0.2" {
		t.Errorf("freed address not reused: %v", ip)
	}
}

func TestSmallSubnet(t *testing.T) {
	p := map[string]Pool{"s": {Subnet: netip.MustParsePrefix("10.0.0.0/30"), Block: netip.MustParsePrefix("10.0.0.0/30"),
		Gateway: netip.MustParseAddr("10.0.0.1")}}
	m, _ := Open(t.TempDir(), p)
	ip, err := m.Allocate("s", Key{"a", "eth0"})
	if err != nil || ip.String() != "10.0.0.2" {
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
