package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/filament-net/filament/internal/testnet"
)

// TestTraffic: for each encapsulation, two nodes, pods a and b on node1
// and c on node2: every pod pings every other one, and 4 MB of
// pseudo-random data go over TCP between pods of one node and across the
// nodes both ways, with the same SHA-256 at both ends.
func TestTraffic(t *testing.T) {
	for _, encap := range []string{"vxlan", "mplsoudp", "mplsogre"} {
		t.Run(encap, func(t *testing.T) {
			tn := testnet.New(t)
			ns1, ns2 := tn.NS("n1"), tn.NS("n2")
			tn.Veth(tn.Name("f1"), ns1, tn.Name("f2"), ns2)
			n1 := startNode(t, tn, 1, ns1, tn.Name("f1"), encap, []peer{{"node2", "192.168.100.2", "10.20.2.0/24"}})
			n2 := startNode(t, tn, 2, ns2, tn.Name("f2"), encap, []peer{{"node1", "192.168.100.1", "10.20.1.0/24"}})
			a, b := n1.add(t, tn, "a"), n1.add(t, tn, "b")
			c := n2.add(t, tn, "c")
			pods := []pod{a, b, c}
			for _, from := range pods {
				for _, to := range pods {
					if from.ns != to.ns {
						ping(t, tn, from, to.ip)
					}
				}
			}
			tcpTransfer(t, "same node", a, b, 4<<20, 1)
			tcpTransfer(t, "node1 to node2", a, c, 4<<20, 2)
			tcpTransfer(t, "node2 to node1", c, b, 4<<20, 3)
		})
	}
}

// tcpTransfer sends size pseudo-random bytes from one pod to another over
// TCP and compares the SHA-256 of what was sent and what was received.
func tcpTransfer(t *testing.T, what string, from, to pod, size int, seed int) {
	t.Helper()
	tcpTransferTo(t, what, from, to, to.ip, size, seed)
}

// tcpTransferTo is tcpTransfer to one of to's addresses, dst (IPv4 or
// IPv6: the receiver listens on the family's wildcard address).
func tcpTransferTo(t *testing.T, what string, from, to pod, dst netip.Addr, size int, seed int) {
	t.Helper()
	any := netip.IPv4Unspecified()
	if dst.Is6() {
		any = netip.IPv6Unspecified()
	}
	recv := runHelper(t, to.ns, "tcp-recv", netip.AddrPortFrom(any, 5201).String())
	start := time.Now()
	send := runHelper(t, from.ns, "tcp-send", netip.AddrPortFrom(dst, 5201).String(), fmt.Sprint(size), fmt.Sprint(seed))
	sent := send.result(t, "bytes=", 60*time.Second)
	got := recv.result(t, "bytes=", 10*time.Second)
	took := time.Since(start)
	if want := fmt.Sprintf("bytes=%d ", size); !strings.HasPrefix(sent, want) || sent != got {
		t.Fatalf("TCP %s (%s -> %v): sent %q, received %q", what, from.ns, dst, sent, got)
	}
	t.Logf("TCP %s (%s -> %v): %d bytes in %v (%.0f Mbit/s), %s", what, from.ns, dst, size,
		took.Round(time.Millisecond), float64(size)*8/took.Seconds()/1e6, got[strings.Index(got, "sha256="):])
}

// tcpCheck sends 256 KiB over TCP from namespace fromNS to a receiver in
// toNS listening on addr's port, and compares the SHA-256 at both ends.
func tcpCheck(t *testing.T, fromNS, toNS, addr string) {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	const size = 256 << 10 // many full-sized segments
	recv := runHelper(t, toNS, "tcp-recv", "0.0.0.0:"+port)
	send := runHelper(t, fromNS, "tcp-send", addr, fmt.Sprint(size), "7")
	sent := send.result(t, "bytes=", 60*time.Second)
	got := recv.result(t, "bytes=", 10*time.Second)
	if want := fmt.Sprintf("bytes=%d ", size); !strings.HasPrefix(sent, want) || sent != got {
		t.Fatalf("TCP %s -> %s (%s): sent %q, received %q", fromNS, toNS, addr, sent, got)
	}
}
