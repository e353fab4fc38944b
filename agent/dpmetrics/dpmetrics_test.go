package dpmetrics

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Without a dataplane a scrape succeeds with up 0 and nothing else (the
// counters with a dataplane are checked end to end in agent/e2e).
func TestDataplaneDown(t *testing.T) {
	c := New(filepath.Join(t.TempDir(), "missing.sock"), time.Second, func() map[string]Pod { return nil }, zap.NewNop())
	defer c.Close()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(fams) != 1 || fams[0].GetName() != "filament_dataplane_up" || len(fams[0].GetMetric()) != 1 ||
		fams[0].GetMetric()[0].GetGauge().GetValue() != 0 {
		t.Errorf("gathered %v, want only filament_dataplane_up 0", fams)
	}
}
