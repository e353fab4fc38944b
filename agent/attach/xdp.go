package attach

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ClearXDP detaches any XDP program from a host end. DPDK 22.11's af_xdp
// PMD leaves its program (xsk_def_prog) on the interface when its port
// closes or its process dies; a new af_xdp port brings its own, and an
// af_packet port must not find frames redirected to a socket that is gone.
// It says whether there was one; a missing interface is fine.
func ClearXDP(hostIf string) (bool, error) {
	l, err := netlink.LinkByName(hostIf)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	x := l.Attrs().Xdp
	if x == nil || !x.Attached {
		return false, nil
	}
	// The program was attached in one mode (native on a veth, or generic):
	// detaching needs the same one.
	var last error
	for _, flags := range []int{0, unix.XDP_FLAGS_DRV_MODE, unix.XDP_FLAGS_SKB_MODE} {
		if last = netlink.LinkSetXdpFdWithFlags(l, -1, flags); last == nil {
			if l, err = netlink.LinkByName(hostIf); err == nil && (l.Attrs().Xdp == nil || !l.Attrs().Xdp.Attached) {
				return true, nil
			}
		}
	}
	return false, fmt.Errorf("%s: cannot detach its XDP program (id %d): %v", hostIf, x.ProgId, last)
}
