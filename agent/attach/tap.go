package attach

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Tap describes a TAP attachment: the dataplane's net_tap port creates
// the TAP named HostIf in the dataplane's netns (the agent's); the agent
// moves it into the pod's netns, renames it IfName and configures it like
// a veth's pod end. The TAP lives as long as the dataplane's port: when
// the dataplane stops, the pod's interface goes with it, and the port the
// next dataplane creates is a new TAP that the agent moves in again.
type Tap Veth

// TapDevargs is the dataplane port of a TAP attachment: the TAP is made
// with the host name, unique on the node, and renamed in the pod.
func TapDevargs(hostIf string) string {
	return fmt.Sprintf("net_tap_%s,iface=%s", hostIf, hostIf)
}

// ErrTapGone: the TAP is neither in the node's netns nor in the pod's;
// the dataplane's port must be made again.
var ErrTapGone = errors.New("the TAP is neither in the node's nor in the pod's netns")

// isTap: netlink reports the kernel's "tun" kind (TUN or TAP) as "tuntap".
func isTap(l netlink.Link) bool { return l.Type() == "tuntap" }

// SetupTap moves the TAP into the pod's netns if it is still in the
// node's (moved is true), names it IfName there and configures it. It is
// idempotent: a TAP already in the pod is only configured. An IfName in the
// pod that is not a TAP is an error, as is a TAP nowhere (ErrTapGone).
func SetupTap(t Tap) (moved bool, err error) {
	ns, err := netns.GetFromPath(t.Netns)
	if err != nil {
		return false, fmt.Errorf("netns %s: %w", t.Netns, err)
	}
	defer ns.Close()
	ph, err := netlink.NewHandleAt(ns)
	if err != nil {
		return false, fmt.Errorf("netns %s: %w", t.Netns, err)
	}
	defer ph.Close()

	pod, perr := ph.LinkByName(t.IfName)
	if perr == nil && !isTap(pod) {
		return false, fmt.Errorf("netns %s already has an interface %s that is not ours (%s)", t.Netns, t.IfName, pod.Type())
	}
	if host, herr := netlink.LinkByName(t.HostIf); herr == nil {
		if !isTap(host) {
			return false, fmt.Errorf("%s in the node's netns is a %s, not the dataplane's TAP", t.HostIf, host.Type())
		}
		if perr == nil {
			// A TAP of an older dataplane port that the kernel has not
			// removed yet: the new one replaces it.
			if err := ph.LinkDel(pod); err != nil {
				return false, fmt.Errorf("delete stale %s in %s: %w", t.IfName, t.Netns, err)
			}
		}
		if err := netlink.LinkSetNsFd(host, int(ns)); err != nil {
			return false, fmt.Errorf("move %s into %s: %w", t.HostIf, t.Netns, err)
		}
		moved = true
	}
	if moved || perr != nil {
		// Moved now, or earlier by an agent that stopped before the rename.
		l, err := ph.LinkByName(t.HostIf)
		if err != nil {
			if !moved {
				return false, fmt.Errorf("%s in %s: %w", t.IfName, t.Netns, ErrTapGone)
			}
			return moved, fmt.Errorf("%s in %s after the move: %w", t.HostIf, t.Netns, err)
		}
		if err := ph.LinkSetDown(l); err != nil {
			return moved, fmt.Errorf("set %s down: %w", t.HostIf, err)
		}
		if err := ph.LinkSetName(l, t.IfName); err != nil {
			return moved, fmt.Errorf("rename %s to %s in %s: %w", t.HostIf, t.IfName, t.Netns, err)
		}
		if pod, err = ph.LinkByName(t.IfName); err != nil {
			return moved, err
		}
	}
	return moved, configurePod(ph, pod, Veth(t))
}

// TapInPlace reports whether the TAP is in the pod's netns (named IfName)
// or still in the node's.
func TapInPlace(t Tap) bool {
	if _, err := netlink.LinkByName(t.HostIf); err == nil {
		return true
	}
	ns, err := netns.GetFromPath(t.Netns)
	if err != nil {
		return false
	}
	defer ns.Close()
	ph, err := netlink.NewHandleAt(ns)
	if err != nil {
		return false
	}
	defer ph.Close()
	l, err := ph.LinkByName(t.IfName)
	return err == nil && isTap(l)
}

// TeardownTap deletes the pod's TAP if it is still there (the dataplane
// removes it when it deletes the port; this covers a dataplane that did
// not answer). A missing netns or interface is fine.
func TeardownTap(t Tap) error {
	if t.Netns == "" {
		return nil
	}
	ns, err := netns.GetFromPath(t.Netns)
	if err != nil {
		return nil // the pod's netns is gone, and its interfaces with it
	}
	defer ns.Close()
	ph, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netns %s: %w", t.Netns, err)
	}
	defer ph.Close()
	l, err := ph.LinkByName(t.IfName)
	if err != nil || !isTap(l) {
		return nil
	}
	if err := ph.LinkDel(l); err != nil {
		return fmt.Errorf("delete %s in %s: %w", t.IfName, t.Netns, err)
	}
	return nil
}
