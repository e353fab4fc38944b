package attach

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/filament-net/filament/internal/testnet"
)

// A dual-stack pod interface, in a namespace whose interfaces start with
// IPv6 off (as the demo's pods): both addresses, the IPv6 one and the
// link-local one usable at once (not tentative: no DAD), a default route
// per family; CHECK notices the IPv6 address gone. Both veth ends are in
// the pod's namespace: nothing is made in the test's own.
func TestConfigurePodDualStack(t *testing.T) {
	tn := testnet.New(t)
	ns := tn.NS("pod")
	tn.MustIn(ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1", "net.ipv6.conf.default.addr_gen_mode=2")
	tn.MustIn(ns, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
	tn.MustIn(ns, "ip", "link", "set", "peer0", "up") // eth0 gets a carrier when up
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ph, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer ph.Close()
	pod, err := ph.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	v := Veth{Netns: "/var/run/netns/" + ns, IfName: "eth0", MAC: net.HardwareAddr{0x02, 0, 10, 20, 1, 2}, MTU: 1450,
		Address: netip.MustParsePrefix("10.20.1.2/16"), Gateway: netip.MustParseAddr("10.20.0.1"), DefaultRoute: true,
		Address6: netip.MustParsePrefix("fd00:20::1:2/64"), Gateway6: netip.MustParseAddr("fd00:20::1")}
	if err := configurePod(ph, pod, v); err != nil {
		t.Fatal(err)
	}
	global := tn.MustIn(ns, "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global")
	if !strings.Contains(global, "fd00:20::1:2/64") || !strings.Contains(global, "nodad") || strings.Contains(global, "tentative") {
		t.Errorf("IPv6 address: %q", global)
	}
	// EUI-64 of 02:00:0a:14:01:02, whatever the namespace's default
	// addr_gen_mode (stable-privacy here).
	if ll := tn.MustIn(ns, "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"); !strings.Contains(ll, "fe80::aff:fe14:102/64") ||
		strings.Contains(ll, "tentative") {
		t.Errorf("link-local address: %q", ll)
	}
	if r := tn.MustIn(ns, "ip", "-6", "route", "show", "default"); !strings.Contains(r, "default via fd00:20::1 dev eth0") {
		t.Errorf("default IPv6 route: %q", r)
	}
	if r := tn.MustIn(ns, "ip", "-4", "route", "show", "default"); !strings.Contains(r, "default via 10.20.0.1 dev eth0") {
		t.Errorf("default IPv4 route: %q", r)
	}
	if err := Check(v); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	// Idempotent: an ADD again changes nothing and fails nothing.
	if err := configurePod(ph, pod, v); err != nil {
		t.Errorf("again: %v", err)
	}
	tn.MustIn(ns, "ip", "-6", "addr", "del", "fd00:20::1:2/64", "dev", "eth0")
	if err := Check(v); err == nil || !strings.Contains(err.Error(), "does not have address fd00:20::1:2/64") {
		t.Errorf("CHECK without the IPv6 address: %v", err)
	}
	// An IPv4-only CHECK of the same interface is still fine.
	v.Address6 = netip.Prefix{}
	if err := Check(v); err != nil {
		t.Errorf("CHECK (IPv4 only): %v", err)
	}
}
