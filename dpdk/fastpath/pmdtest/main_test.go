package pmdtest

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/dpdk/hugepages"
)

var (
	dp   *fastpath.Dataplane
	huge bool
)

func TestMain(m *testing.M) {
	cfg := fastpath.DefaultConfig()
	var mem []string
	mem, huge = hugepages.EALArgs(1024)
	// Two workers sharing CPU 1: RX queues spread over lcores, and the
	// control thread keeps CPU 0.
	cfg.EALArgs = append([]string{"--lcores", "0@0,1@1,2@1", "--no-pci", "--log-level", "*:notice",
		"--file-prefix", fmt.Sprintf("fil-pmdtest-%d", os.Getpid()),
		"--vdev", ealDevice}, mem...)
	if huge {
		// vhost-user carries at most 8 memory regions: one file per
		// memseg list keeps the virtio-user side (the "pod") under it.
		cfg.EALArgs = append(cfg.EALArgs, "--single-file-segments")
	}
	cfg.IdleSleepMax = 100 * time.Microsecond
	var err error
	dp, err = fastpath.Start(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pmdtest: cannot start the fast path:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "pmdtest: %d workers, hugepages=%v (%v)\n", dp.Workers(), huge, mem)
	code := m.Run()
	dp.Close()
	os.Exit(code)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// mbufsBack fails the test unless every mbuf but leak returns to the pool.
func mbufsBack(t *testing.T, base, leak int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for dp.MbufsInUse() > base+leak {
		if time.Now().After(deadline) {
			t.Fatalf("%d mbufs not back in the pool (base %d, known leak %d)", dp.MbufsInUse()-base, base, leak)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
