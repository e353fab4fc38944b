package pmdtest

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/dpdk/frames"
)

// vhost-user as the pods issue uses it: the pod side (here a virtio-user
// port standing in for a DPDK pod) is the server, the dataplane's net_vhost
// port the client. Frames routed to the vhost port reach the virtio side.
func TestVhostUser(t *testing.T) {
	if !huge {
		t.Fatal("vhost-user needs hugepages: run scripts/hugepages.sh as root (make test does)")
	}
	base := dp.MbufsInUse()
	t.Cleanup(func() { mbufsBack(t, base, 0) })
	const vrf = 11
	sock := filepath.Join(t.TempDir(), "vhost.sock")
	a := addPod(t, "vha", "", vrf, 5001, "02:ee:00:00:00:01", "10.205.0.2")
	out, err := dp.AddRingPort("vho", fastpath.PortConfig{Kind: fastpath.PortPod, VRF: vrf,
		MAC: frames.MustMAC("02:ee:00:00:00:0f")})
	if err != nil {
		t.Fatal(err)
	}
	// The dataplane side first: a client that keeps retrying, as it will
	// for a pod that restarts. The virtio-user server then waits for it.
	vh := addPod(t, "vhp", fmt.Sprintf("net_vhost_vh,iface=%s,client=1,queues=1", sock),
		vrf, 5002, "02:ee:00:00:00:09", "10.205.0.9")
	// The "pod": virtio-user, server of the socket, cross-connected to out.
	pod, err := dp.AddPort(fmt.Sprintf("net_virtio_user_vh,path=%s,server=1,queues=1", sock),
		fastpath.PortConfig{Kind: fastpath.PortPod, VRF: vrf, MAC: frames.MustMAC("02:ee:00:00:00:0e"), RxQueues: 1, XConnect: &out})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := dp.DelPort(pod); err != nil {
			t.Errorf("delete virtio-user port: %v", err)
		}
		if err := dp.DelPort(out); err != nil {
			t.Errorf("delete ring port: %v", err)
		}
	})
	waitFor(t, "vhost-user link up", 10*time.Second, func() bool {
		up1, _ := dp.PortLinkUp(vh.id)
		up2, _ := dp.PortLinkUp(pod)
		return up1 && up2
	})
	var sent [][]byte
	for i := 0; i < 32; i++ {
		sent = append(sent, udpFrame(a.mac, a.ip, vh.ip, uint16(3000+i), 64))
	}
	if _, err := dp.Inject(a.id, sent...); err != nil {
		t.Fatal(err)
	}
	got := drain(t, out, len(sent), 5*time.Second)
	for i := range sent {
		if want := routed(sent[i], vh.mac); !bytes.Equal(got[i], want) {
			t.Fatalf("frame %d over vhost-user:\n%s", i, frames.Diff(got[i], want))
		}
	}
}
