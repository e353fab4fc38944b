package config

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/internal/netparse"
)

// errList collects every error of a file, each prefixed with its field path.
type errList []error

func (l *errList) add(path, format string, args ...any) {
	*l = append(*l, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

var portKinds = map[string]fastpath.PortKind{
	"fabric": fastpath.PortFabric,
	"pod":    fastpath.PortPod,
	"host":   fastpath.PortHost,
}

var nhTypes = map[string]fastpath.NHType{
	"interface": fastpath.NHIface,
	"tunnel":    fastpath.NHTunnel,
	"ecmp":      fastpath.NHECMP,
	"receive":   fastpath.NHReceive,
	"discard":   fastpath.NHDiscard,
}

var encaps = map[string]fastpath.Encap{
	"vxlan":    fastpath.EncapVXLAN,
	"mplsoudp": fastpath.EncapMPLSoUDP,
	"mplsogre": fastpath.EncapMPLSoGRE,
}

// Validate checks the whole configuration and returns every error found,
// joined, one per line. It also resolves the values Apply uses.
func (c *Config) Validate() error {
	var errs errList
	c.valid = false
	c.validateEAL(&errs)
	c.validateTables(&errs)
	if m, err := netparse.UnicastMAC(c.VRouterMAC); err != nil {
		errs.add("vrouter_mac", "%v", err)
	} else {
		c.vrouterMAC = m
	}
	if c.IdleSleepMaxUS < 0 || c.IdleSleepMaxUS > maxIdleUS {
		errs.add("idle_sleep_max_us", "%d: must be 0..%d (0: never sleep)", c.IdleSleepMaxUS, maxIdleUS)
	}
	ports := c.validatePorts(&errs)
	c.validateVRFs(&errs)
	nhs := c.validateNextHops(&errs, ports)
	c.validateRoutes(&errs, nhs, ports)
	c.validateMaps(&errs)
	c.validateNeighbors(&errs)
	if err := CheckSocketPath(c.API.Socket); err != nil {
		errs.add("api.socket", "%v", err)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	c.valid = true
	return nil
}

// vrfMax is the VRF count VRF ids are checked against (the fast path's
// limit while tables.vrfs is itself wrong, so one mistake is one error).
func (c *Config) vrfMax() int {
	if c.Tables.VRFs < 1 || c.Tables.VRFs > fastpath.MaxVRFs {
		return fastpath.MaxVRFs
	}
	return c.Tables.VRFs
}

func (c *Config) nhMax() int {
	if c.Tables.NextHops < 1 || c.Tables.NextHops > maxNHs {
		return maxNHs
	}
	return c.Tables.NextHops
}

// checkVRF reports a VRF id out of range; true if it is in range.
func (c *Config) checkVRF(errs *errList, path string, vrf int) bool {
	if vrf < 0 || vrf >= c.vrfMax() {
		errs.add(path, "VRF %d out of range 0..%d (tables.vrfs)", vrf, c.vrfMax()-1)
		return false
	}
	return true
}

// extraOwned are EAL options the config sets itself.
var extraOwned = []struct{ opt, use string }{
	{"-l", "eal.lcores"}, {"-c", "eal.lcores"}, {"--lcores", "eal.lcores"},
	{"--file-prefix", "eal.file_prefix"}, {"--no-huge", "eal.no_huge"},
	{"--in-memory", "eal.no_huge: false"}, {"-m", "eal.memory_mb"},
	{"--vdev", "a port's devargs"},
}

func (c *Config) validateEAL(errs *errList) {
	e := &c.EAL
	if l, err := parseLcores(e.Lcores); err != nil {
		errs.add("eal.lcores", "%v (want DPDK's -l list, e.g. \"0,1\" or \"0-3\")", err)
	} else if len(l) < 2 {
		errs.add("eal.lcores", "need at least two lcores (one control, one forwarding)")
	} else if len(l)-1 > maxWorkers {
		errs.add("eal.lcores", "%d forwarding lcores: at most %d", len(l)-1, maxWorkers)
	} else if bad, allowed := unusableCPUs(l); len(bad) > 0 {
		errs.add("eal.lcores", "%v: not CPUs this process may run on (it may use %s)", bad, allowed)
	}
	if e.NoHuge && (e.MemoryMB < 64 || e.MemoryMB > 1<<20) {
		errs.add("eal.memory_mb", "%d: with no_huge, give 64..%d MiB", e.MemoryMB, 1<<20)
	} else if e.MemoryMB < 0 {
		errs.add("eal.memory_mb", "%d: must not be negative", e.MemoryMB)
	}
	if !nameRE.MatchString(e.FilePrefix) {
		errs.add("eal.file_prefix", "%q: need letters, digits, '_', '.' or '-'", e.FilePrefix)
	}
	for i, a := range e.Extra {
		for _, o := range extraOwned {
			owned := a == o.opt || strings.HasPrefix(a, o.opt+"=")
			if len(o.opt) == 2 && strings.HasPrefix(a, o.opt) && !strings.HasPrefix(a, "--") {
				owned = true // -l0,1
			}
			if owned {
				errs.add(fmt.Sprintf("eal.extra[%d]", i), "%q is set by the configuration: use %s", a, o.use)
			}
		}
	}
}

func (c *Config) validateTables(errs *errList) {
	t := &c.Tables
	if t.NextHops < 1 || t.NextHops > maxNHs {
		errs.add("tables.next_hops", "%d: must be 1..%d", t.NextHops, maxNHs)
	}
	if t.VRFs < 1 || t.VRFs > fastpath.MaxVRFs {
		errs.add("tables.vrfs", "%d: must be 1..%d", t.VRFs, fastpath.MaxVRFs)
	}
	if t.FIB4Routes < 1 || t.FIB4Routes > 1<<30 {
		errs.add("tables.fib4_routes", "%d: must be 1..%d", t.FIB4Routes, 1<<30)
	}
	if t.FIB4Tbl8s < 1 || t.FIB4Tbl8s > maxTbl8s {
		errs.add("tables.fib4_tbl8s", "%d: must be 1..%d", t.FIB4Tbl8s, maxTbl8s)
	}
	if t.FIB6Routes < 1 || t.FIB6Routes > 1<<30 {
		errs.add("tables.fib6_routes", "%d: must be 1..%d", t.FIB6Routes, 1<<30)
	}
	if t.FIB6Groups < 1 || t.FIB6Groups > maxGroups6 {
		errs.add("tables.fib6_groups", "%d: must be 1..%d", t.FIB6Groups, maxGroups6)
	}
	if t.Mbufs < minMbufs || t.Mbufs > 1<<30 {
		errs.add("tables.mbufs", "%d: must be %d..%d", t.Mbufs, minMbufs, 1<<30)
	}
}

func (c *Config) validatePorts(errs *errList) map[string]*Port {
	byName := map[string]*Port{}
	devs := map[string]int{}
	kindAt := map[fastpath.PortKind]int{}
	if len(c.Ports) > fastpath.MaxPorts {
		errs.add("ports", "%d ports: at most %d", len(c.Ports), fastpath.MaxPorts)
	}
	for i := range c.Ports {
		p := &c.Ports[i]
		path := fmt.Sprintf("ports[%d]", i)
		p.mac, p.ipv4, p.ipv6 = nil, nil, nil

		switch {
		case p.Name == "":
			errs.add(path+".name", "required")
		case !nameRE.MatchString(p.Name):
			errs.add(path+".name", "%q: need letters, digits, '_', '.' or '-'", p.Name)
		case byName[p.Name] != nil:
			errs.add(path+".name", "%q is already the name of another port", p.Name)
		default:
			byName[p.Name] = p
		}

		dev, _, _ := strings.Cut(p.Devargs, ",")
		switch {
		case p.Devargs == "":
			errs.add(path+".devargs", "required (e.g. \"net_af_packet0,iface=veth0\")")
		case dev == "" || strings.ContainsAny(p.Devargs, " \t\n"):
			errs.add(path+".devargs", "%q: expected <device>[,key=value...] without spaces", p.Devargs)
		default:
			if j, dup := devs[dev]; dup {
				errs.add(path+".devargs", "device %q is already ports[%d]: DPDK device names are unique (net_af_packet0, net_af_packet1...)", dev, j)
			} else {
				devs[dev] = i
			}
		}

		kind, ok := portKinds[p.Kind]
		if !ok {
			errs.add(path+".kind", "%q: must be fabric, pod or host", p.Kind)
			continue
		}
		p.kind = kind
		if j, dup := kindAt[kind]; dup && kind != fastpath.PortPod {
			errs.add(path+".kind", "there is one %s port, ports[%d] already is", p.Kind, j)
		}
		kindAt[kind] = i

		if kind == fastpath.PortFabric && p.VRF != 0 {
			errs.add(path+".vrf", "a fabric port has no VRF (tunnels pick theirs by VNI or label)")
		} else {
			c.checkVRF(errs, path+".vrf", p.VRF)
		}

		switch {
		case p.MAC == "" && kind == fastpath.PortPod:
			errs.add(path+".mac", "required for a pod port: the pod's MAC")
		case p.MAC != "":
			if m, err := netparse.UnicastMAC(p.MAC); err != nil {
				errs.add(path+".mac", "%v", err)
			} else {
				p.mac = m
			}
		}

		seen := map[netip.Addr]bool{}
		for j, s := range p.IPv4 {
			a, err := netparse.HostIPv4(s)
			if err != nil {
				errs.add(fmt.Sprintf("%s.ipv4[%d]", path, j), "%v", err)
				continue
			}
			if seen[a] {
				errs.add(fmt.Sprintf("%s.ipv4[%d]", path, j), "%s given twice", a)
				continue
			}
			seen[a] = true
			p.ipv4 = append(p.ipv4, a)
		}
		for j, s := range p.IPv6 {
			a, err := netparse.HostIPv6(s)
			if err != nil {
				errs.add(fmt.Sprintf("%s.ipv6[%d]", path, j), "%v", err)
				continue
			}
			if seen[a] {
				errs.add(fmt.Sprintf("%s.ipv6[%d]", path, j), "%s given twice", a)
				continue
			}
			seen[a] = true
			p.ipv6 = append(p.ipv6, a)
		}
		switch kind {
		case fastpath.PortFabric:
			if len(p.IPv4) != 1 {
				errs.add(path+".ipv4", "a fabric port needs exactly one address, the node's underlay address (has %d)", len(p.IPv4))
			}
		case fastpath.PortPod:
			if len(p.IPv4) == 0 && len(p.IPv6) == 0 {
				errs.add(path+".ipv4", "a pod port needs the pod's addresses, IPv4 or IPv6 (it may send from no other)")
			}
		}
		if len(p.IPv4) > fastpath.MaxPodAddrs {
			errs.add(path+".ipv4", "%d addresses: at most %d", len(p.IPv4), fastpath.MaxPodAddrs)
		}
		switch {
		case len(p.IPv6) > fastpath.MaxPodAddrs:
			errs.add(path+".ipv6", "%d addresses: at most %d", len(p.IPv6), fastpath.MaxPodAddrs)
		case kind != fastpath.PortPod && len(p.IPv6) > 1:
			errs.add(path+".ipv6", "%d addresses: a fabric or host port has at most one", len(p.IPv6))
		}

		if p.MTU != 0 && (p.MTU < minMTU || p.MTU > maxMTU) {
			errs.add(path+".mtu", "%d: must be %d..%d (0: 1500)", p.MTU, minMTU, maxMTU)
		} else if len(p.IPv6) > 0 && p.MTU != 0 && p.MTU < fastpath.IPv6MinMTU {
			errs.add(path+".mtu", "%d: a port with IPv6 addresses (ipv6) needs at least %d (RFC 8200)", p.MTU, fastpath.IPv6MinMTU)
		}
		if p.RxQueues < 0 || p.RxQueues > maxRxQueues {
			errs.add(path+".rx_queues", "%d: must be 0..%d", p.RxQueues, maxRxQueues)
		}
	}
	return byName
}

// validateVRFs checks the vRouter's addresses: one per VRF, a unicast
// host address that is not a pod's own in that VRF (the ports are
// validated first).
func (c *Config) validateVRFs(errs *errList) {
	seen := map[int]int{}
	for i := range c.VRFs {
		v := &c.VRFs[i]
		path := fmt.Sprintf("vrfs[%d]", i)
		v.addr, v.addr6 = netip.Addr{}, netip.Addr{}
		if v.VRF == nil {
			errs.add(path+".vrf", "required: the VRF id")
		} else if c.checkVRF(errs, path+".vrf", *v.VRF) {
			if j, dup := seen[*v.VRF]; dup {
				errs.add(path+".vrf", "VRF %d is already vrfs[%d]: one address per VRF", *v.VRF, j)
			} else {
				seen[*v.VRF] = i
			}
		}
		if v.Address6 != "" {
			v.addr6 = c.vrfAddress(errs, path+".address6", v.VRF, netparse.HostIPv6, v.Address6)
		}
		if v.Address == "" {
			errs.add(path+".address", "required: the vRouter's IPv4 address in the VRF (the pods' gateway)")
			continue
		}
		v.addr = c.vrfAddress(errs, path+".address", v.VRF, netparse.HostIPv4, v.Address)
	}
}

// vrfAddress parses one of the vRouter's addresses in a VRF (of the family
// parse accepts): a unicast host address that is not a pod's own there.
// It returns netip.Addr{} after reporting an error.
func (c *Config) vrfAddress(errs *errList, path string, vrf *int, parse func(string) (netip.Addr, error), s string) netip.Addr {
	a, err := parse(s)
	switch {
	case err != nil:
		errs.add(path, "%v", err)
		return netip.Addr{}
	case a.IsLoopback():
		errs.add(path, "%s is a loopback address: need a unicast host address", a)
		return netip.Addr{}
	}
	if vrf == nil {
		return a
	}
	for j := range c.Ports {
		p := &c.Ports[j]
		if p.kind == fastpath.PortPod && p.VRF == *vrf && (containsAddr(p.ipv4, a) || containsAddr(p.ipv6, a)) {
			errs.add(path, "%s is the address of pod port ports[%d] (%s) in VRF %d", a, j, p.Name, p.VRF)
			return netip.Addr{}
		}
	}
	return a
}

func containsAddr(as []netip.Addr, a netip.Addr) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

func (c *Config) validateNextHops(errs *errList, ports map[string]*Port) map[int]*NextHop {
	byID := map[int]*NextHop{}
	idx := map[int]int{}
	tunnelNeigh := map[netip.Addr]bool{}
	for i := range c.NextHops {
		nh := &c.NextHops[i]
		if nh.ID == nil {
			continue
		}
		if _, dup := byID[*nh.ID]; !dup {
			byID[*nh.ID] = nh
			idx[*nh.ID] = i
		}
	}
	for i := range c.NextHops {
		nh := &c.NextHops[i]
		path := fmt.Sprintf("next_hops[%d]", i)
		nh.dstMAC, nh.tunDst, nh.tunGW = nil, netip.Addr{}, netip.Addr{}

		switch {
		case nh.ID == nil:
			errs.add(path+".id", "required")
		case *nh.ID < 0 || *nh.ID >= c.nhMax():
			errs.add(path+".id", "%d out of range 0..%d (tables.next_hops)", *nh.ID, c.nhMax()-1)
		case idx[*nh.ID] != i:
			errs.add(path+".id", "%d is already next_hops[%d]", *nh.ID, idx[*nh.ID])
		}

		typ, ok := nhTypes[nh.Type]
		if !ok {
			errs.add(path+".type", "%q: must be interface, tunnel, ecmp, receive or discard", nh.Type)
			continue
		}
		nh.typ = typ
		// Fields that do not apply to the type are mistakes, not noise.
		for _, f := range []struct {
			name  string
			set   bool
			types []fastpath.NHType
		}{
			{"port", nh.Port != "", []fastpath.NHType{fastpath.NHIface, fastpath.NHTunnel}},
			{"dst_mac", nh.DstMAC != "", []fastpath.NHType{fastpath.NHIface}},
			{"encap", nh.Encap != "", []fastpath.NHType{fastpath.NHTunnel}},
			{"tunnel_dst", nh.TunnelDst != "", []fastpath.NHType{fastpath.NHTunnel}},
			{"tunnel_gw", nh.TunnelGW != "", []fastpath.NHType{fastpath.NHTunnel}},
			{"vni", nh.VNI != nil, []fastpath.NHType{fastpath.NHTunnel}},
			{"label", nh.Label != nil, []fastpath.NHType{fastpath.NHTunnel}},
			{"members", nh.Members != nil, []fastpath.NHType{fastpath.NHECMP}},
		} {
			if f.set && !containsType(f.types, typ) {
				errs.add(path+"."+f.name, "does not apply to a %s next-hop", nh.Type)
			}
		}

		switch typ {
		case fastpath.NHIface, fastpath.NHTunnel:
			p := ports[nh.Port]
			switch {
			case nh.Port == "":
				errs.add(path+".port", "required: the out port's name")
			case p == nil:
				errs.add(path+".port", "%q is not a port", nh.Port)
			case typ == fastpath.NHTunnel && p.kind != fastpath.PortFabric:
				errs.add(path+".port", "%q is a %s port: tunnels leave by the fabric port", nh.Port, p.Kind)
			}
		}

		switch typ {
		case fastpath.NHIface:
			if nh.DstMAC == "" {
				errs.add(path+".dst_mac", "required: the destination MAC written on frames")
			} else if m, err := netparse.UnicastMAC(nh.DstMAC); err != nil {
				errs.add(path+".dst_mac", "%v", err)
			} else {
				nh.dstMAC = m
			}
		case fastpath.NHTunnel:
			enc, ok := encaps[nh.Encap]
			if !ok {
				errs.add(path+".encap", "%q: must be vxlan, mplsoudp or mplsogre", nh.Encap)
			}
			nh.encap = enc
			if nh.TunnelDst == "" {
				errs.add(path+".tunnel_dst", "required: the remote vRouter's underlay address")
			} else if a, err := netparse.HostIP(nh.TunnelDst); err != nil {
				errs.add(path+".tunnel_dst", "%v", err)
			} else if p := ports[nh.Port]; p != nil && p.kind == fastpath.PortFabric && a.Is6() && len(p.ipv6) == 0 {
				// the outer header's source is the fabric's IPv6 address
				errs.add(path+".tunnel_dst", "%s: an IPv6 underlay needs the fabric port %q to have an IPv6 address (ipv6)", a, nh.Port)
			} else {
				nh.tunDst = a
			}
			if nh.TunnelGW != "" {
				if a, err := netparse.HostIP(nh.TunnelGW); err != nil {
					errs.add(path+".tunnel_gw", "%v", err)
				} else if nh.tunDst.IsValid() && a.Is4() != nh.tunDst.Is4() {
					errs.add(path+".tunnel_gw", "%s and tunnel_dst %s: the underlay next hop must be of the tunnel's family", a, nh.tunDst)
				} else {
					nh.tunGW = a
				}
			}
			if nh.tunGW.IsValid() {
				tunnelNeigh[nh.tunGW] = true
			} else if nh.tunDst.IsValid() {
				tunnelNeigh[nh.tunDst] = true
			}
			switch {
			case ok && enc == fastpath.EncapVXLAN && nh.VNI == nil:
				errs.add(path+".vni", "required for a vxlan tunnel")
			case nh.VNI != nil && (*nh.VNI < 0 || *nh.VNI > maxTunnelID):
				errs.add(path+".vni", "%d out of range 0..%d", *nh.VNI, maxTunnelID)
			}
			mpls := enc == fastpath.EncapMPLSoUDP || enc == fastpath.EncapMPLSoGRE
			switch {
			case ok && mpls && nh.Label == nil:
				errs.add(path+".label", "required for an %s tunnel", nh.Encap)
			case nh.Label != nil && (*nh.Label < minLabel || *nh.Label > maxLabel):
				errs.add(path+".label", "%d out of range %d..%d", *nh.Label, minLabel, maxLabel)
			}
			if ok && enc == fastpath.EncapVXLAN && nh.Label != nil {
				errs.add(path+".label", "a vxlan tunnel takes a vni, not a label")
			}
			if ok && mpls && nh.VNI != nil {
				errs.add(path+".vni", "an %s tunnel takes a label, not a vni", nh.Encap)
			}
		case fastpath.NHECMP:
			if len(nh.Members) == 0 || len(nh.Members) > fastpath.MaxECMP {
				errs.add(path+".members", "%d members: an ECMP group needs 1..%d", len(nh.Members), fastpath.MaxECMP)
			}
			for j, m := range nh.Members {
				mp := fmt.Sprintf("%s.members[%d]", path, j)
				t, ok := byID[m]
				switch {
				case !ok:
					errs.add(mp, "%d is not defined", m)
				case nh.ID != nil && m == *nh.ID:
					errs.add(mp, "a group cannot contain itself")
				case t.Type != "interface" && t.Type != "tunnel":
					errs.add(mp, "next-hop %d is %q: members must be interface or tunnel next-hops", m, t.Type)
				}
			}
		}
	}
	if len(tunnelNeigh) > maxNeigh {
		errs.add("next_hops", "tunnels to %d underlay neighbours: at most %d", len(tunnelNeigh), maxNeigh)
	}
	return byID
}

func containsType(ts []fastpath.NHType, t fastpath.NHType) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

func (c *Config) validateRoutes(errs *errList, nhs map[int]*NextHop, ports map[string]*Port) {
	type key struct {
		vrf int
		p   netip.Prefix
	}
	seen := map[key]int{}
	// Routes per VRF and family: each family has its own FIB and limit.
	type fib struct {
		vrf int
		v6  bool
	}
	perFIB := map[fib]int{}
	for i := range c.Routes {
		r := &c.Routes[i]
		path := fmt.Sprintf("routes[%d]", i)
		r.prefix = netip.Prefix{}
		c.checkVRF(errs, path+".vrf", r.VRF)
		if p, err := netparse.Prefix(r.Prefix); err != nil {
			errs.add(path+".prefix", "%v", err)
		} else if j, dup := seen[key{r.VRF, p}]; dup {
			errs.add(path+".prefix", "%s in VRF %d is already routes[%d]", p, r.VRF, j)
		} else {
			seen[key{r.VRF, p}] = i
			r.prefix = p
			f := fib{r.VRF, p.Addr().Is6()}
			perFIB[f]++
			limit, field := c.Tables.FIB4Routes, "tables.fib4_routes"
			if f.v6 {
				limit, field = c.Tables.FIB6Routes, "tables.fib6_routes"
			}
			if limit >= 1 && perFIB[f] == limit+1 {
				errs.add(path, "more than %d routes in VRF %d (%s)", limit, r.VRF, field)
			}
		}
		switch {
		case r.NextHop == nil:
			errs.add(path+".next_hop", "required: a next-hop id")
		case nhs[*r.NextHop] == nil:
			errs.add(path+".next_hop", "%d is not defined", *r.NextHop)
		case r.prefix.Addr().Is6():
			if why := short6(nhs, ports, *r.NextHop); why != "" {
				errs.add(path+".next_hop", "%s: IPv6 needs an MTU of at least %d (RFC 8200)", why, fastpath.IPv6MinMTU)
			}
		}
	}
}

// short6 says why next-hop id cannot carry IPv6: it, or a member of it,
// sends less than IPv6's minimum MTU (the fast path's nh->mtu: the port's
// MTU less a tunnel's overhead); "" when it can.
func short6(nhs map[int]*NextHop, ports map[string]*Port, id int) string {
	members := []int{id}
	if nhs[id].typ == fastpath.NHECMP {
		members = nhs[id].Members
	}
	for _, m := range members {
		nh := nhs[m]
		if nh == nil || (nh.typ != fastpath.NHIface && nh.typ != fastpath.NHTunnel) || ports[nh.Port] == nil {
			continue
		}
		link := cmp.Or(ports[nh.Port].MTU, 1500)
		mtu := link
		if nh.typ == fastpath.NHTunnel {
			mtu -= nh.encap.Overhead(nh.tunDst.Is6())
		}
		if mtu >= fastpath.IPv6MinMTU {
			continue
		}
		what := "next-hop"
		if m != id {
			what = "ECMP member next-hop"
		}
		return fmt.Sprintf("%s %d sends at most %d bytes (port %q has MTU %d)", what, m, mtu, nh.Port, link)
	}
	return ""
}

func (c *Config) validateMaps(errs *errList) {
	vnis := map[int]int{}
	for i, v := range c.VNIs {
		path := fmt.Sprintf("vnis[%d]", i)
		switch {
		case v.VNI == nil:
			errs.add(path+".vni", "required")
		case *v.VNI < 0 || *v.VNI > maxTunnelID:
			errs.add(path+".vni", "%d out of range 0..%d", *v.VNI, maxTunnelID)
		default:
			if j, dup := vnis[*v.VNI]; dup {
				errs.add(path+".vni", "%d is already vnis[%d]", *v.VNI, j)
			}
			vnis[*v.VNI] = i
		}
		c.checkVRF(errs, path+".vrf", v.VRF)
	}
	labels := map[int]int{}
	for i, l := range c.Labels {
		path := fmt.Sprintf("labels[%d]", i)
		switch {
		case l.Label == nil:
			errs.add(path+".label", "required")
		case *l.Label < minLabel || *l.Label > maxLabel:
			errs.add(path+".label", "%d out of range %d..%d", *l.Label, minLabel, maxLabel)
		default:
			if j, dup := labels[*l.Label]; dup {
				errs.add(path+".label", "%d is already labels[%d]", *l.Label, j)
			}
			labels[*l.Label] = i
		}
		c.checkVRF(errs, path+".vrf", l.VRF)
	}
}

func (c *Config) validateNeighbors(errs *errList) {
	seen := map[netip.Addr]int{}
	for i := range c.Neighbors {
		n := &c.Neighbors[i]
		path := fmt.Sprintf("neighbors[%d]", i)
		n.ip, n.mac = netip.Addr{}, nil
		if n.IP == "" {
			errs.add(path+".ip", "required")
		} else if a, err := netparse.HostIP(n.IP); err != nil {
			errs.add(path+".ip", "%v", err)
		} else if j, dup := seen[a]; dup {
			errs.add(path+".ip", "%s is already neighbors[%d]", a, j)
		} else {
			seen[a] = i
			n.ip = a
		}
		if n.MAC == "" {
			errs.add(path+".mac", "required")
		} else if m, err := netparse.UnicastMAC(n.MAC); err != nil {
			errs.add(path+".mac", "%v", err)
		} else {
			n.mac = m
		}
	}
	if len(c.Neighbors) > maxNeigh {
		errs.add("neighbors", "%d neighbours: at most %d", len(c.Neighbors), maxNeigh)
	}
}

// unusableCPUs lists the lcores (with -l, lcore n runs on CPU n) that are
// not in this process's CPU affinity, and that affinity as text. EAL would
// refuse them with a bare "invalid arguments". If the affinity cannot be
// read nothing is reported: EAL still has the last word.
func unusableCPUs(lcores []int) (bad []int, allowed string) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, ""
	}
	var ok []string
	for c := 0; c < 1024; c++ {
		if set.IsSet(c) {
			ok = append(ok, strconv.Itoa(c))
		}
	}
	for _, l := range lcores {
		if l >= 1024 || !set.IsSet(l) {
			bad = append(bad, l)
		}
	}
	return bad, strings.Join(ok, ",")
}
