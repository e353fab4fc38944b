// Package statefile keeps the agent's small JSON state files crash-safe:
// a write goes to a temporary file in the same directory, is synced,
// renamed over the real one and the directory synced, so a reader sees the
// old file or the new one, never a torn one. Temporary files a crash left
// behind are ignored (and removed by Clean).
package statefile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const tmpSuffix = ".tmp-"

// Save writes v as JSON to path atomically.
func Save(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+tmpSuffix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename: nothing to remove
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Load reads path into v; a missing file is ok (false) and leaves v alone.
func Load(path string, v any) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return true, nil
}

// Clean removes the temporary files of path that a crash left behind.
func Clean(path string) {
	m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), filepath.Base(path)+tmpSuffix+"*"))
	for _, f := range m {
		if strings.Contains(filepath.Base(f), tmpSuffix) {
			_ = os.Remove(f)
		}
	}
}
