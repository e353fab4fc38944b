package fastpath_test

// Packet trace: the next N packets with their bytes in and out and their
// fate, through the real fast path.

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/dpdk/frames"
)

// runTrace arms a trace, runs during once it records, and returns what it
// recorded (it must complete within the timeout).
func runTrace(t *testing.T, o fastpath.TraceOptions, during func()) []fastpath.TraceRecord {
	t.Helper()
	recs, err := traceWith(t, context.Background(), o, during)
	if err != nil {
		t.Fatalf("Trace(%+v): %v (%d records)", o, err, len(recs))
	}
	return recs
}

func traceWith(t *testing.T, ctx context.Context, o fastpath.TraceOptions, during func()) ([]fastpath.TraceRecord, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	armed := make(chan struct{})
	o.Armed = func() { close(armed) }
	type result struct {
		recs []fastpath.TraceRecord
		err  error
	}
	done := make(chan result, 1)
	go func() {
		recs, err := dp.Trace(ctx, o)
		done <- result{recs, err}
	}()
	select {
	case <-armed:
	case r := <-done:
		t.Fatalf("Trace returned before arming: %v", r.err)
	}
	during()
	r := <-done
	return r.recs, r.err
}

func first(b []byte) []byte { return b[:min(len(b), fastpath.TraceBytes)] }

// checkIn checks a record's input side: port, queue 0, length and bytes.
func checkIn(t *testing.T, i int, r fastpath.TraceRecord, port fastpath.PortID, in []byte) {
	t.Helper()
	if r.InPort != port || r.InQueue != 0 || r.InLen != len(in) {
		t.Errorf("record %d: in port %d queue %d len %d, want port %d queue 0 len %d", i, r.InPort, r.InQueue, r.InLen, port, len(in))
	}
	if !bytes.Equal(r.In, first(in)) {
		t.Errorf("record %d: bytes in:\n%s", i, frames.Diff(first(in), r.In))
	}
	if r.Worker < 0 || r.Worker >= dp.Workers() || r.TSC == 0 || r.Time.IsZero() {
		t.Errorf("record %d: worker %d tsc %d time %v", i, r.Worker, r.TSC, r.Time)
	}
}

// checkOut checks a record's fate: verdict, drop reason, and the frame sent
// (out nil: none).
func checkOut(t *testing.T, i int, r fastpath.TraceRecord, v fastpath.Verdict, reason string, port fastpath.PortID, out []byte) {
	t.Helper()
	if r.Verdict != v || r.DropReason != reason {
		t.Errorf("record %d: %v %q, want %v %q (%s)", i, r.Verdict, r.DropReason, v, reason, r)
	}
	if out == nil {
		if r.Out != nil || r.OutLen != 0 {
			t.Errorf("record %d: sent %d bytes on port %d, want nothing", i, r.OutLen, r.OutPort)
		}
		return
	}
	if r.OutPort != port || r.OutLen != len(out) {
		t.Errorf("record %d: out port %d len %d, want port %d len %d", i, r.OutPort, r.OutLen, port, len(out))
	}
	if !bytes.Equal(r.Out, first(out)) {
		t.Errorf("record %d: bytes out:\n%s", i, frames.Diff(first(out), r.Out))
	}
}

// Forwarded (rewritten, encapsulated), dropped, dropped and answered with
// an ICMP error: in port, bytes in, decision, bytes out.
func TestTrace(t *testing.T) {
	e := newEnv(t)
	const vrf = 80
	fab, a, vx, _, _ := tunnels(t, e, vrf)
	b := e.pod(vrf, "02:00:00:50:00:0b", "10.80.0.11")
	e.toPod(a)
	e.toPod(b)
	gw := ip("10.80.0.1")
	vrfAddress(t, vrf, gw)

	// Longer than what a record keeps: the first bytes only.
	fwd := pkt{src: a.ip, dst: b.ip, sport: 1000, dport: 2000, payload: bytes.Repeat([]byte("x"), 200)}
	enc := pkt{src: a.ip, dst: ip("10.80.1.5"), sport: 1001, dport: 2001, payload: []byte("to the fabric")}
	noRoute := pkt{src: a.ip, dst: ip("10.99.0.1"), sport: 1002, dport: 2002}
	expired := pkt{src: a.ip, dst: b.ip, sport: 1003, dport: 2003, payload: []byte("a payload longer than eight bytes")}.ip4(1)
	in := [][]byte{a.from(fwd.ip4(64)), a.from(enc.ip4(64)), a.from(noRoute.ip4(64)), a.from(expired)}

	before := dp.Drops()
	var toB, toFab, toA []byte
	recs := runTrace(t, fastpath.TraceOptions{Count: len(in), Port: &a.id}, func() {
		e.inject(a.id, in...)
		toB = e.expectFrame(b.id, b.to(fwd.ip4(63)))
		toFab = e.expectFrames(fab, 1, timeout)[0]
		toA = e.expectFrame(a.id, a.to(icmpError(gw, expired, 11, 0, 0)))
	})
	checkEncap(t, toFab, vx, enc.ip4(63))
	e.expectNothing()
	e.checkDrops(before, map[string]uint64{"no_route": 1, "ttl_exceeded": 1})

	if len(recs) != len(in) {
		t.Fatalf("%d records, want %d", len(recs), len(in))
	}
	for i, r := range recs {
		t.Logf("%s", r)
		checkIn(t, i, r, a.id, in[i])
		if i > 0 && r.TSC < recs[i-1].TSC {
			t.Errorf("record %d: not sorted by time", i)
		}
	}
	checkOut(t, 0, recs[0], fastpath.VerdictSent, "", b.id, toB)
	checkOut(t, 1, recs[1], fastpath.VerdictSent, "", fab, toFab)
	checkOut(t, 2, recs[2], fastpath.VerdictDropped, "no_route", 0, nil)
	checkOut(t, 3, recs[3], fastpath.VerdictDropped, "ttl_exceeded", a.id, toA)

	// What a CLI prints.
	for i, want := range []string{"sent port", "VXLAN vni", "dropped no_route", "dropped ttl_exceeded, answered on port"} {
		if s := recs[i].String(); !strings.Contains(s, want) || !strings.Contains(s, "10.80.0.10>") {
			t.Errorf("record %d: %q does not say %q", i, s, want)
		}
	}
	// The record of a long frame summarises its headers without errors
	// about the bytes it did not keep.
	if s := recs[0].Summary(); strings.Contains(s, "error") || !strings.Contains(s, "UDP 1000>2000") {
		t.Errorf("summary of a long frame: %q", s)
	}
}

// A trace records N packets and no more, over bursts; a port filter
// leaves other ports' packets out; cross-connected packets are traced.
func TestTraceStopsAfterN(t *testing.T) {
	e := newEnv(t)
	const vrf = 81
	a := e.pod(vrf, "02:00:00:51:00:0a", "10.81.0.10")
	b := e.pod(vrf, "02:00:00:51:00:0b", "10.81.0.11")
	e.toPod(a)
	e.toPod(b)
	ab := func(i int) []byte {
		return a.from(pkt{src: a.ip, dst: b.ip, sport: uint16(3000 + i), dport: 7}.ip4(64))
	}
	ba := func(i int) []byte {
		return b.from(pkt{src: b.ip, dst: a.ip, sport: uint16(4000 + i), dport: 7}.ip4(64))
	}

	// Two in one burst, then four in another: the first three are traced.
	recs := runTrace(t, fastpath.TraceOptions{Count: 3}, func() {
		e.inject(a.id, ab(0), ab(1))
		e.expectFrames(b.id, 2, timeout)
		e.inject(a.id, ab(2), ab(3), ab(4), ab(5))
		e.expectFrames(b.id, 4, timeout)
	})
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	for i, r := range recs {
		checkIn(t, i, r, a.id, ab(i))
		if r.Verdict != fastpath.VerdictSent || r.OutPort != b.id {
			t.Errorf("record %d: %s", i, r)
		}
	}

	// Only port b's packets, though a's come first.
	recs = runTrace(t, fastpath.TraceOptions{Count: 2, Port: &b.id}, func() {
		e.inject(a.id, ab(10), ab(11))
		e.expectFrames(b.id, 2, timeout)
		e.inject(b.id, ba(0), ba(1), ba(2))
		e.expectFrames(a.id, 3, timeout)
	})
	if len(recs) != 2 {
		t.Fatalf("port filter: %d records, want 2", len(recs))
	}
	for i, r := range recs {
		checkIn(t, i, r, b.id, ba(i))
		checkOut(t, i, r, fastpath.VerdictSent, "", a.id, a.to(pkt{src: b.ip, dst: a.ip, sport: uint16(4000 + i), dport: 7}.ip4(63)))
	}

	// A cross-connect: sent untouched.
	peer := b.id
	x, _ := e.addPort(fastpath.PortConfig{Kind: fastpath.PortPod, VRF: vrf, MAC: frames.MustMAC("02:00:00:51:00:0c"), XConnect: &peer})
	lldp := frames.Ethernet{Dst: frames.MustMAC("01:80:c2:00:00:0e"), Type: frames.EtherTypeLLDP}.Build(make([]byte, 46))
	recs = runTrace(t, fastpath.TraceOptions{Count: 1, Port: &x}, func() {
		e.inject(x, lldp)
		e.expectFrame(b.id, lldp)
	})
	if len(recs) != 1 {
		t.Fatalf("xconnect: %d records", len(recs))
	}
	checkIn(t, 0, recs[0], x, lldp)
	checkOut(t, 0, recs[0], fastpath.VerdictSent, "", b.id, lldp)
}

// An ARP reply learnt from a tunnel neighbour, with no host port, is
// consumed; an ARP request for the underlay address is answered.
func TestTraceConsumed(t *testing.T) {
	e := newEnv(t)
	fab := e.fabric(1500)
	nbr, nbrMAC := ip("192.168.100.70"), frames.MustMAC("02:fb:00:00:00:70")
	e.pod(82, "02:00:00:52:00:0a", "10.82.0.10")
	e.route(82, "10.82.1.0/24", e.nh(fastpath.NextHop{Type: fastpath.NHTunnel, Port: fab, Encap: fastpath.EncapVXLAN, TunnelDst: nbr, VNI: 5082}))
	reply := frames.Pad(arpFrame(fabricMAC, nbrMAC, frames.ARP{Op: frames.ARPReply,
		SenderMAC: nbrMAC, SenderIP: nbr, TargetMAC: fabricMAC, TargetIP: underlay}), frames.MinFrame, 0)
	asker, askerMAC := ip("192.168.100.71"), frames.MustMAC("02:fb:00:00:00:71")
	request := arpFrame(frames.Broadcast, askerMAC, frames.ARP{Op: frames.ARPRequest,
		SenderMAC: askerMAC, SenderIP: asker, TargetIP: underlay})
	answer := arpFrame(askerMAC, fabricMAC, frames.ARP{Op: frames.ARPReply,
		SenderMAC: fabricMAC, SenderIP: underlay, TargetMAC: askerMAC, TargetIP: asker})

	recs := runTrace(t, fastpath.TraceOptions{Count: 2, Port: &fab}, func() {
		e.inject(fab, reply, request)
		e.expectFrame(fab, answer)
	})
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	checkIn(t, 0, recs[0], fab, reply)
	checkOut(t, 0, recs[0], fastpath.VerdictConsumed, "", 0, nil)
	checkIn(t, 1, recs[1], fab, request)
	checkOut(t, 1, recs[1], fastpath.VerdictSent, "", fab, answer)
	if s := recs[0].String(); !strings.Contains(s, "consumed") || !strings.Contains(s, "ARP") {
		t.Errorf("consumed: %q", s)
	}
}

// A frame the device refuses (its TX ring is full) is traced as dropped,
// tx_full, though the pipeline had sent it.
func TestTraceTxFull(t *testing.T) {
	e := newEnv(t)
	const vrf = 83
	a := e.pod(vrf, "02:00:00:53:00:0a", "10.83.0.10")
	b := e.pod(vrf, "02:00:00:53:00:0b", "10.83.0.11")
	e.toPod(b)
	p := pkt{src: a.ip, dst: b.ip, sport: 1, dport: 2}
	// Fill b's TX ring (4095 frames: a ring of 4096 holds one less).
	const ring = 4095
	fill := make([][]byte, ring)
	for i := range fill {
		fill[i] = a.from(p.ip4(64))
	}
	for i := 0; i < ring; i += 512 {
		e.inject(a.id, fill[i:min(i+512, ring)]...)
		waitFor(t, "the frames sent", func() bool {
			s, _ := dp.PortStats(b.id)
			return s.TxPackets == uint64(min(i+512, ring))
		})
	}
	before := dp.Drops()
	recs := runTrace(t, fastpath.TraceOptions{Count: 1, Port: &a.id}, func() {
		e.inject(a.id, a.from(p.ip4(64)))
	})
	e.expectFrames(b.id, ring, timeout)
	e.expectNothing()
	e.checkDrops(before, map[string]uint64{"tx_full": 1})
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	checkOut(t, 0, recs[0], fastpath.VerdictDropped, "tx_full", b.id, b.to(p.ip4(63)))
}

// Bad arguments, one trace at a time, and a trace cut short by its
// context returns what it has with the context's error.
func TestTraceControl(t *testing.T) {
	e := newEnv(t)
	a := e.pod(84, "02:00:00:54:00:0a", "10.84.0.10")
	e.toPod(a) // VRF 84 has a FIB: other destinations are no_route
	ctx := context.Background()
	for _, o := range []fastpath.TraceOptions{{Count: 0}, {Count: fastpath.MaxTrace + 1}} {
		if _, err := dp.Trace(ctx, o); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("Trace(%+v): %v, want EINVAL", o, err)
		}
	}
	gone := fastpath.PortID(fastpath.MaxPorts - 1)
	if _, err := dp.Trace(ctx, fastpath.TraceOptions{Count: 1, Port: &gone}); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("trace of a missing port: %v, want ENOENT", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	recs, err := traceWith(t, ctx, fastpath.TraceOptions{Count: 10, Port: &a.id}, func() {
		tctx, tcancel := context.WithTimeout(context.Background(), timeout)
		defer tcancel()
		if _, err := dp.Trace(tctx, fastpath.TraceOptions{Count: 1}); !errors.Is(err, syscall.EBUSY) {
			t.Errorf("second trace: %v, want EBUSY", err)
		}
		e.expectDrop("no_route", 2, a.id, a.from(pkt{src: a.ip, dst: ip("10.84.9.9")}.ip4(64)),
			a.from(pkt{src: a.ip, dst: ip("10.84.9.8")}.ip4(64)))
		cancel()
	})
	if !errors.Is(err, context.Canceled) || len(recs) != 2 {
		t.Fatalf("cancelled trace: %d records, %v; want 2, context.Canceled", len(recs), err)
	}
	for i, r := range recs {
		checkOut(t, i, r, fastpath.VerdictDropped, "no_route", 0, nil)
	}
	// Disarmed: another trace can start.
	runTrace(t, fastpath.TraceOptions{Count: 1}, func() {
		e.expectDrop("no_route", 1, a.id, a.from(pkt{src: a.ip, dst: ip("10.84.9.7")}.ip4(64)))
	})
}
