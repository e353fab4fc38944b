package suite

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The kernel pod rows, one round, short trials: each forwards through the
// router pod's kernel (memif B only gets frames that way) at a confirmed
// rate, and the namespaces and interfaces are gone afterwards.
func TestKernelPodRows(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	env := newTestEnv(t, testBins{perf: true, dataplane: true})
	var rows []Row
	for _, r := range Headline(64) {
		if strings.HasPrefix(r.Name, "filament-kernelpod-") {
			// A coarse search: the test wants a confirmed rate, fast.
			r.NDRFlags = append(slices.Clone(r.NDRFlags), "--resolution", "0.1")
			rows = append(rows, r)
		}
	}
	if len(rows) != 3 {
		t.Fatalf("%d kernel pod rows in Headline, want 3 (af_xdp, af_packet, tap)", len(rows))
	}
	plan := Plan{Rows: rows, Sizes: []string{"64"}, Rounds: 1, Progress: os.Stderr,
		NDRFlags: []string{"--trial", "200ms", "--latency-trial", "200ms", "--resolution", "0.1", "--max-rate", "20M"}}
	samples, err := Run(context.Background(), env, plan)
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != len(rows) {
		t.Fatalf("%d samples, want %d", len(samples), len(rows))
	}
	for _, s := range samples {
		// PDR is confirmed; NDR may be 0 (the kernel loses a frame now
		// and then) and, the kernel being noisy, even above PDR; the
		// row's own --max-rate (1M) wins over the plan's.
		if s.Err != "" || s.PDR <= 0 || s.PDR > 1e6 || s.NDR > 1e6 || s.P50 <= 0 {
			t.Errorf("sample %+v", s)
		}
	}
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if prefix := fmt.Sprintf("fil-kp%d-", os.Getpid()); strings.Contains(string(out), prefix) {
		t.Errorf("namespaces left behind:\n%s", out)
	}
}
