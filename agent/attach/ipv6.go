package attach

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// A pod attached while its network was IPv4-only gets its IPv6 address
// when the network becomes dual stack, and loses it when the network stops
// being so, without a new ADD: these change an attached kernel pod
// interface (veth pod end or TAP, already up) in place.

// SetIPv6 gives the pod's interface v.IfName in v.Netns the IPv6 settings
// of a dual-stack ADD (ipv6Sysctls), v.Address6 without DAD and, if
// v.DefaultRoute, the default IPv6 route via v.Gateway6. Idempotent.
func SetIPv6(v Veth) error {
	if !v.Address6.IsValid() {
		return errors.New("no IPv6 address to set")
	}
	return withPodLink(v.Netns, v.IfName, func(ph *netlink.Handle, pod netlink.Link) error {
		if err := ipv6Sysctls(v.Netns, v.IfName); err != nil {
			return err
		}
		addr6 := &netlink.Addr{IPNet: ipNet(v.Address6), Flags: unix.IFA_F_NODAD}
		if err := ph.AddrReplace(pod, addr6); err != nil {
			return fmt.Errorf("address %s on %s: %w", v.Address6, v.IfName, err)
		}
		if v.DefaultRoute {
			if err := ph.RouteReplace(&netlink.Route{LinkIndex: pod.Attrs().Index, Gw: v.Gateway6.AsSlice(),
				Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}}); err != nil {
				return fmt.Errorf("default IPv6 route via %s: %w", v.Gateway6, err)
			}
		}
		return nil
	})
}

// RemoveIPv6 takes addr6 and every default IPv6 route (the CNI's via
// gateway6, one learnt from the vRouter's Router Advertisement) off the
// pod's interface ifName in nsPath: left with its link-local address
// only, the pod must find IPv6 unreachable, not routed to where it is
// dropped. Idempotent: what is not there is not an error.
func RemoveIPv6(nsPath, ifName string, addr6 netip.Prefix) error {
	return withPodLink(nsPath, ifName, func(ph *netlink.Handle, pod netlink.Link) error {
		routes, err := ph.RouteList(pod, netlink.FAMILY_V6)
		if err != nil {
			return fmt.Errorf("IPv6 routes of %s: %w", ifName, err)
		}
		for _, r := range routes {
			if r.Dst != nil && !(r.Dst.IP.IsUnspecified() && isDefault(r.Dst)) {
				continue
			}
			if err := ph.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("default IPv6 route via %s on %s: %w", r.Gw, ifName, err)
			}
		}
		err = ph.AddrDel(pod, &netlink.Addr{IPNet: ipNet(addr6)})
		if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("address %s on %s: %w", addr6, ifName, err)
		}
		return nil
	})
}

func isDefault(n *net.IPNet) bool {
	ones, _ := n.Mask.Size()
	return ones == 0
}

// withPodLink runs fn with a netlink handle in the pod's netns and its
// interface.
func withPodLink(nsPath, ifName string, fn func(*netlink.Handle, netlink.Link) error) error {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("netns %s: %w", nsPath, err)
	}
	defer ns.Close()
	ph, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netns %s: %w", nsPath, err)
	}
	defer ph.Close()
	pod, err := ph.LinkByName(ifName)
	if err != nil {
		return fmt.Errorf("no interface %s in %s: %w", ifName, nsPath, err)
	}
	return fn(ph, pod)
}
