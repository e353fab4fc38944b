package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/filament-net/filament/internal/testnet"
)

// The generator drives the kinds of port the issue names besides memif
// (the other tests) and PCI (no NIC here): af_packet and af_xdp on the two
// ends of a veth pair, each port's frames coming back on the other, and
// virtio-user against a vhost-user device (dpdk-testpmd io), as a VM's
// traffic reaches a vSwitch. Both directions at a rate any of them keeps:
// every frame back, exact bytes, every stamped frame a latency sample.
func TestPortKinds(t *testing.T) {
	tn := testnet.New(t)
	ns := tn.NS("pk")
	a, b := tn.Name("a"), tn.Name("b")
	tn.Veth(a, ns, b, ns)
	for _, c := range []struct {
		name  string
		ns    string // the generator's network namespace
		ports func(t *testing.T) []string
	}{
		{"af_packet", ns, func(*testing.T) []string {
			return []string{"net_af_packet0,iface=" + a + ",qpairs=1", "net_af_packet1,iface=" + b + ",qpairs=1"}
		}},
		// a veth has one queue
		{"af_xdp", ns, func(*testing.T) []string {
			return []string{"net_af_xdp0,iface=" + a + ",start_queue=0,queue_count=1",
				"net_af_xdp1,iface=" + b + ",start_queue=0,queue_count=1"}
		}},
		{"virtio-user", "", func(t *testing.T) []string {
			sock := filepath.Join(t.TempDir(), "vhost.sock")
			testpmdWith(t, sock, "net_vhost0,iface="+sock+",queues=1")
			return []string{"net_virtio_user0,path=" + sock + ",queues=1"}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ports := c.ports(t)
			args := []string{"run", "--rate", "20k", "--duration", "1s", "--size", "64,512,1500", "-o", "json"}
			for _, p := range ports {
				args = append(args, "--port", p)
			}
			if len(ports) == 2 {
				args = append(args, "--reverse", "--rx-port", "1")
			}
			cmd := exec.Command(bin, args...)
			if c.ns != "" {
				cmd = exec.Command("ip", append([]string{"netns", "exec", c.ns, bin}, args...)...)
			}
			var o, e bytes.Buffer
			cmd.Stdout, cmd.Stderr = &o, &e
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v: %v\n%s", cmd.Args, err, e.String())
			}
			var rep struct {
				Result struct {
					TxPackets, RxPackets uint64
					Streams              []struct {
						TxPackets, RxPackets, TxBytes, RxBytes uint64
						Lost, Late, Gaps                       int64
						Latency                                struct{ Samples uint64 }
					}
				}
			}
			if err := json.Unmarshal(o.Bytes(), &rep); err != nil {
				t.Fatalf("JSON: %v\n%s", err, o.String())
			}
			r := rep.Result
			if len(r.Streams) != len(ports) {
				t.Fatalf("%d streams, want %d (one each way)", len(r.Streams), len(ports))
			}
			if r.TxPackets < 10000 || r.RxPackets != r.TxPackets {
				t.Fatalf("tx %d, rx %d: want every frame of 1 s at 20 kpps back\n%s", r.TxPackets, r.RxPackets, e.String())
			}
			for i, s := range r.Streams {
				// frames without FCS, in the order of --size
				var want uint64
				for n := uint64(0); n < s.TxPackets; n++ {
					want += []uint64{60, 508, 1496}[n%3]
				}
				stamped := (s.TxPackets + 15) / 16 // --stamp-every 16
				if s.RxPackets != s.TxPackets || s.Lost != 0 || s.Late != 0 || s.Gaps != 0 ||
					s.TxBytes != want || s.RxBytes != want || s.Latency.Samples != stamped {
					t.Errorf("stream %d: %+v: want every frame back, %d bytes each way, %d latency samples", i, s, want, stamped)
				}
			}
			t.Logf("%s: %d frames of 64, 512 and 1500 bytes in %d streams, all back", c.name, r.TxPackets, len(r.Streams))
		})
	}
}
