package attach

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
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
	}
	return OffloadsOff(v.Netns, v.IfName)
}
