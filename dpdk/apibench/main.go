// Command apibench measures route programming through filament-dataplane's
// API, end to end: over the unix socket, through the gRPC server, its
// validation and the fast path's bulk route calls. A million IPv4 routes
// (3/4 /24s, 1/4 /32s clustered 64 per /24: the FIB benchmark's set) are
// created, resynced (REPLACE, unchanged), listed and deleted in batches of
// each size asked, and the daemon's memory is read before, loaded and after
// (/proc/PID/status of the process behind the socket).
//
//	go build -o bin/ ./dpdk/cmd/filament-dataplane
//	go run ./dpdk/apibench -daemon bin/filament-dataplane   # starts its own daemon
//	go run ./dpdk/apibench -socket /run/filament/dataplane.sock
//
// With -socket, the daemon's VRF -vrf must have none of the set's routes
// and next-hop -nh must be free or a discard next-hop; its tables must hold
// the routes (tables.fib4_routes, fib4_tbl8s: the defaults do).
//
// docs/benchmarks/dataplane-api.md has the figures; the package's tests run
// the same against an in-process server (go test -bench).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/dpdk/apiclient"
	"github.com/filament-net/filament/dpdk/hugepages"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "apibench:", err)
		os.Exit(1)
	}
}

type options struct {
	socket, daemon string
	routes         int
	batches        []int
	rounds         int
	vrf, nh        uint32
	list           bool
}

func run(args []string, out io.Writer) error {
	var o options
	fs := flag.NewFlagSet("apibench", flag.ContinueOnError)
	fs.StringVar(&o.socket, "socket", "", "a running filament-dataplane's API `socket`")
	fs.StringVar(&o.daemon, "daemon", "", "start this filament-dataplane `binary` (on hugepages if free) and measure it")
	fs.IntVar(&o.routes, "routes", 1<<20, "routes in the set")
	batches := fs.String("batches", "10000,50000,100000", "routes per Apply: comma-separated sizes, each measured in turn")
	vrf := fs.Uint("vrf", 1, "the VRF the routes go to")
	nh := fs.Uint("nh", 1000, "the id of the discard next-hop the routes point to (created, then deleted)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds per size: the table gives the median rate (and the range)")
	fs.BoolVar(&o.list, "list", true, "time ListRoutes of the loaded VRF too")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.vrf, o.nh = uint32(*vrf), uint32(*nh)
	for _, f := range strings.Split(*batches, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("-batches: %q is not a size", f)
		}
		o.batches = append(o.batches, n)
	}
	if o.rounds < 1 || o.routes < 1 {
		return errors.New("-rounds and -routes: at least 1")
	}
	if (o.socket == "") == (o.daemon == "") {
		return errors.New("give -socket (a running daemon) or -daemon (a binary to start)")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	host, _ := os.Hostname()
	fmt.Fprintf(out, "apibench: %d routes (%d /24s, %d /32s) in VRF %d; %s, %s, %d CPUs\n",
		o.routes, routeCount24(o.routes), o.routes-routeCount24(o.routes), o.vrf, host, runtime.Version(), runtime.NumCPU())
	fmt.Fprintf(out, "%d rounds per size: median routes/s (min-max), the slowest Apply of all rounds; "+
		"the daemon's RSS before the first round, loaded (the highest), after the last delete\n\n", o.rounds)
	fmt.Fprintln(out, "| routes per Apply | Applies | add routes/s | slowest add | resync (REPLACE, unchanged) routes/s | delete routes/s | slowest delete | ListRoutes | RSS before | RSS loaded | RSS after delete |")
	fmt.Fprintln(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	if o.daemon == "" {
		return bench(ctx, o, o.batches, out)
	}
	// A daemon of its own for each size: the memory figures are the size's.
	for _, batch := range o.batches {
		sock, stop, err := startDaemon(ctx, o.daemon)
		if err != nil {
			return err
		}
		o.socket = sock
		err = bench(ctx, o, []int{batch}, out)
		stop()
		if err != nil {
			return err
		}
	}
	return nil
}

// startDaemon runs the binary with a configuration of no ports and tables
// for a million routes, and waits for its socket.
func startDaemon(ctx context.Context, bin string) (sock string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "apibench")
	if err != nil {
		return "", nil, err
	}
	sock = filepath.Join(dir, "dp.sock")
	noHuge := "false"
	if _, huge := hugepages.EALArgs(0); !huge {
		noHuge = "true"
	}
	cfg := fmt.Sprintf(`eal: {lcores: "0,1", no_huge: %s, memory_mb: 512, file_prefix: apibench-%d}
tables: {next_hops: 4096, vrfs: 16, fib4_routes: 2097152, fib4_tbl8s: 131072}
api: {socket: %s}
`, noHuge, os.Getpid(), sock)
	conf := filepath.Join(dir, "dp.yaml")
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		return "", nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "dp.log"))
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "--config", conf, "--stats-interval", "0", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop = func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		logf.Close()
		os.RemoveAll(dir)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			return sock, stop, nil
		}
		select {
		case err := <-exited:
			exited <- err
			stop()
			log, _ := os.ReadFile(logf.Name())
			return "", nil, fmt.Errorf("%s exited (%v) before serving:\n%s", bin, err, log)
		case <-ctx.Done():
			stop()
			return "", nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("%s does not serve %s after 60s", bin, sock)
		}
	}
}

// rates is the median rate of the rounds, with their range.
func rates(ps []phase) string {
	r := make([]float64, len(ps))
	for i, p := range ps {
		r[i] = p.rate()
	}
	slices.Sort(r)
	k := func(f float64) string { return fmt.Sprintf("%.0fK", f/1000) }
	if len(r) == 1 {
		return k(r[0])
	}
	return fmt.Sprintf("%s (%s-%s)", k(r[len(r)/2]), k(r[0]), k(r[len(r)-1]))
}

func slowest(ps []phase) time.Duration {
	var d time.Duration
	for _, p := range ps {
		d = max(d, p.Slowest)
	}
	return d.Round(time.Millisecond)
}

// bench measures each batch size in turn on the daemon at o.socket, and
// writes a row of the table for each.
func bench(ctx context.Context, o options, batches []int, out io.Writer) error {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	cl, err := apiclient.Dial(dctx, o.socket, apiclient.WithName("apibench"))
	cancel()
	if err != nil {
		return err
	}
	defer cl.Close()
	pid, err := peerPID(o.socket)
	if err != nil {
		return fmt.Errorf("the daemon's pid: %w", err)
	}
	nh := &pb.NextHop{Id: o.nh, Type: pb.NextHopType_NEXT_HOP_TYPE_DISCARD}
	if _, err := cl.ApplyBatch(ctx, (&apiclient.Batch{}).Create(nh)); err != nil {
		return err
	}
	defer cl.ApplyBatch(context.Background(), (&apiclient.Batch{}).Delete(nh)) //nolint:errcheck // best effort

	for _, batch := range batches {
		before, err := readMemory(pid)
		if err != nil {
			return err
		}
		var add, resync, del []phase
		var loaded, after memory
		var list []time.Duration
		for range o.rounds {
			p, err := program(ctx, cl, pb.Action_ACTION_CREATE, "created", o.vrf, o.nh, o.routes, batch)
			if err != nil {
				return err
			}
			add = append(add, p)
			m, err := readMemory(pid)
			if err != nil {
				return err
			}
			loaded.RSS = max(loaded.RSS, m.RSS)
			if p, err = program(ctx, cl, pb.Action_ACTION_REPLACE, "unchanged", o.vrf, o.nh, o.routes, batch); err != nil {
				return err
			}
			resync = append(resync, p)
			if o.list {
				t0 := time.Now()
				rs, _, err := cl.Routes(ctx, &o.vrf)
				if err != nil {
					return err
				}
				if len(rs) != o.routes {
					return fmt.Errorf("ListRoutes of VRF %d: %d routes, want %d", o.vrf, len(rs), o.routes)
				}
				list = append(list, time.Since(t0))
			}
			if p, err = program(ctx, cl, pb.Action_ACTION_DELETE, "deleted", o.vrf, o.nh, o.routes, batch); err != nil {
				return err
			}
			del = append(del, p)
			if after, err = readMemory(pid); err != nil {
				return err
			}
		}
		l := "-"
		if len(list) > 0 {
			slices.Sort(list)
			l = list[len(list)/2].Round(time.Millisecond).String()
		}
		mib := func(m memory) string { return fmt.Sprintf("%.0f MiB", float64(m.RSS)/1024) }
		fmt.Fprintf(out, "| %d | %d | %s | %v | %s | %s | %v | %s | %s | %s | %s |\n",
			batch, add[0].Batches, rates(add), slowest(add), rates(resync), rates(del), slowest(del), l,
			mib(before), mib(loaded), mib(after))
	}
	return nil
}
