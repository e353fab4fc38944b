package docs

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dropReasons are the counter names of dpdk/fastpath/fp_drop.h, read from
// the header itself (plain Go: no DPDK needed to check the docs).
func dropReasons(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../dpdk/fastpath/fp_drop.h")
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	var names []string
	for _, m := range regexp.MustCompile(`\bX\s*\(\s*[A-Z0-9_]+\s*,\s*"([^"]*)"\s*\)`).FindAllStringSubmatch(src, -1) {
		names = append(names, m[1])
	}
	// Every X( entry must have parsed: a reason written another way would
	// otherwise escape the check.
	if n := len(regexp.MustCompile(`\bX\s*\(`).FindAllString(src, -1)); n != len(names) || n < 40 {
		t.Fatalf("fp_drop.h: %d X( entries, %d parsed as X(ENUM, \"name\"): fix the parser", n, len(names))
	}
	return names
}

// section returns a "## title" section of a markdown file, up to the next
// "## " heading.
func section(t *testing.T, file, title string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n## "+title+"\n")
	if !ok {
		t.Fatalf("%s: no section %q", file, "## "+title)
	}
	body, _, _ := strings.Cut(rest, "\n## ")
	return body
}

// TestEveryDropReasonDocumented fails when the fast path counts a drop
// reason that the troubleshooting table of operations.md does not
// explain, or when the table names one the fast path no longer has.
func TestEveryDropReasonDocumented(t *testing.T) {
	code := dropReasons(t)
	body := section(t, "operations.md", "Troubleshooting by drop reason")
	name := regexp.MustCompile("`([a-z0-9_]+)`")
	var documented []string
	for _, line := range strings.Split(body, "\n") {
		cells := strings.Split(line, "|")
		if !strings.HasPrefix(line, "|") || len(cells) < 3 {
			continue
		}
		for _, m := range name.FindAllStringSubmatch(cells[1], -1) {
			documented = append(documented, m[1])
		}
	}
	for _, r := range code {
		if !slices.Contains(documented, r) {
			t.Errorf("drop reason %q (dpdk/fastpath/fp_drop.h) has no row in operations.md, \"Troubleshooting by drop reason\"", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(code, r) {
			t.Errorf("operations.md, \"Troubleshooting by drop reason\", explains %q, which dpdk/fastpath/fp_drop.h does not count", r)
		}
	}
}
