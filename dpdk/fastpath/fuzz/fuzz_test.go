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
	"strings"
	"sync"
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

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
	buildDir  string
)

// harness is the sanitizer build of the harness: FUZZ_BIN if set, else
// built once per test process by build.sh.
func harness(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("FUZZ_BIN"); b != "" {
		return b
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "filament-fuzz-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "fuzz-fastpath")
		t0 := time.Now()
		out, err := exec.Command("./build.sh", buildBin).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build.sh: %v\n%s", err, out)
			return
		}
		t.Logf("sanitizer build: %.1f s", time.Since(t0).Seconds())
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// seedFates is what each seed does, frame by frame, in the harness's
// FUZZ_VERBOSE words: the seeds reach the paths they are named after (a
// topology change that turned them all into drops would fail here).
var seedFates = map[string][]string{
	"arp-request":                  {"1 sent, 0 consumed, 0 dropped"},
	"decap-mplsoudp":               {"1 sent, 0 consumed, 0 dropped"},
	"decap-mplsoudp-label-unknown": {"0 sent, 0 consumed, 1 dropped mpls_label_unknown+1"},
	"decap-mplsoudp-not-ip":        {"0 sent, 0 consumed, 1 dropped inner_not_ipv4+1"},
	"decap-mplsoudp-stack":         {"0 sent, 0 consumed, 1 dropped mpls_stack+1"},
	"decap-vxlan":                  {"1 sent, 0 consumed, 0 dropped"},
	"decap-vxlan-empty":            {"0 sent, 0 consumed, 1 dropped ip_truncated+1"},
	"decap-vxlan-flags":            {"0 sent, 0 consumed, 1 dropped vxlan_flags+1"},
	"decap-vxlan-no-fib":           {"0 sent, 0 consumed, 1 dropped vrf_invalid+1"},
	"decap-vxlan-vni-unknown":      {"0 sent, 0 consumed, 1 dropped vni_unknown+1"},
	"decap-vxlan-vrf2":             {"1 sent, 0 consumed, 0 dropped"},
	"discard":                      {"0 sent, 0 consumed, 1 dropped nh_discard+1"},
	"echo-gateway":                 {"1 sent, 0 consumed, 0 dropped"},
	"encap-ecmp-1":                 {"1 sent, 0 consumed, 0 dropped"},
	"encap-ecmp-2":                 {"1 sent, 0 consumed, 0 dropped"},
	"encap-mplsoudp":               {"1 sent, 0 consumed, 0 dropped"},
	"encap-vxlan":                  {"1 sent, 0 consumed, 0 dropped"},
	"eth-truncated":                {"0 sent, 0 consumed, 1 dropped eth_truncated+1"},
	"fabric-arp-reply":             {"1 sent, 0 consumed, 0 dropped"},
	"fabric-arp-request":           {"1 sent, 0 consumed, 0 dropped"},
	"fabric-echo":                  {"1 sent, 0 consumed, 0 dropped"},
	"host-to-pod":                  {"1 sent, 0 consumed, 0 dropped"},
	"ip-checksum":                  {"0 sent, 0 consumed, 1 dropped ip_checksum+1"},
	"ip-ihl":                       {"0 sent, 0 consumed, 1 dropped ip_ihl+1"},
	"ip-options":                   {"1 sent, 0 consumed, 0 dropped"},
	"ip-total-length":              {"0 sent, 0 consumed, 1 dropped ip_total_length+1"},
	"ip-truncated":                 {"0 sent, 0 consumed, 1 dropped ip_truncated+1"},
	"ip-version":                   {"0 sent, 0 consumed, 1 dropped ip_version+1"},
	"ipv6":                         {"0 sent, 0 consumed, 1 dropped ip_version+1"},
	"ipv6-pod-to-pod":              {"1 sent, 0 consumed, 0 dropped"},
	"ipv6-padded":                  {"1 sent, 0 consumed, 0 dropped"},
	"ipv6-ext-header":              {"1 sent, 0 consumed, 0 dropped"},
	"ipv6-encap-vxlan":             {"1 sent, 0 consumed, 0 dropped"},
	"ipv6-encap-mplsoudp":          {"1 sent, 0 consumed, 0 dropped"},
	"ipv6-hop-limit-1":             {"1 sent, 0 consumed, 1 dropped ttl_exceeded+1"},
	"ipv6-too-big":                 {"1 sent, 0 consumed, 1 dropped too_big+1"},
	"ipv6-echo-gateway":            {"1 sent, 0 consumed, 0 dropped"},
	"ipv6-echo-link-local":         {"1 sent, 0 consumed, 0 dropped"},
	"ipv6-ns":                      {"1 sent, 0 consumed, 0 dropped"},
	"ipv6-ns-dad":                  {"0 sent, 0 consumed, 1 dropped nd_ignored+1"},
	"ipv6-ns-hop-limit":            {"0 sent, 0 consumed, 1 dropped nd_malformed+1"},
	"ipv6-rs":                      {"1 sent, 0 consumed, 0 dropped"},
	"ipv6-rs-unspecified":          {"1 sent, 0 consumed, 0 dropped"},
	"ipv6-rs-option-length":        {"0 sent, 0 consumed, 1 dropped nd_malformed+1"},
	"ipv6-rs-no-tailroom":          {"0 sent, 0 consumed, 1 dropped no_tailroom+1"},
	"ipv6-spoof":                   {"0 sent, 0 consumed, 1 dropped spoof_ip+1"},
	"ipv6-link-scope":              {"0 sent, 0 consumed, 1 dropped ip6_link_scope+1"},
	"ipv6-truncated":               {"0 sent, 0 consumed, 1 dropped ip6_truncated+1"},
	"ipv6-payload-length":          {"0 sent, 0 consumed, 1 dropped ip6_payload_length+1"},
	"ipv6-decap-vxlan":             {"1 sent, 0 consumed, 0 dropped"},
	"ipv6-decap-mplsoudp":          {"1 sent, 0 consumed, 0 dropped"},
	"ipv6-host-ns":                 {"1 sent, 0 consumed, 0 dropped"},
	"ipv6-host-to-pod":             {"1 sent, 0 consumed, 0 dropped"},
	"l2-not-for-us":                {"0 sent, 0 consumed, 1 dropped l2_not_for_us+1"},
	"lldp":                         {"0 sent, 0 consumed, 1 dropped ethertype_unsupported+1"},
	"neigh-resolved":               {"1 sent, 0 consumed, 0 dropped"},
	"neigh-unresolved":             {"1 sent, 0 consumed, 1 dropped neigh_unresolved+1"},
	"neigh-unresolved-twice":       {"1 sent, 0 consumed, 1 dropped neigh_unresolved+1", "0 sent, 0 consumed, 1 dropped neigh_unresolved+1"},
	"no-route":                     {"0 sent, 0 consumed, 1 dropped no_route+1"},
	"padded":                       {"1 sent, 0 consumed, 0 dropped"},
	"pod-c-echo":                   {"1 sent, 0 consumed, 0 dropped"},
	"pod-c-too-big":                {"1 sent, 0 consumed, 1 dropped too_big+1"},
	"pod-to-pod":                   {"1 sent, 0 consumed, 0 dropped"},
	"pod-to-pod-tcp":               {"1 sent, 0 consumed, 0 dropped"},
	"punt-host":                    {"1 sent, 0 consumed, 0 dropped"},
	"spoof-ip":                     {"0 sent, 0 consumed, 1 dropped spoof_ip+1"},
	"spoof-mac":                    {"0 sent, 0 consumed, 1 dropped spoof_mac+1"},
	"too-big-df":                   {"1 sent, 0 consumed, 1 dropped too_big+1"},
	"ttl-0":                        {"1 sent, 0 consumed, 1 dropped ttl_exceeded+1"},
	"ttl-1":                        {"1 sent, 0 consumed, 1 dropped ttl_exceeded+1"},
	"ttl-1-no-icmp":                {"0 sent, 0 consumed, 1 dropped ttl_exceeded+1"},
	"xconnect":                     {"1 sent, 0 consumed, 0 dropped"},
	"u6-encap-vxlan":               {"1 sent, 0 consumed, 0 dropped"},
	"u6-encap-vxlan-ipv6":          {"1 sent, 0 consumed, 0 dropped"},
	"u6-encap-mplsogre":            {"1 sent, 0 consumed, 0 dropped"},
	"u6-encap-odd":                 {"1 sent, 0 consumed, 0 dropped"},
	"u6-too-big-df":                {"1 sent, 0 consumed, 1 dropped too_big+1"},
	"u6-neigh-unresolved":          {"1 sent, 0 consumed, 1 dropped neigh_unresolved+1"},
	"u6-neigh-resolved":            {"1 sent, 0 consumed, 0 dropped"},
	"u6-neigh-unresolved-twice":    {"1 sent, 0 consumed, 1 dropped neigh_unresolved+1", "0 sent, 0 consumed, 1 dropped neigh_unresolved+1"},
	"u6-decap-vxlan":               {"1 sent, 0 consumed, 0 dropped"},
	"u6-decap-vxlan-ipv6":          {"1 sent, 0 consumed, 0 dropped"},
	"u6-decap-mplsoudp":            {"1 sent, 0 consumed, 0 dropped"},
	"u6-decap-mplsogre":            {"1 sent, 0 consumed, 0 dropped"},
	"u6-decap-udp-checksum":        {"0 sent, 0 consumed, 1 dropped udp_checksum+1"},
	"u6-decap-udp-zero-checksum":   {"0 sent, 0 consumed, 1 dropped udp6_zero_checksum+1"},
	"u6-decap-udp-truncated":       {"0 sent, 0 consumed, 1 dropped udp_truncated+1"},
	"u6-fabric-ns":                 {"1 sent, 0 consumed, 0 dropped"},
	"u6-fabric-na":                 {"1 sent, 0 consumed, 0 dropped"},
	"u6-fabric-nd-options":         {"1 sent, 0 consumed, 0 dropped"},
	"u6-fabric-echo":               {"1 sent, 0 consumed, 0 dropped"},
}

var verboseFate = regexp.MustCompile(`^fuzz_fastpath: 1 in: (.*)$`)

// TestSeedFates runs every one-by-one seed once through the sanitizer build
// and checks what became of each frame.
func TestSeedFates(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the fuzzer")
	}
	bin := harness(t)
	names := make([]string, 0, len(seedFates))
	for n := range seedFates {
		names = append(names, n)
	}
	sort.Strings(names)
	args := make([]string, len(names))
	for i, n := range names {
		args[i] = filepath.Join("corpus", n)
	}
	// One process: libFuzzer runs each file in turn, after "Running: FILE".
	// -detect_leaks=0: libFuzzer runs an input a second time when it
	// suspects a leak, and that second fate line would be counted here;
	// leaks are the fuzzing runs' job (TestFuzz, make fuzz).
	cmd := exec.Command(bin, append([]string{"-detect_leaks=0"}, args...)...)
	cmd.Env = append(os.Environ(), "FUZZ_VERBOSE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, tail(out, 40))
	}
	got := map[string][]string{}
	cur := ""
	for _, line := range strings.Split(string(out), "\n") {
		if f, ok := strings.CutPrefix(line, "Running: "); ok {
			cur = filepath.Base(f)
		} else if m := verboseFate.FindStringSubmatch(line); m != nil && cur != "" {
			got[cur] = append(got[cur], m[1])
		}
	}
	for _, n := range names {
		if fmt.Sprint(got[n]) != fmt.Sprint(seedFates[n]) {
			t.Errorf("seed %s: got %q, want %q", n, got[n], seedFates[n])
		}
	}
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
	bin := harness(t)
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
