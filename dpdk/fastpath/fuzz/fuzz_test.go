package fuzz

import (
	"bytes"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite corpus/ from Seeds()")

// The seed corpus on disk is what Seeds() builds: the frames cannot drift
// from the harness's topology unnoticed (go test -run TestSeeds -update
// rewrites it).
func TestSeedsCommitted(t *testing.T) {
	seeds := Seeds()
	if *update {
		if err := os.RemoveAll("corpus"); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll("corpus", 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range seeds {
			if err := os.WriteFile(filepath.Join("corpus", name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	ents, err := os.ReadDir("corpus")
	if err != nil {
		t.Fatalf("read corpus: %v", err)
	}
	if len(ents) != len(seeds) {
		t.Errorf("corpus/ has %d files, Seeds() %d: run go test -run TestSeeds -update", len(ents), len(seeds))
	}
	for _, e := range ents {
		got, err := os.ReadFile(filepath.Join("corpus", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if want, ok := seeds[e.Name()]; !ok || !bytes.Equal(got, want) {
			t.Errorf("corpus/%s is not what Seeds() builds: run go test -run TestSeeds -update", e.Name())
		}
	}
}

// seconds of fuzzing in TestFuzz: FUZZ_TEST_SECONDS, default 25 (with the
// sanitizer build, about 50 s of make test).
func fuzzSeconds(t *testing.T) int {
	s := os.Getenv("FUZZ_TEST_SECONDS")
	if s == "" {
		return 25
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 60 {
		t.Fatalf("FUZZ_TEST_SECONDS=%q: want 1..60", s)
	}
	return n
}

var finalStats = regexp.MustCompile(`#(\d+)\s+DONE\s+cov: (\d+) ft: (\d+) corp: (\d+)\S* .*exec/s: (\d+)`)

// TestFuzz builds the harness with ASan and UBSan and fuzzes the packet
// path for a bounded time from the seeds and the regressions. Any crash,
// sanitizer report, mbuf leak or accounting breach fails it, with the input
// that did it (kept in the artifacts directory, and dumped here).
func TestFuzz(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the fuzzer")
	}
	secs := fuzzSeconds(t)
	work := t.TempDir()
	bin := os.Getenv("FUZZ_BIN")
	if bin == "" {
		bin = filepath.Join(work, "fuzz-fastpath")
		t0 := time.Now()
		out, err := exec.Command("./build.sh", bin).CombinedOutput()
		if err != nil {
			t.Fatalf("build.sh: %v\n%s", err, out)
		}
		t.Logf("sanitizer build: %.1f s", time.Since(t0).Seconds())
	}
	newCorpus := filepath.Join(work, "new")
	artifacts := filepath.Join(work, "artifacts")
	for _, d := range []string{newCorpus, artifacts} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+60)*time.Second)
	defer cancel()
	// New inputs go to the first directory (a temporary one): the
	// checked-in corpus and regressions are only read.
	cmd := exec.CommandContext(ctx, bin, fmt.Sprintf("-max_total_time=%d", secs),
		"-timeout=10", "-print_final_stats=1", "-artifact_prefix="+artifacts+"/",
		newCorpus, "corpus", "regressions")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	err := cmd.Run()
	if cmd.Process != nil {
		// Left behind by EAL when the harness dies before its atexit.
		_ = os.RemoveAll(fmt.Sprintf("/var/run/dpdk/fil-fuzz-%d", cmd.Process.Pid))
	}
	log := out.Bytes()
	if err != nil {
		dumpArtifacts(t, artifacts)
		t.Fatalf("fuzzer failed after %.1f s: %v\n%s", time.Since(t0).Seconds(), err, tail(log, 60))
	}
	m := finalStats.FindSubmatch(log)
	if m == nil {
		t.Fatalf("no final statistics from the fuzzer:\n%s", tail(log, 40))
	}
	t.Logf("fuzzed %.1f s: %s runs, %s exec/s, coverage %s edges, %s features, corpus %s inputs",
		time.Since(t0).Seconds(), m[1], m[5], m[2], m[3], m[4])
}

func dumpArtifacts(t *testing.T, dir string) {
	ents, _ := os.ReadDir(dir)
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			continue
		}
		t.Errorf("input %s (%d bytes; add it to regressions/ with the fix):\n%s", n, len(b), hex.Dump(b))
	}
}

func tail(b []byte, lines int) []byte {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			if lines--; lines < 0 {
				return b[i+1:]
			}
		}
	}
	return b
}
