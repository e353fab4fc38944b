package config

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/filament-net/filament/dpdk/fastpath"
)

// Dataplane is what Apply programs: a *fastpath.Dataplane (or a fake).
type Dataplane interface {
	AddPort(devargs string, pc fastpath.PortConfig) (fastpath.PortID, error)
	SetVRFAddress(vrf uint16, addr netip.Addr) error
	SetVRFAddress6(vrf uint16, addr netip.Addr) error
	SetNeighbor(ip netip.Addr, mac net.HardwareAddr) error
	SetNextHop(id uint32, nh fastpath.NextHop) error
	AddRoute4(vrf uint16, p netip.Prefix, nh uint32) error
	AddRoute6(vrf uint16, p netip.Prefix, nh uint32) error
	SetVNI(vni uint32, vrf uint16) error
	SetLabel(label uint32, vrf uint16) error
}

var _ Dataplane = (*fastpath.Dataplane)(nil)

// AppliedPort is a port Apply created.
type AppliedPort struct {
	Name string
	Kind fastpath.PortKind
	ID   fastpath.PortID
}

// Apply programs a started dataplane in dependency order: ports, VRF
// addresses (the vRouter's own, IPv4 then IPv6, sources of its ICMP and
// ICMPv6 errors), static neighbours, next-hops (ECMP groups after their
// members), routes (of both families, in file order), VNIs, labels. It
// stops at the first error, which names the item ("next_hops[2]: ..."),
// and returns the ports created so far either way.
// Each step can wait for an RCU grace period; ctx is checked between steps.
func (c *Config) Apply(ctx context.Context, dp Dataplane) ([]AppliedPort, error) {
	if !c.valid {
		if err := c.Validate(); err != nil {
			return nil, err
		}
	}
	step := func(item string, f func() error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", item, context.Cause(ctx))
		}
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", item, err)
		}
		return nil
	}

	var added []AppliedPort
	ids := map[string]fastpath.PortID{}
	for i := range c.Ports {
		p := &c.Ports[i]
		err := step(fmt.Sprintf("ports[%d] (%s)", i, p.Name), func() error {
			id, err := dp.AddPort(p.Devargs, p.portConfig())
			if err != nil {
				return err
			}
			ids[p.Name] = id
			added = append(added, AppliedPort{Name: p.Name, Kind: p.kind, ID: id})
			return nil
		})
		if err != nil {
			return added, err
		}
	}
	for i := range c.VRFs {
		v := &c.VRFs[i]
		if err := step(fmt.Sprintf("vrfs[%d]", i), func() error {
			if err := dp.SetVRFAddress(uint16(*v.VRF), v.addr); err != nil {
				return err
			}
			if v.addr6.IsValid() {
				return dp.SetVRFAddress6(uint16(*v.VRF), v.addr6)
			}
			return nil
		}); err != nil {
			return added, err
		}
	}
	for i := range c.Neighbors {
		n := &c.Neighbors[i]
		if err := step(fmt.Sprintf("neighbors[%d]", i), func() error {
			return dp.SetNeighbor(n.ip, n.mac)
		}); err != nil {
			return added, err
		}
	}
	// Members are interface or tunnel next-hops: two passes are enough.
	for _, groups := range []bool{false, true} {
		for i := range c.NextHops {
			nh := &c.NextHops[i]
			if (nh.typ == fastpath.NHECMP) != groups {
				continue
			}
			if err := step(fmt.Sprintf("next_hops[%d]", i), func() error {
				return dp.SetNextHop(uint32(*nh.ID), nh.nextHop(ids))
			}); err != nil {
				return added, err
			}
		}
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		if err := step(fmt.Sprintf("routes[%d]", i), func() error {
			if r.prefix.Addr().Is6() {
				return dp.AddRoute6(uint16(r.VRF), r.prefix, uint32(*r.NextHop))
			}
			return dp.AddRoute4(uint16(r.VRF), r.prefix, uint32(*r.NextHop))
		}); err != nil {
			return added, err
		}
	}
	for i, v := range c.VNIs {
		if err := step(fmt.Sprintf("vnis[%d]", i), func() error {
			return dp.SetVNI(uint32(*v.VNI), uint16(v.VRF))
		}); err != nil {
			return added, err
		}
	}
	for i, l := range c.Labels {
		if err := step(fmt.Sprintf("labels[%d]", i), func() error {
			return dp.SetLabel(uint32(*l.Label), uint16(l.VRF))
		}); err != nil {
			return added, err
		}
	}
	return added, nil
}

func (p *Port) portConfig() fastpath.PortConfig {
	return fastpath.PortConfig{
		Kind:     p.kind,
		RxQueues: p.RxQueues,
		MTU:      p.MTU,
		VRF:      uint16(p.VRF),
		MAC:      p.mac,
		IPv4:     p.ipv4,
		IPv6:     p.ipv6,
	}
}

func (nh *NextHop) nextHop(ports map[string]fastpath.PortID) fastpath.NextHop {
	out := fastpath.NextHop{
		Type:      nh.typ,
		Port:      ports[nh.Port],
		DstMAC:    nh.dstMAC,
		Encap:     nh.encap,
		TunnelDst: nh.tunDst,
		TunnelGW:  nh.tunGW,
	}
	switch {
	case nh.VNI != nil:
		out.VNI = uint32(*nh.VNI)
	case nh.Label != nil:
		out.VNI = uint32(*nh.Label) // the fast path's one field for both
	}
	for _, m := range nh.Members {
		out.Members = append(out.Members, uint32(m))
	}
	return out
}

// Summary counts what the configuration holds, for logs.
func (c *Config) Summary() string {
	return fmt.Sprintf("%d ports, %d VRF addresses, %d next-hops, %d routes, %d VNIs, %d labels, %d neighbours",
		len(c.Ports), len(c.VRFs), len(c.NextHops), len(c.Routes), len(c.VNIs), len(c.Labels), len(c.Neighbors))
}
