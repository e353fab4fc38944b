package main

import (
	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/dpdk/apiclient"
	"github.com/filament-net/filament/dpdk/config"
)

// seedOps describes what config.Apply programmed as API create ops, in
// the configuration's dependency order, for the API's model (Seed).
func seedOps(c *config.Config) []*pb.Op {
	var b apiclient.Batch
	kinds := map[string]pb.PortKind{"fabric": pb.PortKind_PORT_KIND_FABRIC, "pod": pb.PortKind_PORT_KIND_POD,
		"host": pb.PortKind_PORT_KIND_HOST}
	for _, p := range c.Ports {
		b.Create(&pb.Port{Name: p.Name, Devargs: p.Devargs, Kind: kinds[p.Kind], Vrf: uint32(p.VRF),
			Mac: p.MAC, Ipv4: p.IPv4, Ipv6: p.IPv6, Mtu: uint32(p.MTU), RxQueues: uint32(p.RxQueues)})
	}
	for _, v := range c.VRFs {
		b.Create(&pb.VrfAddress{Vrf: uint32(*v.VRF), Address: v.Address, Address6: v.Address6})
	}
	for _, n := range c.Neighbors {
		b.Create(&pb.Neighbor{Ip: n.IP, Mac: n.MAC})
	}
	types := map[string]pb.NextHopType{"interface": pb.NextHopType_NEXT_HOP_TYPE_INTERFACE,
		"tunnel": pb.NextHopType_NEXT_HOP_TYPE_TUNNEL, "ecmp": pb.NextHopType_NEXT_HOP_TYPE_ECMP,
		"receive": pb.NextHopType_NEXT_HOP_TYPE_RECEIVE, "discard": pb.NextHopType_NEXT_HOP_TYPE_DISCARD}
	encaps := map[string]pb.Encap{"vxlan": pb.Encap_ENCAP_VXLAN, "mplsoudp": pb.Encap_ENCAP_MPLSOUDP,
		"mplsogre": pb.Encap_ENCAP_MPLSOGRE}
	// ECMP groups after their members, as config.Apply does.
	for _, groups := range []bool{false, true} {
		for _, n := range c.NextHops {
			if (n.Type == "ecmp") != groups {
				continue
			}
			nh := &pb.NextHop{Id: uint32(*n.ID), Type: types[n.Type], Port: n.Port, DstMac: n.DstMAC,
				Encap: encaps[n.Encap], TunnelDst: n.TunnelDst, TunnelGw: n.TunnelGW}
			if n.VNI != nil {
				nh.Vni = uint32(*n.VNI)
			}
			if n.Label != nil {
				nh.Label = uint32(*n.Label)
			}
			for _, m := range n.Members {
				nh.Members = append(nh.Members, uint32(m))
			}
			b.Create(nh)
		}
	}
	for _, r := range c.Routes {
		b.Create(&pb.Route{Vrf: uint32(r.VRF), Prefix: r.Prefix, NextHop: uint32(*r.NextHop)})
	}
	for _, v := range c.VNIs {
		b.Create(&pb.VniMap{Vni: uint32(*v.VNI), Vrf: uint32(v.VRF)})
	}
	for _, l := range c.Labels {
		b.Create(&pb.LabelMap{Label: uint32(*l.Label), Vrf: uint32(l.VRF)})
	}
	return b.Ops
}
