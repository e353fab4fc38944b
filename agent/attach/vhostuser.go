package attach

import (
	"fmt"
	"path/filepath"
)

// vhost-user, for DPDK pods and VMs, as OVS's dpdkvhostuserclient: the pod
// (its virtio-user port, or QEMU) is the server and creates the socket in
// its socket directory; the dataplane's net_vhost port is the client. The
// client connects when the server is there and, DPDK's vhost library
// reconnecting by itself (client=1 without the no-reconnect flag), again
// every second after either side restarted.

// VhostUserSocket is the socket's name in the socket directory.
const VhostUserSocket = "vhost-user.sock"

// VhostUserSocketPath is the attachment's socket.
func VhostUserSocketPath(dir string) string { return filepath.Join(dir, VhostUserSocket) }

// VhostUserDevargs is the dataplane port: one queue pair (the workers
// share its TX queue).
func VhostUserDevargs(hostIf, dir string) string {
	return fmt.Sprintf("net_vhost_%s,iface=%s,client=1,queues=1", hostIf, VhostUserSocketPath(dir))
}
