package statefile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "s.json")
	var v map[string]int
	if ok, err := Load(p, &v); ok || err != nil {
		t.Fatalf("missing file: %v %v", ok, err)
	}
	if err := Save(p, map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	if err := Save(p, map[string]int{"a": 2}); err != nil {
		t.Fatal(err)
	}
	if ok, err := Load(p, &v); !ok || err != nil || v["a"] != 2 {
		t.Fatalf("load: %v %v %v", ok, err, v)
	}
	// no temporary file left, and a torn one is cleaned
	m, _ := filepath.Glob(p + ".tmp-*")
	if len(m) != 0 {
		t.Errorf("left behind: %v", m)
	}
	torn := p + ".tmp-42"
	if err := os.WriteFile(torn, []byte(`{"a":`), 0o600); err != nil {
		t.Fatal(err)
	}
	Clean(p)
	if _, err := os.Stat(torn); !os.IsNotExist(err) {
		t.Errorf("torn file kept: %v", err)
	}
	if ok, _ := Load(p, &v); !ok || v["a"] != 2 {
		t.Errorf("after clean: %v", v)
	}
}
