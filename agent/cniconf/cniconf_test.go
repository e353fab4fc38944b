package cniconf

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"
)

// waitPresence polls until the file's presence is want, or fails after d.
func waitPresence(t *testing.T, path string, want bool, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		_, err := os.Stat(path)
		if (err == nil) == want {
			return
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s present=%v after %v, want %v", path, err == nil, d, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitGauge polls g until it reads want: the publisher sets it just after
// the file appears or goes.
func waitGauge(t *testing.T, g prometheus.Collector, want float64) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for v := testutil.ToFloat64(g); v != want; v = testutil.ToFloat64(g) {
		if time.Now().After(deadline) {
			t.Fatalf("filament_agent_cni_config_present %v after 1s, want %v", v, want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPublish(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "net.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A file a dead agent left, and a torn temporary one.
	stale := filepath.Join(dir, "10-filament.conflist")
	for _, f := range []string{stale, stale + ".tmp-123"} {
		if err := os.WriteFile(f, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const grace = 300 * time.Millisecond
	p, err := New(Options{Dir: dir, Name: "10-filament.conflist", Network: "filament", Socket: "/run/filament/cni.sock",
		Grace: grace, Poll: 10 * time.Millisecond}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	var ready atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx, ready.Load); close(done) }()

	// Not ready: the stale files go, no file comes.
	waitPresence(t, stale, false, time.Second)
	waitPresence(t, stale+".tmp-123", false, time.Second)
	time.Sleep(100 * time.Millisecond) // ten polls: it must stay absent
	waitPresence(t, stale, false, 0)

	ready.Store(true)
	waitPresence(t, stale, true, time.Second)
	list, err := libcni.ConfListFromFile(stale)
	if err != nil {
		t.Fatalf("libcni: %v", err)
	}
	if list.Name != "filament" || len(list.Plugins) != 1 || list.Plugins[0].Network.Type != "filament-cni" {
		t.Fatalf("conflist %+v", list)
	}
	if got := string(list.Plugins[0].Bytes); !strings.Contains(got, `"socket":"/run/filament/cni.sock"`) {
		t.Errorf("plugin configuration %s: want the agent's socket", got)
	}
	if fi, _ := os.Stat(stale); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	waitGauge(t, p.Collector(), 1)

	// Not ready for less than the grace: the file stays.
	ready.Store(false)
	time.Sleep(grace / 3)
	ready.Store(true)
	time.Sleep(grace)
	waitPresence(t, stale, true, 0)

	// Not ready for longer: removed within the grace and a few polls.
	ready.Store(false)
	start := time.Now()
	waitPresence(t, stale, false, 2*grace)
	if d := time.Since(start); d < grace {
		t.Errorf("removed after %v, before the grace %v", d, grace)
	}
	waitGauge(t, p.Collector(), 0)

	// Ready again: back; removed by hand meanwhile: written again.
	ready.Store(true)
	waitPresence(t, stale, true, time.Second)
	if err := os.Remove(stale); err != nil {
		t.Fatal(err)
	}
	waitPresence(t, stale, true, time.Second)

	// The agent stops: removed before Run returns.
	cancel()
	<-done
	waitPresence(t, stale, false, 0)
	if m, _ := filepath.Glob(filepath.Join(dir, "*")); len(m) != 0 {
		t.Errorf("left in the directory: %v", m)
	}
}

func TestNewRefuses(t *testing.T) {
	ok := Options{Dir: "/etc/cni/net.d", Name: "10-filament.conflist", Network: "filament", Socket: "/run/filament/cni.sock",
		Grace: time.Second, Poll: time.Second}
	for name, mod := range map[string]func(*Options){
		"relative dir":    func(o *Options) { o.Dir = "net.d" },
		"not a conflist":  func(o *Options) { o.Name = "10-filament.conf" },
		"a path":          func(o *Options) { o.Name = "x/10-filament.conflist" },
		"no network":      func(o *Options) { o.Network = "" },
		"relative socket": func(o *Options) { o.Socket = "cni.sock" },
		"negative grace":  func(o *Options) { o.Grace = -1 },
		"zero poll":       func(o *Options) { o.Poll = 0 },
	} {
		o := ok
		mod(&o)
		if _, err := New(o, zaptest.NewLogger(t)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(ok, zaptest.NewLogger(t)); err != nil {
		t.Error(err)
	}
}

// TestKeepOnExit: an agent's restart hands the file over. The stopping
// agent leaves it; the next keeps a file it finds for the grace while not
// ready, writes its own once ready, and removes it if not ready within
// the grace.
func TestKeepOnExit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "10-filament.conflist")
	if err := os.WriteFile(path, []byte(`{"left": "by the previous agent"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	const grace = 300 * time.Millisecond
	run := func() (*Publisher, *atomic.Bool, func()) {
		p, err := New(Options{Dir: dir, Name: "10-filament.conflist", Network: "filament", Socket: "/run/filament/cni.sock",
			Grace: grace, Poll: 10 * time.Millisecond, KeepOnExit: true}, zaptest.NewLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		ready := new(atomic.Bool)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { p.Run(ctx, ready.Load); close(done) }()
		return p, ready, func() { cancel(); <-done }
	}

	// Found at start, not ready yet: kept (and counted as present).
	p, ready, stop := run()
	time.Sleep(grace / 3) // a third of the grace: it must still be there
	waitPresence(t, path, true, 0)
	waitGauge(t, p.Collector(), 1)
	// Ready: this agent's own configuration replaces it.
	ready.Store(true)
	deadline := time.Now().Add(time.Second)
	for {
		if list, err := libcni.ConfListFromFile(path); err == nil && list.Name == "filament" {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(path)
			t.Fatalf("not rewritten once ready: %s", b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Stopped: left for the next agent.
	stop()
	waitPresence(t, path, true, 0)

	// The next agent never gets ready: removed once the grace is over,
	// not before.
	start := time.Now()
	_, _, stop = run()
	defer stop()
	waitPresence(t, path, false, 2*grace+time.Second)
	if d := time.Since(start); d < grace {
		t.Errorf("removed after %v, before the grace %v", d, grace)
	}
}
