package attach

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// memif, for DPDK pods: the dataplane's net_memif port is the server and
// creates the socket (a file, not an abstract socket) in the pod's socket
// directory when the port is made; the pod is the client. DPDK 22.11's
// memif client connects only when its port starts: after a dataplane
// restart a DPDK pod must restart its port (libmemif and VPP clients
// reconnect by themselves).

// MemifSocket is the socket's name in the socket directory.
const MemifSocket = "memif.sock"

// MemifSocketPath is the attachment's socket.
func MemifSocketPath(dir string) string { return filepath.Join(dir, MemifSocket) }

// MemifDevargs is the dataplane port.
func MemifDevargs(hostIf, dir string) string {
	return fmt.Sprintf("net_memif_%s,role=server,id=0,socket=%s,socket-abstract=no", hostIf, MemifSocketPath(dir))
}

// RemoveStaleMemifSocket removes the socket file a dataplane that died
// left behind: the next server cannot bind over it ("Address already in
// use"). Call it only when the dataplane has no port on it.
func RemoveStaleMemifSocket(dir string) error {
	err := os.Remove(MemifSocketPath(dir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale memif socket: %w", err)
	}
	return nil
}

// OpenMemifSocket lets the pod connect whatever its user: the dataplane
// (root) creates the socket with its umask, and connecting needs write
// permission on it.
func OpenMemifSocket(dir string) error {
	if err := os.Chmod(MemifSocketPath(dir), 0o666); err != nil {
		return fmt.Errorf("memif socket: %w", err)
	}
	return nil
}
