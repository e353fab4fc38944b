package ipam

import (
	"net/netip"
	"testing"

	"go.uber.org/zap"
)

// The address arithmetic and the search for a free offset, without an API
// server (the claims themselves are tested in kubemanager/manager against a
// real one).
func TestPoolArithmetic(t *testing.T) {
	a := New(nil, "ns", zap.NewNop())
	for _, tc := range []struct {
		prefix      string
		first, last uint32
		off         uint32
		addr        string
	}{
		{"10.244.0.0/16", 2, 65534, 258, "10.244.1.2"},
		{"10.128.0.8/29", 2, 6, 6, "10.128.0.14"},
		{"fd00:244::/64", 2, MaxHosts - 1, 0x10203, "fd00:244::1:203"},
		{"fd00:1::/120", 2, 255, 255, "fd00:1::ff"},
	} {
		p := a.pool("n", netip.MustParsePrefix(tc.prefix))
		if p.first != tc.first || p.last != tc.last {
			t.Errorf("%s: offsets %d..%d, want %d..%d", tc.prefix, p.first, p.last, tc.first, tc.last)
		}
		if got := p.addr(tc.off); got.String() != tc.addr {
			t.Errorf("%s: offset %d is %s, want %s", tc.prefix, tc.off, got, tc.addr)
		}
		if off, ok := p.offset(netip.MustParseAddr(tc.addr)); !ok || off != tc.off {
			t.Errorf("%s: %s is offset %d %v, want %d", tc.prefix, tc.addr, off, ok, tc.off)
		}
		for _, out := range []uint32{0, 1, p.last + 1} {
			if _, ok := p.offset(p.addr(out)); ok {
				t.Errorf("%s: offset %d (network, gateway or beyond) accepted", tc.prefix, out)
			}
		}
		if idx, ok := p.blockIndex(p.blockName(42)); !ok || idx != 42 {
			t.Errorf("%s: block name %s parsed as %d %v", tc.prefix, p.blockName(42), idx, ok)
		}
	}
}

func TestFreeWrapsAndSkips(t *testing.T) {
	a := New(nil, "ns", zap.NewNop())
	p := a.pool("n", netip.MustParsePrefix("10.0.0.0/29")) // offsets 2..6
	p.byOffset, p.byUID = map[uint32]Owner{3: {UID: "x"}, 5: {UID: "y"}}, map[string]uint32{"x": 3, "y": 5}
	p.next = 5
	chosen := map[uint32]*request{6: {}}
	if off, ok := p.free(chosen); !ok || off != 2 {
		t.Errorf("free from 5 with 3, 5 claimed and 6 chosen: %d %v, want 2 (wrapped)", off, ok)
	}
	chosen[2], chosen[4] = &request{}, &request{}
	if off, ok := p.free(chosen); ok {
		t.Errorf("a full subnet gave %d", off)
	}
	// The owner's own address wins over a free one; a free wanted one is given.
	if off, held, err := p.choose(Owner{UID: "x"}, netip.Addr{}, map[uint32]*request{}); err != nil || !held || off != 3 {
		t.Errorf("x's claim: %d %v %v", off, held, err)
	}
	if off, held, err := p.choose(Owner{UID: "z"}, netip.MustParseAddr("10.0.0.4"), map[uint32]*request{}); err != nil || held || off != 4 {
		t.Errorf("z wanting .4: %d %v %v", off, held, err)
	}
	if _, _, err := p.choose(Owner{UID: "z"}, netip.Addr{}, chosen); err == nil {
		t.Error("a full subnet: no error")
	}
}
