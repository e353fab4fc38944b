package frames

import (
	"bytes"
	"fmt"
	"strings"
)

// Diff compares two frames: "" when they are byte for byte equal, else a
// readable report: the decoded fields that differ (in wire order), the first
// differing byte, and hex dumps of both with differing lines marked.
func Diff(want, got []byte) string {
	if bytes.Equal(want, got) {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "frames differ (want %d bytes, got %d bytes)\n", len(want), len(got))
	wf, gf := Fields(want), Fields(got)
	gv := make(map[string]string, len(gf))
	for _, f := range gf {
		gv[f.Name] = f.Value
	}
	seen := make(map[string]bool, len(wf))
	for _, f := range wf {
		seen[f.Name] = true
		g, ok := gv[f.Name]
		switch {
		case !ok:
			fmt.Fprintf(&b, "  %-18s want %s, got (absent)\n", f.Name+":", f.Value)
		case g != f.Value:
			fmt.Fprintf(&b, "  %-18s want %s, got %s\n", f.Name+":", f.Value, g)
		}
	}
	for _, f := range gf {
		if !seen[f.Name] {
			fmt.Fprintf(&b, "  %-18s want (absent), got %s\n", f.Name+":", f.Value)
		}
	}
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	switch {
	case i < len(want) && i < len(got):
		fmt.Fprintf(&b, "  first difference at byte %d: want %#02x, got %#02x\n", i, want[i], got[i])
	default:
		fmt.Fprintf(&b, "  equal for %d bytes, then one ends\n", i)
	}
	b.WriteString("want:\n")
	hexdump(&b, want, got)
	b.WriteString("got:\n")
	hexdump(&b, got, want)
	return b.String()
}

// hexdump writes b, 16 bytes a line, marking with '*' lines that differ
// from other.
func hexdump(w *strings.Builder, b, other []byte) {
	const max = 512
	for off := 0; off < len(b) && off < max; off += 16 {
		end := min(off+16, len(b))
		mark := ' '
		if end > len(other) || !bytes.Equal(b[off:end], other[off:end]) {
			mark = '*'
		}
		fmt.Fprintf(w, " %c%04x ", mark, off)
		for i := off; i < end; i++ {
			fmt.Fprintf(w, " %02x", b[i])
		}
		w.WriteByte('\n')
	}
	if len(b) > max {
		fmt.Fprintf(w, "   ... %d more bytes\n", len(b)-max)
	}
}
