package fastpath_test

import (
	"bytes"
	"errors"
	"syscall"
	"testing"

	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/dpdk/frames"
)

// A static neighbour can be unpinned: gone when nothing uses it, learnt by
// ARP again while a tunnel does.
func TestNeighborDelete(t *testing.T) {
	e := newEnv(t)
	fab := e.fabric(1500)
	lone, used := ip("192.168.100.70"), ip("192.168.100.71")
	m1, m2, m3 := frames.MustMAC("02:fb:00:00:00:70"), frames.MustMAC("02:fb:00:00:00:71"), frames.MustMAC("02:fb:00:00:00:72")
	for _, n := range []struct {
		ip  string
		mac []byte
	}{{lone.String(), m1}, {used.String(), m2}} {
		if err := dp.SetNeighbor(ip(n.ip), n.mac); err != nil {
			t.Fatal(err)
		}
	}
	e.nh(fastpath.NextHop{Type: fastpath.NHTunnel, Port: fab, Encap: fastpath.EncapVXLAN, TunnelDst: used, VNI: 77})

	if err := dp.DelNeighbor(lone); err != nil {
		t.Fatal(err)
	}
	if _, _, err := dp.Neighbor(lone); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("unused neighbour after delete: %v, want ENOENT", err)
	}
	if err := dp.DelNeighbor(lone); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("second delete: %v, want ENOENT", err)
	}

	if err := dp.DelNeighbor(used); err != nil {
		t.Fatal(err)
	}
	if m, ok, err := dp.Neighbor(used); err != nil || !ok || !bytes.Equal(m, m2) {
		t.Fatalf("used neighbour after unpinning: %v %v %v, want it kept", m, ok, err)
	}
	// No longer pinned: an ARP reply now moves it.
	before := dp.Drops()
	e.inject(fab, arpFrame(fabricMAC, m3, frames.ARP{Op: frames.ARPReply,
		SenderMAC: m3, SenderIP: used, TargetMAC: fabricMAC, TargetIP: underlay}))
	waitFor(t, "the neighbour learnt again", func() bool {
		m, ok, _ := dp.Neighbor(used)
		return ok && bytes.Equal(m, m3)
	})
	e.expectNothing()
	e.checkDrops(before, nil)
}
