// Command filament-dataplane runs Filament's DPDK fast path on one node,
// programmed from a YAML configuration file (see package dpdk/config and
// deploy/demo/ for examples).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/filament-net/filament/dpdk/config"
	"github.com/filament-net/filament/dpdk/fastpath"
)

const usage = `Usage: filament-dataplane --config FILE [flags]

Runs Filament's DPDK fast path: starts DPDK's EAL on the lcores of the
configuration (the first one is the control thread, every other one a
forwarding loop), adds the ports, the vRouter's address in each VRF (the
source of its ICMP errors), the next-hops, routes, VNI and label maps it
lists, logs "dataplane ready", then forwards until SIGTERM or SIGINT, when it
logs the final port, drop and lcore counters, closes DPDK and exits 0.

Memory: with eal.no_huge false (the default) DPDK runs on private hugepages
(--in-memory) and the dataplane refuses to start on a machine that has none
(set them up with scripts/hugepages.sh as root); with eal.no_huge true it
runs on eal.memory_mb MiB of ordinary memory (--no-huge -m), slower.

Exit status: 0 after a clean shutdown (or a valid --check), 1 on an invalid
configuration or a failure to start, 2 on bad flags.

Flags:
`

type options struct {
	config        string
	check         bool
	statsInterval time.Duration
	logLevel      string
	logFormat     string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func parseFlags(args []string, stderr io.Writer) (*options, int) {
	var o options
	fs := flag.NewFlagSet("filament-dataplane", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.config, "config", "", "the node's YAML `file` (required)")
	fs.BoolVar(&o.check, "check", false, "validate the configuration, print what would run, and exit 0 (valid) or 1")
	fs.DurationVar(&o.statsInterval, "stats-interval", 10*time.Second,
		"log the port and drop counters that changed, this often (0: only at shutdown)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "console", "console or json")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, 0
		}
		return nil, 2
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "filament-dataplane: unexpected arguments %q (see --help)\n", fs.Args())
		return nil, 2
	case o.config == "":
		fmt.Fprintln(stderr, "filament-dataplane: --config FILE is required (see --help)")
		return nil, 2
	case o.statsInterval < 0:
		fmt.Fprintln(stderr, "filament-dataplane: --stats-interval must not be negative")
		return nil, 2
	}
	return &o, -1
}

func newLogger(o *options, stderr io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(o.logLevel)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	ec.EncodeDuration = zapcore.StringDurationEncoder
	var enc zapcore.Encoder
	switch o.logFormat {
	case "console":
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	case "json":
		enc = zapcore.NewJSONEncoder(ec)
	default:
		return nil, fmt.Errorf("--log-format %q: console or json", o.logFormat)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(stderr)), lvl)), nil
}

func run(args []string, stdout, stderr io.Writer) int {
	o, code := parseFlags(args, stderr)
	if o == nil {
		return code
	}
	cfg, err := config.Load(o.config)
	if o.check {
		return check(cfg, err, stdout, stderr)
	}
	log, lerr := newLogger(o, stderr)
	if lerr != nil {
		fmt.Fprintf(stderr, "filament-dataplane: %v\n", lerr)
		return 2
	}
	defer log.Sync() //nolint:errcheck // stderr
	if err != nil {
		log.Error("invalid configuration", zap.Strings("errors", strings.Split(err.Error(), "\n")))
		return 1
	}

	// Signals are caught from here on: one during start-up stops it at the
	// next step, a second one exits at once.
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	go func() {
		s, ok := <-sigs
		if !ok {
			return
		}
		log.Info("signal received, shutting down", zap.Stringer("signal", s))
		cancel(fmt.Errorf("signal %v", s))
		if s, ok = <-sigs; ok {
			log.Error("second signal, exiting without cleanup", zap.Stringer("signal", s))
			os.Exit(1)
		}
	}()

	return serve(ctx, log, o, cfg)
}

func check(cfg *config.Config, err error, stdout, stderr io.Writer) int {
	if err != nil {
		fmt.Fprintf(stderr, "filament-dataplane: invalid configuration:\n%v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "configuration OK: %s\n", cfg.Summary())
	fmt.Fprintf(stdout, "EAL arguments: %s (%d forwarding lcores)\n", strings.Join(cfg.EALArgs(), " "), cfg.Workers())
	if !cfg.EAL.NoHuge {
		if free, mounted := fastpath.HugepagesFree(); free == 0 || !mounted {
			fmt.Fprintf(stdout, "note: this machine has no free hugepages (free %d, hugetlbfs mounted %v): "+
				"starting here would fail unless eal.no_huge is true\n", free, mounted)
		}
	}
	return 0
}

func serve(ctx context.Context, log *zap.Logger, o *options, cfg *config.Config) (code int) {
	fc := cfg.FastpathConfig()
	log.Info("starting the fast path",
		zap.String("config", o.config), zap.String("contents", cfg.Summary()),
		zap.Strings("eal_args", fc.EALArgs), zap.Bool("hugepages", !cfg.EAL.NoHuge))
	start := time.Now()
	dp, err := fastpath.Start(fc)
	if err != nil {
		log.Error("cannot start the fast path", zap.Error(err))
		return 1
	}
	defer func() {
		if !closeWithin(log, dp, 10*time.Second) {
			code = 1
		}
	}()

	ports, err := cfg.Apply(ctx, dp)
	switch {
	case ctx.Err() != nil:
		log.Info("start-up interrupted", zap.NamedError("cause", context.Cause(ctx)))
		return 0
	case err != nil:
		log.Error("cannot apply the configuration", zap.Error(err))
		return 1
	}
	for _, p := range ports {
		mac, _ := dp.PortMAC(p.ID)
		log.Info("port up", zap.String("port", p.Name), zap.Uint16("id", uint16(p.ID)),
			zap.Stringer("kind", p.Kind), zap.Stringer("device_mac", mac))
	}
	log.Info("dataplane ready", zap.Int("workers", dp.Workers()), zap.Int("ports", len(ports)),
		zap.Duration("startup", time.Since(start).Round(time.Millisecond)))

	st := newStats(dp, ports)
	if o.statsInterval > 0 {
		t := time.NewTicker(o.statsInterval)
		defer t.Stop()
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case <-t.C:
				st.logChanged(log)
			}
		}
	} else {
		<-ctx.Done()
	}
	st.logFinal(log)
	return 0
}

// closeWithin closes the dataplane, giving up (false) after d: a worker
// that never returns must not keep a stopping node from exiting.
func closeWithin(log *zap.Logger, dp *fastpath.Dataplane, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	done := make(chan struct{})
	go func() {
		dp.Close()
		close(done)
	}()
	select {
	case <-done:
		log.Info("dataplane closed")
		return true
	case <-ctx.Done():
		log.Error("dataplane did not close in time", zap.Duration("waited", d))
		return false
	}
}

// stats remembers the last counters logged, to log only what changed.
type stats struct {
	dp    *fastpath.Dataplane
	ports []config.AppliedPort
	last  map[fastpath.PortID]fastpath.PortStats
	drops map[string]uint64
}

func newStats(dp *fastpath.Dataplane, ports []config.AppliedPort) *stats {
	return &stats{dp: dp, ports: ports, last: map[fastpath.PortID]fastpath.PortStats{}, drops: map[string]uint64{}}
}

func portFields(p config.AppliedPort, s fastpath.PortStats) []zap.Field {
	return []zap.Field{
		zap.String("port", p.Name), zap.Stringer("kind", p.Kind),
		zap.Uint64("rx_packets", s.RxPackets), zap.Uint64("rx_bytes", s.RxBytes),
		zap.Uint64("tx_packets", s.TxPackets), zap.Uint64("tx_bytes", s.TxBytes),
		zap.Uint64("drops", s.Drops),
		// lost in or by the device, before or after the fast path
		zap.Uint64("dev_missed", s.DevMissed), zap.Uint64("dev_rx_nombuf", s.DevRxNoMbuf),
		zap.Uint64("dev_rx_errors", s.DevRxErrors), zap.Uint64("dev_tx_errors", s.DevTxErrors),
	}
}

// dropFields lists the non-zero drop counters, by reason, sorted.
func dropFields(m map[string]uint64, only func(string, uint64) bool) []zap.Field {
	var names []string
	for n, v := range m {
		if v != 0 && only(n, v) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	f := make([]zap.Field, 0, len(names))
	for _, n := range names {
		f = append(f, zap.Uint64(n, m[n]))
	}
	return f
}

func (s *stats) logChanged(log *zap.Logger) {
	for _, p := range s.ports {
		cur, err := s.dp.PortStats(p.ID)
		if err != nil {
			log.Warn("port counters", zap.String("port", p.Name), zap.Error(err))
			continue
		}
		if cur != s.last[p.ID] {
			log.Info("port counters", portFields(p, cur)...)
			s.last[p.ID] = cur
		}
	}
	drops := s.dp.Drops()
	if f := dropFields(drops, func(n string, v uint64) bool { return v != s.drops[n] }); len(f) > 0 {
		log.Info("drops", f...)
	}
	s.drops = drops
}

func (s *stats) logFinal(log *zap.Logger) {
	for _, p := range s.ports {
		cur, err := s.dp.PortStats(p.ID)
		if err != nil {
			log.Warn("final port counters", zap.String("port", p.Name), zap.Error(err))
			continue
		}
		log.Info("final port counters", portFields(p, cur)...)
	}
	f := dropFields(s.dp.Drops(), func(string, uint64) bool { return true })
	if len(f) == 0 {
		f = []zap.Field{zap.String("total", "none")}
	}
	log.Info("final drops", f...)
	for w := 0; w < s.dp.Workers(); w++ {
		l, err := s.dp.LcoreStats(w)
		if err != nil {
			continue
		}
		log.Info("final lcore counters", zap.Int("worker", w),
			zap.Uint64("polls", l.Polls), zap.Uint64("busy_polls", l.BusyPolls),
			zap.Uint64("sleeps", l.Sleeps), zap.Uint64("rx_packets", l.RxPackets),
			zap.Uint64("tx_packets", l.TxPackets), zap.Uint64("drops", l.Drops))
	}
}
