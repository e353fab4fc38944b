package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filament-net/filament/perf/trafficgen"
)

// A device under test that loses its core for a few milliseconds holds the
// generator back (its RX ring full), then forwards that ring's backlog into
// the generator's RX ring at its own speed while the generator catches up
// on the rate. Receiving one burst per loop (--rx-bursts 1, the old
// worker), the generator sent and received a burst per loop while catching
// up, its RX ring stayed as full as the device's backlog had left it, and
// the device dropped what did not fit: testpmd's TX-dropped, loss after
// every hiccup, an NDR spoiled by the generator. Draining up to 16 bursts
// a loop (the default) empties it at once.
//
// The hiccups are SIGSTOP/SIGCONT of testpmd. Both ways run in turn, three
// times, so that this shared machine's noise hits both alike (a generator
// preempted while the device dumps its backlog drops frames either way:
// the rings are the same size); the drain must cut the device's drops by
// more than three times, and one burst a loop must show them.
//
// It compares rates of loss on a shared machine, so it is opt-in
// (FILAMENT_TEST_HICCUP=1), not part of make test: in CI it measured 846
// against 373 (2.3x) once, where a quiet run gives 6241 against 651.
func TestDeviceHiccup(t *testing.T) {
	if os.Getenv("FILAMENT_TEST_HICCUP") == "" {
		t.Skip("a loss-rate comparison, noisy on a shared machine: set FILAMENT_TEST_HICCUP=1 to run it")
	}
	const hiccups, rounds = 8, 3
	var drops [2]uint64 // one burst a loop, drained
	for round := 1; round <= rounds; round++ {
		for i, bursts := range []int{1, 16} {
			// The generator's CPU quiet first (a compile there stalls it).
			waitQuiet(context.Background(), 0)
			d := testpmd(t)
			r, log := hiccupTrial(t, d, hiccups, bursts)
			dropped := txDropped(t, d.Stop())
			t.Logf("round %d, --rx-bursts %2d: due %d sent %d received %d lost %d held back %d; testpmd TX-dropped %d; generator stalls %d (longest %v)",
				round, bursts, r.Due, r.TxPackets, r.RxPackets, r.Lost, r.Held, dropped, r.Stalls, r.MaxGap)
			if r.Held == 0 {
				t.Fatalf("testpmd stopped %d times and never held the generator back: no hiccup tested\n%s", hiccups, log)
			}
			if uint64(max(r.Lost, 0)) < dropped {
				t.Fatalf("testpmd dropped %d frames, the generator counted %d lost\n%s", dropped, r.Lost, log)
			}
			drops[i] += dropped
		}
	}
	t.Logf("testpmd TX-dropped over %d hiccups: %d receiving one burst a loop, %d draining", rounds*hiccups, drops[0], drops[1])
	if drops[0] == 0 || drops[1]*3 >= drops[0] {
		t.Fatalf("draining the RX ring did not cut the device's drops after hiccups by 3x: %d with one burst a loop, %d drained",
			drops[0], drops[1])
	}
}

// hiccupTrial runs 4 Mpps for 1.4 s through testpmd with --rx-bursts
// bursts and, once the first progress line shows the trial running (1 s
// in), stops testpmd n times for 10 ms.
func hiccupTrial(t *testing.T, d *dut, n, bursts int) (*trafficgen.Result, string) {
	t.Helper()
	var stdout, log bytes.Buffer
	cmd := exec.Command(bin, "run", "--port", port(d.Sock), "--rate", "4M", "--duration", "1400ms",
		"--rx-bursts", fmt.Sprint(bursts), "-o", "json")
	cmd.Stdout = &stdout
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(pipe)
	running := false
	for !running && sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		running = strings.Contains(sc.Text(), "1.0s  tx")
	}
	if running {
		for i := 0; i < n; i++ {
			if err := d.Proc.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond) // the hiccup itself
			if err := d.Proc.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			time.Sleep(30 * time.Millisecond) // the generator catches up
		}
	}
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
	}
	if err := cmd.Wait(); err != nil || !running {
		t.Fatalf("filament-perf run (%v, trial seen running %v):\n%s", err, running, log.String())
	}
	var rep struct{ Result *trafficgen.Result }
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil || rep.Result == nil {
		t.Fatalf("JSON: %v\n%s", err, stdout.String())
	}
	return rep.Result, log.String()
}

// txDropped reads testpmd's accumulated TX-dropped from what it prints
// when it stops: frames its port did not take, here because the
// generator's RX ring was full.
func txDropped(t *testing.T, out string) uint64 {
	t.Helper()
	_, acc, ok := strings.Cut(out, "Accumulated forward statistics")
	m := regexp.MustCompile(`TX-dropped: +(\d+)`).FindStringSubmatch(acc)
	if !ok || m == nil {
		t.Fatalf("no forward statistics from testpmd:\n%s", out)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}
