package apiserver

import (
	"net/netip"
	"testing"
)

// TestRouteTable: the compact key round-trips and sorts by VRF, address,
// length; layers see their parent; the base table is rebuilt after many
// deletions, with its contents.
func TestRouteTable(t *testing.T) {
	keys := []routeKey{
		newRouteKey(0, netip.MustParsePrefix("255.255.255.255/32")),
		newRouteKey(1, netip.MustParsePrefix("0.0.0.0/0")),
		newRouteKey(1, netip.MustParsePrefix("10.0.0.0/8")),
		newRouteKey(1, netip.MustParsePrefix("10.0.0.0/24")),
		newRouteKey(1, netip.MustParsePrefix("10.0.1.0/24")),
		newRouteKey(4095, netip.MustParsePrefix("1.0.0.0/8")),
	}
	for i, k := range keys {
		if got := newRouteKey(k.vrf, k.prefix()); got != k || k.prefix().Masked() != k.prefix() {
			t.Errorf("%v: round trip %v", k, got)
		}
		if i > 0 && keys[i-1].less(k) >= 0 {
			t.Errorf("%v sorts after %v", keys[i-1], k)
		}
	}

	base := newRouteTable(nil)
	const n = 10000
	for i := range n {
		base.set(routeKey{lo: uint64(i) << 8, vrf: 1, bits: 24}, uint32(i%7))
	}
	layer := newRouteTable(base)
	layer.del(routeKey{lo: 0, vrf: 1, bits: 24})
	layer.set(routeKey{lo: 1 << 8, vrf: 1, bits: 24}, 99)
	if _, ok := layer.get(routeKey{lo: 0, vrf: 1, bits: 24}); ok || layer.len() != n-1 {
		t.Errorf("layer: deleted route present, or %d routes", layer.len())
	}
	if nh, _ := layer.get(routeKey{lo: 1 << 8, vrf: 1, bits: 24}); nh != 99 {
		t.Errorf("layer: %d", nh)
	}
	if nh, _ := base.get(routeKey{lo: 1 << 8, vrf: 1, bits: 24}); nh != 1 || base.len() != n {
		t.Errorf("base changed by its layer")
	}
	for i := range n - 1000 {
		base.del(routeKey{lo: uint64(i) << 8, vrf: 1, bits: 24})
		base.compact()
	}
	if base.dels >= compactMin || base.len() != 1000 {
		t.Errorf("after deleting %d of %d: %d deletions pending, %d routes", n-1000, n, base.dels, base.len())
	}
	for i := n - 1000; i < n; i++ {
		if nh, ok := base.get(routeKey{lo: uint64(i) << 8, vrf: 1, bits: 24}); !ok || nh != uint32(i%7) {
			t.Fatalf("route %d lost by the rebuild", i)
		}
	}
}

// TestRouteRefs: a batch's references, summed, whatever the number of
// next-hops.
func TestRouteRefs(t *testing.T) {
	s := newState()
	var rs []routeChange
	for i := range 100 {
		rs = append(rs, routeChange{key: routeKey{lo: uint64(i), vrf: uint16(i % 3), bits: 32}, new: uint32(i % 20), hasNew: true})
	}
	s.applyRoutes(rs)
	if s.nhRoutes.get(0) != 5 || s.nhRoutes.get(19) != 5 || s.vrfRoutes.get(0) != 34 || s.vrfRoutes.get(2) != 33 {
		t.Errorf("after adding: next-hops 0, 19: %d, %d; VRFs 0, 2: %d, %d",
			s.nhRoutes.get(0), s.nhRoutes.get(19), s.vrfRoutes.get(0), s.vrfRoutes.get(2))
	}
	// Repoint all to next-hop 3, delete half.
	var ch []routeChange
	for i, r := range rs {
		c := routeChange{key: r.key, old: r.new, hadOld: true, new: 3, hasNew: i%2 == 0}
		if !c.hasNew {
			c.new = 0
		}
		ch = append(ch, c)
	}
	s.applyRoutes(ch)
	if s.nhRoutes.get(3) != 50 || s.nhRoutes.get(0) != 0 || len(s.nhRoutes.m) != 1 || s.routes.len() != 50 ||
		s.vrfRoutes.get(0)+s.vrfRoutes.get(1)+s.vrfRoutes.get(2) != 50 {
		t.Errorf("after repointing: %v, %v, %d routes", s.nhRoutes.m, s.vrfRoutes.m, s.routes.len())
	}
}
