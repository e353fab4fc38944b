package attach

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// The per-pod socket directory of a vhost-user or memif attachment:
// <base>/<host name> (the host name is the attachment's, "fil" and 11 hex
// digits: short enough for the 107 bytes of a unix socket path, unique on
// the node). It holds the socket and InterfaceFile, and is what the pod
// mounts. It is mode 0777 (without the sticky bit): the pod, whatever its
// user, creates its vhost-user socket there.

// InterfaceFile is the pod's network configuration in its socket
// directory, for the pod's DPDK application to configure itself.
const InterfaceFile = "interface.json"

// MaxSocketBase is the longest socket base directory: with "/", the host
// name, "/" and the longest socket name it stays in a unix socket path.
const MaxSocketBase = 107 - 1 - 14 - 1 - len(VhostUserSocket)

// SocketDir is the attachment's socket directory under base.
func SocketDir(base, hostIf string) string { return filepath.Join(base, hostIf) }

// PodInterface is InterfaceFile's content.
type PodInterface struct {
	Mode string `json:"mode"` // vhost-user or memif
	// Socket is the unix socket; Role is the pod's side of it: "server"
	// for vhost-user (the pod creates the socket, the dataplane connects
	// and reconnects), "client" for memif (the dataplane listens).
	Socket  string       `json:"socket"`
	Role    string       `json:"role"`
	MAC     string       `json:"mac"`     // the pod must send from this MAC (anti-spoofing)
	Address netip.Prefix `json:"address"` // with the subnet's prefix length
	Gateway netip.Addr   `json:"gateway"` // the vRouter: the next hop for everything
	// Address6 and Gateway6: the same for IPv6, in a dual-stack network
	// (absent otherwise). The vRouter answers ND for every address.
	Address6 netip.Prefix `json:"address6,omitzero"`
	Gateway6 netip.Addr   `json:"gateway6,omitzero"`
	MTU      int          `json:"mtu"`
	// Who it is for.
	ContainerID  string `json:"containerID"`
	IfName       string `json:"ifName"`
	PodNamespace string `json:"podNamespace,omitempty"`
	PodName      string `json:"podName,omitempty"`
}

// PrepareSocketDir makes the directory (and base) and writes
// InterfaceFile, atomically (temporary file and rename).
func PrepareSocketDir(dir string, pi PodInterface) error {
	if err := checkSocketDir(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("socket base directory: %w", err)
	}
	if err := os.Mkdir(dir, 0o777); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("socket directory: %w", err)
	}
	if err := os.Chmod(dir, 0o777); err != nil { // mkdir's mode went through the umask
		return fmt.Errorf("socket directory: %w", err)
	}
	b, err := json.MarshalIndent(pi, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+InterfaceFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", InterfaceFile, err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, InterfaceFile)); err != nil {
		return fmt.Errorf("write %s: %w", InterfaceFile, err)
	}
	return nil
}

// ReadPodInterface reads a socket directory's InterfaceFile.
func ReadPodInterface(dir string) (*PodInterface, error) {
	b, err := os.ReadFile(filepath.Join(dir, InterfaceFile))
	if err != nil {
		return nil, err
	}
	var pi PodInterface
	if err := json.Unmarshal(b, &pi); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, InterfaceFile), err)
	}
	return &pi, nil
}

// RemoveSocketDir removes the directory and what is in it; a missing one
// is fine.
func RemoveSocketDir(dir string) error {
	if err := checkSocketDir(dir); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove socket directory: %w", err)
	}
	return nil
}

// checkSocketDir refuses to touch a directory that is not one of ours (a
// damaged state file must not make the agent remove anything else).
func checkSocketDir(dir string) error {
	if !filepath.IsAbs(dir) || !strings.HasPrefix(filepath.Base(dir), HostPrefix) {
		return fmt.Errorf("%q is not an attachment's socket directory", dir)
	}
	return nil
}

// SocketDirExists reports whether the directory is there (it is gone
// after a reboot: /run is a tmpfs).
func SocketDirExists(dir string) bool {
	fi, err := os.Stat(dir)
	return err == nil && fi.IsDir()
}
