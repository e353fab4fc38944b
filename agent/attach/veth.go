// Package attach plugs pods in, one file per attach mode:
//
//   - veth (veth.go): a veth pair whose pod end is the pod's interface (in
//     its netns) and whose host end, in the agent's own netns (the node's,
//     the dataplane's), the dataplane polls (af_packet or af_xdp);
//   - tap (tap.go): a TAP the dataplane creates (net_tap) in its netns,
//     moved into the pod's netns and configured like a veth's pod end;
//   - vhost-user (vhostuser.go) and memif (memif.go): a unix socket in a
//     per-pod directory (socketdir.go); nothing is made in the pod's netns,
//     the pod's DPDK application owns the data path.
//
// A kernel pod interface (veth pod end, TAP) gets the MAC, the address
// with the subnet's prefix length, the MTU (fabric MTU minus overlay
// overhead), a default route via the gateway (the vRouter answers ARP for
// it) and TX checksum offload and TSO off: the fast path does not complete
// partial checksums (ethtool.go, an ioctl from a thread in the pod's netns).
// In a dual-stack network it gets its IPv6 address too, without duplicate
// address detection (usable at once: the vRouter answers ND for every
// address, so DAD could only fail), and a default IPv6 route via gateway6.
package attach

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// HostPrefix starts the name of every host end the agent makes (and of the
// dataplane port on it): what the agent owns.
const HostPrefix = "fil"

// ErrIfNameTaken: the pod's netns has an interface of that name that is
// not the pod end of this attachment's veth (another container's, or the
// runtime's).
var ErrIfNameTaken = errors.New("interface name taken in the pod's netns")

// HostIfName is the host end's name for (containerID, ifName): "fil" and
// 11 hex digits of a hash, 14 bytes.
func HostIfName(containerID, ifName string) string {
	h := sha256.Sum256([]byte(containerID + "/" + ifName))
	return HostPrefix + hex.EncodeToString(h[:])[:11]
}

// MAC derives the pod's MAC from its address: 02:00 (locally
// administered, unicast) and the four bytes of the address, unique on a
// node's network.
func MAC(a netip.Addr) net.HardwareAddr {
	b := a.As4()
	return net.HardwareAddr{0x02, 0x00, b[0], b[1], b[2], b[3]}
}

// Veth describes one attachment.
type Veth struct {
	HostIf  string // host end, in the agent's netns
	Netns   string // the pod's netns path
	IfName  string // the pod end's name
	MAC     net.HardwareAddr
	Address netip.Prefix // the pod's address with the subnet's length
	Gateway netip.Addr
	MTU     int
	// DefaultRoute: the pod's primary interface (eth0) routes everything
	// via the gateway; others reach their network's subnet only.
	DefaultRoute bool
	// Address6 and Gateway6 (dual-stack networks; zero otherwise): the
	// pod's IPv6 address, with subnet6's length, and its gateway, with a
	// default IPv6 route under the same rule as IPv4's.
	Address6 netip.Prefix
	Gateway6 netip.Addr
}

// Setup makes the veth as described. It is idempotent: if the host end
// exists and its peer is IfName in the pod's netns, it only makes sure of
// the pod end's settings (fresh is false); otherwise it removes a stale
// host end and creates the pair (fresh is true: whatever polled the old
// host end must be recreated).
func Setup(ctx context.Context, v Veth) (fresh bool, err error) {
	ns, err := netns.GetFromPath(v.Netns)
	if err != nil {
		return false, fmt.Errorf("netns %s: %w", v.Netns, err)
	}
	defer ns.Close()
	ph, err := netlink.NewHandleAt(ns)
	if err != nil {
		return false, fmt.Errorf("netns %s: %w", v.Netns, err)
	}
	defer ph.Close()

	host, herr := netlink.LinkByName(v.HostIf)
	pod, perr := ph.LinkByName(v.IfName)
	if herr == nil && perr == nil && host.Attrs().Index == pod.Attrs().ParentIndex {
		// the pair exists (the pod end's peer index is the host end's)
	} else {
		if perr == nil {
			return false, fmt.Errorf("%w: %s in %s is not ours", ErrIfNameTaken, v.IfName, v.Netns)
		}
		if herr == nil {
			if err := netlink.LinkDel(host); err != nil {
				return false, fmt.Errorf("delete stale %s: %w", v.HostIf, err)
			}
		}
		fresh = true
		la := netlink.NewLinkAttrs()
		la.Name = v.HostIf
		la.MTU = v.MTU
		veth := &netlink.Veth{LinkAttrs: la, PeerName: v.IfName, PeerHardwareAddr: v.MAC,
			PeerNamespace: netlink.NsFd(int(ns))}
		if err := netlink.LinkAdd(veth); err != nil {
			return false, fmt.Errorf("create veth %s/%s: %w", v.HostIf, v.IfName, err)
		}
		if host, err = netlink.LinkByName(v.HostIf); err != nil {
			return true, err
		}
		if pod, err = ph.LinkByName(v.IfName); err != nil {
			return true, err
		}
	}
	// Host end: no IPv6 (no router solicitations into the dataplane), up, no address.
	_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+v.HostIf+"/disable_ipv6", []byte("1"), 0o644)
	if host.Attrs().MTU != v.MTU {
		if err := netlink.LinkSetMTU(host, v.MTU); err != nil {
			return fresh, err
		}
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fresh, fmt.Errorf("set %s up: %w", v.HostIf, err)
	}
	if err := configurePod(ph, pod, v); err != nil {
		return fresh, err
	}
	return fresh, nil
}

// Check reports whether the pod end exists in the netns with the address.
func Check(v Veth) error {
	ns, err := netns.GetFromPath(v.Netns)
	if err != nil {
		return fmt.Errorf("netns %s: %w", v.Netns, err)
	}
	defer ns.Close()
	ph, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer ph.Close()
	pod, err := ph.LinkByName(v.IfName)
	if err != nil {
		return fmt.Errorf("no interface %s in %s: %w", v.IfName, v.Netns, err)
	}
	if pod.Attrs().HardwareAddr.String() != v.MAC.String() {
		return fmt.Errorf("%s has MAC %s, want %s", v.IfName, pod.Attrs().HardwareAddr, v.MAC)
	}
	addrs, err := ph.AddrList(pod, netlink.FAMILY_ALL)
	if err != nil {
		return err
	}
	for _, want := range []netip.Prefix{v.Address, v.Address6} {
		if !want.IsValid() {
			continue
		}
		found := false
		for _, a := range addrs {
			found = found || a.IPNet.String() == ipNet(want).String()
		}
		if !found {
			return fmt.Errorf("%s in %s does not have address %s", v.IfName, v.Netns, want)
		}
	}
	return nil
}

// Teardown deletes the host end (the pod end goes with it); a missing one
// is fine.
func Teardown(hostIf string) error {
	l, err := netlink.LinkByName(hostIf)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		return err
	}
	return netlink.LinkDel(l)
}

// HostExists reports whether the host end is there.
func HostExists(hostIf string) bool {
	_, err := netlink.LinkByName(hostIf)
	return err == nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
