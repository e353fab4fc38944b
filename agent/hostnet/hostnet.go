// Package hostnet sets up the kernel side of the node's host port
// (Tungsten Fabric's vhost0): the TAP the dataplane made gets the fabric
// port's MAC, the node's underlay address (and its IPv6 one, optionally),
// and routes to the pod networks
// through the vRouter; the underlay address leaves any other interface;
// and the fabric interface the dataplane polls through the kernel
// (af_packet, af_xdp) is kept out of the kernel's own use.
//
// Everything is idempotent (replace, not add) so that a resync after an
// agent restart changes nothing, and the routes and neighbours it made
// are marked so that it removes only its own stale ones.
package hostnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Protocol marks the kernel routes the agent makes (`ip route ... proto
// 249`), so that it sweeps only its own.
const Protocol = netlink.RouteProtocol(249)

// Route is a kernel route through the host port to the vRouter.
type Route struct {
	Dst netip.Prefix
	// Via is the next hop the kernel addresses frames to: a pod network's
	// gateway, pinned to the vRouter's MAC by a permanent neighbour entry
	// (the vRouter answers the host port's ARP only for local pods).
	Via netip.Addr
	MTU int // the network's pod MTU: what its tunnels carry
}

// Config is the kernel side of the host port.
type Config struct {
	IfName  string
	MAC     net.HardwareAddr // the fabric port's: what peers address the node's frames to
	Address netip.Prefix     // the underlay address and subnet
	// Address6 (optional) is the IPv6 underlay address and subnet; without
	// it the TAP has no global IPv6 address (one left by an earlier
	// configuration is removed).
	Address6  netip.Prefix
	MTU       int
	Gateway   netip.Addr       // optional: the default route's next hop, on the underlay
	RouterMAC net.HardwareAddr // the vRouter's MAC, behind every Route's Via
	Routes    []Route
}

// Result says what Setup changed outside the TAP, for the logs.
type Result struct {
	// AddressMovedFrom lists the interfaces the underlay address was
	// removed from.
	AddressMovedFrom []string
}

// Setup makes the TAP as c says. The TAP must exist (the dataplane makes
// it when the host port is created).
func Setup(ctx context.Context, c Config) (Result, error) {
	var res Result
	if err := ctx.Err(); err != nil {
		return res, err
	}
	link, err := netlink.LinkByName(c.IfName)
	if err != nil {
		return res, fmt.Errorf("host port %s: %w", c.IfName, err)
	}
	idx := link.Attrs().Index
	if link.Attrs().HardwareAddr.String() != c.MAC.String() {
		if err := netlink.LinkSetHardwareAddr(link, c.MAC); err != nil {
			return res, fmt.Errorf("host port %s: set MAC %s: %w", c.IfName, c.MAC, err)
		}
	}
	if c.MTU > 0 && link.Attrs().MTU != c.MTU {
		if err := netlink.LinkSetMTU(link, c.MTU); err != nil {
			return res, fmt.Errorf("host port %s: set MTU %d: %w", c.IfName, c.MTU, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return res, fmt.Errorf("host port %s: set up: %w", c.IfName, err)
	}

	// The underlay address: on the TAP only. Elsewhere the kernel would
	// answer for it beside the dataplane (docs/agent.md, "Host port").
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return res, fmt.Errorf("list addresses: %w", err)
	}
	want := ipNet(c.Address)
	for _, a := range addrs {
		mine := a.LinkIndex == idx
		if (mine && a.IPNet.String() != want.String()) || (!mine && a.IP.Equal(want.IP)) {
			l, err := netlink.LinkByIndex(a.LinkIndex)
			if err != nil {
				return res, fmt.Errorf("address %s: interface %d: %w", a.IPNet, a.LinkIndex, err)
			}
			if err := netlink.AddrDel(l, &a); err != nil {
				return res, fmt.Errorf("remove %s from %s: %w", a.IPNet, l.Attrs().Name, err)
			}
			if !mine {
				res.AddressMovedFrom = append(res.AddressMovedFrom, l.Attrs().Name)
			}
		}
	}
	if err := netlink.AddrReplace(link, &netlink.Addr{IPNet: want}); err != nil {
		return res, fmt.Errorf("address %s on %s: %w", c.Address, c.IfName, err)
	}
	moved, err := setupIPv6(link, c)
	res.AddressMovedFrom = append(res.AddressMovedFrom, moved...)
	if err != nil {
		return res, err
	}

	// Neighbours: each network's gateway is the vRouter.
	vias := map[netip.Addr]bool{}
	for _, r := range c.Routes {
		if vias[r.Via] {
			continue
		}
		vias[r.Via] = true
		n := &netlink.Neigh{LinkIndex: idx, Family: family(r.Via), State: netlink.NUD_PERMANENT,
			IP: r.Via.AsSlice(), HardwareAddr: c.RouterMAC}
		if err := netlink.NeighSet(n); err != nil {
			return res, fmt.Errorf("neighbour %s on %s: %w", r.Via, c.IfName, err)
		}
	}
	neighs, err := netlink.NeighList(idx, netlink.FAMILY_V4)
	if err != nil {
		return res, fmt.Errorf("list neighbours of %s: %w", c.IfName, err)
	}
	neighs6, err := netlink.NeighList(idx, netlink.FAMILY_V6)
	if err != nil {
		return res, fmt.Errorf("list IPv6 neighbours of %s: %w", c.IfName, err)
	}
	for _, n := range append(neighs, neighs6...) {
		a, ok := netip.AddrFromSlice(n.IP)
		if ok && n.State&netlink.NUD_PERMANENT != 0 && n.HardwareAddr.String() == c.RouterMAC.String() && !vias[a.Unmap()] {
			if err := netlink.NeighDel(&n); err != nil {
				return res, fmt.Errorf("remove stale neighbour %s on %s: %w", n.IP, c.IfName, err)
			}
		}
	}

	// Routes: the pod networks through the vRouter, the default route
	// through the underlay's gateway.
	var routes []*netlink.Route
	for _, r := range c.Routes {
		routes = append(routes, &netlink.Route{LinkIndex: idx, Dst: ipNet(r.Dst), Gw: r.Via.AsSlice(),
			Flags: int(netlink.FLAG_ONLINK), MTU: r.MTU, Protocol: Protocol, Scope: netlink.SCOPE_UNIVERSE})
	}
	if c.Gateway.IsValid() {
		routes = append(routes, &netlink.Route{LinkIndex: idx, Dst: ipNet(netip.MustParsePrefix("0.0.0.0/0")),
			Gw: c.Gateway.AsSlice(), Protocol: Protocol, Scope: netlink.SCOPE_UNIVERSE})
	}
	wanted := map[string]bool{}
	for _, r := range routes {
		if err := netlink.RouteReplace(r); err != nil {
			return res, fmt.Errorf("route %s via %s on %s: %w", r.Dst, r.Gw, c.IfName, err)
		}
		wanted[r.Dst.String()] = true
	}
	var have []netlink.Route
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		l, err := netlink.RouteListFiltered(fam, &netlink.Route{LinkIndex: idx, Protocol: Protocol},
			netlink.RT_FILTER_OIF|netlink.RT_FILTER_PROTOCOL)
		if err != nil {
			return res, fmt.Errorf("list routes of %s: %w", c.IfName, err)
		}
		have = append(have, l...)
	}
	for _, r := range have {
		if r.Dst == nil || !wanted[r.Dst.String()] {
			if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
				return res, fmt.Errorf("remove stale route %s on %s: %w", r.Dst, c.IfName, err)
			}
		}
	}
	return res, nil
}

// QuietFabric keeps the kernel's stack off the fabric interface that the
// dataplane polls through the kernel (af_packet, af_xdp): af_packet only
// copies frames, so the kernel would also answer ARP for the underlay
// address there, deliver a second copy of every packet for the node, and
// send port-unreachables for the tunnels. The interface gets no ARP, no
// IPv6, and a strict reverse-path filter (the underlay is routed on the
// host port, so every IPv4 packet the kernel sees on it is dropped). The
// dataplane's own sockets see every frame before these checks.
//
// The kernel applies the larger of net.ipv4.conf.all.rp_filter and the
// interface's: with all at 2 (loose) the filter passes those packets
// again, which QuietFabric reports as a warning (it does not change a
// node-wide setting).
func QuietFabric(ifName string) (warning string, err error) {
	link, err := netlink.LinkByName(ifName)
	if err != nil {
		return "", fmt.Errorf("fabric interface %s: %w", ifName, err)
	}
	if link.Attrs().RawFlags&unix.IFF_NOARP == 0 {
		if err := netlink.LinkSetARPOff(link); err != nil {
			return "", fmt.Errorf("fabric interface %s: arp off: %w", ifName, err)
		}
	}
	for _, s := range []struct{ path, value string }{
		{"/proc/sys/net/ipv4/conf/" + ifName + "/rp_filter", "1"},
		{"/proc/sys/net/ipv6/conf/" + ifName + "/disable_ipv6", "1"},
	} {
		if b, err := os.ReadFile(s.path); err == nil && strings.TrimSpace(string(b)) == s.value {
			continue
		}
		if err := os.WriteFile(s.path, []byte(s.value), 0o644); err != nil {
			return "", fmt.Errorf("fabric interface %s: %w", ifName, err)
		}
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/conf/all/rp_filter"); err == nil && strings.TrimSpace(string(b)) == "2" {
		warning = "net.ipv4.conf.all.rp_filter is 2 (loose): the kernel takes a copy of the node's packets on the fabric interface too; set it to 0 or 1"
	}
	return warning, nil
}

// setupIPv6 gives the TAP c.Address6 (usable at once: no DAD; the
// vRouter answers ND for the pods' gateways by the permanent neighbours)
// and no other global IPv6 address, and removes c.Address6 from any other
// interface (reported, as for IPv4). Without c.Address6 it only removes
// the TAP's global IPv6 addresses: link-local ones stay.
func setupIPv6(link netlink.Link, c Config) (movedFrom []string, err error) {
	idx := link.Attrs().Index
	if c.Address6.IsValid() {
		for _, kv := range [][2]string{{"disable_ipv6", "0"}, {"accept_dad", "0"}, {"accept_ra", "0"}} {
			f := "/proc/sys/net/ipv6/conf/" + c.IfName + "/" + kv[0]
			if err := os.WriteFile(f, []byte(kv[1]), 0o644); err != nil {
				return nil, fmt.Errorf("host port %s: %w", c.IfName, err)
			}
		}
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V6)
	if err != nil {
		return nil, fmt.Errorf("list IPv6 addresses: %w", err)
	}
	want := ipNet(c.Address6)
	for _, a := range addrs {
		mine := a.LinkIndex == idx
		stale := mine && a.Scope == int(netlink.SCOPE_UNIVERSE) && (!c.Address6.IsValid() || a.IPNet.String() != want.String())
		elsewhere := !mine && c.Address6.IsValid() && a.IP.Equal(want.IP)
		if !stale && !elsewhere {
			continue
		}
		l, err := netlink.LinkByIndex(a.LinkIndex)
		if err != nil {
			return movedFrom, fmt.Errorf("address %s: interface %d: %w", a.IPNet, a.LinkIndex, err)
		}
		if err := netlink.AddrDel(l, &a); err != nil {
			return movedFrom, fmt.Errorf("remove %s from %s: %w", a.IPNet, l.Attrs().Name, err)
		}
		if elsewhere {
			movedFrom = append(movedFrom, l.Attrs().Name)
		}
	}
	if !c.Address6.IsValid() {
		return movedFrom, nil
	}
	if err := netlink.AddrReplace(link, &netlink.Addr{IPNet: want, Flags: unix.IFA_F_NODAD}); err != nil {
		return movedFrom, fmt.Errorf("address %s on %s: %w", c.Address6, c.IfName, err)
	}
	return movedFrom, nil
}

func family(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

func ipNet(p netip.Prefix) *net.IPNet {
	if !p.IsValid() {
		return &net.IPNet{}
	}
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
