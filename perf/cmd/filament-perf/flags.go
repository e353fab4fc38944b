package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/filament-net/filament/perf/trafficgen"
	"gopkg.in/yaml.v3"
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
	mtu      int
	// stampEvery and templates: see trafficgen.Trial.StampEvery.
	stampEvery int
	templates  int

	// spec is the stream the flags describe; a --profile's streams take
	// it as their defaults.
	spec             streamSpec
	profile          string
	rxPort           int
	reverse          bool
	burst            int
	drain            time.Duration
	output, jsonFile string
}

// streamSpec is one stream as the flags, or a profile's stream, give it
// (the YAML keys are the flags' names with _ for -).
type streamSpec struct {
	TxPort    int    `yaml:"tx_port"`
	SMAC      string `yaml:"smac"`
	DMAC      string `yaml:"dmac"`
	Src       string `yaml:"src"`
	Dst       string `yaml:"dst"`
	SrcStep   uint   `yaml:"src_step"`
	DstStep   uint   `yaml:"dst_step"`
	SPort     string `yaml:"sport"`
	DPort     string `yaml:"dport"`
	Proto     string `yaml:"proto"`
	Flows     int    `yaml:"flows"`
	Sizes     string `yaml:"size"`
	Encap     string `yaml:"encap"`
	OuterSrc  string `yaml:"outer_src"`
	OuterDst  string `yaml:"outer_dst"`
	OuterSMAC string `yaml:"outer_smac"`
	OuterDMAC string `yaml:"outer_dmac"`
	InnerDMAC string `yaml:"inner_dmac"`
	VNI       uint   `yaml:"vni"`
	Label     uint   `yaml:"label"`
}

func (t *traffic) register(fs *flag.FlagSet) {
	fs.Var(&t.ports, "port", "a generator port's DPDK `devargs` (repeat for more): "+
		"net_memif0,role=client,socket=/run/dut.sock,socket-abstract=no,zero-copy=yes; "+
		"net_virtio_user0,path=/run/vhost.sock,queues=1 (a vhost-user device); "+
		"net_af_packet0,iface=eth1,qpairs=1; net_af_xdp0,iface=eth1,start_queue=0,queue_count=1 "+
		"(frames up to 2052 bytes); a PCI address (0000:01:00.0)")
	fs.IntVar(&t.cpu, "cpu", 0, "`CPU` the generator runs on: its worker lcore and every other thread of it (the device under test should have another)")
	fs.IntVar(&t.memoryMB, "memory", 512, "`MiB` of memory when there are no hugepages (--no-huge)")
	fs.DurationVar(&t.waitLink, "wait-link", 10*time.Second, "wait this long for every port's link")
	fs.IntVar(&t.mtu, "mtu", 0, "`MTU` set on every port (0: each device's own; memif and ring ports, which have none, are then 1500); a stream's frames must fit it: size <= MTU + 18")
	fs.IntVar(&t.rxQueues, "rx-queues", 1, "RX `queues` per port, all polled (OVS-DPDK sends on memif queue 1)")
	fs.IntVar(&t.rxBursts, "rx-bursts", 16, "RX `bursts` (of 32) a queue gives per loop at most while it has frames; 1 is one burst per loop (a device's backlog after a hiccup then overflows the generator's RX ring)")
	fs.IntVar(&t.stampEvery, "stamp-every", 16, "build, sequence and timestamp 1 frame in `N` per stream; the others are clones of a template per flow and size, which costs the generator no memory writes, so it outruns the device (loss stays exact; order and latency come from the stamped frames); 1: every frame")
	fs.IntVar(&t.templates, "templates", 8192, "template frames kept for clones, over all streams: one per flow and size; a stream with more is built frame by frame")
	fs.IntVar(&t.spec.TxPort, "tx-port", 0, "`index` (in --port order) of the port the stream leaves from")
	fs.IntVar(&t.rxPort, "rx-port", 1, "`index` of the port frames come back on (used by --reverse)")
	fs.BoolVar(&t.reverse, "reverse", false, "also send the mirrored stream (addresses and ports swapped; MACs kept: --dmac is the device's) from --rx-port")
	fs.StringVar(&t.spec.SMAC, "smac", "02:00:00:00:00:01", "source `MAC` (inner, when pre-encapsulated)")
	fs.StringVar(&t.spec.DMAC, "dmac", "02:00:00:00:00:02", "destination `MAC`: the device's (inner MAC of MPLSoUDP is not sent)")
	fs.StringVar(&t.spec.Src, "src", "10.0.0.1", "source address or `range` (10.0.0.1-10.0.0.255; IPv6 ranges vary the low 32 bits)")
	fs.StringVar(&t.spec.Dst, "dst", "10.0.1.1", "destination address or `range`")
	fs.UintVar(&t.spec.SrcStep, "src-step", 1, "distance between the source addresses flows use (256: one per /24)")
	fs.UintVar(&t.spec.DstStep, "dst-step", 1, "distance between the destination addresses flows use (256: one per /24)")
	fs.StringVar(&t.spec.SPort, "sport", "1024", "source port or `range` (1024-2047)")
	fs.StringVar(&t.spec.DPort, "dport", "1024", "destination port or `range`")
	fs.StringVar(&t.spec.Proto, "proto", "udp", "`udp` or tcp")
	fs.IntVar(&t.spec.Flows, "flows", 1, "number of `flows`: flow f takes lo + f mod size of each range")
	fs.StringVar(&t.spec.Sizes, "size", "64", "frame `sizes` with FCS, comma-separated and cycled, or imix (7:4:1 of 64/570/1518)")
	fs.IntVar(&t.burst, "burst", 32, "frames per TX `burst`")
	fs.DurationVar(&t.drain, "drain", 100*time.Millisecond, "how long to keep receiving after TX stops")
	fs.StringVar(&t.spec.Encap, "encap", "", "send pre-encapsulated frames: `vxlan` or mplsoudp (to measure decapsulation)")
	fs.StringVar(&t.spec.OuterSrc, "outer-src", "192.0.2.1", "outer source `address` (with --encap)")
	fs.StringVar(&t.spec.OuterDst, "outer-dst", "192.0.2.2", "outer destination `address`: the device's underlay address")
	fs.StringVar(&t.spec.OuterSMAC, "outer-smac", "", "outer source `MAC` (default --smac)")
	fs.StringVar(&t.spec.OuterDMAC, "outer-dmac", "", "outer destination `MAC` (default --dmac)")
	fs.StringVar(&t.spec.InnerDMAC, "inner-dmac", "", "VXLAN inner destination `MAC` (default --dmac)")
	fs.UintVar(&t.spec.VNI, "vni", 100, "VXLAN `VNI`")
	fs.UintVar(&t.spec.Label, "label", 100, "MPLS `label` of MPLSoUDP")
	fs.StringVar(&t.profile, "profile", "", "YAML `file` of streams (streams: [{src: 10.0.0.1, dst: 16.0.0.1-16.0.0.10, flows: 10, size: imix}, ...]): keys are the stream flags' names with _ for -, each stream's missing ones taken from the flags; an unknown key is an error")
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
		if err != nil || n < trafficgen.MinFrame || n > trafficgen.MaxFrame {
			return nil, fmt.Errorf("size %q: want bytes (%d..%d) or imix", f, trafficgen.MinFrame, trafficgen.MaxFrame)
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

// streams builds the trial's streams, each frame checked against the
// mbufs the generator will have for these ports (dataRoom).
func (t *traffic) streams() ([]trafficgen.Stream, error) {
	out, err := t.buildStreams()
	if err != nil {
		return nil, err
	}
	room, why := t.dataRoom()
	most := trafficgen.Config{DataRoom: room}.MaxFrame()
	for i, s := range out {
		for _, sz := range s.Sizes {
			if sz > most {
				return nil, fmt.Errorf("stream %d: frame of %d bytes: the generator's mbufs hold frames of at most %d bytes%s", i, sz, most, why)
			}
		}
	}
	return out, nil
}

// buildStreams builds the flags' stream (and its mirror with --reverse),
// or a --profile's.
func (t *traffic) buildStreams() ([]trafficgen.Stream, error) {
	if len(t.ports) == 0 {
		return nil, errors.New("give at least one --port")
	}
	if t.profile != "" {
		if t.reverse {
			return nil, errors.New("--reverse with --profile: give the reverse streams in the profile")
		}
		specs, err := loadProfile(t.profile, t.spec)
		if err != nil {
			return nil, err
		}
		// errors name a profile's keys: the flags' names with _
		key := func(k string) string { return strings.ReplaceAll(k, "-", "_") }
		out := make([]trafficgen.Stream, len(specs))
		for i, sp := range specs {
			if out[i], err = sp.stream(len(t.ports), key); err == nil {
				err = out[i].Validate()
			}
			if err != nil {
				return nil, fmt.Errorf("profile %s: stream %d: %w", t.profile, i, err)
			}
		}
		return out, nil
	}
	s, err := t.spec.stream(len(t.ports), func(k string) string { return "--" + k })
	if err == nil {
		err = s.Validate()
	}
	if err != nil {
		return nil, err
	}
	out := []trafficgen.Stream{s}
	if t.reverse {
		if t.rxPort < 0 || t.rxPort >= len(t.ports) || t.rxPort == t.spec.TxPort {
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

// loadProfile reads a profile's streams, each over a copy of defaults
// (the flags'). Strict: an unknown key or a value of the wrong type is an
// error with its line.
func loadProfile(file string, defaults streamSpec) ([]streamSpec, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--profile: %w", err)
	}
	// Once strictly into zero values (unknown keys, types), then each
	// stream over the defaults: a node's Decode has no strict mode.
	var strict struct {
		Streams []streamSpec `yaml:"streams"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&strict); err != nil {
		// yaml.v3 names the Go type; a user wants the keys there are.
		msg := strings.ReplaceAll(err.Error(), "in type main.streamSpec", "in a stream (keys: "+strings.Join(streamKeys(), ", ")+")")
		return nil, fmt.Errorf("profile %s: %s", file, msg)
	}
	var nodes struct {
		Streams []yaml.Node `yaml:"streams"`
	}
	if err := yaml.Unmarshal(b, &nodes); err != nil {
		return nil, fmt.Errorf("profile %s: %w", file, err)
	}
	if len(nodes.Streams) == 0 {
		return nil, fmt.Errorf("profile %s: no streams (streams: [{src: ..., dst: ...}, ...])", file)
	}
	out := make([]streamSpec, len(nodes.Streams))
	for i := range nodes.Streams {
		out[i] = defaults
		if err := nodes.Streams[i].Decode(&out[i]); err != nil {
			return nil, fmt.Errorf("profile %s: stream %d: %w", file, i, err)
		}
	}
	return out, nil
}

// streamKeys are a profile stream's keys, in streamSpec's order.
func streamKeys() []string {
	t := reflect.TypeOf(streamSpec{})
	keys := make([]string, t.NumField())
	for i := range keys {
		keys[i] = t.Field(i).Tag.Get("yaml")
	}
	return keys
}

// stream builds the stream for a generator of nports ports; errors name
// the setting by key (the flag's name, or the profile's key).
func (sp streamSpec) stream(nports int, key func(string) string) (trafficgen.Stream, error) {
	var s trafficgen.Stream
	var err error
	if s.SrcMAC, err = mac(sp.SMAC, key("smac")); err != nil {
		return s, err
	}
	if s.DstMAC, err = mac(sp.DMAC, key("dmac")); err != nil {
		return s, err
	}
	if s.Src, err = parseRange(sp.Src); err != nil {
		return s, fmt.Errorf("%s: %w", key("src"), err)
	}
	if s.Dst, err = parseRange(sp.Dst); err != nil {
		return s, fmt.Errorf("%s: %w", key("dst"), err)
	}
	if sp.SrcStep == 0 || sp.DstStep == 0 || sp.SrcStep > 1<<31 || sp.DstStep > 1<<31 {
		return s, fmt.Errorf("%s and %s: want 1..2^31", key("src-step"), key("dst-step"))
	}
	s.Src.Step, s.Dst.Step = uint32(sp.SrcStep), uint32(sp.DstStep)
	if s.SrcPort, err = parsePorts(sp.SPort); err != nil {
		return s, fmt.Errorf("%s: %w", key("sport"), err)
	}
	if s.DstPort, err = parsePorts(sp.DPort); err != nil {
		return s, fmt.Errorf("%s: %w", key("dport"), err)
	}
	if s.Sizes, err = parseSizes(sp.Sizes); err != nil {
		return s, fmt.Errorf("%s: %w", key("size"), err)
	}
	s.Proto = trafficgen.Proto(sp.Proto)
	s.Flows = sp.Flows
	if sp.Flows < 1 {
		return s, fmt.Errorf("%s %d: want >= 1", key("flows"), sp.Flows)
	}
	s.Port = sp.TxPort
	if sp.TxPort < 0 || sp.TxPort >= nports {
		return s, fmt.Errorf("%s %d: there are %d ports", key("tx-port"), sp.TxPort, nports)
	}
	if sp.Encap != "" {
		e := &trafficgen.Encap{Kind: trafficgen.EncapKind(sp.Encap), SrcMAC: s.SrcMAC, DstMAC: s.DstMAC,
			VNI: uint32(sp.VNI), Label: uint32(sp.Label)}
		if e.Src, err = netip.ParseAddr(sp.OuterSrc); err != nil {
			return s, fmt.Errorf("%s: %w", key("outer-src"), err)
		}
		if e.Dst, err = netip.ParseAddr(sp.OuterDst); err != nil {
			return s, fmt.Errorf("%s: %w", key("outer-dst"), err)
		}
		for _, f := range []struct {
			v   string
			dst *net.HardwareAddr
			n   string
		}{{sp.OuterSMAC, &e.SrcMAC, "outer-smac"}, {sp.OuterDMAC, &e.DstMAC, "outer-dmac"}, {sp.InnerDMAC, &e.InnerDstMAC, "inner-dmac"}} {
			if f.v != "" {
				if *f.dst, err = mac(f.v, key(f.n)); err != nil {
					return s, err
				}
			}
		}
		s.Encap = e
	}
	return s, nil
}
