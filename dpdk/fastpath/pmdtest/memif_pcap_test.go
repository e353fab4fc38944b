package pmdtest

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/dpdk/frames"
	"github.com/filament-net/filament/dpdk/pcapfile"
)

var vrouterMAC = frames.MustMAC("00:00:5e:00:01:00")

// udpFrame is a pod's IPv4/UDP frame to the vRouter.
func udpFrame(srcMAC net.HardwareAddr, src, dst string, sport uint16, ttl uint8) []byte {
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	return frames.Ethernet{Dst: vrouterMAC, Src: srcMAC, Type: frames.EtherTypeIPv4}.Build(
		frames.IPv4{TTL: ttl, Protocol: frames.ProtoUDP, Src: s, Dst: d}.Build(
			frames.UDP{SrcPort: sport, DstPort: 9}.Build([]byte("filament"))))
}

// routed is what the fast path makes of frame when it routes it to dstMAC:
// L2 rewritten, TTL decremented, checksum updated.
func routed(frame []byte, dstMAC net.HardwareAddr) []byte {
	out := frames.Clone(frame)
	copy(out[0:6], dstMAC)
	copy(out[6:12], vrouterMAC)
	ip := out[frames.EthernetLen:]
	ip[frames.IPv4TTLOff]--
	frames.FixIPv4Checksum(ip[:frames.IPv4Len])
	return out
}

type podPort struct {
	id  fastpath.PortID
	mac net.HardwareAddr
	ip  string
}

// addPod adds a pod port (ring when devargs is "") in VRF vrf with a /32
// route to it through its own interface next-hop.
func addPod(t *testing.T, name, devargs string, vrf uint16, nh uint32, mac, ip string) podPort {
	t.Helper()
	p := podPort{mac: frames.MustMAC(mac), ip: ip}
	pc := fastpath.PortConfig{Kind: fastpath.PortPod, VRF: vrf, MAC: p.mac,
		IPv4: []netip.Addr{netip.MustParseAddr(ip)}}
	var err error
	if devargs == "" {
		p.id, err = dp.AddRingPort(name, pc)
	} else {
		p.id, err = dp.AddPort(devargs, pc)
	}
	if err != nil {
		t.Fatalf("add port %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := dp.DelPort(p.id); err != nil {
			t.Errorf("delete port %s: %v", name, err)
		}
	})
	if err := dp.SetNextHop(nh, fastpath.NextHop{Type: fastpath.NHIface, Port: p.id, DstMAC: p.mac}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dp.DelNextHop(nh) })
	pfx := netip.MustParsePrefix(ip + "/32")
	if err := dp.AddRoute4(vrf, pfx, nh); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dp.DelRoute4(vrf, pfx) })
	return p
}

// drain collects n frames from a ring port within d.
func drain(t *testing.T, id fastpath.PortID, n int, d time.Duration) [][]byte {
	t.Helper()
	return drainOr(t, id, n, d, func() string { return "" })
}

// drainOr is drain whose failure message adds what explain returns.
func drainOr(t *testing.T, id fastpath.PortID, n int, d time.Duration, explain func() string) [][]byte {
	t.Helper()
	var got [][]byte
	deadline := time.Now().Add(d)
	for len(got) < n {
		f, err := dp.Drain(id, n-len(got))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f...)
		if len(got) < n && time.Now().After(deadline) {
			t.Fatalf("port %d: %d of %d frames after %v; drops %v %s", id, len(got), n, d, nonzero(dp.Drops()), explain())
		}
		if len(f) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	return got
}

// Frames routed to a memif port cross the shared-memory link to a second
// memif port (the client) and back: both directions, exact bytes.
func TestMemif(t *testing.T) {
	if !huge {
		t.Fatal("memif needs hugepages: run scripts/hugepages.sh as root (make test does)")
	}
	base := dp.MbufsInUse()
	t.Cleanup(func() { mbufsBack(t, base, 0) })
	const vrf = 8
	sock := filepath.Join(t.TempDir(), "memif.sock")
	a := addPod(t, "mfa", "", vrf, 2001, "02:bb:00:00:00:01", "10.202.0.2")
	// The server side is a pod port (the pod would be a DPDK app); its
	// peer, the client, is cross-connected to ring port "out".
	srv := addPod(t, "mfs", fmt.Sprintf("net_memif_srv,role=server,id=0,socket=%s,socket-abstract=no", sock),
		vrf, 2002, "02:bb:00:00:00:09", "10.202.0.9")
	out, err := dp.AddRingPort("mfo", fastpath.PortConfig{Kind: fastpath.PortPod, VRF: vrf,
		MAC: frames.MustMAC("02:bb:00:00:00:0f")})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := dp.AddPort(fmt.Sprintf("net_memif_cli,role=client,id=0,socket=%s,socket-abstract=no", sock),
		fastpath.PortConfig{Kind: fastpath.PortPod, VRF: vrf, MAC: frames.MustMAC("02:bb:00:00:00:0e"), XConnect: &out})
	if err != nil {
		t.Fatal(err)
	}
	// out is cross-connected back to the client for the return path; a
	// port can only point at one that exists, hence the update.
	if err := dp.UpdatePort(out, fastpath.PortConfig{Kind: fastpath.PortPod, VRF: vrf,
		MAC: frames.MustMAC("02:bb:00:00:00:0f"), XConnect: &cli}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := dp.DelPort(cli); err != nil {
			t.Errorf("delete memif client: %v", err)
		}
		if err := dp.DelPort(out); err != nil {
			t.Errorf("delete ring port: %v", err)
		}
		// Both ends live in this process: let the server's interrupt
		// thread finish handling the client's disconnect before the
		// server is closed, so the two teardowns never overlap (DPDK
		// 22.11's memif frees its control channel from either path).
		waitFor(t, "memif server link down", 5*time.Second, func() bool {
			up, _ := dp.PortLinkUp(srv.id)
			return !up
		})
	})
	waitFor(t, "memif link up", 10*time.Second, func() bool {
		up1, _ := dp.PortLinkUp(srv.id)
		up2, _ := dp.PortLinkUp(cli)
		return up1 && up2
	})

	// a -> route -> memif server -> memif client -> xconnect -> out
	var sent [][]byte
	for i := 0; i < 64; i++ {
		sent = append(sent, udpFrame(a.mac, a.ip, srv.ip, uint16(1000+i), 64))
	}
	if _, err := dp.Inject(a.id, sent...); err != nil {
		t.Fatal(err)
	}
	got := drain(t, out, len(sent), 5*time.Second)
	for i := range sent {
		if want := routed(sent[i], srv.mac); !bytes.Equal(got[i], want) {
			t.Fatalf("frame %d over memif:\n%s", i, frames.Diff(got[i], want))
		}
	}

	// out -> xconnect -> memif client -> memif server (pod) -> route -> a
	back := udpFrame(srv.mac, srv.ip, a.ip, 7, 10)
	if _, err := dp.Inject(out, back); err != nil {
		t.Fatal(err)
	}
	got = drain(t, a.id, 1, 5*time.Second)
	if want := routed(back, a.mac); !bytes.Equal(got[0], want) {
		t.Fatalf("return frame:\n%s", frames.Diff(got[0], want))
	}
}

// workers says how each worker's polls move over 50 ms: a worker whose
// count stands still is stuck.
func workers() string {
	var b strings.Builder
	for w := 0; w < dp.Workers(); w++ {
		s1, _ := dp.LcoreStats(w)
		time.Sleep(50 * time.Millisecond)
		s2, _ := dp.LcoreStats(w)
		fmt.Fprintf(&b, "worker %d: %d polls and %d sleeps in 50ms; ", w, s2.Polls-s1.Polls, s2.Sleeps-s1.Sleeps)
	}
	return b.String()
}

// A net_pcap port: frames read from a capture file are routed to a ring
// port, and frames routed to the pcap port land in its output file.
func TestPcapPort(t *testing.T) {
	base := dp.MbufsInUse()
	t.Cleanup(func() { mbufsBack(t, base, 0) })
	const vrf = 9
	dir := t.TempDir()
	in, outFile := filepath.Join(dir, "in.pcap"), filepath.Join(dir, "out.pcap")
	podMAC := frames.MustMAC("02:cc:00:00:00:05")
	var inFrames [][]byte
	for i := 0; i < 10; i++ {
		inFrames = append(inFrames, udpFrame(podMAC, "10.203.0.5", "10.203.0.2", uint16(2000+i), 32))
	}
	writePcap(t, in, inFrames)

	r := addPod(t, "pcr", "", vrf, 3001, "02:cc:00:00:00:02", "10.203.0.2")
	// The pcap port starts reading its file as soon as it is polled, so
	// its route exists before it does.
	pc := fastpath.PortConfig{Kind: fastpath.PortPod, VRF: vrf, MAC: podMAC,
		IPv4: []netip.Addr{netip.MustParseAddr("10.203.0.5")}}
	id, err := dp.AddPort(fmt.Sprintf("net_pcap_t,rx_pcap=%s,tx_pcap=%s", in, outFile), pc)
	if err != nil {
		t.Fatal(err)
	}
	deleted := false
	t.Cleanup(func() {
		if !deleted {
			_ = dp.DelNextHop(3002)
			_ = dp.DelPort(id)
		}
	})
	got := drainOr(t, r.id, len(inFrames), 5*time.Second, func() string {
		s, err := dp.PortStats(id)
		return fmt.Sprintf("pcap port %d stats %+v (%v), %d mbufs in use; %s", id, s, err, dp.MbufsInUse(), workers())
	})
	for i := range inFrames {
		if want := routed(inFrames[i], r.mac); !bytes.Equal(got[i], want) {
			t.Fatalf("frame %d from pcap:\n%s", i, frames.Diff(got[i], want))
		}
	}

	if err := dp.SetNextHop(3002, fastpath.NextHop{Type: fastpath.NHIface, Port: id, DstMAC: podMAC}); err != nil {
		t.Fatal(err)
	}
	if err := dp.AddRoute4(vrf, netip.MustParsePrefix("10.203.0.5/32"), 3002); err != nil {
		t.Fatal(err)
	}
	toPcap := udpFrame(r.mac, r.ip, "10.203.0.5", 4242, 9)
	if n, err := dp.Inject(r.id, toPcap); err != nil || n != 1 {
		t.Fatalf("inject: %d frames (%v), %d mbufs in use", n, err, dp.MbufsInUse())
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, _ := dp.PortStats(id)
		if s.TxPackets == 1 {
			break
		}
		if time.Now().After(deadline) {
			rs, _ := dp.PortStats(r.id)
			t.Fatalf("no frame sent on the pcap port in 5s: drops %v, ring port stats %+v, pcap port %+v; %s",
				nonzero(dp.Drops()), rs, s, workers())
		}
		time.Sleep(2 * time.Millisecond)
	}
	// Closing the port flushes and closes its file.
	_ = dp.DelRoute4(vrf, netip.MustParsePrefix("10.203.0.5/32"))
	_ = dp.DelNextHop(3002)
	if err := dp.DelPort(id); err != nil {
		t.Fatal(err)
	}
	deleted = true
	f, err := os.Open(outFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pkts, err := pcapfile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkts) != 1 || !bytes.Equal(pkts[0].Data, routed(toPcap, podMAC)) {
		t.Fatalf("out.pcap holds %d packets; want the routed frame", len(pkts))
	}
}

func writePcap(t *testing.T, path string, fs [][]byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pcapfile.NewWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, fr := range fs {
		if err := w.Write(time.Now(), fr); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// Ports come and go while traffic flows between two others: nothing of that
// traffic is lost or dropped.
func TestPortChurnWhileForwarding(t *testing.T) {
	base := dp.MbufsInUse()
	t.Cleanup(func() { mbufsBack(t, base, 0) })
	const vrf = 10
	a := addPod(t, "cha", "", vrf, 4001, "02:dd:00:00:00:01", "10.204.0.1")
	b := addPod(t, "chb", "", vrf, 4002, "02:dd:00:00:00:02", "10.204.0.2")
	dropsBefore := dp.Drops()
	total := 0
	for round := 0; round < 20; round++ {
		name := fmt.Sprintf("chx%d", round)
		x, err := dp.AddRingPort(name, fastpath.PortConfig{Kind: fastpath.PortPod, VRF: vrf,
			MAC: frames.MustMAC("02:dd:00:00:00:99"), IPv4: []netip.Addr{netip.MustParseAddr("10.204.0.99")}})
		if err != nil {
			t.Fatal(err)
		}
		var batch [][]byte
		for i := 0; i < 100; i++ {
			batch = append(batch, udpFrame(a.mac, a.ip, b.ip, uint16(i), 64))
		}
		if n, err := dp.Inject(a.id, batch...); err != nil || n != len(batch) {
			t.Fatalf("inject: %d, %v", n, err)
		}
		total += len(batch)
		if err := dp.DelPort(x); err != nil {
			t.Fatal(err)
		}
		drain(t, b.id, len(batch), 5*time.Second)
	}
	after := dp.Drops()
	for k, v := range after {
		if v != dropsBefore[k] {
			t.Errorf("drop %s grew by %d during churn", k, v-dropsBefore[k])
		}
	}
	s, _ := dp.PortStats(b.id)
	if s.TxPackets != uint64(total) {
		t.Errorf("port b sent %d, want %d", s.TxPackets, total)
	}
}
