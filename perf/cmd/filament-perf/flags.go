package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/filament-net/filament/perf/trafficgen"
)

// portList collects repeated --port flags.
type portList []string

func (p *portList) String() string     { return strings.Join(*p, " ") }
func (p *portList) Set(s string) error { *p = append(*p, s); return nil }

// traffic is what every command sends: the generator's set-up and the
// streams, from flags.
type traffic struct {
	ports    portList
	cpu      int
	memoryMB int
	waitLink time.Duration
	rxQueues int
	rxBursts int
	// stampEvery and templates: see trafficgen.Trial.StampEvery.
	stampEvery int
	templates  int

	txPort, rxPort   int
	reverse          bool
	smac, dmac       string
	src, dst         string
	srcStep, dstStep uint
	sport, dport     string
	proto            string
	flows            int
	sizes            string
	burst            int
	drain            time.Duration
	encap            string
	outerSrc         string
	outerDst         string
	outerSMAC        string
	outerDMAC        string
	innerDMAC        string
	vni, label       uint
	output, jsonFile string
}

func (t *traffic) register(fs *flag.FlagSet) {
	fs.Var(&t.ports, "port", "a generator port's DPDK `devargs` (repeat for more; e.g. "+
		"net_memif0,role=client,socket=/run/dut.sock,socket-abstract=no,zero-copy=yes)")
	fs.IntVar(&t.cpu, "cpu", 0, "`CPU` the generator runs on: its worker lcore and every other thread of it (the device under test should have another)")
	fs.IntVar(&t.memoryMB, "memory", 512, "`MiB` of memory when there are no hugepages (--no-huge)")
	fs.DurationVar(&t.waitLink, "wait-link", 10*time.Second, "wait this long for every port's link")
	fs.IntVar(&t.rxQueues, "rx-queues", 1, "RX `queues` per port, all polled (OVS-DPDK sends on memif queue 1)")
	fs.IntVar(&t.rxBursts, "rx-bursts", 16, "RX `bursts` (of 32) a queue gives per loop at most while it has frames; 1 is one burst per loop (a device's backlog after a hiccup then overflows the generator's RX ring)")
	fs.IntVar(&t.stampEvery, "stamp-every", 16, "build, sequence and timestamp 1 frame in `N` per stream; the others are clones of a template per flow and size, which costs the generator no memory writes, so it outruns the device (loss stays exact; order and latency come from the stamped frames); 1: every frame")
	fs.IntVar(&t.templates, "templates", 8192, "template frames kept for clones, over all streams: one per flow and size; a stream with more is built frame by frame")
	fs.IntVar(&t.txPort, "tx-port", 0, "`index` (in --port order) of the port the stream leaves from")
	fs.IntVar(&t.rxPort, "rx-port", 1, "`index` of the port frames come back on (used by --reverse)")
	fs.BoolVar(&t.reverse, "reverse", false, "also send the mirrored stream (addresses and ports swapped; MACs kept: --dmac is the device's) from --rx-port")
	fs.StringVar(&t.smac, "smac", "02:00:00:00:00:01", "source `MAC` (inner, when pre-encapsulated)")
	fs.StringVar(&t.dmac, "dmac", "02:00:00:00:00:02", "destination `MAC`: the device's (inner MAC of MPLSoUDP is not sent)")
	fs.StringVar(&t.src, "src", "10.0.0.1", "source address or `range` (10.0.0.1-10.0.0.255; IPv6 ranges vary the low 32 bits)")
	fs.StringVar(&t.dst, "dst", "10.0.1.1", "destination address or `range`")
	fs.UintVar(&t.srcStep, "src-step", 1, "distance between the source addresses flows use (256: one per /24)")
	fs.UintVar(&t.dstStep, "dst-step", 1, "distance between the destination addresses flows use (256: one per /24)")
	fs.StringVar(&t.sport, "sport", "1024", "source port or `range` (1024-2047)")
	fs.StringVar(&t.dport, "dport", "1024", "destination port or `range`")
	fs.StringVar(&t.proto, "proto", "udp", "`udp` or tcp")
	fs.IntVar(&t.flows, "flows", 1, "number of `flows`: flow f takes lo + f mod size of each range")
	fs.StringVar(&t.sizes, "size", "64", "frame `sizes` with FCS, comma-separated and cycled, or imix (7:4:1 of 64/570/1518)")
	fs.IntVar(&t.burst, "burst", 32, "frames per TX `burst`")
	fs.DurationVar(&t.drain, "drain", 100*time.Millisecond, "how long to keep receiving after TX stops")
	fs.StringVar(&t.encap, "encap", "", "send pre-encapsulated frames: `vxlan` or mplsoudp (to measure decapsulation)")
	fs.StringVar(&t.outerSrc, "outer-src", "192.0.2.1", "outer source `address` (with --encap)")
	fs.StringVar(&t.outerDst, "outer-dst", "192.0.2.2", "outer destination `address`: the device's underlay address")
	fs.StringVar(&t.outerSMAC, "outer-smac", "", "outer source `MAC` (default --smac)")
	fs.StringVar(&t.outerDMAC, "outer-dmac", "", "outer destination `MAC` (default --dmac)")
	fs.StringVar(&t.innerDMAC, "inner-dmac", "", "VXLAN inner destination `MAC` (default --dmac)")
	fs.UintVar(&t.vni, "vni", 100, "VXLAN `VNI`")
	fs.UintVar(&t.label, "label", 100, "MPLS `label` of MPLSoUDP")
	fs.StringVar(&t.output, "o", "text", "output `format`: text, json or markdown")
	fs.StringVar(&t.jsonFile, "json", "", "also write the results as JSON to `file`")
}

func parseRange(s string) (trafficgen.Range, error) {
	lo, hi, ok := strings.Cut(s, "-")
	a, err := netip.ParseAddr(strings.TrimSpace(lo))
	if err != nil {
		return trafficgen.Range{}, fmt.Errorf("%q: %w", s, err)
	}
	b := a
	if ok {
		if b, err = netip.ParseAddr(strings.TrimSpace(hi)); err != nil {
			return trafficgen.Range{}, fmt.Errorf("%q: %w", s, err)
		}
	}
	return trafficgen.Range{Lo: a, Hi: b}, nil
}

func parsePorts(s string) (trafficgen.PortRange, error) {
	lo, hi, ok := strings.Cut(s, "-")
	a, err := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
	if err != nil {
		return trafficgen.PortRange{}, fmt.Errorf("port %q: want 0..65535", s)
	}
	b := a
	if ok {
		if b, err = strconv.ParseUint(strings.TrimSpace(hi), 10, 16); err != nil {
			return trafficgen.PortRange{}, fmt.Errorf("port %q: want 0..65535", s)
		}
	}
	return trafficgen.PortRange{Lo: uint16(a), Hi: uint16(b)}, nil
}

func parseSizes(s string) ([]int, error) {
	if strings.EqualFold(s, "imix") {
		return trafficgen.IMIX, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("size %q: want bytes (64..9022) or imix", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseRate reads "max", a number of pps, or one with a k/M suffix.
func parseRate(s string) (float64, error) {
	if s == "max" || s == "" {
		return 0, nil
	}
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "M"):
		mult, s = 1e6, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "k"):
		mult, s = 1e3, strings.TrimSuffix(s, "k")
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("rate %q: want max or packets per second (100000, 2.5M, 800k)", s)
	}
	return v * mult, nil
}

func mac(s, what string) (net.HardwareAddr, error) {
	m, err := net.ParseMAC(s)
	if err != nil || len(m) != 6 {
		return nil, fmt.Errorf("%s %q: want a MAC like 02:00:00:00:00:01", what, s)
	}
	return m, nil
}

// streams builds the trial's streams from the flags.
func (t *traffic) streams() ([]trafficgen.Stream, error) {
	if len(t.ports) == 0 {
		return nil, errors.New("give at least one --port")
	}
	var s trafficgen.Stream
	var err error
	if s.SrcMAC, err = mac(t.smac, "--smac"); err != nil {
		return nil, err
	}
	if s.DstMAC, err = mac(t.dmac, "--dmac"); err != nil {
		return nil, err
	}
	if s.Src, err = parseRange(t.src); err != nil {
		return nil, fmt.Errorf("--src: %w", err)
	}
	if s.Dst, err = parseRange(t.dst); err != nil {
		return nil, fmt.Errorf("--dst: %w", err)
	}
	if t.srcStep == 0 || t.dstStep == 0 || t.srcStep > 1<<31 || t.dstStep > 1<<31 {
		return nil, errors.New("--src-step and --dst-step: want 1..2^31")
	}
	s.Src.Step, s.Dst.Step = uint32(t.srcStep), uint32(t.dstStep)
	if s.SrcPort, err = parsePorts(t.sport); err != nil {
		return nil, fmt.Errorf("--sport: %w", err)
	}
	if s.DstPort, err = parsePorts(t.dport); err != nil {
		return nil, fmt.Errorf("--dport: %w", err)
	}
	if s.Sizes, err = parseSizes(t.sizes); err != nil {
		return nil, fmt.Errorf("--size: %w", err)
	}
	s.Proto = trafficgen.Proto(t.proto)
	s.Flows = t.flows
	if t.flows < 1 {
		return nil, fmt.Errorf("--flows %d: want >= 1", t.flows)
	}
	s.Port = t.txPort
	if t.txPort < 0 || t.txPort >= len(t.ports) {
		return nil, fmt.Errorf("--tx-port %d: there are %d ports", t.txPort, len(t.ports))
	}
	if t.encap != "" {
		e := &trafficgen.Encap{Kind: trafficgen.EncapKind(t.encap), SrcMAC: s.SrcMAC, DstMAC: s.DstMAC,
			VNI: uint32(t.vni), Label: uint32(t.label)}
		if e.Src, err = netip.ParseAddr(t.outerSrc); err != nil {
			return nil, fmt.Errorf("--outer-src: %w", err)
		}
		if e.Dst, err = netip.ParseAddr(t.outerDst); err != nil {
			return nil, fmt.Errorf("--outer-dst: %w", err)
		}
		for _, f := range []struct {
			v   string
			dst *net.HardwareAddr
			n   string
		}{{t.outerSMAC, &e.SrcMAC, "--outer-smac"}, {t.outerDMAC, &e.DstMAC, "--outer-dmac"}, {t.innerDMAC, &e.InnerDstMAC, "--inner-dmac"}} {
			if f.v != "" {
				if *f.dst, err = mac(f.v, f.n); err != nil {
					return nil, err
				}
			}
		}
		s.Encap = e
	}
	out := []trafficgen.Stream{s}
	if t.reverse {
		if t.rxPort < 0 || t.rxPort >= len(t.ports) || t.rxPort == t.txPort {
			return nil, fmt.Errorf("--reverse needs --rx-port, another of the %d ports", len(t.ports))
		}
		if s.Encap != nil {
			return nil, errors.New("--reverse: the mirror of a pre-encapsulated stream is not defined; run two commands")
		}
		r := s
		r.Port = t.rxPort
		r.Src, r.Dst = s.Dst, s.Src
		r.SrcPort, r.DstPort = s.DstPort, s.SrcPort
		out = append(out, r)
	}
	return out, nil
}
