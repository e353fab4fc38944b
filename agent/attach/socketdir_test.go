package attach

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestSocketDir(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	base := filepath.Join(t.TempDir(), "pods")
	dir := SocketDir(base, HostIfName("c1", "eth0"))
	pi := PodInterface{Mode: "memif", Socket: MemifSocketPath(dir), Role: "client", MAC: "02:00:0a:14:01:05",
		Address: netip.MustParsePrefix("10.20.1.5/16"), Gateway: netip.MustParseAddr("10.20.0.1"), MTU: 1450,
		ContainerID: "c1", IfName: "eth0"}
	if err := PrepareSocketDir(dir, pi); err != nil {
		t.Fatal(err)
	}
	if err := PrepareSocketDir(dir, pi); err != nil { // again: idempotent
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o777 {
		t.Errorf("directory mode %v %v, want 0777 whatever the umask", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(dir, InterfaceFile)); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("%s mode %v %v, want 0644", InterfaceFile, fi.Mode(), err)
	}
	got, err := ReadPodInterface(dir)
	if err != nil || *got != pi {
		t.Errorf("read back %+v %v, want %+v", got, err, pi)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %v, want only %s", entries, InterfaceFile)
	}
	if err := RemoveStaleMemifSocket(dir); err != nil { // none there: fine
		t.Error(err)
	}
	if err := RemoveSocketDir(dir); err != nil || SocketDirExists(dir) {
		t.Errorf("remove: %v, exists %v", err, SocketDirExists(dir))
	}
	if err := RemoveSocketDir(dir); err != nil { // gone: fine
		t.Error(err)
	}
	// Not an attachment's directory: refused, untouched.
	for _, d := range []string{base, "/", "relative/fil123"} {
		if err := RemoveSocketDir(d); err == nil {
			t.Errorf("RemoveSocketDir(%q) accepted", d)
		}
	}
	if !SocketDirExists(base) {
		t.Errorf("the base directory was removed")
	}
}

func TestDevargs(t *testing.T) {
	dir := "/run/filament/pods/fil0123456789a"
	for _, c := range []struct{ got, want string }{
		{TapDevargs("fil0123456789a"), "net_tap_fil0123456789a,iface=fil0123456789a"},
		{VhostUserDevargs("fil0123456789a", dir), "net_vhost_fil0123456789a,iface=" + dir + "/vhost-user.sock,client=1,queues=1"},
		{MemifDevargs("fil0123456789a", dir), "net_memif_fil0123456789a,role=server,id=0,socket=" + dir + "/memif.sock,socket-abstract=no"},
	} {
		if c.got != c.want {
			t.Errorf("devargs %q, want %q", c.got, c.want)
		}
	}
	// The longest base keeps the longest socket path a unix socket path.
	long := "/" + strings.Repeat("d", MaxSocketBase-1)
	if p := VhostUserSocketPath(SocketDir(long, HostIfName("c", "eth0"))); len(p) != 107 {
		t.Errorf("longest socket path %d bytes, want 107", len(p))
	}
}
