package node

import (
	"fmt"
	"net/netip"

	"go.uber.org/zap"

	"github.com/filament-net/filament/agent/attach"
	"github.com/filament-net/filament/agent/ipam"
)

// reconcileIPv6 brings the IPv6 address of every attached kernel pod
// (veth, TAP) in line with its network, at each resync (standalone mode:
// an agent restarted with an edited configuration, a reconnect), so that
// no new ADD is needed:
//   - a network that became dual stack gives its pods an IPv6 address
//     (IPAM), set in the pod's netns with the default IPv6 route via
//     gateway6 (eth0), and the resync's desired state then programs the
//     port's ipv6 and the /128;
//   - a network that is no longer dual stack, or whose subnet6 no longer
//     holds the address, takes it back: address and default IPv6 routes
//     out of the pod, IPAM released; the resync drops the port's ipv6 and
//     the sweep the /128. A changed subnet6 is both, in that order.
//
// Pods of DPDK applications (vhost-user, memif) read their addresses once
// from their socket directory: they keep today's rule (their next ADD).
// In Kubernetes mode the Ports give the addresses, at ADD. Called with the
// state lock; the pod's netns is changed under it (rare, and idempotent:
// an ADD of the same pod setting the same address and route meanwhile is
// harmless; a DEL marks the attachment deleting first, and it is skipped).
// A pod that cannot be changed is logged and left as it was; only a state
// file that cannot be saved is an error.
func (n *Node) reconcileIPv6() error {
	if n.ports != nil {
		return nil
	}
	changed := false
	for _, a := range n.st.Attachments {
		if a.deleting || a.socketMode() {
			continue
		}
		nw, ok := n.cfg.Network(a.Network)
		if !ok || !n.present(a) {
			continue
		}
		key := ipam.Key{ContainerID: a.ContainerID, IfName: a.IfName}
		log := n.log.With(zap.String("containerID", a.ContainerID), zap.String("ifName", a.IfName),
			zap.String("network", a.Network))
		if a.Address6.IsValid() && !has6(a, nw) {
			if err := attach.RemoveIPv6(a.Netns, a.IfName, a.Address6); err != nil {
				log.Warn("the network is no longer dual stack, but the pod's IPv6 address cannot be removed",
					zap.Stringer("address6", a.Address6), zap.Error(err))
				continue
			}
			if _, err := n.ipam.ReleaseIPv6(a.Network, key); err != nil {
				return fmt.Errorf("release %s of %s: %w", a.Address6, a.ContainerID, err)
			}
			log.Info("IPv6 address removed: the network is no longer dual stack", zap.Stringer("address6", a.Address6))
			a.Address6, changed = netip.Prefix{}, true
		}
		if a.Address6.IsValid() || !nw.DualStack() {
			continue
		}
		addrs, err := n.ipam.Allocate(nw.Name, key)
		if err != nil {
			log.Warn("the network became dual stack, but the pod gets no IPv6 address", zap.Error(err))
			continue
		}
		v := n.kernelIf(a, nw)
		v.Address6, v.Gateway6 = prefix6(addrs.IPv6, nw), nw.Gateway6
		if err := attach.SetIPv6(v); err != nil {
			log.Warn("the network became dual stack, but the pod's IPv6 address cannot be set",
				zap.Stringer("address6", v.Address6), zap.Error(err))
			if _, err := n.ipam.ReleaseIPv6(a.Network, key); err != nil {
				return fmt.Errorf("release %s of %s: %w", v.Address6, a.ContainerID, err)
			}
			continue
		}
		log.Info("IPv6 address added: the network became dual stack", zap.Stringer("address6", v.Address6))
		a.Address6, changed = v.Address6, true
	}
	if changed {
		return n.saveState()
	}
	return nil
}
