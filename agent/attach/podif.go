package attach

import (
	"fmt"
	"net"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// configurePod gives a kernel pod interface (a veth's pod end, a TAP) in
// the pod's netns (handle ph) the attachment's MAC, MTU, address, a
// default route via the gateway if it is the primary, and TX checksum
// offload and TSO off.
func configurePod(ph *netlink.Handle, pod netlink.Link, v Veth) error {
	if pod.Attrs().HardwareAddr.String() != v.MAC.String() {
		if err := ph.LinkSetHardwareAddr(pod, v.MAC); err != nil {
			return fmt.Errorf("MAC %s on %s: %w", v.MAC, v.IfName, err)
		}
	}
	if pod.Attrs().MTU != v.MTU {
		if err := ph.LinkSetMTU(pod, v.MTU); err != nil {
			return fmt.Errorf("MTU %d on %s: %w", v.MTU, v.IfName, err)
		}
	}
	addr := &netlink.Addr{IPNet: ipNet(v.Address)}
	if err := ph.AddrReplace(pod, addr); err != nil {
		return fmt.Errorf("address %s on %s: %w", v.Address, v.IfName, err)
	}
	if v.Address6.IsValid() {
		// Before the link is up: its link-local address skips DAD too.
		if err := ipv6Sysctls(v.Netns, v.IfName); err != nil {
			return err
		}
		addr6 := &netlink.Addr{IPNet: ipNet(v.Address6), Flags: unix.IFA_F_NODAD}
		if err := ph.AddrReplace(pod, addr6); err != nil {
			return fmt.Errorf("address %s on %s: %w", v.Address6, v.IfName, err)
		}
	}
	if err := ph.LinkSetUp(pod); err != nil {
		return fmt.Errorf("set %s up: %w", v.IfName, err)
	}
	// Only the pod's primary interface takes the default route: a second
	// network's interface (Multus' net1...) taking it would send the
	// replies to eth0's peers out of net1, where anti-spoofing drops them.
	if v.DefaultRoute {
		if err := ph.RouteReplace(&netlink.Route{LinkIndex: pod.Attrs().Index, Gw: v.Gateway.AsSlice(),
			Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}}); err != nil {
			return fmt.Errorf("default route via %s: %w", v.Gateway, err)
		}
		if v.Address6.IsValid() {
			if err := ph.RouteReplace(&netlink.Route{LinkIndex: pod.Attrs().Index, Gw: v.Gateway6.AsSlice(),
				Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}}); err != nil {
				return fmt.Errorf("default IPv6 route via %s: %w", v.Gateway6, err)
			}
		}
	}
	return OffloadsOff(v.Netns, v.IfName)
}

// ipv6Sysctls turns IPv6 on for the pod's interface (a runtime may have it
// off by default), DAD off (the vRouter answers ND for every address: DAD
// would only delay the address by a second), router advertisements
// accepted (the vRouter answers the pod's solicitation with one: itself
// as default router from its link-local address, the port's MTU, no
// prefix, so no address and no route but a second default beside the
// agent's, to the same vRouter), and the link-local address derived from
// the MAC (EUI-64, addr_gen_mode 0, not a stable-privacy one): the one
// the vRouter's anti-spoofing lets through. IPv6 is turned on last, so
// that on an interface already up (a pod whose network became dual
// stack) the link-local address is made with the settings above.
func ipv6Sysctls(nsPath, ifName string) error {
	return inNetns(nsPath, func() error {
		for _, kv := range [][2]string{{"accept_dad", "0"}, {"accept_ra", "1"}, {"addr_gen_mode", "0"}, {"disable_ipv6", "0"}} {
			f := "/proc/sys/net/ipv6/conf/" + ifName + "/" + kv[0]
			if err := os.WriteFile(f, []byte(kv[1]), 0o644); err != nil {
				return fmt.Errorf("%s in %s: %w", f, nsPath, err)
			}
		}
		return nil
	})
}
