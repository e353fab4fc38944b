package fastpath_test

// Port capture: frames of a port, received and sent, to a pcap.

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/dpdk/frames"
	"github.com/filament-net/filament/dpdk/pcapfile"
)

type captureRun struct {
	n     int
	err   error
	stats fastpath.CaptureStats
	pcap  []pcapfile.Packet
}

// startCapture arms a capture into a buffer and returns once it captures;
// wait (cancel: cancel it first) returns its outcome with the pcap read back.
func startCapture(t *testing.T, o fastpath.CaptureOptions) (wait func(cancel bool) captureRun) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	armed := make(chan struct{})
	o.Armed = func() { close(armed) }
	var run captureRun
	o.Stats = &run.stats
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		run.n, run.err = dp.Capture(ctx, o, &buf)
	}()
	select {
	case <-armed:
	case <-done:
		cancel()
		t.Fatalf("Capture(%+v) returned before arming: %v", o, run.err)
	}
	return func(stop bool) captureRun {
		t.Helper()
		if stop {
			cancel()
		}
		<-done
		cancel()
		var err error
		if run.pcap, err = pcapfile.ReadAll(&buf); err != nil {
			t.Fatalf("reading the pcap back: %v", err)
		}
		if len(run.pcap) != run.n || run.stats.Written != run.n {
			t.Errorf("Capture said %d frames (stats %+v), the pcap has %d", run.n, run.stats, len(run.pcap))
		}
		return run
	}
}

// capture runs during under a capture of o.Count frames.
func capture(t *testing.T, o fastpath.CaptureOptions, during func()) captureRun {
	t.Helper()
	t0 := time.Now()
	wait := startCapture(t, o)
	during()
	run := wait(false)
	t1 := time.Now()
	if run.err != nil {
		t.Fatalf("Capture(%+v): %v", o, run.err)
	}
	for i, p := range run.pcap {
		// microseconds in the file; the TSC clock may be off by a little
		if p.Time.Before(t0.Add(-time.Millisecond)) || p.Time.After(t1.Add(time.Millisecond)) ||
			(i > 0 && p.Time.Before(run.pcap[i-1].Time)) {
			t.Errorf("frame %d at %v: outside the capture (%v..%v) or before the previous", i, p.Time, t0, t1)
		}
	}
	return run
}

func checkPcap(t *testing.T, what string, got []pcapfile.Packet, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d frames in the pcap, want %d", what, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if d := frames.Diff(want[i], got[i].Data); d != "" {
			t.Errorf("%s: frame %d:\n%s", what, i, d)
		}
	}
}

// RX, TX or both of a port, exact frames: as received, and as sent
// (rewritten).
func TestCaptureRxTx(t *testing.T) {
	e := newEnv(t)
	const vrf = 85
	a := e.pod(vrf, "02:00:00:55:00:0a", "10.85.0.10")
	b := e.pod(vrf, "02:00:00:55:00:0b", "10.85.0.11")
	e.toPod(a)
	e.toPod(b)
	ab := func(i int) pkt {
		return pkt{src: a.ip, dst: b.ip, sport: uint16(5000 + i), dport: 9, payload: []byte("from a")}
	}
	ba := func(i int) pkt {
		return pkt{src: b.ip, dst: a.ip, sport: uint16(6000 + i), dport: 9, payload: []byte("to a")}
	}
	// a sends two, then receives two: a's RX are the first, its TX the second.
	traffic := func(e *env) {
		e.inject(a.id, a.from(ab(0).ip4(64)), a.from(ab(1).ip4(64)))
		e.expectFrames(b.id, 2, timeout)
		e.inject(b.id, b.from(ba(0).ip4(64)), b.from(ba(1).ip4(64)))
		e.expectFrames(a.id, 2, timeout)
	}
	rx := [][]byte{a.from(ab(0).ip4(64)), a.from(ab(1).ip4(64))}
	tx := [][]byte{a.to(ba(0).ip4(63)), a.to(ba(1).ip4(63))}
	for _, c := range []struct {
		dir  fastpath.Direction
		want [][]byte
	}{
		{fastpath.DirBoth, append(append([][]byte{}, rx...), tx...)},
		{fastpath.DirRx, rx},
		{fastpath.DirTx, tx},
	} {
		t.Run(c.dir.String(), func(t *testing.T) {
			e := e.with(t)
			run := capture(t, fastpath.CaptureOptions{Port: a.id, Count: len(c.want), Direction: c.dir}, func() { traffic(e) })
			checkPcap(t, c.dir.String(), run.pcap, c.want)
			if run.stats.Captured != uint64(len(c.want)) || run.stats.Dropped != 0 {
				t.Errorf("stats %+v", run.stats)
			}
		})
	}
}

// The count limit: the first N frames, the rest forwarded but not
// captured; a snap length cuts frames.
func TestCaptureCount(t *testing.T) {
	e := newEnv(t)
	const vrf = 86
	a := e.pod(vrf, "02:00:00:56:00:0a", "10.86.0.10")
	b := e.pod(vrf, "02:00:00:56:00:0b", "10.86.0.11")
	e.toPod(b)
	in := make([][]byte, 5)
	for i := range in {
		in[i] = a.from(pkt{src: a.ip, dst: b.ip, sport: uint16(i), dport: 9, payload: bytes.Repeat([]byte{byte(i)}, 200)}.ip4(64))
	}
	run := capture(t, fastpath.CaptureOptions{Port: a.id, Count: 3, Direction: fastpath.DirRx}, func() {
		e.inject(a.id, in...)
		e.expectFrames(b.id, len(in), timeout)
	})
	checkPcap(t, "count 3", run.pcap, in[:3])
	if run.stats.Captured != 3 || run.stats.Dropped != 0 {
		t.Errorf("stats %+v, want 3 captured", run.stats)
	}

	const snap = 60
	run = capture(t, fastpath.CaptureOptions{Port: a.id, Count: 2, Direction: fastpath.DirRx, Snaplen: snap}, func() {
		e.inject(a.id, in[:2]...)
		e.expectFrames(b.id, 2, timeout)
	})
	checkPcap(t, "snaplen", run.pcap, [][]byte{in[0][:snap], in[1][:snap]})
}

// Captures of two ports while traffic flows in full bursts, with a small
// buffer: every frame is forwarded, whatever the captures keep; each frame
// is captured or counted dropped, and what is captured is exact.
func TestCaptureUnderLoad(t *testing.T) {
	e := newEnv(t)
	const vrf = 87
	a := e.pod(vrf, "02:00:00:57:00:0a", "10.87.0.10")
	b := e.pod(vrf, "02:00:00:57:00:0b", "10.87.0.11")
	e.toPod(b)
	const total, chunk = 4000, 500
	in := make([][]byte, total)
	out := make([][]byte, total)
	for i := range in {
		p := pkt{src: a.ip, dst: b.ip, sport: uint16(i), dport: uint16(i >> 16), payload: make([]byte, 64)}
		in[i], out[i] = a.from(p.ip4(64)), b.to(p.ip4(63))
	}
	waitA := startCapture(t, fastpath.CaptureOptions{Port: a.id, Direction: fastpath.DirRx, Buffer: 64})
	waitB := startCapture(t, fastpath.CaptureOptions{Port: b.id, Direction: fastpath.DirBoth, Buffer: 64})
	before := dp.Drops()
	for i := 0; i < total; i += chunk {
		e.inject(a.id, in[i:i+chunk]...)
		for j, f := range e.expectFrames(b.id, chunk, timeout) {
			if !bytes.Equal(f, out[i+j]) {
				t.Fatalf("frame %d forwarded differently:\n%s", i+j, frames.Diff(out[i+j], f))
			}
		}
	}
	e.checkDrops(before, nil)
	for _, c := range []struct {
		name string
		wait func(bool) captureRun
		want [][]byte
	}{{"a rx", waitA, in}, {"b both", waitB, out}} {
		run := c.wait(true)
		if run.err != nil {
			t.Fatalf("%s: %v", c.name, run.err)
		}
		t.Logf("%s: %+v", c.name, run.stats)
		if run.stats.Captured+run.stats.Dropped != total || run.stats.Written != int(run.stats.Captured) {
			t.Errorf("%s: %+v: every frame must be written or counted dropped", c.name, run.stats)
		}
		// What was captured is the traffic, in order, with gaps.
		j := 0
		for i, p := range run.pcap {
			for j < total && !bytes.Equal(p.Data, c.want[j]) {
				j++
			}
			if j == total {
				t.Fatalf("%s: frame %d of the pcap is not the traffic: %s", c.name, i, frames.Summary(p.Data))
			}
			j++
		}
	}
}

// Bad arguments, one capture per port, a port removed under a capture.
func TestCaptureControl(t *testing.T) {
	e := newEnv(t)
	a := e.pod(88, "02:00:00:58:00:0a", "10.88.0.10")
	ctx := context.Background()
	var sink bytes.Buffer
	for _, o := range []fastpath.CaptureOptions{
		{Port: a.id, Snaplen: 5}, {Port: a.id, Snaplen: fastpath.MaxSnaplen + 1}, {Port: a.id, Direction: 7},
		{Port: a.id, Buffer: 10}, {Port: a.id, Count: -1}, {Port: fastpath.MaxPorts},
	} {
		if _, err := dp.Capture(ctx, o, &sink); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("Capture(%+v): %v, want EINVAL", o, err)
		}
	}
	if _, err := dp.Capture(ctx, fastpath.CaptureOptions{Port: fastpath.MaxPorts - 1}, &sink); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("capture of a missing port: %v, want ENOENT", err)
	}
	if d, err := fastpath.ParseDirection("tx"); err != nil || d != fastpath.DirTx {
		t.Errorf("ParseDirection(tx): %v %v", d, err)
	}
	if _, err := fastpath.ParseDirection("sideways"); err == nil {
		t.Error("ParseDirection(sideways) accepted")
	}

	wait := startCapture(t, fastpath.CaptureOptions{Port: a.id})
	tctx, cancel := context.WithTimeout(ctx, timeout)
	if _, err := dp.Capture(tctx, fastpath.CaptureOptions{Port: a.id}, &sink); !errors.Is(err, syscall.EBUSY) {
		t.Errorf("second capture of a port: %v, want EBUSY", err)
	}
	cancel()
	if run := wait(true); run.err != nil || run.n != 0 {
		t.Errorf("capture stopped with no traffic: %d frames, %v", run.n, run.err)
	}

	// A port removed under a capture ends it with an error.
	id, err := dp.AddRingPort("tcapgone", fastpath.PortConfig{Kind: fastpath.PortPod, VRF: 88,
		MAC: frames.MustMAC("02:00:00:58:00:0c")})
	if err != nil {
		t.Fatal(err)
	}
	wait = startCapture(t, fastpath.CaptureOptions{Port: id})
	if err := dp.DelPort(id); err != nil {
		t.Fatal(err)
	}
	if run := wait(false); run.err == nil || !strings.Contains(run.err.Error(), "removed") {
		t.Errorf("capture of a removed port: %v, want an error", run.err)
	}
}

// Arming and disarming, over and over, while frames flow: nothing is lost,
// nothing leaks, and the worker keeps forwarding once all is disarmed.
func TestArmDisarmWhileForwarding(t *testing.T) {
	e := newEnv(t)
	const vrf = 89
	a := e.pod(vrf, "02:00:00:59:00:0a", "10.89.0.10")
	b := e.pod(vrf, "02:00:00:59:00:0b", "10.89.0.11")
	e.toPod(b)
	burst := make([][]byte, 32)
	for i := range burst {
		burst[i] = a.from(pkt{src: a.ip, dst: b.ip, sport: uint16(i), dport: 9}.ip4(64))
	}
	before := dp.Drops()
	for i := 0; i < 100; i++ {
		e.inject(a.id, burst...)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		if i%2 == 0 {
			go func() {
				_, err := dp.Capture(ctx, fastpath.CaptureOptions{Port: a.id}, &bytes.Buffer{})
				done <- err
			}()
		} else {
			go func() {
				_, err := dp.Trace(ctx, fastpath.TraceOptions{Count: fastpath.MaxTrace, Port: &b.id})
				if errors.Is(err, context.Canceled) {
					err = nil
				}
				done <- err
			}()
		}
		e.inject(a.id, burst...)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		e.expectFrames(b.id, 2*len(burst), timeout)
	}
	e.inject(a.id, burst...)
	e.expectFrames(b.id, len(burst), timeout)
	e.checkDrops(before, nil)
}
