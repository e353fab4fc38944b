package suite

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/filament-net/filament/dpdk/hugepages"
)

// The binaries a real test's rows run.
type testBins struct{ perf, dataplane bool }

// newTestEnv opens every real test of the suite: memif needs hugepages (no
// fallback: fail, the suite's numbers mean nothing without them), then the
// binaries the rows start are built into the test's temp dir, generator on
// CPU 0 and device on CPU 1 as make bench runs them.
func newTestEnv(t *testing.T, bins testBins) *Env {
	t.Helper()
	if _, huge := hugepages.EALArgs(0); !huge {
		t.Fatal("the suite needs hugepages (memif): run scripts/hugepages.sh as root (make test does)")
	}
	dir := t.TempDir()
	env := &Env{Dir: dir, GenCPU: 0, DUTCPU: 1, Huge: true}
	build := func(bin *string, name, pkg string) {
		*bin = filepath.Join(dir, name)
		if out, err := exec.Command("go", "build", "-o", *bin, pkg).CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, out)
		}
	}
	if bins.perf {
		build(&env.Perf, "filament-perf", "../cmd/filament-perf")
	}
	if bins.dataplane {
		build(&env.Dataplane, "filament-dataplane", "../../dpdk/cmd/filament-dataplane")
	}
	return env
}
