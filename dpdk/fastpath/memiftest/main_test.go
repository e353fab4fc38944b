package memiftest

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
	mem, huge = hugepages.EALArgs(512)
	// One worker on CPU 1 that never sleeps: it is always in the memif
	// PMD's RX or TX code when a peer goes away.
	cfg.EALArgs = append([]string{"--lcores", "0@0,1@1", "--no-pci", "--log-level", "*:notice",
		"--file-prefix", fmt.Sprintf("fil-memiftest-%d", os.Getpid())}, mem...)
	cfg.IdleSleepMax = 0
	var err error
	dp, err = fastpath.Start(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "memiftest: cannot start the fast path:", err)
		os.Exit(1)
	}
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
		time.Sleep(time.Millisecond)
	}
}
