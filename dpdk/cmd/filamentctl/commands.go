package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/dpdk/apiclient"
)

func init() {
	commands = []*command{
		{name: "version", summary: "the dataplane's version, API version, capabilities and table sizes",
			help: "Prints what the dataplane answered to the handshake: its build, the API version it speaks\n" +
				"(and this filamentctl's), its capabilities, forwarding lcores, table sizes and vRouter MAC.\n",
			run: cmdVersion},
		{name: "ports", summary: "ports: kind, VRF, addresses, MTU, link (like TF's vif --list)",
			help: "Columns: NAME the port's name (next-hops use it); ID the DPDK port id; KIND fabric, pod or\n" +
				"host; VRF where a pod or host port's traffic is routed; MAC the pod's MAC (anything else\n" +
				"it sends is dropped), or the device's for fabric and host; IPV4 the pod's addresses (it\n" +
				"may send from no other), the fabric's underlay address; MTU the L3 MTU; RXQ RX queues\n" +
				"(0: one per worker); LINK up or down (memif and vhost-user: is the peer there);\n" +
				"DEVARGS how DPDK probed it.\n",
			run: cmdPorts},
		{name: "vrfs", summary: "VRFs in use: the vRouter's address, routes, ports, VNIs, labels",
			help: "Columns: VRF the id; ADDRESS the vRouter's own address there (the pods' gateway and the\n" +
				"source of its ICMP errors; - none: no ICMP errors are sent); ROUTES IPv4 routes;\n" +
				"PORTS pod and host ports in it; VNIS and LABELS what decapsulates into it.\n",
			run: cmdVRFs},
		{name: "routes", summary: "IPv4 routes and where they go (like TF's rt --dump)",
			help: "Columns: VRF; PREFIX; NH the next-hop id; TYPE its type; VIA where it sends: the out\n" +
				"port and destination MAC, the tunnel (encapsulation, remote vRouter, VNI or label), the\n" +
				"ECMP members, or receive (for the vRouter itself) and discard.\n",
			flags: func(fs *flag.FlagSet) { fs.Var(&vrfFlag, "vrf", "only the routes of VRF `N`") },
			run:   cmdRoutes},
		{name: "nexthops", summary: "next-hops and what uses them (like TF's nh --list)",
			help: "Columns: ID; TYPE interface, tunnel, ecmp, receive or discard; PORT the out port;\n" +
				"DETAILS destination MAC, tunnel (encapsulation, remote vRouter, VNI or label, underlay\n" +
				"gateway) or ECMP members; ROUTES routes pointing to it; GROUPS ECMP groups holding it.\n",
			run: cmdNextHops},
		{name: "vnis", summary: "VXLAN VNI -> VRF maps (decapsulation)",
			help: "Columns: VNI; VRF the VRF its decapsulated packets are routed in. A VXLAN packet for a\n" +
				"VNI not listed is dropped as vni_unknown.\n",
			run: cmdVNIs},
		{name: "labels", summary: "MPLS label -> VRF maps (MPLSoUDP and MPLSoGRE decapsulation, like TF's mpls --dump)",
			help: "Columns: LABEL; VRF the VRF its decapsulated packets are routed in. An MPLSoUDP or\n" +
				"MPLSoGRE packet with a label not listed is dropped as mpls_label_unknown.\n",
			run: cmdLabels},
		{name: "neighbors", summary: "underlay neighbours: static ones and tunnel endpoints",
			help: "Columns: IP the underlay address (IPv4 or IPv6); MAC its MAC (- while unresolved); STATE\n" +
				"static (pinned), resolved (learnt by ARP, or ND for IPv6) or unresolved (packets to it are\n" +
				"dropped as neigh_unresolved and become ARP requests or neighbour solicitations); NEXT-HOPS\n" +
				"the tunnel next-hops that use it.\n",
			run: cmdNeighbors},
		{name: "drops", summary: "drop counters by reason (like TF's dropstats)",
			help: "Columns: REASON a stable name (docs/operations.md explains each); PACKETS dropped for it\n" +
				"since the dataplane started, summed over the forwarding lcores. Only non-zero reasons\n" +
				"unless --all.\n",
			flags: func(fs *flag.FlagSet) { fs.BoolVar(&allDrops, "all", false, "list every reason, zeros too") },
			run:   cmdDrops},
		{name: "stats", summary: "port and lcore counters",
			help: "Ports: RX and TX packets and bytes the fast path counted, DROPS TX drops, and the device's\n" +
				"own counters of what never reached the fast path: MISSED (its RX queue was full),\n" +
				"NOMBUF (no buffer in the pool), RX-ERR and TX-ERR. Lcores (forwarding workers): POLLS,\n" +
				"BUSY polls that got packets, SLEEPS of an idle worker, RX and TX packets, DROPS,\n" +
				"CONSUMED packets the vRouter terminated (not drops), BUSY-CYCLES TSC cycles in busy\n" +
				"polls. Then the packet buffers in use.\n",
			run: cmdStats},
		{name: "trace", summary: "trace the next packets through the fast path",
			help: "Asks the dataplane to record what it does with the next --count packets it receives (on\n" +
				"--port only, if given) and prints one line per packet: the time, the worker, the in port\n" +
				"(and out port), the headers as received, the decision (sent port N, consumed, dropped\n" +
				"with the drop reason, or dropped and answered with an ICMP error or ARP request) and the\n" +
				"headers as sent. Forwarding does not wait for it. Needs the \"trace\" capability.\n",
			flags: func(fs *flag.FlagSet) {
				fs.UintVar(&traceCount, "count", 10, "packets to trace")
				fs.StringVar(&tracePort, "port", "", "only packets received on this port `name`")
				fs.DurationVar(&traceWait, "wait", 10*time.Second, "stop waiting for packets after this long")
			},
			run: cmdTrace, long: true},
		{name: "capture", summary: "capture a port's packets to a pcap file",
			help: "Writes the next --count frames a port receives and sends (--direction) to a pcap file\n" +
				"(-w; - is stdout, e.g. | tcpdump -nr -), with the time each was received or sent: received\n" +
				"frames as they arrived, sent ones after rewrite or encapsulation. Forwarding never waits\n" +
				"for the capture: frames it could not keep up with are counted as missing. Needs the\n" +
				"\"capture\" capability.\n",
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&capPort, "port", "", "the port's `name` (required)")
				fs.UintVar(&capCount, "count", 100, "packets to capture")
				fs.UintVar(&capSnaplen, "snaplen", 0, "bytes kept per packet (0: whole frames)")
				fs.StringVar(&capFile, "w", "", "the pcap `file` to write (required; - for stdout)")
				fs.StringVar(&capDir, "direction", "both", "rx, tx or both")
				fs.DurationVar(&capWait, "duration", 0, "stop after this long (0: when --count frames are written)")
			},
			run: cmdCapture, long: true},
	}
}

// Command flags (one command runs per process).
var (
	vrfFlag    optUint
	allDrops   bool
	traceCount uint
	tracePort  string
	capPort    string
	capCount   uint
	capSnaplen uint
	capFile    string
	capDir     string
	capWait    time.Duration
	traceWait  time.Duration
)

// optUint is a flag that may be absent.
type optUint struct {
	v   uint32
	set bool
}

func (o *optUint) String() string {
	if o == nil || !o.set {
		return ""
	}
	return u32(o.v)
}

func (o *optUint) Set(s string) error {
	var v uint32
	if _, err := fmt.Sscan(s, &v); err != nil {
		return fmt.Errorf("%q is not a VRF id", s)
	}
	o.v, o.set = v, true
	return nil
}

// ---- version ---------------------------------------------------------------------

type versionJSON struct {
	Socket           string     `json:"socket"`
	ServerVersion    string     `json:"server_version"`
	APIVersion       string     `json:"api_version"`
	ClientAPIVersion string     `json:"client_api_version"`
	Capabilities     []string   `json:"capabilities"`
	Workers          uint32     `json:"workers"`
	VRouterMAC       string     `json:"vrouter_mac"`
	Tables           tablesJSON `json:"tables"`
}

type tablesJSON struct {
	NextHops      uint32 `json:"next_hops"`
	VRFs          uint32 `json:"vrfs"`
	FIB4Routes    uint32 `json:"fib4_routes"`
	FIB4Tbl8s     uint32 `json:"fib4_tbl8s"`
	Mbufs         uint32 `json:"mbufs"`
	Ports         uint32 `json:"ports"`
	ECMPMembers   uint32 `json:"ecmp_members"`
	Neighbors     uint32 `json:"neighbors"`
	PortAddresses uint32 `json:"port_addresses"`
}

func cmdVersion(_ context.Context, c *apiclient.Client, o *output) error {
	h := c.Server
	t := h.GetTables()
	v := versionJSON{
		Socket: o.socket, ServerVersion: h.ServerVersion,
		APIVersion:       fmt.Sprintf("%d.%d", h.GetApiVersion().GetMajor(), h.GetApiVersion().GetMinor()),
		ClientAPIVersion: fmt.Sprintf("%d.%d", pb.APIMajor, pb.APIMinor),
		Capabilities:     nonNil(h.Capabilities), Workers: h.Workers, VRouterMAC: h.VrouterMac,
		Tables: tablesJSON{t.GetNextHops(), t.GetVrfs(), t.GetFib4Routes(), t.GetFib4Tbl8S(), t.GetMbufs(),
			t.GetPorts(), t.GetEcmpMembers(), t.GetNeighbors(), t.GetPortAddresses()},
	}
	if o.json {
		return o.writeJSON(v)
	}
	return o.table([]string{"FIELD", "VALUE"}, [][]string{
		{"socket", v.Socket},
		{"server version", v.ServerVersion},
		{"API version", v.APIVersion + " (filamentctl: " + v.ClientAPIVersion + ")"},
		{"capabilities", strings.Join(v.Capabilities, ", ")},
		{"workers", u32(v.Workers)},
		{"vRouter MAC", v.VRouterMAC},
		{"next-hops", u32(t.GetNextHops())},
		{"VRFs", u32(t.GetVrfs())},
		{"IPv4 routes per VRF", u32(t.GetFib4Routes())},
		{"IPv4 FIB groups (shared)", u32(t.GetFib4Tbl8S())},
		{"mbufs", u32(t.GetMbufs())},
		{"ports", u32(t.GetPorts())},
		{"ECMP members", u32(t.GetEcmpMembers())},
		{"neighbours", u32(t.GetNeighbors())},
		{"addresses per pod port", u32(t.GetPortAddresses())},
	})
}

// ---- ports -------------------------------------------------------------------------

type portJSON struct {
	Name      string   `json:"name"`
	ID        uint32   `json:"id"`
	Kind      string   `json:"kind"`
	VRF       uint32   `json:"vrf"`
	MAC       string   `json:"mac"`
	DeviceMAC string   `json:"device_mac"`
	IPv4      []string `json:"ipv4"`
	IPv6      []string `json:"ipv6"`
	MTU       uint32   `json:"mtu"`
	RxQueues  uint32   `json:"rx_queues"`
	LinkUp    bool     `json:"link_up"`
	Devargs   string   `json:"devargs"`
}

func cmdPorts(ctx context.Context, c *apiclient.Client, o *output) error {
	resp, err := c.ListPorts(ctx, &pb.ListPortsRequest{})
	if err != nil {
		return err
	}
	ports := []portJSON{}
	for _, e := range resp.Ports {
		p := e.Port
		ports = append(ports, portJSON{Name: p.Name, ID: e.Id, Kind: kindName(p.Kind), VRF: p.Vrf, MAC: p.Mac,
			DeviceMAC: e.DeviceMac, IPv4: nonNil(p.Ipv4), IPv6: nonNil(p.Ipv6), MTU: effectiveMTU(p.Mtu), RxQueues: p.RxQueues,
			LinkUp: e.LinkUp, Devargs: p.Devargs})
	}
	if o.json {
		return o.writeJSON(map[string]any{"ports": ports})
	}
	var rows [][]string
	for _, p := range ports {
		mac, vrf, link := p.MAC, u32(p.VRF), "down"
		if p.Kind != "pod" {
			mac = p.DeviceMAC
		}
		if p.Kind == "fabric" {
			vrf = "-"
		}
		if p.LinkUp {
			link = "up"
		}
		rows = append(rows, []string{p.Name, u32(p.ID), p.Kind, vrf, orDash(mac), orDash(strings.Join(p.IPv4, ",")),
			orDash(strings.Join(p.IPv6, ",")), u32(p.MTU), u32(p.RxQueues), link, p.Devargs})
	}
	return o.table([]string{"NAME", "ID", "KIND", "VRF", "MAC", "IPV4", "IPV6", "MTU", "RXQ", "LINK", "DEVARGS"}, rows)
}

// ---- VRFs ------------------------------------------------------------------------------

type vrfJSON struct {
	VRF      uint32   `json:"vrf"`
	Address  string   `json:"address"`
	Address6 string   `json:"address6,omitempty"`
	Routes   uint32   `json:"routes"`
	Ports    []string `json:"ports"`
	VNIs     []uint32 `json:"vnis"`
	Labels   []uint32 `json:"labels"`
}

func cmdVRFs(ctx context.Context, c *apiclient.Client, o *output) error {
	resp, err := c.ListVRFs(ctx, &pb.ListVRFsRequest{})
	if err != nil {
		return err
	}
	vrfs := []vrfJSON{}
	for _, v := range resp.Vrfs {
		vrfs = append(vrfs, vrfJSON{VRF: v.Vrf, Address: v.Address, Address6: v.Address6, Routes: v.Routes, Ports: nonNil(v.Ports),
			VNIs: nonNil(v.Vnis), Labels: nonNil(v.Labels)})
	}
	if o.json {
		return o.writeJSON(map[string]any{"vrfs": vrfs})
	}
	var rows [][]string
	for _, v := range vrfs {
		rows = append(rows, []string{u32(v.VRF), orDash(v.Address), orDash(v.Address6), u32(v.Routes),
			orDash(strings.Join(v.Ports, ",")), join32(v.VNIs), join32(v.Labels)})
	}
	return o.table([]string{"VRF", "ADDRESS", "ADDRESS6", "ROUTES", "PORTS", "VNIS", "LABELS"}, rows)
}

// ---- routes and next-hops -----------------------------------------------------------------

type routeJSON struct {
	VRF     uint32 `json:"vrf"`
	Prefix  string `json:"prefix"`
	NextHop uint32 `json:"next_hop"`
}

// via says where a next-hop sends, in a few words.
func via(n *pb.NextHop) string {
	switch n.Type {
	case pb.NextHopType_NEXT_HOP_TYPE_INTERFACE:
		return n.Port + " " + n.DstMac
	case pb.NextHopType_NEXT_HOP_TYPE_TUNNEL:
		s := fmt.Sprintf("%s %s to %s", n.Port, encapName(n.Encap), n.TunnelDst)
		if isMPLS(n.Encap) {
			s += " label " + u32(n.Label)
		} else {
			s += " vni " + u32(n.Vni)
		}
		if n.TunnelGw != "" {
			s += " via " + n.TunnelGw
		}
		return s
	case pb.NextHopType_NEXT_HOP_TYPE_ECMP:
		return "members " + join32(n.Members)
	}
	return nhType(n.Type)
}

func cmdRoutes(ctx context.Context, c *apiclient.Client, o *output) error {
	var vrf *uint32
	if vrfFlag.set {
		vrf = &vrfFlag.v
	}
	routes, _, err := c.Routes(ctx, vrf)
	if err != nil {
		return err
	}
	out := []routeJSON{}
	for _, r := range routes {
		out = append(out, routeJSON{r.Vrf, r.Prefix, r.NextHop})
	}
	if o.json {
		return o.writeJSON(map[string]any{"routes": out})
	}
	nhs, err := c.ListNextHops(ctx, &pb.ListNextHopsRequest{})
	if err != nil {
		return err
	}
	byID := map[uint32]*pb.NextHop{}
	for _, e := range nhs.NextHops {
		byID[e.NextHop.Id] = e.NextHop
	}
	var rows [][]string
	for _, r := range out {
		typ, where := "?", "?"
		if n := byID[r.NextHop]; n != nil {
			typ, where = nhType(n.Type), via(n)
		}
		rows = append(rows, []string{u32(r.VRF), r.Prefix, u32(r.NextHop), typ, where})
	}
	return o.table([]string{"VRF", "PREFIX", "NH", "TYPE", "VIA"}, rows)
}

type nextHopJSON struct {
	ID         uint32   `json:"id"`
	Type       string   `json:"type"`
	Port       string   `json:"port,omitempty"`
	DstMAC     string   `json:"dst_mac,omitempty"`
	Encap      string   `json:"encap,omitempty"`
	TunnelDst  string   `json:"tunnel_dst,omitempty"`
	TunnelGW   string   `json:"tunnel_gw,omitempty"`
	VNI        *uint32  `json:"vni,omitempty"`
	Label      *uint32  `json:"label,omitempty"`
	Members    []uint32 `json:"members,omitempty"`
	Routes     uint32   `json:"routes"`
	ECMPGroups uint32   `json:"ecmp_groups"`
}

func cmdNextHops(ctx context.Context, c *apiclient.Client, o *output) error {
	resp, err := c.ListNextHops(ctx, &pb.ListNextHopsRequest{})
	if err != nil {
		return err
	}
	out := []nextHopJSON{}
	var rows [][]string
	for _, e := range resp.NextHops {
		n := e.NextHop
		j := nextHopJSON{ID: n.Id, Type: nhType(n.Type), Port: n.Port, DstMAC: n.DstMac, TunnelDst: n.TunnelDst,
			TunnelGW: n.TunnelGw, Members: n.Members, Routes: e.Routes, ECMPGroups: e.EcmpGroups}
		details := "-"
		switch n.Type {
		case pb.NextHopType_NEXT_HOP_TYPE_INTERFACE:
			details = "dst " + n.DstMac
		case pb.NextHopType_NEXT_HOP_TYPE_TUNNEL:
			j.Encap = encapName(n.Encap)
			if isMPLS(n.Encap) {
				j.Label = &n.Label
			} else {
				j.VNI = &n.Vni
			}
			details = strings.TrimPrefix(via(n), n.Port+" ")
		case pb.NextHopType_NEXT_HOP_TYPE_ECMP:
			details = via(n)
		}
		out = append(out, j)
		rows = append(rows, []string{u32(n.Id), j.Type, orDash(n.Port), details, u32(e.Routes), u32(e.EcmpGroups)})
	}
	if o.json {
		return o.writeJSON(map[string]any{"next_hops": out})
	}
	return o.table([]string{"ID", "TYPE", "PORT", "DETAILS", "ROUTES", "GROUPS"}, rows)
}

// ---- maps and neighbours ---------------------------------------------------------------------

func cmdVNIs(ctx context.Context, c *apiclient.Client, o *output) error {
	resp, err := c.ListVNIs(ctx, &pb.ListVNIsRequest{})
	if err != nil {
		return err
	}
	type vniJSON struct {
		VNI uint32 `json:"vni"`
		VRF uint32 `json:"vrf"`
	}
	out := []vniJSON{}
	var rows [][]string
	for _, m := range resp.Vnis {
		out = append(out, vniJSON{m.Vni, m.Vrf})
		rows = append(rows, []string{u32(m.Vni), u32(m.Vrf)})
	}
	if o.json {
		return o.writeJSON(map[string]any{"vnis": out})
	}
	return o.table([]string{"VNI", "VRF"}, rows)
}

func cmdLabels(ctx context.Context, c *apiclient.Client, o *output) error {
	resp, err := c.ListLabels(ctx, &pb.ListLabelsRequest{})
	if err != nil {
		return err
	}
	type labelJSON struct {
		Label uint32 `json:"label"`
		VRF   uint32 `json:"vrf"`
	}
	out := []labelJSON{}
	var rows [][]string
	for _, m := range resp.Labels {
		out = append(out, labelJSON{m.Label, m.Vrf})
		rows = append(rows, []string{u32(m.Label), u32(m.Vrf)})
	}
	if o.json {
		return o.writeJSON(map[string]any{"labels": out})
	}
	return o.table([]string{"LABEL", "VRF"}, rows)
}

type neighborJSON struct {
	IP       string   `json:"ip"`
	MAC      string   `json:"mac"`
	Static   bool     `json:"static"`
	Resolved bool     `json:"resolved"`
	NextHops []uint32 `json:"next_hops"`
}

func cmdNeighbors(ctx context.Context, c *apiclient.Client, o *output) error {
	resp, err := c.ListNeighbors(ctx, &pb.ListNeighborsRequest{})
	if err != nil {
		return err
	}
	out := []neighborJSON{}
	var rows [][]string
	for _, n := range resp.Neighbors {
		out = append(out, neighborJSON{n.Ip, n.Mac, n.Static, n.Resolved, nonNil(n.NextHops)})
		state := "unresolved"
		switch {
		case n.Static:
			state = "static"
		case n.Resolved:
			state = "resolved"
		}
		rows = append(rows, []string{n.Ip, orDash(n.Mac), state, join32(n.NextHops)})
	}
	if o.json {
		return o.writeJSON(map[string]any{"neighbors": out})
	}
	return o.table([]string{"IP", "MAC", "STATE", "NEXT-HOPS"}, rows)
}

// ---- counters -------------------------------------------------------------------------------------

type dropJSON struct {
	Reason  string `json:"reason"`
	Packets uint64 `json:"packets"`
}

func cmdDrops(ctx context.Context, c *apiclient.Client, o *output) error {
	resp, err := c.GetCounters(ctx, &pb.GetCountersRequest{})
	if err != nil {
		return err
	}
	out := []dropJSON{}
	var rows [][]string
	for _, d := range resp.Drops {
		if d.Packets == 0 && !allDrops {
			continue
		}
		out = append(out, dropJSON{d.Reason, d.Packets})
		rows = append(rows, []string{d.Reason, u(d.Packets)})
	}
	if o.json {
		return o.writeJSON(map[string]any{"drops": out})
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(o.w, "no drops (--all lists every reason)")
		return err
	}
	return o.table([]string{"REASON", "PACKETS"}, rows)
}

type portCountersJSON struct {
	Name        string `json:"name"`
	ID          uint32 `json:"id"`
	RxPackets   uint64 `json:"rx_packets"`
	RxBytes     uint64 `json:"rx_bytes"`
	TxPackets   uint64 `json:"tx_packets"`
	TxBytes     uint64 `json:"tx_bytes"`
	Drops       uint64 `json:"drops"`
	DevMissed   uint64 `json:"dev_missed"`
	DevRxNoMbuf uint64 `json:"dev_rx_nombuf"`
	DevRxErrors uint64 `json:"dev_rx_errors"`
	DevTxErrors uint64 `json:"dev_tx_errors"`
}

type lcoreCountersJSON struct {
	Worker     uint32 `json:"worker"`
	Polls      uint64 `json:"polls"`
	BusyPolls  uint64 `json:"busy_polls"`
	Sleeps     uint64 `json:"sleeps"`
	RxPackets  uint64 `json:"rx_packets"`
	TxPackets  uint64 `json:"tx_packets"`
	Drops      uint64 `json:"drops"`
	Consumed   uint64 `json:"consumed"`
	BusyCycles uint64 `json:"busy_cycles"`
	RAs        uint64 `json:"router_adverts"`
}

func cmdStats(ctx context.Context, c *apiclient.Client, o *output) error {
	resp, err := c.GetCounters(ctx, &pb.GetCountersRequest{})
	if err != nil {
		return err
	}
	ports := []portCountersJSON{}
	for _, p := range resp.Ports {
		ports = append(ports, portCountersJSON{p.Name, p.Id, p.RxPackets, p.RxBytes, p.TxPackets, p.TxBytes,
			p.Drops, p.DevMissed, p.DevRxNombuf, p.DevRxErrors, p.DevTxErrors})
	}
	lcores := []lcoreCountersJSON{}
	for _, l := range resp.Lcores {
		lcores = append(lcores, lcoreCountersJSON{l.Worker, l.Polls, l.BusyPolls, l.Sleeps, l.RxPackets,
			l.TxPackets, l.Drops, l.Consumed, l.BusyCycles, l.RouterAdverts})
	}
	if o.json {
		return o.writeJSON(map[string]any{"ports": ports, "lcores": lcores, "mbufs_in_use": resp.MbufsInUse})
	}
	var rows [][]string
	for _, p := range ports {
		rows = append(rows, []string{p.Name, u32(p.ID), u(p.RxPackets), u(p.RxBytes), u(p.TxPackets), u(p.TxBytes),
			u(p.Drops), u(p.DevMissed), u(p.DevRxNoMbuf), u(p.DevRxErrors), u(p.DevTxErrors)})
	}
	if err := o.table([]string{"PORT", "ID", "RX-PKTS", "RX-BYTES", "TX-PKTS", "TX-BYTES", "DROPS",
		"MISSED", "NOMBUF", "RX-ERR", "TX-ERR"}, rows); err != nil {
		return err
	}
	fmt.Fprintln(o.w)
	rows = nil
	for _, l := range lcores {
		rows = append(rows, []string{u32(l.Worker), u(l.Polls), u(l.BusyPolls), u(l.Sleeps), u(l.RxPackets),
			u(l.TxPackets), u(l.Drops), u(l.Consumed), u(l.BusyCycles), u(l.RAs)})
	}
	if err := o.table([]string{"WORKER", "POLLS", "BUSY", "SLEEPS", "RX-PKTS", "TX-PKTS", "DROPS",
		"CONSUMED", "BUSY-CYCLES", "RAS"}, rows); err != nil {
		return err
	}
	_, err = fmt.Fprintf(o.w, "\nmbufs in use: %d\n", resp.MbufsInUse)
	return err
}

// ---- trace and capture ------------------------------------------------------------------------------

type traceJSON struct {
	Time       string `json:"time"`
	Worker     uint32 `json:"worker"`
	Lcore      uint32 `json:"lcore"`
	InPort     string `json:"in_port"`
	InQueue    uint32 `json:"in_queue"`
	InLen      uint32 `json:"in_len"`
	In         []byte `json:"in"`
	Verdict    string `json:"verdict"`
	DropReason string `json:"drop_reason,omitempty"`
	OutPort    string `json:"out_port,omitempty"`
	OutLen     uint32 `json:"out_len,omitempty"`
	Out        []byte `json:"out,omitempty"`
	Summary    string `json:"summary"`
}

func cmdTrace(ctx context.Context, c *apiclient.Client, o *output) error {
	req := &pb.TraceRequest{Count: uint32(traceCount), TimeoutMs: uint32(traceWait / time.Millisecond)}
	if tracePort != "" {
		req.Port = &tracePort
	}
	if !o.json {
		fmt.Fprintf(o.w, "tracing the next %d packets (up to %s)...\n", traceCount, traceWait)
	}
	resp, err := c.Trace(ctx, req)
	if err != nil {
		return err
	}
	out := []traceJSON{}
	for _, r := range resp.Records {
		out = append(out, traceJSON{time.Unix(0, r.TimeUnixNano).UTC().Format(time.RFC3339Nano), r.Worker, r.Lcore,
			r.InPort, r.InQueue, r.InLen, r.In, r.Verdict, r.DropReason, r.OutPort, r.OutLen, r.Out, r.Summary})
	}
	if o.json {
		return o.writeJSON(map[string]any{"records": out, "complete": resp.Complete})
	}
	for _, r := range resp.Records {
		ports := orDash(r.InPort)
		if r.OutPort != "" {
			ports += " -> " + r.OutPort
		}
		fmt.Fprintf(o.w, "%s w%d %s: %s\n", time.Unix(0, r.TimeUnixNano).Format("15:04:05.000000"), r.Worker, ports, r.Summary)
	}
	if !resp.Complete {
		fmt.Fprintf(o.w, "%d packets traced before the timeout\n", len(resp.Records))
	}
	return nil
}

func cmdCapture(ctx context.Context, c *apiclient.Client, o *output) error {
	if capPort == "" || capFile == "" {
		return errors.New("--port NAME and -w FILE are required (see --help)")
	}
	dir, ok := map[string]pb.Direction{"both": pb.Direction_DIRECTION_BOTH, "rx": pb.Direction_DIRECTION_RX,
		"tx": pb.Direction_DIRECTION_TX}[capDir]
	if !ok {
		return fmt.Errorf("--direction %q: rx, tx or both", capDir)
	}
	stream, err := c.Capture(ctx, &pb.CaptureRequest{Port: capPort, Count: uint32(capCount), Snaplen: uint32(capSnaplen),
		Direction: dir, TimeoutMs: uint32(capWait / time.Millisecond)})
	if err != nil {
		return err
	}
	// The file is created with the first chunk: a refused capture leaves none.
	var w io.Writer
	var f *os.File
	var stats *pb.CaptureStats
	n := 0
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if f != nil {
				f.Close()
			}
			return err
		}
		if w == nil {
			if capFile == "-" {
				w = o.w
			} else {
				if f, err = os.Create(capFile); err != nil {
					return err
				}
				w = f
			}
		}
		if chunk.Stats != nil {
			stats = chunk.Stats
		}
		k, err := w.Write(chunk.Pcap)
		n += k
		if err != nil {
			return err
		}
	}
	if w == nil {
		return errors.New("the dataplane sent no capture")
	}
	if f != nil {
		if err := f.Close(); err != nil {
			return err
		}
	}
	if capFile == "-" {
		return nil
	}
	if o.json {
		return o.writeJSON(map[string]any{"file": capFile, "bytes": n, "frames": stats.GetWritten(),
			"captured": stats.GetCaptured(), "dropped": stats.GetDropped()})
	}
	fmt.Fprintf(o.w, "%d frames (%d bytes) written to %s", stats.GetWritten(), n, capFile)
	if stats.GetDropped() > 0 {
		fmt.Fprintf(o.w, "; %d frames missing (capture buffer full)", stats.GetDropped())
	}
	fmt.Fprintln(o.w)
	return nil
}
