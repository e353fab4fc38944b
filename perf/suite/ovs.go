package suite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/filament-net/filament/perf/placement"
)

// OVSVswitchd is Debian's DPDK build of ovs-vswitchd
// (openvswitch-switch-dpdk, installed by scripts/ovs-dpdk.sh). It runs by
// its path: the system's ovs-vswitchd alternative is left as it is.
const OVSVswitchd = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk"

// ovsSchema is the OVSDB schema the private database is created from.
const ovsSchema = "/usr/share/openvswitch/vswitch.ovsschema"

// OVS is OVS-DPDK doing a filament row's work with OpenFlow: one flow per
// /24 route (match ip and nw_dst, dec_ttl, set both MACs), out of port B
// (L3) or into a VXLAN port whose frames leave by port B (VXLANEncap).
// Every sample gets its own ovsdb-server and ovs-vswitchd under env.Dir:
// OVS cannot re-attach a memif port it has deleted.
type OVS struct {
	Mode   Mode // L3 or VXLANEncap
	Routes int
}

func (o OVS) Name() string { return fmt.Sprintf("ovs-dpdk-%s-%d", o.Mode, o.Routes) }

// OVSRxQueues is the generator's RX queues per port for OVS rows: the
// PMD thread sends on memif TX queue 1 (queue 0 is the main thread's), and
// a memif server's queue has a ring only if its client has that queue.
const OVSRxQueues = 2

// OVSPeer is the OVS-DPDK row doing the same work as a filament row, or "".
func OVSPeer(row string) string {
	// A candidate row (WithCandidate) has its baseline's peer.
	row = strings.TrimSuffix(row, CandidateSuffix)
	// A row at a further flow count has the peer at the same count.
	base, suffix := row, ""
	if i := strings.LastIndex(row, "-f"); i > 0 {
		base, suffix = row[:i], row[i:]
	}
	switch base {
	case Filament{Mode: L3, Routes: 10}.Name():
		return OVS{Mode: L3, Routes: 10}.Name() + suffix
	case Filament{Mode: VXLANEncap, Routes: 10}.Name():
		return OVS{Mode: VXLANEncap, Routes: 10}.Name() + suffix
	}
	return ""
}

// ovsInstance is one private OVS: its files in dir, its two daemons.
type ovsInstance struct {
	dir           string
	db, vswitchd  *process
	dbSock, vsCtl string
	dutCPU        int
}

func (o OVS) Start(ctx context.Context, env *Env, a, b string) (func() error, error) {
	if o.Mode != L3 && o.Mode != VXLANEncap {
		return nil, fmt.Errorf("ovs row: mode %s not supported (l3, vxlan-encap)", o.Mode)
	}
	if o.Routes < 1 || o.Routes > 256*256 {
		return nil, fmt.Errorf("ovs row: %d routes: want 1 to 65536 (one flow each)", o.Routes)
	}
	for _, f := range []string{OVSVswitchd, ovsSchema} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("OVS-DPDK is not installed (run scripts/ovs-dpdk.sh as root): %w", err)
		}
	}
	in := &ovsInstance{dir: env.Dir, dbSock: filepath.Join(env.Dir, "ovsdb.sock"),
		vsCtl: filepath.Join(env.Dir, "ovs-vswitchd.ctl"), dutCPU: env.DUTCPU}
	if err := in.start(ctx); err != nil {
		in.stop()
		return nil, err
	}
	var err error
	if o.Mode == L3 {
		err = in.configureL3(ctx, a, b, o.Routes)
	} else {
		err = in.configureVXLAN(ctx, a, b, o.Routes)
	}
	if err == nil {
		err = waitSockets(ctx, in.vswitchd, a, b)
	}
	if err != nil {
		in.stop()
		return nil, fmt.Errorf("%s: %w\n%s", o.Name(), err, in.vswitchd.tail())
	}
	return in.stop, nil
}

// start creates the database and runs both daemons on the device's CPU,
// ovs-vswitchd in a network namespace of its own: its bridges' internal
// ports are tap devices, and the VTEP address goes on one of them.
func (in *ovsInstance) start(ctx context.Context) error {
	conf := filepath.Join(in.dir, "conf.db")
	if out, err := exec.CommandContext(ctx, "ovsdb-tool", "create", conf, ovsSchema).CombinedOutput(); err != nil {
		return fmt.Errorf("ovsdb-tool create: %w: %s", err, out)
	}
	cpu := fmt.Sprint(in.dutCPU)
	var err error
	// env, taskset and unshare exec what they run: the PIDs are the
	// daemons'. OVS_RUNDIR holds the bridges' OpenFlow sockets.
	rundir := "OVS_RUNDIR=" + in.dir
	in.db, err = startProcess(&Env{Dir: in.dir}, "ovsdb-server", "env", rundir, "taskset", "-c", cpu, "ovsdb-server", conf,
		"--remote=punix:"+in.dbSock, "--unixctl="+filepath.Join(in.dir, "ovsdb-server.ctl"),
		"--pidfile="+filepath.Join(in.dir, "ovsdb-server.pid"), "-vconsole:info")
	if err != nil {
		return err
	}
	if err := waitSockets(ctx, in.db, in.dbSock); err != nil {
		return err
	}
	mask := fmt.Sprintf("0x%x", uint64(1)<<in.dutCPU)
	if err := in.vsctl(ctx, "--no-wait", "init", "--", "set", "Open_vSwitch", ".",
		"other_config:dpdk-init=true",
		// One PMD thread, busy-polling on the device's CPU, as testpmd
		// and filament-dataplane do; DPDK's lcore there too.
		"other_config:pmd-cpu-mask="+mask, "other_config:dpdk-lcore-mask="+mask,
		// Memory of its own (no files in /dev/hugepages), no PCI scan.
		fmt.Sprintf("other_config:dpdk-extra=--no-pci --in-memory --single-file-segments --file-prefix=fil-suite-ovs-%d", os.Getpid()),
		"other_config:dpdk-socket-mem=256", "other_config:dpdk-socket-limit=256"); err != nil {
		return err
	}
	// taskset keeps every other thread (handlers, revalidators, main)
	// on that CPU too.
	p, err := startProcess(&Env{Dir: in.dir}, "ovs-vswitchd", "env", rundir, "unshare", "--net", "--",
		"taskset", "-c", cpu, OVSVswitchd, "unix:"+in.dbSock, "--unixctl="+in.vsCtl,
		"--pidfile="+filepath.Join(in.dir, "ovs-vswitchd.pid"), "-vconsole:info")
	if err != nil {
		return err
	}
	in.vswitchd = p
	return waitSockets(ctx, p, in.vsCtl)
}

// stop ends ovs-vswitchd (SIGTERM: it closes its DPDK ports and memory),
// then ovsdb-server; the caller removes the directory.
func (in *ovsInstance) stop() error {
	var errs []error
	if in.vswitchd != nil {
		errs = append(errs, in.vswitchd.stop())
	}
	if in.db != nil {
		errs = append(errs, in.db.stop())
	}
	// DPDK in ovs-vswitchd leaves its runtime directory behind.
	_ = os.RemoveAll(fmt.Sprintf("/var/run/dpdk/fil-suite-ovs-%d", os.Getpid()))
	return errors.Join(errs...)
}

func (in *ovsInstance) vsctl(ctx context.Context, args ...string) error {
	return in.run(ctx, "ovs-vsctl", append([]string{"--db=unix:" + in.dbSock, "--timeout=60"}, args...)...)
}

func (in *ovsInstance) appctl(ctx context.Context, args ...string) error {
	return in.run(ctx, "ovs-appctl", append([]string{"-t", in.vsCtl, "--timeout=60"}, args...)...)
}

// flows replaces a bridge's OpenFlow table (the default NORMAL flow goes:
// what no flow matches is dropped).
func (in *ovsInstance) flows(ctx context.Context, bridge string, flows []string) error {
	f := filepath.Join(in.dir, bridge+".flows")
	if err := os.WriteFile(f, []byte(strings.Join(flows, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	return in.run(ctx, "ovs-ofctl", "replace-flows", in.mgmt(bridge), f)
}

func (in *ovsInstance) mgmt(bridge string) string {
	return "unix:" + filepath.Join(in.dir, bridge+".mgmt")
}

func (in *ovsInstance) run(ctx context.Context, name string, args ...string) error {
	cctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(cctx, name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// memifPort adds a DPDK memif server port (mtu: its mtu_request, 0 for
// OVS's default 1500); ovs-vsctl returns once ovs-vswitchd has it.
func (in *ovsInstance) memifPort(ctx context.Context, bridge, name string, id int, sock string, ofport, mtu int) error {
	args := []string{"add-port", bridge, name, "--", "set", "Interface", name, "type=dpdk",
		fmt.Sprintf("options:dpdk-devargs=net_memif%d,role=server,id=0,socket-abstract=no,socket=%s", id, sock),
		fmt.Sprintf("ofport_request=%d", ofport)}
	if mtu != 0 {
		args = append(args, fmt.Sprintf("mtu_request=%d", mtu))
	}
	return in.vsctl(ctx, args...)
}

// routeFlows are one OpenFlow flow per /24 route from port 1: the L3
// rewrite filament does (TTL, source MAC the router's, destination MAC the
// next hop's), then out.
func routeFlows(routes int, out string) []string {
	fl := make([]string, routes)
	for i := range fl {
		fl[i] = fmt.Sprintf("priority=100,ip,in_port=1,nw_dst=%s,actions=dec_ttl,mod_dl_src:%s,mod_dl_dst:%s,output:%s",
			routePrefix(i), VRouterMAC, GenMACB, out)
	}
	return fl
}

// configureL3: bridge br0, memif A = port 1, memif B = port 2.
func (in *ovsInstance) configureL3(ctx context.Context, a, b string, routes int) error {
	if err := in.vsctl(ctx, "add-br", "br0", "--", "set", "Bridge", "br0", "datapath_type=netdev"); err != nil {
		return err
	}
	if err := in.memifPort(ctx, "br0", "a", 0, a, 1, 0); err != nil {
		return err
	}
	if err := in.memifPort(ctx, "br0", "b", 1, b, 2, 0); err != nil {
		return err
	}
	return in.flows(ctx, "br0", routeFlows(routes, "2"))
}

// configureVXLAN is OVS's userspace tunnelling: br-int has memif A (port 1)
// and a VXLAN port (2, VNI 100, to 192.0.2.2); br-phy has memif B and the
// VTEP address 192.0.2.1 with the fabric MAC on its LOCAL port, a route
// and a static neighbour for the remote VTEP (the generator's port B).
func (in *ovsInstance) configureVXLAN(ctx context.Context, a, b string, routes int) error {
	if err := in.vsctl(ctx, "add-br", "br-phy", "--", "set", "Bridge", "br-phy", "datapath_type=netdev",
		"other-config:hwaddr="+FabricMAC); err != nil {
		return err
	}
	if err := in.memifPort(ctx, "br-phy", "b", 1, b, 1, FabricMTU); err != nil {
		return err
	}
	if err := in.vsctl(ctx, "add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev"); err != nil {
		return err
	}
	if err := in.memifPort(ctx, "br-int", "a", 0, a, 1, 0); err != nil {
		return err
	}
	if err := in.vsctl(ctx, "add-port", "br-int", "vx", "--", "set", "Interface", "vx", "type=vxlan",
		"options:remote_ip="+PeerIP, "options:local_ip="+FabricIP, fmt.Sprintf("options:key=%d", VNI),
		"ofport_request=2"); err != nil {
		return err
	}
	// The tunnel's source address is the one on br-phy's tap, in
	// ovs-vswitchd's own namespace.
	ns := fmt.Sprintf("--net=/proc/%d/ns/net", in.vswitchd.cmd.Process.Pid)
	if err := in.run(ctx, "nsenter", ns, "ip", "addr", "add", FabricIP+"/24", "dev", "br-phy"); err != nil {
		return err
	}
	if err := in.run(ctx, "nsenter", ns, "ip", "link", "set", "br-phy", "up"); err != nil {
		return err
	}
	if err := in.appctl(ctx, "ovs/route/add", PeerIP+"/32", "br-phy"); err != nil {
		return err
	}
	if err := in.appctl(ctx, "tnl/neigh/set", "br-phy", PeerIP, GenMACB); err != nil {
		return err
	}
	// Only the tunnel's frames leave by B: not the tap's own (IPv6
	// neighbour discovery), which the generator would count as foreign.
	if err := in.flows(ctx, "br-phy", []string{
		fmt.Sprintf("priority=100,udp,in_port=LOCAL,nw_src=%s,tp_dst=4789,actions=output:1", FabricIP)}); err != nil {
		return err
	}
	return in.flows(ctx, "br-int", routeFlows(routes, "2"))
}

// OVSRows are the OVS-DPDK rows: the same traffic as their filament peers,
// the generator polling OVSRxQueues RX queues per port.
func OVSRows(flows int) []Row {
	var rows []Row
	for _, r := range []struct {
		m    Mode
		what string
	}{
		{L3, "OVS-DPDK: an OpenFlow flow per /24 (dec_ttl, MAC rewrite); 10 routes"},
		{VXLANEncap, "OVS-DPDK: the same flows into a userspace VXLAN port"},
	} {
		d := OVS{Mode: r.m, Routes: 10}
		tr := append(Traffic(r.m, d.Routes, flows), "--rx-queues", fmt.Sprint(OVSRxQueues))
		rows = append(rows, Row{Name: d.Name(), DUT: d, Traffic: tr, What: r.what, Flows: flows, PerFlows: true})
	}
	return rows
}

// peerRatios are a row's NDR and PDR over its OVS-DPDK peer's, each round
// against the same round and size.
func peerRatios(row, peer, size string, samples []Sample) (ndr, pdr Stat) {
	r := pairRatios(row, peer, size, samples, func(s Sample) float64 { return s.NDR },
		func(s Sample) float64 { return s.PDR })
	return r[0], r[1]
}

// pairRatios are row's figures over ref's, round by round, each figure a
// Stat: only between samples of one placement (not mixed) that have every
// figure above 0, a retry standing for its round (replaces).
func pairRatios(row, ref, size string, samples []Sample, figs ...func(Sample) float64) []Stat {
	out := make([]Stat, len(figs))
	if ref == "" {
		return out
	}
	type key struct {
		row   string
		round int
	}
	ok := map[key]Sample{}
	for _, s := range samples {
		k := key{s.Row, s.Round}
		if s.Size != size || s.Err != "" || !replaces(ok[k], s) {
			continue
		}
		all := true
		for _, f := range figs {
			all = all && f(s) > 0
		}
		if all {
			ok[k] = s
		}
	}
	r := make([][]float64, len(figs))
	for k, s := range ok {
		if k.row != row {
			continue
		}
		if o, found := ok[key{ref, k.round}]; found && o.Place == s.Place && s.Place != placement.Mixed {
			for i, f := range figs {
				r[i] = append(r[i], f(s)/f(o))
			}
		}
	}
	for i := range figs {
		out[i] = stat(r[i])
	}
	return out
}

// writeOVSRatios adds the report's comparison of filament rows with their
// OVS-DPDK peers, if the run had both.
func writeOVSRatios(w io.Writer, sums []Summary) {
	var have []Summary
	for _, s := range sums {
		if s.PeerNDRRatio.N > 0 {
			have = append(have, s)
		}
	}
	if len(have) == 0 {
		return
	}
	fmt.Fprintf(w, "\n## Filament against OVS-DPDK\n\n")
	fmt.Fprintf(w, "The same work on the same ports and traffic: OVS-DPDK 3.1 (Debian's `ovs-vswitchd-dpdk`, one busy-polling PMD thread, every thread on the device's CPU) with one OpenFlow flow per route. Each round's filament rate over the same round's OVS-DPDK rate; medians, with min-max. On OVS rows the generator polls %d RX queues per port (OVS's PMD sends on memif queue 1).\n\n", OVSRxQueues)
	fmt.Fprintf(w, "| size | filament row | OVS-DPDK row | NDR ratio | PDR ratio |\n|---|---|---|---|---|\n")
	for _, s := range have {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", s.Size, s.Row, s.Peer, ratio(s.PeerNDRRatio), ratio(s.PeerPDRRatio))
	}
}
