package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/filament-net/filament/perf/trafficgen"
)

// TestProfileStreams: each profile stream is the flags' stream with the
// keys it gives changed, and becomes a stream of its own.
func TestProfileStreams(t *testing.T) {
	p := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(p, []byte(`# two streams
streams:
  - dst: 16.0.0.1-16.0.0.10
    dst_step: 256
    flows: 10
    size: imix
  - {tx_port: 1, src: 10.0.0.2, proto: tcp, size: "128,512", sport: 2000-2999}
  - {encap: vxlan, vni: 7, outer_dst: 192.0.2.9, size: 256}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	var tr traffic
	tr.ports = portList{"a", "b"}
	tr.spec = streamSpec{SMAC: "02:00:00:00:00:01", DMAC: "02:00:00:00:00:02", Src: "10.0.0.1", Dst: "10.0.1.1",
		SrcStep: 1, DstStep: 1, SPort: "1024", DPort: "1024", Proto: "udp", Flows: 1, Sizes: "64",
		OuterSrc: "192.0.2.1", OuterDst: "192.0.2.2", VNI: 100, Label: 100}
	tr.profile = p
	ss, err := tr.streams()
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 3 {
		t.Fatalf("%d streams, want 3", len(ss))
	}
	a, b, c := ss[0], ss[1], ss[2]
	if a.Port != 0 || a.Src.Lo != netip.MustParseAddr("10.0.0.1") || a.Dst.Hi != netip.MustParseAddr("16.0.0.10") ||
		a.Dst.Step != 256 || a.Flows != 10 || len(a.Sizes) != len(trafficgen.IMIX) || a.Proto != "udp" ||
		a.DstMAC.String() != "02:00:00:00:00:02" {
		t.Errorf("stream 0: %+v", a)
	}
	if b.Port != 1 || b.Src.Lo != netip.MustParseAddr("10.0.0.2") || b.Dst.Lo != netip.MustParseAddr("10.0.1.1") ||
		b.Proto != "tcp" || len(b.Sizes) != 2 || b.Sizes[1] != 512 || b.SrcPort.Lo != 2000 || b.SrcPort.Hi != 2999 ||
		b.Flows != 1 || b.Encap != nil {
		t.Errorf("stream 1: %+v", b)
	}
	if c.Encap == nil || c.Encap.Kind != "vxlan" || c.Encap.VNI != 7 || c.Encap.Dst != netip.MustParseAddr("192.0.2.9") ||
		c.Encap.Src != netip.MustParseAddr("192.0.2.1") || c.Sizes[0] != 256 {
		t.Errorf("stream 2: %+v encap %+v", c, c.Encap)
	}
	// The flags' stream is left as it was.
	if tr.spec.Dst != "10.0.1.1" || tr.spec.Flows != 1 {
		t.Errorf("defaults changed: %+v", tr.spec)
	}
}
