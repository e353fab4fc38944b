// Command filament-dataplane runs Filament's DPDK fast path on one node:
// it programs it from a YAML configuration file (see package dpdk/config and
// deploy/demo/ for examples), then serves the dataplane's gRPC API
// (dpdk/api/dataplane/v1) on a unix socket for the agent and filamentctl.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"

	"github.com/filament-net/filament/dpdk/apiclient"
	"github.com/filament-net/filament/dpdk/apiserver"
	"github.com/filament-net/filament/dpdk/config"
	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/dpdk/hugepages"
)

const usage = `Usage: filament-dataplane --config FILE [--socket PATH] [flags]

Runs Filament's DPDK fast path: starts DPDK's EAL on the lcores of the
configuration (the first one is the control thread, every other one a
forwarding loop), adds the ports, the vRouter's address in each VRF (the
source of its ICMP errors), the next-hops, routes, VNI and label maps it
lists, then serves the dataplane API (gRPC) on a unix socket, logs
"dataplane ready" and forwards until SIGTERM or SIGINT. Then it stops
serving (in-flight calls get a few seconds to finish), logs the final
port, drop and lcore counters, closes DPDK and exits 0.

The API socket (--socket, else the configuration's api.socket, else
/run/filament/dataplane.sock) is created mode 0600, in a directory created
0700 if missing; a stale socket file (nothing listens on it) is replaced, a
live one means another dataplane runs and this one refuses to start. What
the configuration programs is part of the API's state: filamentctl lists
it, and the agent may change or delete it like anything it programmed.

Memory: with eal.no_huge false (the default) DPDK runs on private hugepages
(--in-memory) and the dataplane refuses to start on a machine that has none
(set them up with scripts/hugepages.sh as root); with eal.no_huge true it
runs on eal.memory_mb MiB of ordinary memory (--no-huge -m), slower.

Exit status: 0 after a clean shutdown (or a valid --check), 1 on an invalid
configuration or a failure to start, 2 on bad flags.

Flags:
`

// version is the build's, set with -ldflags "-X main.version=...".
var version = "dev"

// apiStopTimeout is how long in-flight API calls get at shutdown.
const apiStopTimeout = 5 * time.Second

type options struct {
	config        string
	socket        string // "" unless --socket was given
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
	fs.StringVar(&o.socket, "socket", "",
		"serve the API on this unix socket `path` (default: the configuration's api.socket, "+config.DefaultSocket+")")
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
	socketSet := false
	fs.Visit(func(f *flag.Flag) { socketSet = socketSet || f.Name == "socket" })
	if socketSet {
		if err := config.CheckSocketPath(o.socket); err != nil {
			fmt.Fprintf(stderr, "filament-dataplane: --socket: %v\n", err)
			return nil, 2
		}
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
	if err == nil && o.socket != "" {
		cfg.API.Socket = o.socket
	}
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
	fmt.Fprintf(stdout, "API socket: %s\n", cfg.API.Socket)
	if !cfg.EAL.NoHuge {
		if free, mounted := hugepages.Free(); free == 0 || !mounted {
			fmt.Fprintf(stdout, "note: this machine has no free hugepages (free %d, hugetlbfs mounted %v): "+
				"starting here would fail unless eal.no_huge is true\n", free, mounted)
		}
	}
	return 0
}

func serve(ctx context.Context, log *zap.Logger, o *options, cfg *config.Config) (code int) {
	sock := cfg.API.Socket
	// Before DPDK starts: a second dataplane on this socket stops here.
	if err := prepareSocket(sock); err != nil {
		log.Error("cannot serve the API", zap.String("socket", sock), zap.Error(err))
		return 1
	}
	fc := cfg.FastpathConfig()
	log.Info("starting the fast path",
		zap.String("config", o.config), zap.String("contents", cfg.Summary()),
		zap.Strings("eal_args", fc.EALArgs), zap.Bool("hugepages", !cfg.EAL.NoHuge))
	// The fast path's own refusal names EAL's flags; this daemon is told
	// by its configuration, so say which keys.
	if !cfg.EAL.NoHuge {
		if err := hugepages.Check(fc.EALArgs); err != nil {
			log.Error("cannot start the fast path", zap.Error(err), zap.String("hint",
				"this daemon takes --no-huge -m from its configuration: eal.no_huge: true and eal.memory_mb "+
					"(ordinary memory: slower, no memif or vhost-user)"))
			return 1
		}
	}
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
	ids := map[string]fastpath.PortID{}
	for _, p := range ports {
		ids[p.Name] = p.ID
		mac, _ := dp.PortMAC(p.ID)
		log.Info("port up", zap.String("port", p.Name), zap.Uint16("id", uint16(p.ID)),
			zap.Stringer("kind", p.Kind), zap.Stringer("device_mac", mac))
	}

	api := apiserver.New(dp, apiserver.Options{Config: fc, Version: version, Log: log.Named("api")})
	if err := api.Seed(seedOps(cfg), ids); err != nil {
		log.Error("the configuration does not fit the API's model", zap.Error(err))
		return 1
	}
	lis, err := listenSocket(sock)
	if err != nil {
		log.Error("cannot serve the API", zap.String("socket", sock), zap.Error(err))
		return 1
	}
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(apiclient.MaxMessage), grpc.MaxSendMsgSize(apiclient.MaxMessage))
	api.Register(gs)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	log.Info("API serving", zap.String("socket", sock), zap.String("version", version))

	log.Info("dataplane ready", zap.Int("workers", dp.Workers()), zap.Int("ports", len(ports)),
		zap.Duration("startup", time.Since(start).Round(time.Millisecond)))

	st := newStats(dp, api)
	var tick <-chan time.Time
	if o.statsInterval > 0 {
		t := time.NewTicker(o.statsInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			stopAPI(log, gs, served, apiStopTimeout)
			st.logFinal(log)
			return 0
		case err := <-served:
			log.Error("the API server stopped", zap.Error(err))
			gs.Stop()
			st.logFinal(log)
			return 1
		case <-tick:
			st.logChanged(log)
		}
	}
}

// prepareSocket makes the socket's directory (0700) if it is missing and
// removes a stale socket: one nothing listens on. A live socket, or a file
// that is not a socket, is left alone and is an error.
func prepareSocket(path string) error {
	if err := config.CheckSocketPath(path); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.Mode()&fs.ModeSocket == 0:
		return fmt.Errorf("%s exists and is not a socket: not removing it", path)
	}
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s: another process listens on it (is another filament-dataplane running?)", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%s: cannot tell whether the socket is stale: %w", path, err)
	}
	return os.Remove(path)
}

// listenSocket creates the socket mode 0600: created under a umask that
// leaves nobody else a window, then chmod'ed to say so explicitly.
func listenSocket(path string) (net.Listener, error) {
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// stopAPI stops accepting connections, lets in-flight calls finish for up
// to d, then cuts the rest. The socket file is removed with the listener.
func stopAPI(log *zap.Logger, gs *grpc.Server, served <-chan error, d time.Duration) {
	done := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		log.Info("API stopped")
	case <-time.After(d):
		gs.Stop()
		<-done
		log.Warn("API stopped, in-flight calls cut", zap.Duration("waited", d))
	}
	if err := <-served; err != nil {
		log.Warn("API server", zap.Error(err))
	}
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
	api   *apiserver.Server // the ports, which the API may change
	last  map[string]fastpath.PortStats
	drops map[string]uint64
}

func newStats(dp *fastpath.Dataplane, api *apiserver.Server) *stats {
	return &stats{dp: dp, api: api, last: map[string]fastpath.PortStats{}, drops: map[string]uint64{}}
}

func portFields(p apiserver.PortRef, s fastpath.PortStats) []zap.Field {
	return []zap.Field{
		zap.String("port", p.Name), zap.Stringer("kind", p.Kind),
		zap.Uint64("rx_packets", s.RxPackets), zap.Uint64("rx_bytes", s.RxBytes),
		zap.Uint64("tx_packets", s.TxPackets), zap.Uint64("tx_bytes", s.TxBytes),
		zap.Uint64("drops", s.Drops),
		// lost in or by the device, before or after the fast path
		zap.Uint64("dev_missed", s.DevMissed), zap.Uint64("dev_rx_nombuf", s.DevRxNoMbuf),
		zap.Uint64("dev_rx_errors", s.DevRxErrors), zap.Uint64("dev_tx_errors", s.DevTxErrors),
		// memif: waits for the workers before a gone peer's rings were unmapped
		zap.Uint64("memif_unmap_waits", s.MemifUnmapWaits),
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
	seen := map[string]bool{}
	for _, p := range s.api.Ports() {
		seen[p.Name] = true
		cur, err := s.dp.PortStats(p.ID)
		if err != nil {
			continue // deleted meanwhile
		}
		if last, ok := s.last[p.Name]; !ok || cur != last {
			log.Info("port counters", portFields(p, cur)...)
			s.last[p.Name] = cur
		}
	}
	for name := range s.last {
		if !seen[name] {
			delete(s.last, name)
		}
	}
	drops := s.dp.Drops()
	if f := dropFields(drops, func(n string, v uint64) bool { return v != s.drops[n] }); len(f) > 0 {
		log.Info("drops", f...)
	}
	s.drops = drops
}

func (s *stats) logFinal(log *zap.Logger) {
	for _, p := range s.api.Ports() {
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
