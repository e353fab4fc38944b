package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"

	"go.uber.org/zap"

	"github.com/filament-net/filament/agent/attach"
	"github.com/filament-net/filament/agent/cniapi"
	"github.com/filament-net/filament/agent/config"
	"github.com/filament-net/filament/dpdk/apiclient"
)

// What each attach mode does, in the order of an ADD: prepare (before the
// dataplane's port), the port's devargs, finish (after the port), and at
// DEL teardown; present says whether a persisted attachment still has
// something to program, check verifies it for CHECK.

// mode is the attachment's attach mode (records of older agents have none:
// veth).
func (a *Attachment) mode() string { return cmp.Or(a.Mode, cniapi.ModeVeth) }

// socketMode: the pod's DPDK application owns the data path through a
// socket; nothing is made in its netns.
func (a *Attachment) socketMode() bool {
	return a.Mode == cniapi.ModeVhostUser || a.Mode == cniapi.ModeMemif
}

// newAttachmentMode sets a new attachment's mode and socket directory.
func (n *Node) newAttachmentMode(a *Attachment, mode string) {
	a.Mode = cmp.Or(mode, cniapi.ModeVeth)
	if a.socketMode() {
		a.SocketDir = attach.SocketDir(n.cfg.Attach.SocketDir, a.HostIf)
	}
}

// primary: kubelet names a pod's primary interface eth0; other networks'
// interfaces (Multus: net1, net2...) get no default route.
func primary(ifName string) bool { return ifName == "eth0" }

func (n *Node) kernelIf(a *Attachment, nw *config.Network) attach.Veth {
	mac, _ := parseMAC(a.MAC)
	v := attach.Veth{HostIf: a.HostIf, Netns: a.Netns, IfName: a.IfName, MAC: mac, Address: a.Address,
		Gateway: nw.Gateway, MTU: cmp.Or(a.MTU, n.cfg.PodMTU(nw)), DefaultRoute: primary(a.IfName)}
	if has6(a, nw) {
		v.Address6, v.Gateway6 = a.Address6, nw.Gateway6
	}
	return v
}

// portDevargs is the DPDK device of the attachment's dataplane port.
func (n *Node) portDevargs(a *Attachment) string {
	switch a.mode() {
	case cniapi.ModeTap:
		return attach.TapDevargs(a.HostIf)
	case cniapi.ModeVhostUser:
		return attach.VhostUserDevargs(a.HostIf, a.SocketDir)
	case cniapi.ModeMemif:
		return attach.MemifDevargs(a.HostIf, a.SocketDir)
	}
	return n.devargs(a.HostIf)
}

// present: the attachment still has something to program (after a reboot
// the veth, the netns and the socket directory are gone).
func (n *Node) present(a *Attachment) bool {
	switch a.mode() {
	case cniapi.ModeTap:
		_, err := os.Stat(a.Netns)
		return err == nil
	case cniapi.ModeVhostUser, cniapi.ModeMemif:
		return attach.SocketDirExists(a.SocketDir)
	}
	return attach.HostExists(a.HostIf)
}

// prepare makes what the dataplane's port needs (the veth, the socket
// directory with the pod's interface file). fresh: the port must be made
// again (a new veth; a TAP that is nowhere). created: the attachment is
// new.
func (n *Node) prepare(ctx context.Context, a *Attachment, nw *config.Network, created bool) (fresh bool, err error) {
	switch a.mode() {
	case cniapi.ModeTap:
		return !attach.TapInPlace(attach.Tap(n.kernelIf(a, nw))), nil
	case cniapi.ModeVhostUser, cniapi.ModeMemif:
		pi := attach.PodInterface{Mode: a.Mode, Socket: n.socketPath(a), Role: "server", MAC: a.MAC,
			Address: a.Address, Gateway: nw.Gateway, MTU: cmp.Or(a.MTU, n.cfg.PodMTU(nw)),
			Address6:    a.Address6,
			ContainerID: a.ContainerID, IfName: a.IfName, PodNamespace: a.PodNS, PodName: a.PodName}
		if a.Address6.IsValid() {
			pi.Gateway6 = nw.Gateway6
		}
		if a.Mode == cniapi.ModeMemif {
			pi.Role = "client"
			if created {
				// A socket left by a dataplane that died with an older
				// attachment of this name: the new port cannot bind over it.
				if err := attach.RemoveStaleMemifSocket(a.SocketDir); err != nil {
					return false, err
				}
			}
		}
		return false, attach.PrepareSocketDir(a.SocketDir, pi)
	}
	return attach.Setup(ctx, n.kernelIf(a, nw))
}

// finish completes the attachment once the dataplane has its port: the
// TAP the port made goes into the pod; the memif socket the port made is
// opened to the pod.
func (n *Node) finish(a *Attachment, nw *config.Network) error {
	switch a.mode() {
	case cniapi.ModeTap:
		_, err := attach.SetupTap(attach.Tap(n.kernelIf(a, nw)))
		return err
	case cniapi.ModeMemif:
		return attach.OpenMemifSocket(a.SocketDir)
	}
	return nil
}

// teardown removes what the attachment made on the node, after its port.
func (n *Node) teardown(a *Attachment) error {
	switch a.mode() {
	case cniapi.ModeTap:
		return attach.TeardownTap(attach.Tap{Netns: a.Netns, IfName: a.IfName})
	case cniapi.ModeVhostUser, cniapi.ModeMemif:
		return attach.RemoveSocketDir(a.SocketDir)
	}
	return attach.Teardown(a.HostIf)
}

// check verifies the attachment is as made, for CHECK.
func (n *Node) check(netns string, a *Attachment) error {
	switch a.mode() {
	case cniapi.ModeVhostUser, cniapi.ModeMemif:
		pi, err := attach.ReadPodInterface(a.SocketDir)
		if err != nil {
			return fmt.Errorf("the pod's socket directory: %w", err)
		}
		if pi.MAC != a.MAC || pi.Address != a.Address || pi.Address6 != a.Address6 || pi.Socket != n.socketPath(a) {
			return fmt.Errorf("%s/%s says %s %s %v %s, want %s %s %v %s", a.SocketDir, attach.InterfaceFile,
				pi.MAC, pi.Address, pi.Address6, pi.Socket, a.MAC, a.Address, a.Address6, n.socketPath(a))
		}
		if a.Mode == cniapi.ModeMemif {
			if _, err := os.Stat(n.socketPath(a)); err != nil {
				return fmt.Errorf("the dataplane's memif socket: %w", err)
			}
		}
		return nil
	}
	mac, _ := parseMAC(a.MAC)
	if err := attach.Check(attach.Veth{Netns: netns, IfName: a.IfName, MAC: mac, Address: a.Address, Address6: a.Address6}); err != nil {
		return err
	}
	if a.mode() == cniapi.ModeVeth && !attach.HostExists(a.HostIf) {
		return fmt.Errorf("the pod's veth host end %s is gone", a.HostIf)
	}
	return nil
}

// socketPath is a vhost-user or memif attachment's socket ("" for others).
func (n *Node) socketPath(a *Attachment) string {
	switch a.Mode {
	case cniapi.ModeVhostUser:
		return attach.VhostUserSocketPath(a.SocketDir)
	case cniapi.ModeMemif:
		return attach.MemifSocketPath(a.SocketDir)
	}
	return ""
}

// beforeResync removes the memif sockets of attachments whose port the
// dataplane does not have (it restarted: the old server's socket file is
// still there and the new port could not bind).
func (n *Node) beforeResync(cur *apiclient.State) {
	have := map[string]bool{}
	for _, p := range cur.Ports {
		have[p.Name] = true
	}
	for _, a := range n.st.Attachments {
		if a.Mode == cniapi.ModeMemif && !have[a.HostIf] {
			if err := attach.RemoveStaleMemifSocket(a.SocketDir); err != nil {
				n.log.Warn("memif socket", zap.String("containerID", a.ContainerID), zap.Error(err))
			}
		}
		if a.mode() == cniapi.ModeVeth && !have[a.HostIf] {
			n.clearXDP(a.HostIf)
		}
	}
}

// clearXDP removes an XDP program a dead or closed af_xdp port left on a
// veth whose port the dataplane is about to make again.
func (n *Node) clearXDP(hostIf string) {
	cleared, err := attach.ClearXDP(hostIf)
	switch {
	case err != nil:
		n.log.Warn("stale XDP program", zap.String("hostIf", hostIf), zap.Error(err))
	case cleared:
		n.log.Info("stale XDP program removed", zap.String("hostIf", hostIf))
	}
}

// afterResync finishes the attachments whose port the resync may have
// made again: TAPs go back into their pods, memif sockets are opened.
func (n *Node) afterResync() {
	for _, a := range n.st.Attachments {
		nw, ok := n.cfg.Network(a.Network)
		if !ok || !n.present(a) || a.mode() == cniapi.ModeVeth || a.Mode == cniapi.ModeVhostUser {
			continue
		}
		if a.Mode == cniapi.ModeTap {
			moved, err := attach.SetupTap(attach.Tap(n.kernelIf(a, nw)))
			switch {
			case errors.Is(err, attach.ErrTapGone):
				n.log.Warn("the pod's TAP is gone: ADD makes it again", zap.String("containerID", a.ContainerID),
					zap.String("ifName", a.IfName))
			case err != nil:
				n.log.Warn("cannot move the TAP into the pod", zap.String("containerID", a.ContainerID),
					zap.String("ifName", a.IfName), zap.Error(err))
			case moved:
				n.log.Info("TAP moved into the pod again", zap.String("containerID", a.ContainerID),
					zap.String("ifName", a.IfName))
			}
			continue
		}
		if err := n.finish(a, nw); err != nil {
			n.log.Warn("cannot finish an attachment after the resync", zap.String("containerID", a.ContainerID),
				zap.String("ifName", a.IfName), zap.String("mode", a.Mode), zap.Error(err))
		}
	}
}
