package latplot

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/filament-net/filament/perf/trafficgen"
)

func TestMergeAndCDF(t *testing.T) {
	a := []trafficgen.HistBin{{Ns: 500, Count: 1}, {Ns: 1500, Count: 2}}
	b := []trafficgen.HistBin{{Ns: 1500, Count: 1}, {Ns: 4000, Count: 4}}
	m := Merge(a, b)
	want := []trafficgen.HistBin{{Ns: 500, Count: 1}, {Ns: 1500, Count: 3}, {Ns: 4000, Count: 4}}
	if len(m) != len(want) {
		t.Fatalf("merged %v, want %v", m, want)
	}
	for i := range want {
		if m[i] != want[i] {
			t.Fatalf("merged %v, want %v", m, want)
		}
	}
	c := CDF(m)
	// 1, 4, 8 of 8 frames at 0.5, 1.5, 4 us
	if len(c) != 3 || c[0].X != 0.5 || c[0].Y != 0.125 || c[1].X != 1.5 || c[1].Y != 0.5 || c[2].X != 4 || c[2].Y != 1 {
		t.Fatalf("CDF %v", c)
	}
	if CDF(nil) != nil || CDF([]trafficgen.HistBin{{Ns: 1, Count: 0}}) != nil {
		t.Fatal("an empty histogram has no CDF")
	}
}

func TestSave(t *testing.T) {
	f := filepath.Join(t.TempDir(), "cdf.png")
	if ok, err := Save(f, "empty", []Line{{Name: "none"}}); ok || err != nil {
		t.Fatalf("nothing to draw: drew %v, %v", ok, err)
	}
	if _, err := os.Stat(f); err == nil {
		t.Fatal("a file without a line")
	}
	ok, err := Save(f, "two", []Line{{Name: "a", Hist: []trafficgen.HistBin{{Ns: 800, Count: 3}}},
		{Name: "b", Hist: []trafficgen.HistBin{{Ns: 900, Count: 1}, {Ns: 20000, Count: 1}}}})
	if !ok || err != nil {
		t.Fatalf("drew %v, %v", ok, err)
	}
	r, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if cfg, err := png.DecodeConfig(r); err != nil || cfg.Width < 500 || cfg.Height < 300 {
		t.Fatalf("PNG %+v %v", cfg, err)
	}
}
