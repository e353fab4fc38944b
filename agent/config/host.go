package config

import (
	"fmt"
	"net/netip"
	"regexp"
)

// HostVRF is the VRF of the host port: VRF 0, the fabric's (Tungsten
// Fabric's vhost0 is in the ip-fabric VRF). It holds a copy of every route
// that leads to a pod, and nothing else of the networks.
const HostVRF = 0

// Host is the node's host port (Tungsten Fabric's vhost0): a TAP the
// dataplane makes, whose kernel side holds the node's underlay address, so
// that the node's own stack reaches the fabric, its pods and the other
// nodes' pods through the dataplane. Off unless Interface is set: turning
// it on moves the node's underlay address (docs/agent.md, "Host port").
type Host struct {
	// Interface is the TAP's name (and its dataplane port's); "": no host
	// port.
	Interface string `yaml:"interface"`
	// PrefixLen is the underlay subnet's length, as the address had on the
	// fabric NIC: the kernel reaches that subnet on the TAP.
	PrefixLen int `yaml:"prefix_len"`
	// Gateway, if set, is the underlay's router: the kernel's default
	// route goes through it on the TAP.
	Gateway netip.Addr `yaml:"gateway"`
	// PrefixLen6 (optional, with fabric.underlay_ipv6) is the IPv6
	// underlay subnet's length: with it the TAP holds the IPv6 underlay
	// address too, and the node reaches dual-stack pods over IPv6.
	PrefixLen6 int `yaml:"prefix_len6"`
}

// Enabled reports whether the configuration has a host port.
func (h Host) Enabled() bool { return h.Interface != "" }

// Underlay is the TAP's address: the underlay address with the subnet's
// length.
func (c *Config) Underlay() netip.Prefix {
	return netip.PrefixFrom(c.Fabric.UnderlayIP, c.Host.PrefixLen)
}

// Underlay6 is the TAP's IPv6 address (zero when the host port is IPv4
// only): the IPv6 underlay address with host.prefix_len6.
func (c *Config) Underlay6() netip.Prefix {
	if !c.Host.Enabled() || c.Host.PrefixLen6 == 0 || !c.Fabric.UnderlayIPv6.IsValid() {
		return netip.Prefix{}
	}
	return netip.PrefixFrom(c.Fabric.UnderlayIPv6, c.Host.PrefixLen6)
}

type rawHost struct {
	Interface  string `yaml:"interface"`
	PrefixLen  int    `yaml:"prefix_len"`
	Gateway    string `yaml:"gateway"`
	PrefixLen6 int    `yaml:"prefix_len6"`
}

// A Linux interface name that is also a dataplane port name.
var ifNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)

func (c *Config) validateHost(bad func(string, string, ...any)) {
	h := c.Host
	if !h.Enabled() {
		if h.PrefixLen != 0 || h.Gateway.IsValid() || h.PrefixLen6 != 0 {
			bad("host.interface", "required with host.prefix_len, host.gateway or host.prefix_len6")
		}
		return
	}
	if h.PrefixLen6 != 0 {
		if h.PrefixLen6 < 1 || h.PrefixLen6 > 128 {
			bad("host.prefix_len6", "%d: want 1..128, the IPv6 underlay subnet's length", h.PrefixLen6)
		} else if !c.Fabric.UnderlayIPv6.IsValid() {
			bad("host.prefix_len6", "needs fabric.underlay_ipv6 (the address the host port holds)")
		}
	}
	if !ifNameRE.MatchString(h.Interface) {
		bad("host.interface", "%q: want an interface name of 1..15 letters, digits, '_', '.' or '-'", h.Interface)
	}
	if h.PrefixLen < 1 || h.PrefixLen > 32 {
		bad("host.prefix_len", "%d: want 1..32, the underlay subnet's length", h.PrefixLen)
	} else if h.Gateway.IsValid() && c.Fabric.UnderlayIP.Is4() {
		if under := c.Underlay().Masked(); !under.Contains(h.Gateway) || h.Gateway == c.Fabric.UnderlayIP {
			bad("host.gateway", "%s: want another address of the underlay subnet %s", h.Gateway, under)
		}
	}
	// The host VRF holds every network's pods: their subnets must not
	// overlap, and no node's address may fall in one.
	for i, n := range c.Networks {
		if !n.Subnet.IsValid() {
			continue
		}
		for j := range i {
			if o := c.Networks[j].Subnet; o.IsValid() && o.Overlaps(n.Subnet) {
				bad(fmt.Sprintf("networks[%d].subnet", i), "%s overlaps networks[%d]'s %s: with a host port, one VRF routes both", n.Subnet, j, o)
			}
		}
		type node struct {
			field string
			addr  netip.Addr
		}
		nodes := []node{{"fabric.underlay_ip", c.Fabric.UnderlayIP}}
		for k, p := range c.Peers {
			nodes = append(nodes, node{fmt.Sprintf("peers[%d].underlay_ip", k), p.UnderlayIP})
		}
		if c.Fabric.UnderlayIPv6.IsValid() {
			nodes = append(nodes, node{"fabric.underlay_ipv6", c.Fabric.UnderlayIPv6})
		}
		for k, p := range c.Peers {
			if p.UnderlayIPv6.IsValid() {
				nodes = append(nodes, node{fmt.Sprintf("peers[%d].underlay_ipv6", k), p.UnderlayIPv6})
			}
		}
		for _, nd := range nodes {
			if n.Subnet6.IsValid() && n.Subnet6.Contains(nd.addr) {
				bad(nd.field, "%s is inside networks[%d]'s subnet6 %s: with a host port, node addresses are routed in the networks",
					nd.addr, i, n.Subnet6)
			}
			if n.Subnet.Contains(nd.addr) {
				bad(nd.field, "%s is inside networks[%d]'s subnet %s: with a host port, node addresses are routed in the networks",
					nd.addr, i, n.Subnet)
			}
		}
	}
}
