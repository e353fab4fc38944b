// Package config is filament-dataplane's configuration file: YAML with
// snake_case keys, decoded strictly (an unknown key is an error), validated
// as a whole (every error names its field, e.g. `ports[1].mac: "zz" is not a
// MAC address`) and applied to a running fast path in dependency order.
//
// A minimal file:
//
//	eal: {lcores: "0,1", file_prefix: node1}
//	ports:
//	  - {name: fabric, devargs: "net_af_packet0,iface=fab1", kind: fabric, ipv4: [192.168.100.1]}
//	  - {name: pod1, devargs: "net_af_packet1,iface=p1h", kind: pod, vrf: 1,
//	     mac: "02:00:0a:0a:01:02", ipv4: [10.10.1.2], ipv6: ["fd00:10::2"]}
//	vrfs:
//	  - {vrf: 1, address: 10.10.1.1, address6: "fd00:10::1"}
//	next_hops:
//	  - {id: 1, type: interface, port: pod1, dst_mac: "02:00:0a:0a:01:02"}
//	routes:
//	  - {vrf: 1, prefix: 10.10.1.2/32, next_hop: 1}
//	  - {vrf: 1, prefix: "fd00:10::2/128", next_hop: 1}
//	api: {socket: /run/filament/dataplane.sock}   # the gRPC API (the default)
//
// Keys left out take the defaults of Default (the fast path's own for the
// tables, see fastpath.DefaultConfig).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/filament-net/filament/dpdk/fastpath"
)

// Config is the whole file.
type Config struct {
	EAL    EAL    `yaml:"eal"`
	Tables Tables `yaml:"tables"`
	// VRouterMAC is the MAC every pod sees as its gateway's.
	VRouterMAC string `yaml:"vrouter_mac"`
	// IdleSleepMaxUS is the longest sleep of an idle forwarding lcore
	// (adaptive polling); 0 polls without ever sleeping.
	IdleSleepMaxUS int        `yaml:"idle_sleep_max_us"`
	Ports          []Port     `yaml:"ports"`
	VRFs           []VRF      `yaml:"vrfs"`
	NextHops       []NextHop  `yaml:"next_hops"`
	Routes         []Route    `yaml:"routes"`
	VNIs           []VNI      `yaml:"vnis"`
	Labels         []Label    `yaml:"labels"`
	Neighbors      []Neighbor `yaml:"neighbors"`
	API            API        `yaml:"api"`

	vrouterMAC net.HardwareAddr
	valid      bool
}

// EAL is how DPDK starts.
type EAL struct {
	// Lcores is DPDK's -l list ("0,1", "0-3", "0,2-3"): the first lcore
	// is the control thread, every other one forwards.
	Lcores string `yaml:"lcores"`
	// NoHuge runs on anonymous memory of MemoryMB MiB (--no-huge -m):
	// slower, but needs no hugepages. Without it the dataplane refuses to
	// start on a machine with no free hugepages.
	NoHuge   bool `yaml:"no_huge"`
	MemoryMB int  `yaml:"memory_mb"`
	// FilePrefix tells DPDK processes on one machine apart.
	FilePrefix string `yaml:"file_prefix"`
	// Extra EAL arguments, e.g. ["-a", "0000:03:00.0", "--log-level", "pmd.*:debug"].
	// Without a PCI allow/block argument here the dataplane passes --no-pci.
	Extra []string `yaml:"extra"`
}

// API is the dataplane's gRPC API (dpdk/api/dataplane/v1), what the agent
// and filamentctl use.
type API struct {
	// Socket is the unix socket it is served on (mode 0600, its directory
	// created 0700 if missing). The --socket flag overrides it.
	Socket string `yaml:"socket"`
}

// DefaultSocket is where the API is served unless told otherwise.
const DefaultSocket = "/run/filament/dataplane.sock"

// MaxSocketPath is the longest unix socket path (sun_path holds 108 bytes
// with the terminating NUL).
const MaxSocketPath = 107

// CheckSocketPath refuses a path a unix socket cannot have.
func CheckSocketPath(p string) error {
	switch {
	case p == "":
		return errors.New("required: the unix socket to serve the API on")
	case len(p) > MaxSocketPath:
		return fmt.Errorf("%q is %d bytes: a unix socket path has at most %d", p, len(p), MaxSocketPath)
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("%q contains a NUL byte", p)
	case strings.HasSuffix(p, "/"):
		return fmt.Errorf("%q is a directory: need a file path", p)
	}
	return nil
}

// Tables sizes the fast path's tables and packet pool.
type Tables struct {
	NextHops   int `yaml:"next_hops"`   // next-hop ids are 0..next_hops-1
	VRFs       int `yaml:"vrfs"`        // VRF ids are 0..vrfs-1
	FIB4Routes int `yaml:"fib4_routes"` // IPv4 routes per VRF
	FIB4Tbl8s  int `yaml:"fib4_tbl8s"`  // IPv4 FIB groups of 1 KiB, one pool for all VRFs
	FIB6Routes int `yaml:"fib6_routes"` // IPv6 routes per VRF
	FIB6Groups int `yaml:"fib6_groups"` // IPv6 FIB groups of 1 KiB, one pool for all VRFs
	Mbufs      int `yaml:"mbufs"`       // packet buffers
}

// Port is a DPDK port.
type Port struct {
	// Name is how next-hops refer to the port (and how logs show it).
	Name string `yaml:"name"`
	// Devargs probes the device: "net_af_packet0,iface=veth0",
	// "net_tap0,iface=vhost0", a PCI address... The part before the first
	// comma names the device and must be unique.
	Devargs string `yaml:"devargs"`
	// Kind is fabric (the underlay NIC: tunnels end there), pod (a pod or
	// VM interface) or host (the node's own stack).
	Kind string `yaml:"kind"`
	// VRF (pod, host) is where the port's traffic is routed.
	VRF int `yaml:"vrf"`
	// MAC is, for a pod, the pod's MAC (anything else it sends is
	// dropped); for fabric and host, the device's MAC (empty: keep it).
	MAC string `yaml:"mac"`
	// IPv4: pod, the addresses the pod may send from (up to 8); fabric,
	// exactly one, the node's underlay address; host, optional.
	IPv4 []string `yaml:"ipv4"`
	// IPv6: pod, the IPv6 addresses the pod may send from (up to 8; its
	// link-local address is derived from mac and always allowed); fabric,
	// at most one, the node's IPv6 underlay address (tunnels to IPv6
	// endpoints need it); host, optional. A pod port needs at least one
	// address of either family.
	IPv6 []string `yaml:"ipv6"`
	// MTU is the port's L3 MTU, 576..9600 (0: 1500).
	MTU int `yaml:"mtu"`
	// RxQueues is the number of RX queues, spread over the forwarding
	// lcores (0: the fast path's default).
	RxQueues int `yaml:"rx_queues"`

	kind fastpath.PortKind
	mac  net.HardwareAddr
	ipv4 []netip.Addr
	ipv6 []netip.Addr
}

// VRF is the vRouter's own addresses in a VRF: the gateways of the VRF's
// networks, and the sources of the ICMP errors (time exceeded,
// fragmentation needed) and ICMPv6 errors (time exceeded, packet too big)
// the fast path sends there. A VRF without one gets no such errors.
// (Answering pings to it takes a route to a receive next-hop.)
type VRF struct {
	VRF     *int   `yaml:"vrf"`
	Address string `yaml:"address"` // IPv4, required
	// Address6 is the IPv6 one, optional: without it the VRF gets no
	// ICMPv6 errors.
	Address6 string `yaml:"address6"`

	addr  netip.Addr
	addr6 netip.Addr
}

// NextHop is what routes point to.
type NextHop struct {
	ID *int `yaml:"id"`
	// Type is interface, tunnel, ecmp, receive (for the vRouter itself:
	// pings are answered, the rest goes to the host port) or discard.
	Type string `yaml:"type"`
	// Port (interface, tunnel) is the out port's name; a tunnel's must be
	// the fabric port.
	Port string `yaml:"port"`
	// DstMAC (interface) is written as the frame's destination.
	DstMAC string `yaml:"dst_mac"`
	// Encap (tunnel) is vxlan (with vni), mplsoudp or mplsogre (with label).
	Encap string `yaml:"encap"`
	// TunnelDst (tunnel) is the remote vRouter's underlay address, IPv4
	// or IPv6 (an IPv6 outer header, from the fabric's ipv6); TunnelGW the
	// underlay next hop, of the same family, when it is not on the
	// fabric's L2.
	TunnelDst string `yaml:"tunnel_dst"`
	TunnelGW  string `yaml:"tunnel_gw"`
	VNI       *int   `yaml:"vni"`
	Label     *int   `yaml:"label"`
	// Members (ecmp) are ids of interface or tunnel next-hops.
	Members []int `yaml:"members"`

	typ    fastpath.NHType
	encap  fastpath.Encap
	dstMAC net.HardwareAddr
	tunDst netip.Addr
	tunGW  netip.Addr
}

// Route is an IPv4 or IPv6 route in a VRF (the prefix says which FIB).
type Route struct {
	VRF     int    `yaml:"vrf"`
	Prefix  string `yaml:"prefix"`
	NextHop *int   `yaml:"next_hop"`

	prefix netip.Prefix
}

// VNI maps a VXLAN VNI to the VRF its decapsulated packets are routed in.
type VNI struct {
	VNI *int `yaml:"vni"`
	VRF int  `yaml:"vrf"`
}

// Label maps an MPLS label (MPLSoUDP and MPLSoGRE) to a VRF.
type Label struct {
	Label *int `yaml:"label"`
	VRF   int  `yaml:"vrf"`
}

// Neighbor pins an underlay neighbour's MAC (otherwise learnt by ARP).
type Neighbor struct {
	IP  string `yaml:"ip"`
	MAC string `yaml:"mac"`

	ip  netip.Addr
	mac net.HardwareAddr
}

// Limits of the fast path that it does not export. maxWorkers, maxRxQueues
// and maxNeigh mirror FP_MAX_WORKERS (dpdk/fastpath/fp.h), FP_MAX_RXQ
// (fp_port.c) and FP_MAX_NEIGH (fp_priv.h): keep them in step until the
// fastpath package exports them.
const (
	maxWorkers  = 16   // FP_MAX_WORKERS, fp.h
	maxRxQueues = 16   // FP_MAX_RXQ, fp_port.c
	maxNeigh    = 4096 // FP_MAX_NEIGH, fp_priv.h
	maxTunnelID = 1<<24 - 1
	minLabel    = 16
	maxLabel    = 1<<20 - 1
	maxNHs      = 1 << 24
	maxTbl8s    = 1 << 21 // FP_FIB4_GROUPS_MAX, fp_fib4.h
	maxGroups6  = 1 << 21 // FP_FIB6_GROUPS_MAX, fp_fib6.h
	minMbufs    = 1024
	minMTU      = 576
	maxMTU      = 9600
	maxIdleUS   = 1000000
	maxLcore    = 128 // RTE_MAX_LCORE of Debian's DPDK 22.11
)

// Default is the configuration of an empty file.
func Default() *Config {
	d := fastpath.DefaultConfig()
	return &Config{
		EAL: EAL{Lcores: "0,1", MemoryMB: 512, FilePrefix: "filament"},
		Tables: Tables{
			NextHops:   int(d.NextHops),
			VRFs:       int(d.VRFs),
			FIB4Routes: int(d.FIB4Rules),
			FIB4Tbl8s:  int(d.FIB4Tbl8s),
			FIB6Routes: int(d.FIB6Rules),
			FIB6Groups: int(d.FIB6Groups),
			Mbufs:      int(d.Mbufs),
		},
		VRouterMAC:     d.VRouterMAC.String(),
		IdleSleepMaxUS: int(d.IdleSleepMax / time.Microsecond),
		API:            API{Socket: DefaultSocket},
	}
}

// Load reads, decodes and validates a file. Errors start with the file name.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes YAML over the defaults and validates the result.
func Parse(data []byte) (*Config, error) {
	c, err := Decode(data)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Decode decodes YAML over the defaults without validating: unknown keys,
// duplicate keys and values of the wrong YAML type are errors.
func Decode(data []byte) (*Config, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty configuration")
		}
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document")
	}
	c := Default()
	if len(doc.Content) == 0 || doc.Content[0].Tag == "!!null" {
		return c, nil // a file of comments only
	}
	lines := map[int]string{}
	var errs []error
	checkKeys(doc.Content[0], reflect.TypeOf(*c), "", lines, &errs)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := doc.Decode(c); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, err
		}
		for _, e := range te.Errors {
			errs = append(errs, typeError(e, lines))
		}
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// checkKeys walks the document against the Go types: it refuses keys no
// field has, with the field path, and notes which path each line holds so
// that YAML type errors can name their field.
func checkKeys(n *yaml.Node, t reflect.Type, path string, lines map[int]string, errs *[]error) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if _, ok := lines[n.Line]; !ok && path != "" {
		lines[n.Line] = path
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := map[string]reflect.Type{}
		var names []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || tag == "" || tag == "-" {
				continue
			}
			fields[tag] = f.Type
			names = append(names, tag)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			ft, ok := fields[k.Value]
			if !ok {
				if hint := movedKeys[t][k.Value]; hint != nil {
					*errs = append(*errs, fmt.Errorf("%s: unknown key (line %d): %s", p, k.Line, hint(n, v)))
				} else {
					*errs = append(*errs, fmt.Errorf("%s: unknown key (line %d; known keys: %s)",
						p, k.Line, strings.Join(names, ", ")))
				}
				continue
			}
			lines[k.Line] = p
			checkKeys(v, ft, p, lines, errs)
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, e := range n.Content {
			checkKeys(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), lines, errs)
		}
	}
}

// movedKeys are keys of older configurations whose setting now lives
// elsewhere: instead of the list of known keys, their error says where to
// put it. A hint gets the mapping that holds the key and the key's value.
var movedKeys = map[reflect.Type]map[string]func(m, v *yaml.Node) string{
	reflect.TypeOf(Port{}): {
		"gateway": func(m, v *yaml.Node) string {
			vrf, addr, kind := "0", "10.10.1.1", "" // a port without vrf is in VRF 0
			if v.Kind == yaml.ScalarNode && v.Value != "" {
				addr = v.Value
			}
			for i := 0; i+1 < len(m.Content); i += 2 {
				if k, val := m.Content[i], m.Content[i+1]; val.Kind == yaml.ScalarNode {
					switch k.Value {
					case "vrf":
						vrf = val.Value
					case "kind":
						kind = val.Value
					}
				}
			}
			if kind == "fabric" {
				return "ports no longer take a gateway: a tunnel names its underlay gateway with tunnel_gw, " +
					"and the vRouter's address in a VRF is set in the top-level vrfs section"
			}
			return fmt.Sprintf("ports no longer take a gateway: use the top-level vrfs section instead, "+
				"which sets the vRouter's address in a VRF (the pods' gateway, source of its ICMP errors), "+
				"e.g. vrfs: [{vrf: %s, address: %s}]", vrf, addr)
		},
	},
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var lineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// typeError turns yaml's "line 7: cannot unmarshal !!str `x` into int" into
// "ports[0].mtu: cannot unmarshal !!str `x` into int (line 7)".
func typeError(msg string, lines map[int]string) error {
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return errors.New(msg)
	}
	l, _ := strconv.Atoi(m[1])
	if p, ok := lines[l]; ok {
		return fmt.Errorf("%s: %s (line %d)", p, m[2], l)
	}
	return errors.New(msg)
}

// FastpathConfig is what fastpath.Start takes. The config must be valid.
func (c *Config) FastpathConfig() fastpath.Config {
	return fastpath.Config{
		EALArgs:      c.EALArgs(),
		NextHops:     uint32(c.Tables.NextHops),
		VRFs:         uint32(c.Tables.VRFs),
		FIB4Rules:    uint32(c.Tables.FIB4Routes),
		FIB4Tbl8s:    uint32(c.Tables.FIB4Tbl8s),
		FIB6Rules:    uint32(c.Tables.FIB6Routes),
		FIB6Groups:   uint32(c.Tables.FIB6Groups),
		Mbufs:        uint32(c.Tables.Mbufs),
		IdleSleepMax: time.Duration(c.IdleSleepMaxUS) * time.Microsecond,
		VRouterMAC:   c.vrouterMAC,
	}
}

// EALArgs builds rte_eal_init's arguments: -l, --file-prefix, --no-pci
// unless Extra selects PCI devices, then --in-memory (hugepages, nothing
// shared with other processes) or --no-huge -m MemoryMB, then Extra.
func (c *Config) EALArgs() []string {
	args := []string{"-l", c.EAL.Lcores, "--file-prefix", c.EAL.FilePrefix}
	if !hasPCIArgs(c.EAL.Extra) {
		args = append(args, "--no-pci")
	}
	if c.EAL.NoHuge {
		args = append(args, "--no-huge", "-m", strconv.Itoa(c.EAL.MemoryMB))
	} else {
		args = append(args, "--in-memory")
	}
	return append(args, c.EAL.Extra...)
}

// Workers is the number of forwarding lcores the EAL list gives (0 if it
// does not parse).
func (c *Config) Workers() int {
	l, err := parseLcores(c.EAL.Lcores)
	if err != nil || len(l) == 0 {
		return 0
	}
	return len(l) - 1
}

func hasPCIArgs(extra []string) bool {
	for _, a := range extra {
		switch {
		case a == "-a", a == "-b", a == "-w", a == "--no-pci",
			strings.HasPrefix(a, "--allow"), strings.HasPrefix(a, "--block"),
			strings.HasPrefix(a, "--pci-whitelist"), strings.HasPrefix(a, "--pci-blacklist"):
			return true
		case len(a) > 2 && (strings.HasPrefix(a, "-a") || strings.HasPrefix(a, "-b") ||
			strings.HasPrefix(a, "-w")) && !strings.HasPrefix(a, "--"):
			return true
		}
	}
	return false
}

// parseLcores parses DPDK's -l list: numbers and ranges, comma separated.
func parseLcores(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty")
	}
	seen := map[int]bool{}
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("%q is not an lcore number or range", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("%q is not an lcore number or range", part)
			}
		}
		if b >= maxLcore {
			return nil, fmt.Errorf("lcore %d: DPDK has lcores 0..%d", b, maxLcore-1)
		}
		for i := a; i <= b; i++ {
			if seen[i] {
				return nil, fmt.Errorf("lcore %d given twice", i)
			}
			seen[i] = true
			out = append(out, i)
		}
	}
	return out, nil
}
