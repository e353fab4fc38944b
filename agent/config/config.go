// Package config is filament-agent's standalone configuration: one YAML
// file that describes the node, its fabric, the virtual networks with this
// node's pod block in each, and the peer nodes with theirs. It is decoded
// strictly (an unknown key is an error) and every error names its field.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"

	"gopkg.in/yaml.v3"

	"github.com/filament-net/filament/agent/attach"
	"github.com/filament-net/filament/agent/cniapi"
	"github.com/filament-net/filament/dpdk/apiclient"
)

// Defaults.
const (
	DefaultStateDir = "/var/lib/filament"
	DefaultMTU      = 1500
)

// Encapsulations and their overhead in front of the pod's packet.
const (
	EncapVXLAN    = "vxlan"
	EncapMPLSoUDP = "mplsoudp"
	EncapMPLSoGRE = "mplsogre"
)

// Overhead is what an encapsulation adds to the pod's packet (bytes): the
// dataplane's fastpath.*Overhead, which the agent does not link.
func Overhead(encap string) int {
	switch encap {
	case EncapMPLSoUDP:
		return 32 // IPv4 20 + UDP 8 + label 4
	case EncapMPLSoGRE:
		return 28 // IPv4 20 + GRE 4 + label 4
	}
	return 50 // IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
}

// OuterIPv6Extra is what an IPv6 outer header adds to Overhead (40 bytes
// instead of IPv4's 20).
const OuterIPv6Extra = 20

// IPv6MinMTU is the smallest link MTU IPv6 allows (RFC 8200): a dual-stack
// network's pods need at least that.
const IPv6MinMTU = 1280

// MaxIPv6PrefixLen is the longest IPv6 subnet or pod block accepted: a
// block smaller than 256 addresses is not worth a route.
const MaxIPv6PrefixLen = 120

// IsMPLS: the encapsulation carries the network's label, not its VNI.
func IsMPLS(encap string) bool { return encap == EncapMPLSoUDP || encap == EncapMPLSoGRE }

// Config is the whole file.
type Config struct {
	Node string `yaml:"node"`
	// Mode is ModeStandalone (networks and peers from this file, the
	// agent's own IPAM) or ModeKubernetes (networks, peers and pod
	// addresses from the API server: networks and peers must be empty).
	Mode     string    `yaml:"mode"`
	Sockets  Sockets   `yaml:"sockets"`
	StateDir string    `yaml:"state_dir"`
	Fabric   Fabric    `yaml:"fabric"`
	Networks []Network `yaml:"networks"`
	Peers    []Peer    `yaml:"peers"`
	Attach   Attach    `yaml:"attach"`
	Metrics  Metrics   `yaml:"metrics"`
	Host     Host      `yaml:"host"`
}

// Metrics: Prometheus metrics over HTTP.
type Metrics struct {
	Listen string `yaml:"listen"` // host:port of /metrics, /healthz and /readyz; "" (the default): not served
}

// Sockets are where the agent talks to the dataplane and serves the CNI API.
type Sockets struct {
	Dataplane string `yaml:"dataplane"` // default apiclient.DefaultSocket
	CNI       string `yaml:"cni"`       // default cniapi.DefaultSocket (mode 0600)
}

// Fabric is this node's underlay.
type Fabric struct {
	UnderlayIP netip.Addr `yaml:"underlay_ip"`
	// UnderlayIPv6 (optional) is the fabric port's IPv6 address: tunnels
	// to a peer that has one too are IPv6 (see TunnelDst).
	UnderlayIPv6 netip.Addr `yaml:"underlay_ipv6"`
	MTU          int        `yaml:"mtu"` // default 1500
}

// Network is a virtual network (one VRF on every node): IPv4, or dual
// stack with Subnet6.
type Network struct {
	Name     string       `yaml:"name"`
	VRF      uint32       `yaml:"vrf"`
	VNI      uint32       `yaml:"vni"`   // VXLAN network id (0: none)
	Label    uint32       `yaml:"label"` // MPLS label (0: none)
	Subnet   netip.Prefix `yaml:"subnet"`
	Gateway  netip.Addr   `yaml:"gateway"`   // default: subnet's first address
	Encap    string       `yaml:"encap"`     // vxlan (default), mplsoudp or mplsogre: what this node sends
	PodBlock netip.Prefix `yaml:"pod_block"` // this node's addresses, inside subnet
	// IPv6 (optional: all three or none; gateway6 defaults to subnet6's
	// first address).
	Subnet6   netip.Prefix `yaml:"subnet6"`
	Gateway6  netip.Addr   `yaml:"gateway6"`
	PodBlock6 netip.Prefix `yaml:"pod_block6"`
}

// DualStack reports whether the network has IPv6 besides IPv4.
func (n *Network) DualStack() bool { return n.Subnet6.IsValid() }

// Peer is another node: tunnels to it carry its pod blocks.
type Peer struct {
	Name         string                  `yaml:"name"`
	UnderlayIP   netip.Addr              `yaml:"underlay_ip"`
	UnderlayIPv6 netip.Addr              `yaml:"underlay_ipv6"` // optional: see TunnelDst
	PodBlocks    map[string]netip.Prefix `yaml:"pod_blocks"`    // network name -> block
	PodBlocks6   map[string]netip.Prefix `yaml:"pod_blocks6"`   // network name -> IPv6 block
	// Hosts (Kubernetes mode, never from the file) are the peer's pods'
	// addresses as /32 and /128 host routes, per network name.
	Hosts map[string][]netip.Prefix `yaml:"-"`
}

// Modes: where the networks, peers and pod addresses come from.
const (
	ModeStandalone = "standalone"
	ModeKubernetes = "kubernetes"
)

// TunnelDst is the underlay address tunnels to p go to: its IPv6 one when
// both this node and p have one (one tunnel per peer and network carries
// both families inside), its IPv4 one otherwise.
func (c *Config) TunnelDst(p *Peer) netip.Addr {
	if c.Fabric.UnderlayIPv6.IsValid() && p.UnderlayIPv6.IsValid() {
		return p.UnderlayIPv6
	}
	return p.UnderlayIP
}

// Attach says how pods are plugged in.
type Attach struct {
	Veth VethAttach `yaml:"veth"`
	// SocketDir is the base of the vhost-user and memif pods' socket
	// directories (<socket_dir>/<host name>/); default DefaultSocketDir.
	SocketDir string `yaml:"socket_dir"`
}

// DefaultSocketDir is attach.socket_dir's default.
const DefaultSocketDir = "/run/filament/pods"

// VethAttach: the dataplane polls the host end of a veth.
type VethAttach struct {
	Driver string `yaml:"driver"` // af_packet (default) or af_xdp
}

// Veth drivers: the DPDK PMD that polls the host end.
const (
	DriverAFPacket = "af_packet"
	DriverAFXDP    = "af_xdp" // DPDK 22.11 leaks 2049 mbufs per port removed (docs/operations.md)
)

// Load reads, decodes strictly, defaults and validates a file.
// Overrides (command-line flags) apply before the defaults.
func Load(path string, overrides ...func(*Config)) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(b, overrides...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes strictly, defaults and validates.
func Parse(b []byte, overrides ...func(*Config)) (*Config, error) {
	var r rawConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil {
		return nil, err
	}
	c, err := r.convert()
	if err != nil {
		return nil, err
	}
	for _, o := range overrides {
		o(c)
	}
	c.Default()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Default fills the defaults in.
func (c *Config) Default() {
	if c.Mode == "" {
		c.Mode = ModeStandalone
	}
	if c.Sockets.Dataplane == "" {
		c.Sockets.Dataplane = apiclient.DefaultSocket
	}
	if c.Sockets.CNI == "" {
		c.Sockets.CNI = cniapi.DefaultSocket
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.Fabric.MTU == 0 {
		c.Fabric.MTU = DefaultMTU
	}
	for i := range c.Networks {
		n := &c.Networks[i]
		if n.Encap == "" {
			n.Encap = EncapVXLAN
		}
		// The gateways default to the subnets' first addresses (10.1.0.1,
		// fd00:1::1).
		if !n.Gateway.IsValid() && n.Subnet.IsValid() && n.Subnet.Addr().Is4() {
			n.Gateway = n.Subnet.Masked().Addr().Next()
		}
		if !n.Gateway6.IsValid() && n.Subnet6.IsValid() && n.Subnet6.Addr().Is6() {
			n.Gateway6 = n.Subnet6.Masked().Addr().Next()
		}
	}
	if c.Attach.Veth.Driver == "" {
		c.Attach.Veth.Driver = DriverAFPacket
	}
	if c.Attach.SocketDir == "" {
		c.Attach.SocketDir = DefaultSocketDir
	}
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$`)

// Validate checks the whole file; the error lists every problem, each
// naming its field ("networks[1].pod_block: ...").
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, f string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(f, a...)))
	}
	if c.Node == "" {
		bad("node", "required")
	} else if !nameRE.MatchString(c.Node) {
		bad("node", "%q: want a DNS label (lower case letters, digits, '-', '.')", c.Node)
	}
	for _, sk := range []struct{ field, path string }{{"sockets.dataplane", c.Sockets.Dataplane}, {"sockets.cni", c.Sockets.CNI}} {
		if !filepath.IsAbs(sk.path) {
			bad(sk.field, "%q: want an absolute path", sk.path)
		} else if len(sk.path) > 107 {
			bad(sk.field, "%q is %d bytes: a unix socket path has at most 107", sk.path, len(sk.path))
		}
	}
	if c.Metrics.Listen != "" {
		if _, port, err := net.SplitHostPort(c.Metrics.Listen); err != nil || port == "" {
			bad("metrics.listen", "%q: want host:port (127.0.0.1:9464)", c.Metrics.Listen)
		}
	}
	if !filepath.IsAbs(c.StateDir) {
		bad("state_dir", "%q: want an absolute path", c.StateDir)
	}
	if !c.Fabric.UnderlayIP.Is4() {
		bad("fabric.underlay_ip", "required, an IPv4 address")
	}
	if c.Fabric.UnderlayIPv6.IsValid() && !globalUnicast6(c.Fabric.UnderlayIPv6) {
		bad("fabric.underlay_ipv6", "%s: want a global unicast IPv6 address", c.Fabric.UnderlayIPv6)
	}
	if c.Fabric.MTU < 576+50 || c.Fabric.MTU > 9600 {
		bad("fabric.mtu", "%d: want %d..9600", c.Fabric.MTU, 576+50)
	} else {
		for i := range c.Networks {
			if n := &c.Networks[i]; n.DualStack() && c.PodMTU(n) < IPv6MinMTU {
				bad("fabric.mtu", "%d leaves networks[%d]'s pods %d bytes: IPv6 needs %d", c.Fabric.MTU, i, c.PodMTU(n), IPv6MinMTU)
			}
		}
	}
	if c.Attach.Veth.Driver != DriverAFPacket && c.Attach.Veth.Driver != DriverAFXDP {
		bad("attach.veth.driver", "%q: want af_packet or af_xdp", c.Attach.Veth.Driver)
	}
	if !filepath.IsAbs(c.Attach.SocketDir) {
		bad("attach.socket_dir", "%q: want an absolute path", c.Attach.SocketDir)
	} else if len(filepath.Clean(c.Attach.SocketDir)) > attach.MaxSocketBase {
		bad("attach.socket_dir", "%q is %d bytes: at most %d (the sockets under it are unix socket paths, at most 107 bytes)",
			c.Attach.SocketDir, len(c.Attach.SocketDir), attach.MaxSocketBase)
	}
	switch c.Mode {
	case ModeStandalone:
		if len(c.Networks) == 0 {
			bad("networks", "at least one network is required")
		}
	case ModeKubernetes:
		// The API server's VirtualNetworks and FilamentNodes are the truth.
		if len(c.Networks) > 0 {
			bad("networks", "must be empty in kubernetes mode (VirtualNetworks)")
		}
		if len(c.Peers) > 0 {
			bad("peers", "must be empty in kubernetes mode (FilamentNodes)")
		}
	default:
		bad("mode", "%q: want standalone or kubernetes", c.Mode)
	}
	names := map[string]int{}
	vrfs, vnis, labels := map[uint32]int{}, map[uint32]int{}, map[uint32]int{}
	for i, n := range c.Networks {
		f := fmt.Sprintf("networks[%d]", i)
		switch {
		case n.Name == "":
			bad(f+".name", "required")
		case !nameRE.MatchString(n.Name):
			bad(f+".name", "%q: want a DNS label", n.Name)
		default:
			if j, ok := names[n.Name]; ok {
				bad(f+".name", "%q already names networks[%d]", n.Name, j)
			}
			names[n.Name] = i
		}
		if n.VRF == 0 {
			bad(f+".vrf", "required, not 0 (VRF 0 is the fabric's)")
		} else if j, ok := vrfs[n.VRF]; ok {
			bad(f+".vrf", "%d already used by networks[%d]", n.VRF, j)
		} else {
			vrfs[n.VRF] = i
		}
		if n.VNI > 1<<24-1 {
			bad(f+".vni", "%d: want 1..16777215", n.VNI)
		} else if n.VNI != 0 {
			if j, ok := vnis[n.VNI]; ok {
				bad(f+".vni", "%d already used by networks[%d]", n.VNI, j)
			}
			vnis[n.VNI] = i
		}
		if n.Label != 0 && (n.Label < 16 || n.Label > 1<<20-1) {
			bad(f+".label", "%d: want 16..1048575", n.Label)
		} else if n.Label != 0 {
			if j, ok := labels[n.Label]; ok {
				bad(f+".label", "%d already used by networks[%d]", n.Label, j)
			}
			labels[n.Label] = i
		}
		switch n.Encap {
		case EncapVXLAN:
			if n.VNI == 0 {
				bad(f+".vni", "required with encap vxlan")
			}
		case EncapMPLSoUDP, EncapMPLSoGRE:
			if n.Label == 0 {
				bad(f+".label", "required with encap %s", n.Encap)
			}
		default:
			bad(f+".encap", "%q: want vxlan, mplsoudp or mplsogre", n.Encap)
		}
		checkNetwork6(bad, f, n)
		if !n.Subnet.IsValid() || !n.Subnet.Addr().Is4() {
			bad(f+".subnet", "required, an IPv4 prefix (a network is IPv4 or dual stack with subnet6: IPv6-only networks are not supported)")
			continue
		}
		if n.Subnet != n.Subnet.Masked() {
			bad(f+".subnet", "%s has host bits set (want %s)", n.Subnet, n.Subnet.Masked())
		}
		if n.Subnet.Bits() > 30 {
			bad(f+".subnet", "%s: at most /30", n.Subnet)
		}
		if !n.Gateway.Is4() || !n.Subnet.Contains(n.Gateway) {
			bad(f+".gateway", "%v: want an address inside subnet %s", n.Gateway, n.Subnet)
		}
		checkBlock(bad, f+".pod_block", n.PodBlock, n.Subnet, true)
	}
	// IPv6 subnets never overlap (IPv4 ones may, in separate VRFs, without
	// a host port: host.go): ULA space is plenty, and an overlap is
	// almost surely a typo.
	for i, n := range c.Networks {
		for j := range i {
			if o := c.Networks[j].Subnet6; o.IsValid() && n.Subnet6.IsValid() && o.Overlaps(n.Subnet6) {
				bad(fmt.Sprintf("networks[%d].subnet6", i), "%s overlaps networks[%d]'s %s", n.Subnet6, j, o)
			}
		}
	}
	pnames := map[string]int{}
	under := map[netip.Addr]string{c.Fabric.UnderlayIP: "fabric.underlay_ip"}
	if c.Fabric.UnderlayIPv6.IsValid() {
		under[c.Fabric.UnderlayIPv6] = "fabric.underlay_ipv6"
	}
	for i, p := range c.Peers {
		f := fmt.Sprintf("peers[%d]", i)
		if p.Name == "" {
			bad(f+".name", "required")
		} else if j, ok := pnames[p.Name]; ok {
			bad(f+".name", "%q already names peers[%d]", p.Name, j)
		} else if p.Name == c.Node {
			bad(f+".name", "%q is this node", p.Name)
		} else {
			pnames[p.Name] = i
		}
		if !p.UnderlayIP.Is4() {
			bad(f+".underlay_ip", "required, an IPv4 address")
		} else if other, ok := under[p.UnderlayIP]; ok {
			bad(f+".underlay_ip", "%s already used by %s", p.UnderlayIP, other)
		} else {
			under[p.UnderlayIP] = f + ".underlay_ip"
		}
		if a := p.UnderlayIPv6; a.IsValid() {
			if !globalUnicast6(a) {
				bad(f+".underlay_ipv6", "%s: want a global unicast IPv6 address", a)
			} else if other, ok := under[a]; ok {
				bad(f+".underlay_ipv6", "%s already used by %s", a, other)
			} else {
				under[a] = f + ".underlay_ipv6"
			}
		}
		for nn, blk := range p.PodBlocks6 {
			j, ok := names[nn]
			if !ok {
				bad(f+".pod_blocks6."+nn, "no network %q", nn)
				continue
			}
			n := c.Networks[j]
			if !n.Subnet6.IsValid() {
				bad(f+".pod_blocks6."+nn, "network %q has no subnet6", nn)
				continue
			}
			checkBlock6(bad, f+".pod_blocks6."+nn, blk, n.Subnet6)
			if n.PodBlock6.IsValid() && blk.Overlaps(n.PodBlock6) {
				bad(f+".pod_blocks6."+nn, "%s overlaps this node's pod_block6 %s", blk, n.PodBlock6)
			}
		}
		for nn, blk := range p.PodBlocks {
			j, ok := names[nn]
			if !ok {
				bad(f+".pod_blocks."+nn, "no network %q", nn)
				continue
			}
			n := c.Networks[j]
			if !n.Subnet.IsValid() {
				continue
			}
			checkBlock(bad, f+".pod_blocks."+nn, blk, n.Subnet, false)
			if n.PodBlock.IsValid() && blk.Overlaps(n.PodBlock) {
				bad(f+".pod_blocks."+nn, "%s overlaps this node's pod_block %s", blk, n.PodBlock)
			}
		}
	}
	c.validateHost(bad)
	return errors.Join(errs...)
}

func checkBlock(bad func(string, string, ...any), f string, blk, subnet netip.Prefix, local bool) {
	switch {
	case !blk.IsValid() || !blk.Addr().Is4():
		bad(f, "required, an IPv4 prefix")
	case blk != blk.Masked():
		bad(f, "%s has host bits set (want %s)", blk, blk.Masked())
	case blk.Bits() < subnet.Bits() || !subnet.Contains(blk.Addr()):
		bad(f, "%s is not inside subnet %s", blk, subnet)
	case local && blk.Bits() > 30 && blk.Bits() != subnet.Bits():
		bad(f, "%s: too small", blk)
	}
}

// checkNetwork6 checks a network's IPv6 keys (field f is "networks[i]"):
// none, or subnet6 and pod_block6 (gateway6 defaults).
func checkNetwork6(bad func(string, string, ...any), f string, n Network) {
	if !n.Subnet6.IsValid() {
		if n.Gateway6.IsValid() || n.PodBlock6.IsValid() {
			bad(f+".subnet6", "required with gateway6 and pod_block6")
		}
		return
	}
	s := n.Subnet6
	switch {
	case !s.Addr().Is6() || s.Addr().Is4In6():
		bad(f+".subnet6", "%s: want an IPv6 prefix", s)
		return
	case s != s.Masked():
		bad(f+".subnet6", "%s has host bits set (want %s)", s, s.Masked())
		return
	case !globalUnicast6(s.Addr()):
		bad(f+".subnet6", "%s: want a global unicast or unique local prefix (not link-local, multicast or unspecified)", s)
		return
	case s.Bits() > MaxIPv6PrefixLen:
		bad(f+".subnet6", "%s: at most /%d", s, MaxIPv6PrefixLen)
		return
	}
	switch g := n.Gateway6; {
	case !g.Is6() || !s.Contains(g):
		bad(f+".gateway6", "%v: want an address inside subnet6 %s", g, s)
	case g == s.Addr():
		bad(f+".gateway6", "%s is subnet6's subnet-router anycast address: want another", g)
	}
	checkBlock6(bad, f+".pod_block6", n.PodBlock6, s)
}

// checkBlock6 checks an IPv6 pod block of subnet6 s.
func checkBlock6(bad func(string, string, ...any), f string, blk, s netip.Prefix) {
	switch {
	case !blk.IsValid() || !blk.Addr().Is6() || blk.Addr().Is4In6():
		bad(f, "required with subnet6, an IPv6 prefix")
	case blk != blk.Masked():
		bad(f, "%s has host bits set (want %s)", blk, blk.Masked())
	case blk.Bits() < s.Bits() || !s.Contains(blk.Addr()):
		bad(f, "%s is not inside subnet6 %s", blk, s)
	case blk.Bits() > MaxIPv6PrefixLen:
		bad(f, "%s: at most /%d", blk, MaxIPv6PrefixLen)
	}
}

// globalUnicast6: an IPv6 unicast address that routes (fd00::/8 included).
func globalUnicast6(a netip.Addr) bool {
	return a.Is6() && !a.Is4In6() && a.IsGlobalUnicast()
}

// Network returns the network named name ("" is the first, the default).
func (c *Config) Network(name string) (*Network, bool) {
	if name == "" && len(c.Networks) > 0 {
		return &c.Networks[0], true
	}
	for i := range c.Networks {
		if c.Networks[i].Name == name {
			return &c.Networks[i], true
		}
	}
	return nil, false
}

// PodMTU is the MTU of the network's pod interfaces: the fabric's minus the
// encapsulation's overhead.
// With an IPv6 underlay to some peer, every tunnel counts the 20 bytes of
// an IPv6 outer header (a pod's MTU is one for all its destinations).
func (c *Config) PodMTU(n *Network) int {
	mtu := c.Fabric.MTU - Overhead(n.Encap)
	if c.outerIPv6() {
		mtu -= OuterIPv6Extra
	}
	return mtu
}

// outerIPv6 reports whether some tunnel of this node is IPv6 (TunnelDst).
func (c *Config) outerIPv6() bool {
	for i := range c.Peers {
		if c.TunnelDst(&c.Peers[i]).Is6() {
			return true
		}
	}
	return false
}

// The file as written: addresses as text, converted with errors that name
// the field (yaml's own would not).
type rawConfig struct {
	Node     string       `yaml:"node"`
	Mode     string       `yaml:"mode"`
	Sockets  Sockets      `yaml:"sockets"`
	StateDir string       `yaml:"state_dir"`
	Fabric   rawFabric    `yaml:"fabric"`
	Networks []rawNetwork `yaml:"networks"`
	Peers    []rawPeer    `yaml:"peers"`
	Attach   Attach       `yaml:"attach"`
	Metrics  Metrics      `yaml:"metrics"`
	Host     rawHost      `yaml:"host"`
}

type rawFabric struct {
	UnderlayIP   string `yaml:"underlay_ip"`
	UnderlayIPv6 string `yaml:"underlay_ipv6"`
	MTU          int    `yaml:"mtu"`
}

type rawNetwork struct {
	Name     string `yaml:"name"`
	VRF      uint32 `yaml:"vrf"`
	VNI      uint32 `yaml:"vni"`
	Label    uint32 `yaml:"label"`
	Subnet   string `yaml:"subnet"`
	Gateway  string `yaml:"gateway"`
	Encap    string `yaml:"encap"`
	PodBlock string `yaml:"pod_block"`

	Subnet6   string `yaml:"subnet6"`
	Gateway6  string `yaml:"gateway6"`
	PodBlock6 string `yaml:"pod_block6"`
}

type rawPeer struct {
	Name         string            `yaml:"name"`
	UnderlayIP   string            `yaml:"underlay_ip"`
	UnderlayIPv6 string            `yaml:"underlay_ipv6"`
	PodBlocks    map[string]string `yaml:"pod_blocks"`
	PodBlocks6   map[string]string `yaml:"pod_blocks6"`
}

func (r *rawConfig) convert() (*Config, error) {
	var errs []error
	addr := func(field, s string) netip.Addr {
		if s == "" {
			return netip.Addr{} // "required" comes from Validate
		}
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			errs = append(errs, fmt.Errorf("%s: %q is not an IPv4 address", field, s))
		}
		return a
	}
	prefix := func(field, s string) netip.Prefix {
		if s == "" {
			return netip.Prefix{}
		}
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			errs = append(errs, fmt.Errorf("%s: %q is not an IPv4 prefix (10.1.0.0/24)", field, s))
		}
		return p
	}
	addr6 := func(field, s string) netip.Addr {
		if s == "" {
			return netip.Addr{}
		}
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" {
			errs = append(errs, fmt.Errorf("%s: %q is not an IPv6 address", field, s))
			return netip.Addr{}
		}
		return a
	}
	prefix6 := func(field, s string) netip.Prefix {
		if s == "" {
			return netip.Prefix{}
		}
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is6() || p.Addr().Is4In6() {
			errs = append(errs, fmt.Errorf("%s: %q is not an IPv6 prefix (fd00:20::/64)", field, s))
			return netip.Prefix{}
		}
		return p
	}
	c := &Config{Node: r.Node, Mode: r.Mode, Sockets: r.Sockets, StateDir: r.StateDir, Attach: r.Attach, Metrics: r.Metrics,
		Fabric: Fabric{UnderlayIP: addr("fabric.underlay_ip", r.Fabric.UnderlayIP),
			UnderlayIPv6: addr6("fabric.underlay_ipv6", r.Fabric.UnderlayIPv6), MTU: r.Fabric.MTU},
		Host: Host{Interface: r.Host.Interface, PrefixLen: r.Host.PrefixLen, Gateway: addr("host.gateway", r.Host.Gateway),
			PrefixLen6: r.Host.PrefixLen6}}
	for i, n := range r.Networks {
		f := fmt.Sprintf("networks[%d].", i)
		c.Networks = append(c.Networks, Network{Name: n.Name, VRF: n.VRF, VNI: n.VNI, Label: n.Label, Encap: n.Encap,
			Subnet: prefix(f+"subnet", n.Subnet), Gateway: addr(f+"gateway", n.Gateway), PodBlock: prefix(f+"pod_block", n.PodBlock),
			Subnet6: prefix6(f+"subnet6", n.Subnet6), Gateway6: addr6(f+"gateway6", n.Gateway6), PodBlock6: prefix6(f+"pod_block6", n.PodBlock6)})
	}
	for i, p := range r.Peers {
		f := fmt.Sprintf("peers[%d].", i)
		pp := Peer{Name: p.Name, UnderlayIP: addr(f+"underlay_ip", p.UnderlayIP), UnderlayIPv6: addr6(f+"underlay_ipv6", p.UnderlayIPv6),
			PodBlocks: map[string]netip.Prefix{}, PodBlocks6: map[string]netip.Prefix{}}
		for k, v := range p.PodBlocks {
			pp.PodBlocks[k] = prefix(f+"pod_blocks."+k, v)
		}
		for k, v := range p.PodBlocks6 {
			pp.PodBlocks6[k] = prefix6(f+"pod_blocks6."+k, v)
		}
		c.Peers = append(c.Peers, pp)
	}
	return c, errors.Join(errs...)
}
