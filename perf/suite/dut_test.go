package suite

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/filament-net/filament/dpdk/config"
	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/perf/trafficgen"
)

// Every filament row's config passes the dataplane's own validation, and
// an encapsulation row's fabric port takes the suite's largest pod frame
// (IMIX's 1518 bytes, an IP packet of 1500) with the tunnel's headers in
// front: at the default MTU the tunnel next hop dropped it as too big, and
// every encapsulation row failed at IMIX (make bench-full).
func TestFilamentConfigs(t *testing.T) {
	env := &Env{Dir: t.TempDir(), GenCPU: 0, DUTCPU: 1, Huge: true}
	a, b := filepath.Join(env.Dir, "a.sock"), filepath.Join(env.Dir, "b.sock")
	largest := slices.Max(trafficgen.IMIX) - 18 // Ethernet header and FCS
	encaps := map[Mode]fastpath.Encap{VXLANEncap: fastpath.EncapVXLAN, MPLSoUDPEncap: fastpath.EncapMPLSoUDP}
	seen := map[Mode]bool{}
	for _, r := range Rows([]int{1, 10000}) {
		f, ok := r.DUT.(Filament)
		if !ok {
			continue
		}
		c, err := config.Parse([]byte(f.config(env, a, b)))
		if err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		e, ok := encaps[f.Mode]
		if !ok {
			continue
		}
		seen[f.Mode] = true
		i := slices.IndexFunc(c.Ports, func(p config.Port) bool { return p.Kind == "fabric" })
		if i < 0 {
			t.Fatalf("%s: no fabric port", r.Name)
		}
		if mtu := c.Ports[i].MTU; mtu < largest+e.Overhead(false) {
			t.Errorf("%s: fabric MTU %d, a %d-byte packet needs %d", r.Name, mtu, largest, largest+e.Overhead(false))
		}
	}
	if len(seen) != len(encaps) {
		t.Fatalf("encapsulation rows seen: %v", seen)
	}
}
