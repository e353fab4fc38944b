// Command filament-perf is a DPDK traffic generator for measuring a
// forwarding device: its worker lcore (C) sends streams of frames and counts
// what comes back per stream (loss, reordering, latency); `ndr` finds the
// RFC 2544 throughput.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/filament-net/filament/dpdk/hugepages"
	"github.com/filament-net/filament/perf/cpupin"
	"github.com/filament-net/filament/perf/trafficgen"
)

const usage = `Usage: filament-perf COMMAND [flags]

A DPDK traffic generator for measuring a forwarding device. One worker lcore
sends streams of Ethernet frames (IPv4 or IPv6, UDP or TCP, optionally
pre-encapsulated in VXLAN or MPLSoUDP) on DPDK ports (memif, vhost-user or
virtio-user, af_xdp, af_packet, PCI NICs) and counts, per stream, what comes
back: loss, reordering and one-way latency (from a timestamp in each frame).

Commands:
  run   one trial: a rate (or flat out) for a duration
  ndr   RFC 2544 throughput: NDR (no loss) and PDR (0.5%% loss) by a
        search over 1 s trials (each failed trial's received rate leads
        the next, bisection where that fails) with a confirmation trial,
        then latency at 10%%, 50%% and 90%% of PDR
  suite every device under test side by side (make bench): testpmd,
        filament-dataplane L3, VXLAN and MPLSoUDP, OVS-DPDK, kernel pods,
        and flat out with dpdk-testpmd flowgen; docs/benchmarks/perf.md

Every command takes --help. A progress line goes to stderr each second;
results go to stdout (-o text or json) and, with --json FILE, to a file.
Frame sizes count the FCS (64..9022), as RFC 2544 does.

Example (a device under test serving memif on /run/dut.sock):
  filament-perf ndr --port net_memif0,role=client,id=0,socket=/run/dut.sock,socket-abstract=no,zero-copy=yes \
      --dmac 02:00:00:00:00:02 --src 10.0.0.1 --dst 10.0.1.1 --flows 256 --sport 1024-1279

Exit status: 0 done, 1 failed, 2 bad usage.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "run":
		err = runCmd(ctx, args[1:], stdout, stderr)
	case "ndr":
		err = ndrCmd(ctx, args[1:], stdout, stderr)
	case "suite":
		err = suiteCmd(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "filament-perf: unknown command %q (run, ndr, suite)\n", args[0])
		return 2
	}
	var ue usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "filament-perf %s: %v\n", args[0], err)
		return 2
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "filament-perf %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

type usageError struct{ error }

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

var pciAddr = regexp.MustCompile(`^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]`)

// checkMTU refuses a stream whose largest frame does not fit its port's
// MTU: bad input (exit 2), found before any frame is sent.
func (t *traffic) checkMTU(g *trafficgen.Generator, streams []trafficgen.Stream) error {
	err := g.CheckMTU(streams)
	if errors.Is(err, syscall.EMSGSIZE) {
		return usageError{fmt.Errorf("%w: give --mtu (a kernel interface's MTU is its own: ip link set DEV mtu N)", err)}
	}
	return err
}

// dataRoom is the generator's mbuf data room: every frame size up to 9022
// in one mbuf, but 2048 bytes with an af_xdp port, whose UMEM is the RX
// pool's memory, an mbuf a chunk, and the kernel takes chunks of at most a
// page (frames XDP lets through fit). why says what bounds it.
func (t *traffic) dataRoom() (room int, why string) {
	for _, p := range t.ports {
		if strings.HasPrefix(p, "net_af_xdp") {
			return 2048, " with an af_xdp port (its UMEM chunks are pages)"
		}
	}
	return 9216, ""
}

// start brings the generator up with the flags' ports, their links up.
func (t *traffic) start(ctx context.Context, stderr io.Writer) (*trafficgen.Generator, error) {
	if len(t.ports) == 0 {
		return nil, usageError{errors.New("give at least one --port")}
	}
	if t.rxQueues < 1 || t.rxQueues > 16 {
		return nil, usageError{fmt.Errorf("--rx-queues %d: want 1 to 16", t.rxQueues)}
	}
	if t.rxBursts < 1 || t.rxBursts > 64 {
		return nil, usageError{fmt.Errorf("--rx-bursts %d: want 1 to 64", t.rxBursts)}
	}
	if t.stampEvery < 1 {
		return nil, usageError{fmt.Errorf("--stamp-every %d: want 1 or more", t.stampEvery)}
	}
	if t.templates < 0 {
		return nil, usageError{fmt.Errorf("--templates %d: want 0 or more", t.templates)}
	}
	if t.mtu != 0 && (t.mtu < 68 || t.mtu > trafficgen.MaxFrame-trafficgen.FrameOverhead) {
		return nil, usageError{fmt.Errorf("--mtu %d: want 0 (each device's own) or 68..%d", t.mtu, trafficgen.MaxFrame-trafficgen.FrameOverhead)}
	}
	mem, huge := hugepages.EALArgs(t.memoryMB)
	cfg := trafficgen.DefaultConfig()
	cfg.DataRoom, _ = t.dataRoom()
	cfg.Mbufs = 8191
	cfg.RxQueues = t.rxQueues
	cfg.RxBursts = t.rxBursts
	cfg.Templates = t.templates
	cfg.MTU = t.mtu
	cfg.EALArgs = append([]string{"--lcores", fmt.Sprintf("0@%d,1@%d", t.cpu, t.cpu),
		"--file-prefix", fmt.Sprintf("filament-perf-%d", os.Getpid()), "--log-level", "*:notice"}, mem...)
	if huge {
		cfg.EALArgs = append(cfg.EALArgs, "--single-file-segments") // memif zero-copy
	} else {
		fmt.Fprintf(stderr, "filament-perf: no free hugepages: running with %s (no memif, no vhost-user)\n", strings.Join(mem, " "))
	}
	pci := false
	for _, p := range t.ports {
		if pciAddr.MatchString(p) {
			pci = true
			// PCI devices are probed by the EAL at start, with their
			// arguments.
			cfg.EALArgs = append(cfg.EALArgs, "-a", p)
		}
	}
	if !pci {
		cfg.EALArgs = append(cfg.EALArgs, "--no-pci")
	}
	g, err := trafficgen.Start(cfg)
	if err != nil {
		return nil, err
	}
	// The Go runtime's and the EAL's control threads go where the worker
	// is: left to float, they wake on the device under test's CPU and
	// preempt its forwarding lcore (a latency sample's p99 showed it).
	if err := cpupin.Self(t.cpu); err != nil {
		g.Close()
		return nil, err
	}
	// One port at a time, each up before the next starts: a memif
	// zero-copy client closes the EAL's memory fds once connected, and
	// the generator puts them back (LinkUp) before the next one sends
	// them to its server.
	deadline := time.Now().Add(t.waitLink)
	for i, p := range t.ports {
		name, _, _ := strings.Cut(p, ",")
		if pciAddr.MatchString(p) {
			p = name
		} else if err := g.CheckDevargs(p); err != nil {
			g.Close()
			return nil, usageError{err}
		}
		if _, err := g.AddPort(p); err != nil {
			g.Close()
			return nil, err
		}
		retry := time.Now().Add(time.Second)
		for {
			up, err := g.LinkErr(i)
			if err != nil {
				g.Close()
				return nil, err
			}
			if up {
				break
			}
			if time.Now().After(deadline) {
				g.Close()
				return nil, fmt.Errorf("port %d (%s): link down after %v: is the device under test up?", i, t.ports[i], t.waitLink)
			}
			if time.Now().After(retry) {
				// A memif client tries to connect only when its port
				// starts: if the server was not listening yet, start
				// the port again.
				fmt.Fprintf(stderr, "filament-perf: port %d: link down after 1s: restarting it\n", i)
				if err := g.RestartPort(i); err != nil {
					g.Close()
					return nil, err
				}
				retry = time.Now().Add(time.Second)
			}
			select {
			case <-ctx.Done():
				g.Close()
				return nil, ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return g, nil
}

// progress prints the ports' rates once a second until ctx ends.
func progress(ctx context.Context, g *trafficgen.Generator, ports int, w io.Writer) {
	sum := func() (tx, rx uint64) {
		for i := 0; i < ports; i++ {
			if s, err := g.PortStats(i); err == nil {
				tx += s.TxPackets
				rx += s.RxPackets
			}
		}
		return tx, rx
	}
	t0 := time.Now()
	last := t0
	ltx, lrx := sum()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			tx, rx := sum()
			dt := now.Sub(last).Seconds()
			fmt.Fprintf(w, "  %5.1fs  tx %8.3f Mpps  rx %8.3f Mpps\n", now.Sub(t0).Seconds(),
				float64(tx-ltx)/dt/1e6, float64(rx-lrx)/dt/1e6)
			last, ltx, lrx = now, tx, rx
		}
	}
}

func (t *traffic) emit(stdout io.Writer, v any, text, markdown func(io.Writer)) error {
	if t.jsonFile != "" {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(t.jsonFile, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("--json: %w", err)
		}
	}
	switch t.output {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "text":
		text(stdout)
		return nil
	case "markdown", "md":
		markdown(stdout)
		return nil
	}
	return usageError{fmt.Errorf("-o %q: want text, json or markdown", t.output)}
}

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var t traffic
	var rate string
	var duration time.Duration
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	t.register(fs)
	fs.StringVar(&rate, "rate", "max", "offered `rate` over all streams: max, or packets per second (2.5M, 800k, 100000)")
	fs.DurationVar(&duration, "duration", 10*time.Second, "how long to send")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: filament-perf run [flags]\n\nSends one trial and reports, per stream, frames sent and received, loss,\nlate (reordered) frames, sequence gaps and latency percentiles.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	pps, err := parseRate(rate)
	if err != nil {
		return usageError{err}
	}
	streams, err := t.streams()
	if err != nil {
		return usageError{err}
	}
	g, err := t.start(ctx, stderr)
	if err != nil {
		return err
	}
	defer g.Close()
	if err := t.checkMTU(g, streams); err != nil {
		return err
	}
	pctx, cancel := context.WithCancel(ctx)
	go progress(pctx, g, len(t.ports), stderr)
	r, err := g.Run(ctx, trafficgen.Trial{Streams: streams, Rate: pps, Duration: duration, Drain: t.drain, Burst: t.burst, StampEvery: t.stampEvery})
	cancel()
	if r == nil {
		return err
	}
	rep := runReport{Command: "run", Ports: t.ports, OfferedPPS: pps, Duration: duration.String(), TSCHz: g.TSCHz(), Result: r}
	if eerr := t.emit(stdout, rep, rep.text, rep.markdown); eerr != nil {
		return eerr
	}
	return err
}

type runReport struct {
	Command    string
	Ports      []string
	OfferedPPS float64 // 0: flat out
	Duration   string
	TSCHz      uint64
	Result     *trafficgen.Result
}

func (r runReport) text(w io.Writer) {
	offered := "flat out"
	if r.OfferedPPS > 0 {
		offered = fmt.Sprintf("%.3f Mpps", r.OfferedPPS/1e6)
	}
	fmt.Fprintf(w, "trial: offered %s for %v (sent for %v)\n", offered, r.Duration, r.Result.TxTime.Round(time.Millisecond))
	for i, s := range r.Result.Streams {
		fmt.Fprintf(w, "stream %d: %s\n", i, streamLine(s, r.Result.TxTime))
	}
	fmt.Fprintf(w, "total: tx %.3f Mpps, rx %.3f Mpps, lost %d (%.4f%%)\n",
		r.Result.TxPPS/1e6, r.Result.RxPPS/1e6, r.Result.Lost, 100*r.Result.LossRatio)
}

func streamLine(s trafficgen.StreamResult, d time.Duration) string {
	l := s.Latency
	return fmt.Sprintf("tx %d (%.3f Mpps) rx %d, lost %d, late %d, gaps %d; latency min %v p50 %v p90 %v p99 %v p99.9 %v max %v",
		s.TxPackets, float64(s.TxPackets)/d.Seconds()/1e6, s.RxPackets, s.Lost, s.Late, s.Gaps,
		l.Min, l.P50, l.P90, l.P99, l.P999, l.Max)
}

func (r runReport) markdown(w io.Writer) {
	fmt.Fprintf(w, "| stream | tx | rx | lost | late | gaps | Mpps | p50 | p99 | p99.9 | max |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i, s := range r.Result.Streams {
		l := s.Latency
		fmt.Fprintf(w, "| %d | %d | %d | %d | %d | %d | %.3f | %v | %v | %v | %v |\n", i, s.TxPackets, s.RxPackets, s.Lost,
			s.Late, s.Gaps, float64(s.TxPackets)/r.Result.TxTime.Seconds()/1e6, l.P50, l.P99, l.P999, l.Max)
	}
}
