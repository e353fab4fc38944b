package trafficgen

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/filament-net/filament/dpdk/frames"
	"github.com/filament-net/filament/dpdk/hugepages"
)

var gen *Generator

func TestMain(m *testing.M) {
	mem, huge := hugepages.EALArgs(512)
	cfg := DefaultConfig()
	cfg.DataRoom = 9216
	cfg.Mbufs = 4095
	cfg.EALArgs = append([]string{"--lcores", "0@0,1@0", "--no-pci", "--log-level", "*:notice",
		"--file-prefix", fmt.Sprintf("fil-tgtest-%d", os.Getpid())}, mem...)
	if huge {
		// memif zero-copy shares one file per memory segment list.
		cfg.EALArgs = append(cfg.EALArgs, "--single-file-segments")
	}
	var err error
	gen, err = Start(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "trafficgen tests: cannot start the generator:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "trafficgen tests: hugepages=%v\n", huge)
	for i := range rings {
		if rings[i], err = gen.AddRingPort(fmt.Sprintf("tgring%d", i)); err != nil {
			fmt.Fprintln(os.Stderr, "trafficgen tests:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	gen.Close()
	if memif.sock != "" {
		os.RemoveAll(filepath.Dir(memif.sock))
	}
	os.Exit(code)
}

var (
	macA = frames.MustMAC("02:00:00:00:00:0a")
	macB = frames.MustMAC("02:00:00:00:00:0b")
	ip   = netip.MustParseAddr
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func one(a string) Range { return Range{Lo: ip(a), Hi: ip(a)} }

// Two ring ports serve every test (a generator has at most 8 ports);
// ringPort hands one out empty.
var rings [2]int

func ringPort(t *testing.T, i int) int {
	t.Helper()
	if _, err := gen.Drain(rings[i], 1<<20); err != nil {
		t.Fatal(err)
	}
	return rings[i]
}

// sent runs a trial of n frames on a ring port and returns what it sent.
func sent(t *testing.T, port int, n int, streams ...Stream) [][]byte {
	t.Helper()
	r, err := gen.Run(context.Background(), Trial{Streams: streams, MaxPackets: uint64(n), Drain: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.TxPackets != uint64(n) {
		t.Fatalf("sent %d frames, want %d", r.TxPackets, n)
	}
	got, err := gen.Drain(port, n+1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("ring holds %d frames, want %d", len(got), n)
	}
	return got
}

// withSig is want with the generator's trailer (stream, seq) over its last
// 16 bytes, and got's timestamp (which no test can predict) copied in.
func withSig(t *testing.T, want, got []byte, stream uint16, seq uint64) []byte {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("frame of %d bytes, want %d", len(got), len(want))
	}
	w := frames.Clone(want)
	sig := w[len(w)-sigLen:]
	binary.BigEndian.PutUint64(sig, uint64(stream)<<48|seq)
	binary.BigEndian.PutUint64(sig[8:], 0xf11a<<48|binary.BigEndian.Uint64(got[len(got)-8:])&(1<<48-1))
	return w
}

func TestIPv4UDPFrames(t *testing.T) {
	port := ringPort(t, 0)
	s := Stream{Port: port, SrcMAC: macA, DstMAC: macB, Src: one("10.0.0.1"),
		Dst: Range{ip("10.1.0.0"), ip("10.1.2.0"), 256}, SrcPort: PortRange{1000, 1001}, DstPort: PortRange{7, 7},
		Proto: UDP, Flows: 6, Sizes: []int{64, 128}}
	got := sent(t, port, 12, s)
	for i, f := range got {
		size := []int{64, 128}[i%2] - 4
		flow := i % 6
		dst := netip.AddrFrom4([4]byte{10, 1, byte(flow % 3), 0})
		payload := make([]byte, size-14-20-8)
		want := frames.Ethernet{Dst: macB, Src: macA, Type: frames.EtherTypeIPv4}.Build(
			frames.IPv4{TTL: 64, Protocol: frames.ProtoUDP, Flags: frames.IPv4DF, Src: ip("10.0.0.1"), Dst: dst}.Build(
				frames.UDP{SrcPort: uint16(1000 + flow%2), DstPort: 7}.Build(payload)))
		if w := withSig(t, want, f, 0, uint64(i)); !bytes.Equal(f, w) {
			t.Fatalf("frame %d:\n%s", i, frames.Diff(w, f))
		}
	}
}

func TestIPv4TCPFrames(t *testing.T) {
	port := ringPort(t, 0)
	s := Stream{Port: port, SrcMAC: macA, DstMAC: macB, Src: one("10.0.0.1"), Dst: one("10.0.0.2"),
		SrcPort: PortRange{5000, 5003}, DstPort: PortRange{80, 80}, Proto: TCP, Flows: 4, Sizes: []int{100}}
	got := sent(t, port, 4, s)
	for i, f := range got {
		payload := make([]byte, 96-14-20-20)
		w := withSig(t, make([]byte, 96), f, 0, uint64(i))
		copy(payload, w[14+20+20:])
		want := frames.Ethernet{Dst: macB, Src: macA, Type: frames.EtherTypeIPv4}.Build(
			frames.IPv4{TTL: 64, Protocol: frames.ProtoTCP, Flags: frames.IPv4DF, Src: ip("10.0.0.1"), Dst: ip("10.0.0.2")}.Build(
				frames.TCP{SrcPort: uint16(5000 + i), DstPort: 80, Seq: 1, Flags: frames.TCPAck, Window: 65535}.Build(
					ip("10.0.0.1"), ip("10.0.0.2"), payload)))
		if !bytes.Equal(f, want) {
			t.Fatalf("frame %d:\n%s", i, frames.Diff(want, f))
		}
	}
}

func TestIPv6UDPChecksums(t *testing.T) {
	port := ringPort(t, 0)
	s := Stream{Port: port, SrcMAC: macA, DstMAC: macB, Src: one("2001:db8::1"),
		Dst: Range{Lo: ip("2001:db8:1::"), Hi: ip("2001:db8:1::ff")}, SrcPort: PortRange{1, 1}, DstPort: PortRange{2, 2},
		Proto: UDP, Flows: 256, Sizes: []int{82, 1518}}
	got := sent(t, port, 8, s)
	for i, f := range got {
		if want := []int{82, 1518}[i%2] - 4; len(f) != want {
			t.Fatalf("frame %d: %d bytes, want %d", i, len(f), want)
		}
		if binary.BigEndian.Uint16(f[12:]) != frames.EtherTypeIPv6 {
			t.Fatalf("frame %d: ethertype %#x", i, binary.BigEndian.Uint16(f[12:]))
		}
		ip6 := f[14:]
		if pl := int(binary.BigEndian.Uint16(ip6[4:])); pl != len(f)-14-40 {
			t.Fatalf("frame %d: payload length %d, want %d", i, pl, len(f)-14-40)
		}
		src, dst := netip.AddrFrom16([16]byte(ip6[8:24])), netip.AddrFrom16([16]byte(ip6[24:40]))
		if want := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 15: byte(i)}); dst != want {
			t.Fatalf("frame %d: destination %s, want %s", i, dst, want)
		}
		udp := ip6[40:]
		if c := frames.L4Checksum(src, dst, frames.ProtoUDP, udp); c != binary.BigEndian.Uint16(udp[6:]) {
			t.Fatalf("frame %d: UDP checksum %#x, want %#x", i, binary.BigEndian.Uint16(udp[6:]), c)
		}
	}
}

// Pre-encapsulated frames are what a VTEP would send: the outer headers
// exact, the outer source port varying with the flow.
func TestEncapFrames(t *testing.T) {
	port := ringPort(t, 0)
	vr := frames.MustMAC("00:00:5e:00:01:00")
	for _, kind := range []EncapKind{EncapVXLAN, EncapMPLSoUDP} {
		t.Run(string(kind), func(t *testing.T) {
			s := Stream{Port: port, SrcMAC: macA, DstMAC: macB, Src: one("10.0.0.1"), Dst: one("10.0.0.2"),
				SrcPort: PortRange{1000, 1003}, DstPort: PortRange{7, 7}, Proto: UDP, Flows: 4, Sizes: []int{128},
				Encap: &Encap{Kind: kind, SrcMAC: macA, DstMAC: vr, Src: ip("192.0.2.1"), Dst: ip("192.0.2.2"),
					VNI: 100, Label: 200, InnerDstMAC: vr}}
			got := sent(t, port, 4, s)
			for i, f := range got {
				ilen := 124 - 14 - 20 - 8
				var inner []byte
				if kind == EncapVXLAN {
					ilen -= 8 + 14
					inner = frames.VXLAN{Flags: frames.VXLANFlagI, VNI: 100}.Build(
						frames.Ethernet{Dst: vr, Src: macA, Type: frames.EtherTypeIPv4}.Build(
							frames.IPv4{TTL: 64, Protocol: frames.ProtoUDP, Flags: frames.IPv4DF, Src: ip("10.0.0.1"), Dst: ip("10.0.0.2")}.Build(
								frames.UDP{SrcPort: uint16(1000 + i), DstPort: 7}.Build(make([]byte, ilen-28)))))
				} else {
					ilen -= 4
					inner = frames.MPLS{Label: 200, BoS: true, TTL: 64}.Build(
						frames.IPv4{TTL: 64, Protocol: frames.ProtoUDP, Flags: frames.IPv4DF, Src: ip("10.0.0.1"), Dst: ip("10.0.0.2")}.Build(
							frames.UDP{SrcPort: uint16(1000 + i), DstPort: 7}.Build(make([]byte, ilen-28))))
				}
				dport := uint16(frames.PortVXLAN)
				if kind == EncapMPLSoUDP {
					dport = frames.PortMPLSoUDP
				}
				want := frames.Ethernet{Dst: vr, Src: macA, Type: frames.EtherTypeIPv4}.Build(
					frames.IPv4{TTL: 64, Protocol: frames.ProtoUDP, Flags: frames.IPv4DF, Src: ip("192.0.2.1"), Dst: ip("192.0.2.2")}.Build(
						frames.UDP{SrcPort: uint16(49152 + i), DstPort: dport}.Build(inner)))
				// The inner IPv4 checksum changes with the trailer's
				// place only through lengths: both are fixed here.
				if w := withSig(t, want, f, 0, uint64(i)); !bytes.Equal(f, w) {
					t.Fatalf("frame %d:\n%s", i, frames.Diff(w, f))
				}
			}
		})
	}
}

// Frames that come back are counted per stream; sequence holes and late
// frames are told apart; frames without a signature are foreign.
func TestReceiveAccounting(t *testing.T) {
	port := ringPort(t, 0)
	s := Stream{Port: port, SrcMAC: macA, DstMAC: macB, Src: one("10.0.0.1"), Dst: one("10.0.0.2"),
		SrcPort: PortRange{1, 1}, DstPort: PortRange{2, 2}, Proto: UDP, Flows: 1}
	// Six frames of stream 0 come back in the order 0 1 2 5 3 4 4, with an
	// ARP frame: they are captured from one trial and fed back during a
	// second one whose stream 0 sends its own frame to another port.
	out := sent(t, port, 6, s)
	other := ringPort(t, 1)
	s2 := s
	s2.Port = other
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	var r *Result
	var err error
	go func() {
		defer close(done)
		r, err = gen.Run(ctx, Trial{Streams: []Stream{s2}, Rate: 1, Duration: 10 * time.Second, Drain: time.Millisecond})
	}()
	waitFor(t, "the trial to run", gen.trialRunning)
	before, _ := gen.PortStats(port)
	foreign := frames.Ethernet{Dst: macB, Src: macA, Type: frames.EtherTypeARP}.Build(make([]byte, 46))
	if _, err := gen.Inject(port, out[0], out[1], out[2], out[5], out[3], out[4], out[4], foreign); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "8 frames received", func() bool {
		st, _ := gen.PortStats(port)
		return st.RxPackets-before.RxPackets == 8
	})
	cancel()
	<-done
	if err != context.Canceled {
		t.Fatalf("trial: %v", err)
	}
	st := r.Streams[0]
	// Stream 0 of this trial is s2: the frames injected carry stream 0 too,
	// sequence numbers 0..5 (the trial's own frame went to the other ring).
	if st.RxPackets != 7 || st.Late != 3 || st.Gaps != 1 {
		t.Fatalf("rx %d late %d gaps %d, want 7 3 1", st.RxPackets, st.Late, st.Gaps)
	}
	if after, _ := gen.PortStats(port); after.RxForeign-before.RxForeign != 1 {
		t.Fatalf("%d foreign frames, want 1", after.RxForeign-before.RxForeign)
	}
	if st.Latency.Samples != 7 || st.Latency.Max < st.Latency.Min || st.Latency.P50 == 0 {
		t.Fatalf("latency %+v", st.Latency)
	}
	if _, err := gen.Drain(other, 10); err != nil {
		t.Fatal(err)
	}
}

// The rate is kept: 15k pps for 200 ms is 3000 frames (within a burst).
func TestRate(t *testing.T) {
	port := ringPort(t, 0)
	s := Stream{Port: port, SrcMAC: macA, DstMAC: macB, Src: one("10.0.0.1"), Dst: one("10.0.0.2"),
		SrcPort: PortRange{1, 1}, DstPort: PortRange{2, 2}, Proto: UDP, Flows: 1}
	r, err := gen.Run(context.Background(), Trial{Streams: []Stream{s}, Rate: 15000, Duration: 200 * time.Millisecond,
		Drain: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := gen.Drain(port, 10000)
	// Never ahead of the rate by more than a burst; behind only when the
	// machine took the worker's CPU away (a busy CI machine), so the lower
	// bound is loose: flat out would have been ~1000 times more.
	want := 15000 * r.TxTime.Seconds()
	if d := float64(r.TxPackets) - want; d > 33 || d < -want/2 || len(got) != int(r.TxPackets) {
		t.Fatalf("sent %d frames in %v (ring %d): want %.0f (at most a burst more)", r.TxPackets, r.TxTime, len(got), want)
	}
}

func TestBadStreams(t *testing.T) {
	port := ringPort(t, 0)
	ok := Stream{Port: port, SrcMAC: macA, DstMAC: macB, Src: one("10.0.0.1"), Dst: one("10.0.0.2"),
		SrcPort: PortRange{1, 1}, DstPort: PortRange{2, 2}, Proto: UDP}
	for name, mut := range map[string]func(*Stream){
		"size too small": func(s *Stream) { s.Sizes = []int{63} },
		"size too big":   func(s *Stream) { s.Sizes = []int{9023} },
		"ipv6 at 64":     func(s *Stream) { s.Src, s.Dst = one("::1"), one("::2") },
		"mixed families": func(s *Stream) { s.Dst = one("::2") },
		"empty range":    func(s *Stream) { s.Src = Range{Lo: ip("10.0.0.2"), Hi: ip("10.0.0.1")} },
		"bad proto":      func(s *Stream) { s.Proto = "sctp" },
		"no port":        func(s *Stream) { s.Port = 5 },
		"vni too big": func(s *Stream) {
			s.Encap = &Encap{Kind: EncapVXLAN, SrcMAC: macA, DstMAC: macB, Src: ip("1.1.1.1"), Dst: ip("1.1.1.2"), VNI: 1 << 24}
		},
	} {
		s := ok
		mut(&s)
		if _, err := gen.Run(context.Background(), Trial{Streams: []Stream{s}, MaxPackets: 1}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A frame over the port's MTU + 18 (a ring port's is DPDK's 1500):
	// refused as too big for the port, before anything is sent.
	s := ok
	s.Sizes = []int{1518, 1519}
	if err := gen.CheckMTU([]Stream{s}); !errors.Is(err, syscall.EMSGSIZE) {
		t.Errorf("1519-byte frames on MTU 1500: %v", err)
	}
	if _, err := gen.Run(context.Background(), Trial{Streams: []Stream{s}, MaxPackets: 1}); !errors.Is(err, syscall.EMSGSIZE) {
		t.Errorf("trial with 1519-byte frames on MTU 1500: %v", err)
	}
	s.Sizes = []int{1518}
	if err := gen.CheckMTU([]Stream{s}); err != nil {
		t.Errorf("1518-byte frames on MTU 1500: %v", err)
	}
	if _, err := gen.Drain(port, 10); err != nil {
		t.Fatal(err)
	}
}

type memifPair struct {
	sock     string
	srv, cli int
}

var memif memifPair

// A memif pair inside the generator (server and zero-copy client): every
// frame sent at full speed comes back in order, with its latency.
func TestMemifLoopback(t *testing.T) {
	if _, huge := hugepages.EALArgs(0); !huge {
		t.Fatal("memif needs hugepages: run scripts/hugepages.sh as root (make test does)")
	}
	p := memifLoopback(t)
	srv, cli := p.srv, p.cli
	waitFor(t, "memif link up", func() bool { return gen.LinkUp(srv) && gen.LinkUp(cli) })
	s := Stream{Port: cli, SrcMAC: macA, DstMAC: macB, Src: Range{Lo: ip("10.0.0.1"), Hi: ip("10.0.0.255")},
		Dst: one("10.0.1.1"), SrcPort: PortRange{1, 1}, DstPort: PortRange{2, 2}, Proto: UDP, Flows: 255, Sizes: IMIX}
	r, err := gen.Run(context.Background(), Trial{Streams: []Stream{s}, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	st := r.Streams[0]
	t.Logf("memif loopback, IMIX, one lcore: %.2f Mpps, latency p50 %v p99 %v max %v",
		r.TxPPS/1e6, st.Latency.P50, st.Latency.P99, st.Latency.Max)
	if st.TxPackets < 10000 || st.Lost != 0 || st.Late != 0 || st.Gaps != 0 || st.Latency.Samples != st.RxPackets {
		t.Fatalf("memif loopback: %+v", st)
	}
	var bytes uint64
	for i := 0; i < int(st.TxPackets); i++ {
		bytes += uint64(IMIX[i%len(IMIX)] - 4)
	}
	if st.TxBytes != bytes || st.RxBytes != bytes {
		t.Fatalf("bytes tx %d rx %d, want %d (the IMIX schedule)", st.TxBytes, st.RxBytes, bytes)
	}
}

// A port restarted between trials (what filament-perf does when a memif
// link stays down: the client tries to connect only when its port starts)
// comes back up and carries a trial.
func TestRestartPort(t *testing.T) {
	if _, huge := hugepages.EALArgs(0); !huge {
		t.Fatal("memif needs hugepages: run scripts/hugepages.sh as root (make test does)")
	}
	sock := t.TempDir() + "/late.sock"
	srv, err := gen.AddPort("net_memif_tgls,role=server,id=0,socket-abstract=no,socket=" + sock)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := gen.AddPort("net_memif_tgl,role=client,id=0,socket-abstract=no,socket=" + sock)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "memif link up", func() bool { return gen.LinkUp(cli) && gen.LinkUp(srv) })
	if err := gen.RestartPort(cli); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "memif link up after the restart", func() bool { return gen.LinkUp(cli) && gen.LinkUp(srv) })
	s := Stream{Port: cli, SrcMAC: macA, DstMAC: macB, Src: one("10.0.0.1"), Dst: one("10.0.0.2"),
		SrcPort: PortRange{1, 1}, DstPort: PortRange{2, 2}, Proto: UDP}
	r, err := gen.Run(context.Background(), Trial{Streams: []Stream{s}, MaxPackets: 1000})
	if err != nil || r.TxPackets != 1000 || r.RxPackets != 1000 {
		t.Fatalf("trial after the restart: %+v (%v)", r, err)
	}
	if err := gen.RestartPort(99); err == nil {
		t.Fatal("restart of a port that does not exist")
	}
}

// Zero-copy memif clients one after the other, each up before the next
// starts (as filament-perf brings its ports up): DPDK 22.11's memif closes
// the EAL's memory fds once a zero-copy client connects, and the next one
// would send the closed (or reused) fd numbers to its server: its link
// never came up ("mmap failed: No such device") or mapped the wrong file.
// The generator puts the fds back; both pairs carry a trial.
func TestMemifZeroCopyPorts(t *testing.T) {
	if _, huge := hugepages.EALArgs(0); !huge {
		t.Fatal("memif needs hugepages: run scripts/hugepages.sh as root (make test does)")
	}
	first := memifLoopback(t)
	waitFor(t, "first zero-copy pair up", func() bool { return gen.LinkUp(first.srv) && gen.LinkUp(first.cli) })
	// Created once per process, as the first pair: ports cannot be
	// removed and there are at most 8.
	if second.sock == "" {
		second.sock = t.TempDir() + "/zc.sock"
		var err error
		if second.srv, err = gen.AddPort("net_memif_tgzs,role=server,id=0,socket-abstract=no,socket=" + second.sock); err != nil {
			t.Fatal(err)
		}
		if second.cli, err = gen.AddPort("net_memif_tgzc,role=client,id=0,socket-abstract=no,zero-copy=yes,socket=" + second.sock); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "second zero-copy pair up", func() bool {
		up, err := gen.LinkErr(second.cli)
		if err != nil {
			t.Fatal(err)
		}
		return up && gen.LinkUp(second.srv)
	})
	for i, cli := range []int{first.cli, second.cli} {
		s := Stream{Port: cli, SrcMAC: macA, DstMAC: macB, Src: one("10.0.0.1"), Dst: one("10.0.0.2"),
			SrcPort: PortRange{1, 1}, DstPort: PortRange{2, 2}, Proto: UDP}
		r, err := gen.Run(context.Background(), Trial{Streams: []Stream{s}, MaxPackets: 1000})
		if err != nil || r.TxPackets != 1000 || r.RxPackets != 1000 || r.Streams[0].Gaps != 0 {
			t.Fatalf("pair %d: %+v (%v)", i, r, err)
		}
	}
}

var second memifPair

// memifLoopback is the generator's memif pair (server and zero-copy
// client), created once per process: a port cannot be removed, and
// -count=N runs the tests again.
func memifLoopback(t *testing.T) memifPair {
	if memif.sock == "" {
		dir, err := os.MkdirTemp("", "tgmemif")
		if err != nil {
			t.Fatal(err)
		}
		memif.sock = dir + "/memif.sock"
		if memif.srv, err = gen.AddPort("net_memif_tgs,role=server,id=0,socket-abstract=no,socket=" + memif.sock); err != nil {
			t.Fatal(err)
		}
		if memif.cli, err = gen.AddPort("net_memif_tgc,role=client,id=0,socket-abstract=no,zero-copy=yes,socket=" + memif.sock); err != nil {
			t.Fatal(err)
		}
	}
	return memif
}

// With StampEvery, one frame in N is built and the others are clones of
// templates: every frame is the one a built trial sends (same flow, size
// and headers), checksums right, only the trailer told apart. The stream
// is VXLAN over IPv6 with IPv4 inside, so the outer UDP checksum covers
// the inner IPv4 header checksum (computed first).
func TestClones(t *testing.T) {
	port := ringPort(t, 0)
	vr := frames.MustMAC("00:00:5e:00:01:00")
	s := Stream{Port: port, SrcMAC: macA, DstMAC: macB, Src: one("10.0.0.1"),
		Dst: Range{ip("10.1.0.0"), ip("10.1.2.0"), 256}, SrcPort: PortRange{1000, 1001}, DstPort: PortRange{7, 7},
		Proto: UDP, Flows: 6, Sizes: []int{160, 201},
		Encap: &Encap{Kind: EncapVXLAN, SrcMAC: macA, DstMAC: vr, Src: ip("2001:db8::1"), Dst: ip("2001:db8::2"),
			VNI: 100, InnerDstMAC: vr}}
	const n, every = 48, 4
	built := sent(t, port, n, s)
	r, err := gen.Run(context.Background(), Trial{Streams: []Stream{s}, MaxPackets: n, Drain: time.Millisecond, StampEvery: every})
	if err != nil {
		t.Fatal(err)
	}
	if c := r.Streams[0].Clones; r.TxPackets != n || c != n-n/every {
		t.Fatalf("sent %d frames, %d clones: want %d, %d", r.TxPackets, c, n, n-n/every)
	}
	got, err := gen.Drain(port, n+1)
	if err != nil || len(got) != n {
		t.Fatalf("ring holds %d frames (%v), want %d", len(got), err, n)
	}
	const outerUDP, innerIP = 14 + 40, 14 + 40 + 8 + 8 + 14
	for i, f := range got {
		b := built[i]
		if len(f) != len(b) {
			t.Fatalf("frame %d: %d bytes, built %d", i, len(f), len(b))
		}
		src, dst := netip.AddrFrom16([16]byte(f[22:38])), netip.AddrFrom16([16]byte(f[38:54]))
		if c := frames.L4Checksum(src, dst, frames.ProtoUDP, f[outerUDP:]); c != binary.BigEndian.Uint16(f[outerUDP+6:]) {
			t.Fatalf("frame %d: outer UDP checksum %#x, want %#x", i, binary.BigEndian.Uint16(f[outerUDP+6:]), c)
		}
		if !frames.IPv4ChecksumValid(f[innerIP : innerIP+20]) {
			t.Fatalf("frame %d: inner IPv4 checksum wrong", i)
		}
		// Built and cloned alike but for the trailer and the checksum over it.
		w, g := frames.Clone(b[:len(b)-sigLen]), frames.Clone(f[:len(f)-sigLen])
		w[outerUDP+6], w[outerUDP+7], g[outerUDP+6], g[outerUDP+7] = 0, 0, 0, 0
		if !bytes.Equal(w, g) {
			t.Fatalf("frame %d:\n%s", i, frames.Diff(w, g))
		}
		sig := f[len(f)-sigLen:]
		seq, tsc := binary.BigEndian.Uint64(sig), binary.BigEndian.Uint64(sig[8:])
		if i%every == 0 {
			if seq != uint64(i/every) || tsc>>48 != 0xf11a {
				t.Fatalf("frame %d: stamped trailer %x: want sequence %d", i, sig, i/every)
			}
		} else if seq != 1<<48-1 || tsc != 0xf11a<<48 {
			t.Fatalf("frame %d: clone trailer %x: want no sequence, no timestamp", i, sig)
		}
	}
}
