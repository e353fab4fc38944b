package hostnet

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/filament-net/filament/internal/testnet"
)

// setupIn runs Setup on a thread that joined namespace ns (never given
// back: the thread ends with its goroutine).
func setupIn(t *testing.T, ns string, c Config) Result {
	t.Helper()
	type out struct {
		res Result
		err error
	}
	ch := make(chan out, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.GetFromName(ns)
		if err == nil {
			err = netns.Set(h)
			h.Close()
		}
		if err != nil {
			ch <- out{err: err}
			return
		}
		res, err := Setup(context.Background(), c)
		ch <- out{res, err}
	}()
	o := <-ch
	if o.err != nil {
		t.Fatal(o.err)
	}
	return o.res
}

// The IPv6 side of the host port, in a namespace of its own with a TAP:
// the IPv6 underlay address moves to the TAP (no DAD), each dual-stack
// network's subnet6 is routed on it via gateway6, pinned to the vRouter's
// MAC; a configuration without IPv6 removes all of it and keeps IPv4's.
func TestSetupIPv6(t *testing.T) {
	tn := testnet.New(t)
	ns := tn.NS("node")
	tn.MustIn(ns, "ip", "tuntap", "add", "dev", "vhost0", "mode", "tap")
	tn.MustIn(ns, "ip", "link", "add", "other0", "type", "veth", "peer", "name", "other1")
	tn.MustIn(ns, "ip", "link", "set", "other0", "up")
	tn.MustIn(ns, "ip", "link", "set", "other1", "up")
	tn.MustIn(ns, "ip", "-6", "addr", "add", "fd00:100::1/64", "dev", "other0", "nodad")
	c := Config{IfName: "vhost0", MAC: net.HardwareAddr{2, 0xfe, 0, 0, 0, 1}, MTU: 1500,
		Address: netip.MustParsePrefix("192.168.100.1/24"), Address6: netip.MustParsePrefix("fd00:100::1/64"),
		RouterMAC: net.HardwareAddr{0, 0, 0x5e, 0, 1, 0},
		Routes: []Route{
			{Dst: netip.MustParsePrefix("10.10.0.0/16"), Via: netip.MustParseAddr("10.10.0.1"), MTU: 1450},
			{Dst: netip.MustParsePrefix("fd00:10::/64"), Via: netip.MustParseAddr("fd00:10::1"), MTU: 1450},
		}}
	res := setupIn(t, ns, c)
	if !slices.Equal(res.AddressMovedFrom, []string{"other0"}) {
		t.Errorf("moved from %v, want [other0]", res.AddressMovedFrom)
	}
	show := func(args ...string) string { return tn.MustIn(ns, append([]string{"ip"}, args...)...) }
	if a := show("-6", "-o", "addr", "show", "dev", "vhost0", "scope", "global"); !strings.Contains(a, "fd00:100::1/64") ||
		strings.Contains(a, "tentative") {
		t.Errorf("vhost0's IPv6 address: %q", a)
	}
	if a := show("-6", "-o", "addr", "show", "dev", "other0", "scope", "global"); a != "" {
		t.Errorf("other0 kept the IPv6 underlay address: %q", a)
	}
	if n := show("-6", "neigh", "show", "dev", "vhost0"); !strings.Contains(n, "fd00:10::1 lladdr 00:00:5e:00:01:00 PERMANENT") {
		t.Errorf("gateway6's neighbour: %q", n)
	}
	if r := show("-6", "route", "show", "dev", "vhost0", "proto", "249"); !strings.Contains(r, "fd00:10::/64 via fd00:10::1") ||
		!strings.Contains(r, "onlink") || !strings.Contains(r, "mtu 1450") {
		t.Errorf("subnet6's route: %q", r)
	}
	// Again: nothing changes, nothing fails.
	if res := setupIn(t, ns, c); len(res.AddressMovedFrom) != 0 {
		t.Errorf("second Setup moved an address from %v", res.AddressMovedFrom)
	}

	// IPv4 only: the IPv6 address, route and neighbour go; IPv4's stay.
	c.Address6, c.Routes = netip.Prefix{}, c.Routes[:1]
	setupIn(t, ns, c)
	if a := show("-6", "-o", "addr", "show", "dev", "vhost0", "scope", "global"); a != "" {
		t.Errorf("IPv6 address left: %q", a)
	}
	if r := show("-6", "route", "show", "dev", "vhost0", "proto", "249"); r != "" {
		t.Errorf("IPv6 route left: %q", r)
	}
	if n := show("-6", "neigh", "show", "dev", "vhost0"); strings.Contains(n, "fd00:10::1") {
		t.Errorf("IPv6 neighbour left: %q", n)
	}
	if r := show("-4", "route", "show", "dev", "vhost0", "proto", "249"); !strings.Contains(r, "10.10.0.0/16 via 10.10.0.1") {
		t.Errorf("IPv4 route: %q", r)
	}
	if a := show("-4", "-o", "addr", "show", "dev", "vhost0"); !strings.Contains(a, "192.168.100.1/24") {
		t.Errorf("IPv4 address: %q", a)
	}
}
