// Package cniconf publishes the node's CNI network configuration: the
// agent writes the conflist into the container runtime's configuration
// directory (/etc/cni/net.d) only while it can serve ADD, and removes it
// when it cannot (the dataplane gone for longer than a grace period, the
// agent stopping). The runtime reports the node's network not ready while
// its directory has no configuration, so kubelet never calls filament-cni
// with nobody behind it. With KeepOnExit an agent's restart (an upgrade)
// hands the file over instead: the stopping agent leaves it, the next
// keeps it for the grace while it becomes ready, so that the node does
// not turn NotReady for a restart of seconds.
package cniconf

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/filament-net/filament/agent/statefile"
)

// DefaultDir is where container runtimes read CNI configurations.
const DefaultDir = "/etc/cni/net.d"

// Options say what to publish where.
type Options struct {
	Dir     string        // the runtime's CNI configuration directory
	Name    string        // the file's name: *.conflist
	Network string        // the CNI network's name (the runtime's and filament-cni's cniNetwork)
	Socket  string        // the agent's CNI socket, as the host sees it
	Grace   time.Duration // how long the agent may be not ready before the file goes
	Poll    time.Duration // how often readiness is read
	// KeepOnExit: leave the file when Run ends (the next agent takes it
	// over), and at start keep a file found there for Grace while not
	// ready, instead of removing it at once.
	KeepOnExit bool
}

// Publisher writes and removes the file as readiness changes.
type Publisher struct {
	o       Options
	path    string
	log     *zap.Logger
	present prometheus.Gauge
}

// New checks the options.
func New(o Options, log *zap.Logger) (*Publisher, error) {
	switch {
	case !filepath.IsAbs(o.Dir):
		return nil, fmt.Errorf("cniconf: directory %q: want an absolute path", o.Dir)
	case o.Name != filepath.Base(o.Name) || !strings.HasSuffix(o.Name, ".conflist"):
		return nil, fmt.Errorf("cniconf: file name %q: want a *.conflist name, no directory", o.Name)
	case o.Network == "":
		return nil, errors.New("cniconf: empty network name")
	case !filepath.IsAbs(o.Socket):
		return nil, fmt.Errorf("cniconf: socket %q: want an absolute path", o.Socket)
	case o.Grace < 0 || o.Poll <= 0:
		return nil, fmt.Errorf("cniconf: grace %v, poll %v: want grace >= 0 and poll > 0", o.Grace, o.Poll)
	}
	return &Publisher{o: o, path: filepath.Join(o.Dir, o.Name), log: log.With(zap.String("cni_conf", filepath.Join(o.Dir, o.Name))),
		present: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "filament_agent_cni_config_present",
			Help: "1 while the agent's CNI configuration is in the runtime's directory (it can serve ADD).",
		})}, nil
}

// Path is the file's path.
func (p *Publisher) Path() string { return p.path }

// Collector is the gauge filament_agent_cni_config_present.
func (p *Publisher) Collector() prometheus.Collector { return p.present }

// Conflist is the configuration: filament-cni alone, talking to the
// agent's socket. cniVersions (CNI 1.1) lets a runtime that knows 1.1.0
// use it (STATUS, GC); an older one reads cniVersion.
func Conflist(network, socket string) map[string]any {
	return map[string]any{
		"cniVersion":  "1.0.0",
		"cniVersions": []string{"1.0.0", "1.1.0"},
		"name":        network,
		"plugins": []any{map[string]any{
			"type":     "filament-cni",
			"filament": map[string]any{"socket": socket},
		}},
	}
}

// Run publishes until ctx ends, then removes the file (unless
// KeepOnExit) and returns. ready says whether the agent can serve ADD
// now. A file left by a previous agent is removed at once (this agent is
// not ready yet), or with KeepOnExit kept for the grace and written again
// once ready.
func (p *Publisher) Run(ctx context.Context, ready func() bool) {
	statefile.Clean(p.path)
	present, adopted := false, false
	var notReadySince time.Time
	if _, err := os.Stat(p.path); err == nil && p.o.KeepOnExit {
		present, adopted, notReadySince = true, true, time.Now()
		p.present.Set(1)
		p.log.Info("CNI configuration of the previous agent kept while this one gets ready", zap.Duration("grace", p.o.Grace))
	} else {
		p.remove("left by a previous agent")
	}
	tick := time.NewTicker(p.o.Poll)
	defer tick.Stop()
	for {
		switch r := ready(); {
		case r:
			notReadySince = time.Time{}
			// Written again if someone removed it meanwhile, and once
			// over the previous agent's (this agent's socket and name).
			if _, err := os.Stat(p.path); !present || adopted || err != nil {
				present = p.write()
				adopted = false
			}
		case present && notReadySince.IsZero():
			notReadySince = time.Now()
		case present && time.Since(notReadySince) >= p.o.Grace:
			p.remove(fmt.Sprintf("not ready for %v", time.Since(notReadySince).Round(time.Millisecond)))
			present = false
		}
		select {
		case <-ctx.Done():
			if p.o.KeepOnExit && present {
				p.log.Info("CNI configuration left for the next agent", zap.Duration("its_grace", p.o.Grace))
				return
			}
			p.remove("the agent stops")
			return
		case <-tick.C:
		}
	}
}

// write puts the file in place atomically (temporary file, fsync, rename,
// fsync of the directory): the runtime never reads half of it.
func (p *Publisher) write() bool {
	if err := statefile.Save(p.path, Conflist(p.o.Network, p.o.Socket)); err != nil {
		p.log.Error("cannot write the CNI configuration", zap.Error(err))
		return false
	}
	p.present.Set(1)
	p.log.Info("CNI configuration written: the node takes pods")
	return true
}

func (p *Publisher) remove(why string) {
	p.present.Set(0)
	err := os.Remove(p.path)
	switch {
	case err == nil:
		p.log.Info("CNI configuration removed", zap.String("why", why))
	case !errors.Is(err, fs.ErrNotExist):
		p.log.Error("cannot remove the CNI configuration", zap.String("why", why), zap.Error(err))
	}
}
