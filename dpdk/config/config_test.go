package config

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/filament-net/filament/dpdk/fastpath"
)

// good is a complete, valid node: fabric + two pods (one dual stack),
// every next-hop type, routes of both families.
const good = `
eal: {lcores: "0,1", file_prefix: node1}
ports:
  - {name: fabric, devargs: "net_af_packet0,iface=fab1", kind: fabric, ipv4: [192.168.100.1]}
  - {name: pod1, devargs: "net_af_packet1,iface=p1h", kind: pod, vrf: 1,
     mac: "02:00:0a:0a:01:02", ipv4: [10.10.1.2], ipv6: ["fd00:10::2"], mtu: 1450}
  - {name: pod2, devargs: "net_af_packet2,iface=p2h", kind: pod, vrf: 1,
     mac: "02:00:0a:0a:01:03", ipv4: [10.10.1.3, 10.10.1.4]}
vrfs:
  - {vrf: 1, address: 10.10.1.1, address6: "fd00:10::1"}
  - {vrf: 2, address: 10.20.0.1}
next_hops:
  - {id: 1, type: interface, port: pod1, dst_mac: "02:00:0a:0a:01:02"}
  - {id: 2, type: tunnel, port: fabric, encap: vxlan, tunnel_dst: 192.168.100.2, vni: 100}
  - {id: 3, type: tunnel, port: fabric, encap: mplsoudp, tunnel_dst: 192.168.100.3,
     tunnel_gw: 192.168.100.254, label: 100}
  - {id: 9, type: ecmp, members: [2, 3]}
  - {id: 4, type: receive}
  - {id: 0, type: discard}
routes:
  - {vrf: 1, prefix: 10.10.1.2/32, next_hop: 1}
  - {vrf: 1, prefix: 10.10.1.1/32, next_hop: 4}
  - {vrf: 1, prefix: 10.10.2.0/24, next_hop: 9}
  - {vrf: 1, prefix: 0.0.0.0/0, next_hop: 0}
  - {vrf: 1, prefix: "fd00:10::2/128", next_hop: 1}
  - {vrf: 1, prefix: "fd00:20::/64", next_hop: 9}
vnis: [{vni: 100, vrf: 1}, {vni: 0, vrf: 2}]
labels: [{label: 100, vrf: 1}]
neighbors: [{ip: 192.168.100.254, mac: "02:aa:00:00:00:01"}]
`

func TestParseGood(t *testing.T) {
	c, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Workers() != 1 {
		t.Errorf("workers %d, want 1", c.Workers())
	}
	d := fastpath.DefaultConfig()
	fc := c.FastpathConfig()
	if fc.NextHops != d.NextHops || fc.VRFs != d.VRFs || fc.FIB4Rules != d.FIB4Rules ||
		fc.FIB4Tbl8s != d.FIB4Tbl8s || fc.FIB6Rules != d.FIB6Rules || fc.FIB6Groups != d.FIB6Groups || fc.Mbufs != d.Mbufs || fc.IdleSleepMax != d.IdleSleepMax ||
		fc.VRouterMAC.String() != d.VRouterMAC.String() {
		t.Errorf("defaults not taken: %+v, want %+v", fc, d)
	}
	if got := c.Ports[1].portConfig(); got.Kind != fastpath.PortPod || got.VRF != 1 || got.MTU != 1450 ||
		got.MAC.String() != "02:00:0a:0a:01:02" || len(got.IPv4) != 1 ||
		!reflect.DeepEqual(got.IPv6, []netip.Addr{netip.MustParseAddr("fd00:10::2")}) {
		t.Errorf("pod port: %+v", got)
	}
	if c.API.Socket != DefaultSocket {
		t.Errorf("api.socket %q, want the default %q", c.API.Socket, DefaultSocket)
	}
	if c2, err := Parse([]byte(good + "api: {socket: /tmp/fil/dp.sock}\n")); err != nil || c2.API.Socket != "/tmp/fil/dp.sock" {
		t.Errorf("api.socket: %v, %+v", err, c2)
	}
	if len(c.VRFs) != 2 || *c.VRFs[0].VRF != 1 || c.VRFs[0].addr != netip.MustParseAddr("10.10.1.1") ||
		c.VRFs[0].addr6 != netip.MustParseAddr("fd00:10::1") ||
		*c.VRFs[1].VRF != 2 || c.VRFs[1].addr != netip.MustParseAddr("10.20.0.1") || c.VRFs[1].addr6.IsValid() {
		t.Errorf("vrfs: %+v", c.VRFs)
	}
}

// encap: mplsogre is a tunnel with a label, like mplsoudp.
func TestParseMPLSoGRE(t *testing.T) {
	c, err := Parse([]byte(strings.Replace(good, "encap: mplsoudp", "encap: mplsogre", 1)))
	if err != nil {
		t.Fatal(err)
	}
	nh := c.NextHops[2]
	if nh.typ != fastpath.NHTunnel || nh.encap != fastpath.EncapMPLSoGRE || nh.Label == nil || *nh.Label != 100 ||
		nh.tunDst != netip.MustParseAddr("192.168.100.3") || nh.tunGW != netip.MustParseAddr("192.168.100.254") {
		t.Errorf("mplsogre next-hop: %+v", nh)
	}
}

// An IPv6 underlay: the fabric's IPv6 address, a tunnel to an IPv6
// endpoint through an IPv6 gateway, an IPv6 static neighbour.
func TestParseUnderlay6(t *testing.T) {
	y := strings.Replace(good, "kind: fabric,", `kind: fabric, ipv6: ["fd00:100::1"],`, 1)
	y = strings.Replace(y, "tunnel_dst: 192.168.100.3,\n     tunnel_gw: 192.168.100.254,", `tunnel_dst: "fd00:100::3",
     tunnel_gw: "fd00:100::fe",`, 1)
	y = strings.Replace(y, "neighbors: [{ip: 192.168.100.254,", `neighbors: [{ip: "fd00:100::fe",`, 1)
	c, err := Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	nh := c.NextHops[2]
	if nh.tunDst != netip.MustParseAddr("fd00:100::3") || nh.tunGW != netip.MustParseAddr("fd00:100::fe") {
		t.Errorf("IPv6 tunnel: %+v", nh)
	}
	if pc := c.Ports[0].portConfig(); len(pc.IPv6) != 1 || pc.IPv6[0] != netip.MustParseAddr("fd00:100::1") {
		t.Errorf("fabric port config %+v, want IPv6 [fd00:100::1]", pc)
	}
	if c.Neighbors[0].ip != netip.MustParseAddr("fd00:100::fe") {
		t.Errorf("neighbour %+v", c.Neighbors[0])
	}
}

// A pod port may be IPv6-only; the fabric and host ports may carry one
// IPv6 address.
func TestParseIPv6Only(t *testing.T) {
	in := sub(t, "ipv4: [10.10.1.3, 10.10.1.4]", `ipv6: ["fd00:10::3", "fd00:10::4"]`)
	in = strings.Replace(in, "kind: fabric, ipv4: [192.168.100.1]", `kind: fabric, ipv4: [192.168.100.1], ipv6: ["fd00:ff::1"]`, 1)
	c, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Ports[2].portConfig(); len(got.IPv4) != 0 ||
		!reflect.DeepEqual(got.IPv6, []netip.Addr{netip.MustParseAddr("fd00:10::3"), netip.MustParseAddr("fd00:10::4")}) {
		t.Errorf("IPv6-only pod port: %+v", got)
	}
	if got := c.Ports[0].portConfig(); !reflect.DeepEqual(got.IPv6, []netip.Addr{netip.MustParseAddr("fd00:ff::1")}) {
		t.Errorf("fabric port: %+v", got)
	}
}

func TestParseMinimalAndEmpty(t *testing.T) {
	for _, in := range []string{"", "# only a comment\n", "{}", "eal:\n"} {
		c, err := Parse([]byte(in))
		if strings.TrimSpace(in) == "" || in[0] == '#' {
			if err == nil || !strings.Contains(err.Error(), "empty") {
				t.Errorf("%q: err %v, want empty configuration", in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if got := strings.Join(c.EALArgs(), " "); got != "-l 0,1 --file-prefix filament --no-pci --in-memory" {
			t.Errorf("%q: EAL args %q", in, got)
		}
	}
}

// TestDemoConfigs keeps deploy/demo (what make run uses) valid.
func TestDemoConfigs(t *testing.T) {
	files, _ := filepath.Glob("../../deploy/demo/*.yaml")
	if len(files) < 2 {
		t.Fatalf("demo configs: found %v", files)
	}
	for _, f := range files {
		c, err := Load(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if len(c.Ports) != 2 || len(c.Routes) != 6 || len(c.VRFs) != 1 || !c.VRFs[0].addr6.IsValid() {
			t.Errorf("%s: %s", f, c.Summary())
		}
	}
}

func TestEALArgs(t *testing.T) {
	for _, tc := range []struct {
		eal  string
		want string
	}{
		{`{lcores: "0-1", file_prefix: a}`, "-l 0-1 --file-prefix a --no-pci --in-memory"},
		{`{no_huge: true, memory_mb: 256, file_prefix: b}`, "-l 0,1 --file-prefix b --no-pci --no-huge -m 256"},
		{`{extra: ["-a", "0000:03:00.0"]}`, "-l 0,1 --file-prefix filament --in-memory -a 0000:03:00.0"},
		{`{extra: ["--allow=0000:03:00.0"]}`, "-l 0,1 --file-prefix filament --in-memory --allow=0000:03:00.0"},
		{`{extra: ["--log-level", "pmd.*:debug"]}`, "-l 0,1 --file-prefix filament --no-pci --in-memory --log-level pmd.*:debug"},
	} {
		c, err := Parse([]byte("eal: " + tc.eal))
		if err != nil {
			t.Errorf("%s: %v", tc.eal, err)
			continue
		}
		if got := strings.Join(c.EALArgs(), " "); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.eal, got, tc.want)
		}
	}
}

// sub replaces one exact piece of the good config (and fails the test if
// the piece is not there, so cases cannot silently test nothing).
func sub(t *testing.T, old, new string) string {
	t.Helper()
	if !strings.Contains(good, old) {
		t.Fatalf("%q is not in the good config", old)
	}
	return strings.Replace(good, old, new, 1)
}

func TestParseBad(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml func(t *testing.T) string
		want []string // each must be in the error
	}{
		{"unknown top-level key", func(t *testing.T) string { return good + "colour: blue\n" },
			[]string{"colour: unknown key (line"}},
		{"unknown nested key", func(t *testing.T) string {
			return sub(t, "kind: fabric,", "kind: fabric, ipv7: [fd00::1],")
		}, []string{"ports[0].ipv7: unknown key", "known keys: name, devargs, kind"}},
		{"IPv6 tunnel from a fabric without IPv6", func(t *testing.T) string {
			return sub(t, "tunnel_dst: 192.168.100.2,", `tunnel_dst: "fd00:100::2",`)
		}, []string{`next_hops[1].tunnel_dst: fd00:100::2: an IPv6 underlay needs the fabric port "fabric" to have an IPv6 address (ipv6)`}},
		{"tunnel of mixed families", func(t *testing.T) string {
			return sub(t, "tunnel_gw: 192.168.100.254,", `tunnel_gw: "fd00:100::fe",`)
		}, []string{"next_hops[2].tunnel_gw: fd00:100::fe and tunnel_dst 192.168.100.3: the underlay next hop must be of the tunnel's family"}},
		{"fabric with two IPv6 addresses", func(t *testing.T) string {
			return sub(t, "kind: fabric,", `kind: fabric, ipv6: ["fd00:100::1", "fd00:100::11"],`)
		}, []string{"ports[0].ipv6: 2 addresses: a fabric or host port has at most one"}},
		{"unknown key in list of next-hops", func(t *testing.T) string {
			return sub(t, "{id: 4, type: receive}", "{id: 4, type: receive, weight: 2}")
		}, []string{"next_hops[4].weight: unknown key"}},
		{"type error names the field", func(t *testing.T) string {
			return sub(t, "mtu: 1450", "mtu: big")
		}, []string{"ports[1].mtu: cannot unmarshal !!str `big` into int (line"}},
		{"duplicate key", func(t *testing.T) string { return good + "vnis: []\n" },
			[]string{`"vnis" already defined`}},
		{"two documents", func(t *testing.T) string { return good + "---\neal: {}\n" },
			[]string{"more than one YAML document"}},
		{"not YAML", func(t *testing.T) string { return "ports: [\n" }, []string{"not valid YAML"}},
		{"bad port MAC", func(t *testing.T) string {
			return sub(t, `mac: "02:00:0a:0a:01:03"`, `mac: "zz"`)
		}, []string{`ports[2].mac: "zz" is not a MAC address`}},
		{"multicast pod MAC", func(t *testing.T) string {
			return sub(t, `mac: "02:00:0a:0a:01:03"`, `mac: "01:00:5e:00:00:01"`)
		}, []string{"ports[2].mac: 01:00:5e:00:00:01 is a multicast address"}},
		{"pod without MAC", func(t *testing.T) string {
			return sub(t, `mac: "02:00:0a:0a:01:03", `, ``)
		}, []string{"ports[2].mac: required for a pod port"}},
		{"undefined next-hop", func(t *testing.T) string {
			return sub(t, "next_hop: 9}", "next_hop: 7}")
		}, []string{"routes[2].next_hop: 7 is not defined"}},
		{"missing next-hop", func(t *testing.T) string {
			return sub(t, ", next_hop: 9}", "}")
		}, []string{"routes[2].next_hop: required"}},
		{"one lcore", func(t *testing.T) string { return sub(t, `lcores: "0,1"`, `lcores: "0"`) },
			[]string{"eal.lcores: need at least two lcores (one control, one forwarding)"}},
		{"bad lcores", func(t *testing.T) string { return sub(t, `lcores: "0,1"`, `lcores: "0,x"`) },
			[]string{`eal.lcores: "x" is not an lcore number or range`}},
		{"lcore that is not a CPU here", func(t *testing.T) string { return sub(t, `lcores: "0,1"`, `lcores: "0,127"`) },
			[]string{"eal.lcores: [127]: not CPUs this process may run on (it may use 0"}},
		{"too many workers", func(t *testing.T) string { return sub(t, `lcores: "0,1"`, `lcores: "0-20"`) },
			[]string{"eal.lcores: 20 forwarding lcores: at most 16"}},
		{"extra owned by the config", func(t *testing.T) string {
			return sub(t, `file_prefix: node1}`, `file_prefix: node1, extra: ["--no-huge", "-l0,1", "--vdev=net_null0"]}`)
		}, []string{`eal.extra[0]: "--no-huge" is set by the configuration: use eal.no_huge`,
			`eal.extra[1]: "-l0,1" is set by the configuration: use eal.lcores`,
			`eal.extra[2]: "--vdev=net_null0" is set by the configuration: use a port's devargs`}},
		{"no_huge memory", func(t *testing.T) string {
			return sub(t, `file_prefix: node1}`, `file_prefix: node1, no_huge: true, memory_mb: 8}`)
		}, []string{"eal.memory_mb: 8: with no_huge, give 64.."}},
		{"file prefix", func(t *testing.T) string { return sub(t, "file_prefix: node1", `file_prefix: "a/b"`) },
			[]string{`eal.file_prefix: "a/b": need letters`}},
		{"tables", func(t *testing.T) string {
			return good + "tables: {next_hops: 0, vrfs: 5000, fib4_routes: 0, fib4_tbl8s: -1, fib6_routes: 0, fib6_groups: 3000000, mbufs: 100}\n"
		}, []string{"tables.next_hops: 0: must be 1..", "tables.vrfs: 5000: must be 1..4096",
			"tables.fib4_routes: 0", "tables.fib4_tbl8s: -1", "tables.fib6_routes: 0: must be 1..",
			"tables.fib6_groups: 3000000: must be 1..2097152", "tables.mbufs: 100: must be 1024.."}},
		{"api socket too long", func(t *testing.T) string {
			return good + "api: {socket: /run/" + strings.Repeat("x", 110) + ".sock}\n"
		}, []string{"api.socket: \"/run/xxx", "is 120 bytes: a unix socket path has at most 107"}},
		{"api socket empty", func(t *testing.T) string { return good + "api: {socket: \"\"}\n" },
			[]string{"api.socket: required"}},
		{"api unknown key", func(t *testing.T) string { return good + "api: {port: 80}\n" },
			[]string{"api.port: unknown key (line", "known keys: socket"}},
		{"vrouter MAC", func(t *testing.T) string { return good + `vrouter_mac: "ff:ff:ff:ff:ff:ff"` + "\n" },
			[]string{"vrouter_mac: ff:ff:ff:ff:ff:ff is a multicast address"}},
		{"idle sleep", func(t *testing.T) string { return good + "idle_sleep_max_us: -1\n" },
			[]string{"idle_sleep_max_us: -1: must be 0.."}},
		{"duplicate port name and device", func(t *testing.T) string {
			return sub(t, `{name: pod2, devargs: "net_af_packet2`, `{name: pod1, devargs: "net_af_packet1`)
		}, []string{`ports[2].name: "pod1" is already the name of another port`,
			`ports[2].devargs: device "net_af_packet1" is already ports[1]`}},
		{"bad kind", func(t *testing.T) string { return sub(t, "kind: fabric", "kind: nic") },
			[]string{`ports[0].kind: "nic": must be fabric, pod or host`}},
		{"two fabric ports", func(t *testing.T) string {
			return sub(t, `kind: pod, vrf: 1,
     mac: "02:00:0a:0a:01:03", ipv4: [10.10.1.3, 10.10.1.4]`, `kind: fabric, ipv4: [10.0.0.1]`)
		}, []string{"ports[2].kind: there is one fabric port, ports[0] already is"}},
		{"fabric without underlay address", func(t *testing.T) string {
			return sub(t, "kind: fabric, ipv4: [192.168.100.1]", "kind: fabric")
		}, []string{"ports[0].ipv4: a fabric port needs exactly one address"}},
		{"fabric with a VRF", func(t *testing.T) string {
			return sub(t, "kind: fabric,", "kind: fabric, vrf: 2,")
		}, []string{"ports[0].vrf: a fabric port has no VRF"}},
		{"bad pod addresses", func(t *testing.T) string {
			return sub(t, "ipv4: [10.10.1.3, 10.10.1.4]", "ipv4: [10.10.1.3, 10.10.1.3, fd00::1, 0.0.0.0]")
		}, []string{"ports[2].ipv4[1]: 10.10.1.3 given twice", `ports[2].ipv4[2]: "fd00::1" is not an IPv4 address`,
			"ports[2].ipv4[3]: 0.0.0.0 cannot be a host's address"}},
		{"bad pod IPv6 addresses", func(t *testing.T) string {
			return sub(t, `ipv6: ["fd00:10::2"]`, `ipv6: [10.10.1.5, "fe80::1", "fd00:10::2", "fd00:10::2", "ff02::1", "::ffff:10.1.1.1", "fd00:10::5%eth0"]`)
		}, []string{`ports[1].ipv6[0]: "10.10.1.5" is not an IPv6 address`, "ports[1].ipv6[1]: fe80::1 cannot be a host's address",
			"ports[1].ipv6[3]: fd00:10::2 given twice", "ports[1].ipv6[4]: ff02::1 cannot be a host's address",
			`ports[1].ipv6[5]: "::ffff:10.1.1.1" is not an IPv6 address`, `ports[1].ipv6[6]: "fd00:10::5%eth0" is not an IPv6 address`}},
		{"too many pod IPv6 addresses", func(t *testing.T) string {
			return sub(t, `ipv6: ["fd00:10::2"]`, `ipv6: ["fd00:10::2", "fd00:10::3", "fd00:10::4", "fd00:10::5", "fd00:10::6", "fd00:10::7", "fd00:10::8", "fd00:10::9", "fd00:10::a"]`)
		}, []string{"ports[1].ipv6: 9 addresses: at most 8"}},
		{"fabric with two IPv6 addresses", func(t *testing.T) string {
			return sub(t, "kind: fabric, ipv4: [192.168.100.1]", `kind: fabric, ipv4: [192.168.100.1], ipv6: ["fd00:ff::1", "fd00:ff::2"]`)
		}, []string{"ports[0].ipv6: 2 addresses: a fabric or host port has at most one"}},
		{"pod without addresses", func(t *testing.T) string {
			return sub(t, ", ipv4: [10.10.1.3, 10.10.1.4]", "")
		}, []string{"ports[2].ipv4: a pod port needs the pod's addresses, IPv4 or IPv6"}},
		{"old port gateway key", func(t *testing.T) string {
			return sub(t, "mtu: 1450}", "gateway: 10.10.1.1, mtu: 1450}")
		}, []string{"ports[1].gateway: unknown key (line 6): ports no longer take a gateway: use the top-level vrfs section instead",
			"e.g. vrfs: [{vrf: 1, address: 10.10.1.1}]"}},
		{"old gateway key on the fabric port", func(t *testing.T) string {
			return sub(t, "kind: fabric,", "kind: fabric, gateway: 192.168.100.254,")
		}, []string{"ports[0].gateway: unknown key (line 4): ports no longer take a gateway: a tunnel names its underlay gateway with tunnel_gw",
			"the top-level vrfs section"}},
		{"old gateway key on a port without vrf", func(t *testing.T) string {
			return sub(t, `{name: pod2, devargs: "net_af_packet2,iface=p2h", kind: pod, vrf: 1,`,
				`{name: pod2, devargs: "net_af_packet2,iface=p2h", kind: pod, gateway: 10.0.0.1,`)
		}, []string{"ports[2].gateway: unknown key (line 7): ports no longer take a gateway: use the top-level vrfs section instead",
			"e.g. vrfs: [{vrf: 0, address: 10.0.0.1}]"}},
		{"VRF address VRF out of range", func(t *testing.T) string {
			return sub(t, "{vrf: 2, address: 10.20.0.1}", "{vrf: 4096, address: 10.20.0.1}")
		}, []string{"vrfs[1].vrf: VRF 4096 out of range 0..4095 (tables.vrfs)"}},
		{"VRF address twice", func(t *testing.T) string {
			return sub(t, "{vrf: 2, address: 10.20.0.1}", "{vrf: 1, address: 10.10.1.254}")
		}, []string{"vrfs[1].vrf: VRF 1 is already vrfs[0]: one address per VRF"}},
		{"VRF address missing fields", func(t *testing.T) string {
			return sub(t, "{vrf: 2, address: 10.20.0.1}", "{vrf: 2}\n  - {address: 10.30.0.1}")
		}, []string{"vrfs[1].address: required", "vrfs[2].vrf: required"}},
		{"bad VRF addresses", func(t *testing.T) string {
			return sub(t, "{vrf: 2, address: 10.20.0.1}", `{vrf: 2, address: fd00::1}
  - {vrf: 3, address: 224.0.0.1}
  - {vrf: 4, address: 255.255.255.255}
  - {vrf: 5, address: 0.0.0.0}
  - {vrf: 6, address: 127.0.0.1}
  - {vrf: 7, address: 10.7.0.0/24}`)
		}, []string{`vrfs[1].address: "fd00::1" is not an IPv4 address`,
			"vrfs[2].address: 224.0.0.1 cannot be a host's address",
			"vrfs[3].address: 255.255.255.255 cannot be a host's address",
			"vrfs[4].address: 0.0.0.0 cannot be a host's address",
			"vrfs[5].address: 127.0.0.1 is a loopback address",
			`vrfs[6].address: "10.7.0.0/24" is not an IPv4 address`}},
		{"bad VRF IPv6 addresses", func(t *testing.T) string {
			return sub(t, "{vrf: 2, address: 10.20.0.1}", `{vrf: 2, address: 10.20.0.1, address6: 10.20.0.2}
  - {vrf: 3, address: 10.30.0.1, address6: "::1"}
  - {vrf: 4, address: 10.40.0.1, address6: "fe80::1"}
  - {vrf: 5, address: 10.50.0.1, address6: "fd00:50::/64"}
  - {vrf: 6, address6: "fd00:60::1"}`)
		}, []string{`vrfs[1].address6: "10.20.0.2" is not an IPv6 address`,
			"vrfs[2].address6: ::1 cannot be a host's address",
			"vrfs[3].address6: fe80::1 cannot be a host's address",
			`vrfs[4].address6: "fd00:50::/64" is not an IPv6 address`,
			"vrfs[5].address: required"}},
		{"VRF IPv6 address is a pod's", func(t *testing.T) string {
			return sub(t, `address6: "fd00:10::1"`, `address6: "fd00:10::2"`)
		}, []string{"vrfs[0].address6: fd00:10::2 is the address of pod port ports[1] (pod1) in VRF 1"}},
		{"VRF address is a pod's", func(t *testing.T) string {
			return sub(t, "{vrf: 1, address: 10.10.1.1,", "{vrf: 1, address: 10.10.1.4,")
		}, []string{"vrfs[0].address: 10.10.1.4 is the address of pod port ports[2] (pod2) in VRF 1"}},
		{"unknown key in vrfs", func(t *testing.T) string {
			return sub(t, "{vrf: 1, address: 10.10.1.1,", "{vrf: 1, address: 10.10.1.1, prefix_len: 24,")
		}, []string{"vrfs[0].prefix_len: unknown key (line 10; known keys: vrf, address, address6)"}},
		{"MTU, queues, VRF", func(t *testing.T) string {
			return sub(t, "vrf: 1,\n     mac: \"02:00:0a:0a:01:02\"", "vrf: 9999, rx_queues: 17,\n     mac: \"02:00:0a:0a:01:02\"")
		}, []string{"ports[1].vrf: VRF 9999 out of range 0..4095", "ports[1].rx_queues: 17: must be 0..16"}},
		{"MTU", func(t *testing.T) string { return sub(t, "mtu: 1450", "mtu: 100") },
			[]string{"ports[1].mtu: 100: must be 576..9600"}},
		{"IPv6 port's MTU", func(t *testing.T) string { return sub(t, "mtu: 1450", "mtu: 1279") },
			[]string{"ports[1].mtu: 1279: a port with IPv6 addresses (ipv6) needs at least 1280 (RFC 8200)"}},
		{"IPv6 route over a small tunnel MTU", func(t *testing.T) string {
			return sub(t, `kind: fabric, ipv4: [192.168.100.1]}`, `kind: fabric, ipv4: [192.168.100.1], mtu: 1300}`)
		}, []string{`routes[5].next_hop: ECMP member next-hop 2 sends at most 1250 bytes (port "fabric" has MTU 1300): IPv6 needs an MTU of at least 1280 (RFC 8200)`}},
		{"IPv6 route to an IPv4-only pod's small MTU", func(t *testing.T) string {
			c := strings.Replace(sub(t, "ipv4: [10.10.1.3, 10.10.1.4]}", "ipv4: [10.10.1.3, 10.10.1.4], mtu: 1000}"),
				"{id: 4, type: receive}", `{id: 4, type: receive}`+"\n  - {id: 5, type: interface, port: pod2, dst_mac: \"02:00:0a:0a:01:03\"}", 1)
			return strings.Replace(c, `{vrf: 1, prefix: "fd00:20::/64", next_hop: 9}`, `{vrf: 1, prefix: "fd00:20::/64", next_hop: 5}`, 1)
		}, []string{`routes[5].next_hop: next-hop 5 sends at most 1000 bytes (port "pod2" has MTU 1000): IPv6 needs an MTU of at least 1280 (RFC 8200)`}},
		{"no devargs", func(t *testing.T) string { return sub(t, `devargs: "net_af_packet0,iface=fab1", `, "") },
			[]string{"ports[0].devargs: required"}},
		{"next-hop without id", func(t *testing.T) string { return sub(t, "{id: 4, type: receive}", "{type: receive}") },
			[]string{"next_hops[4].id: required"}},
		{"duplicate next-hop id", func(t *testing.T) string { return sub(t, "{id: 4, type: receive}", "{id: 2, type: receive}") },
			[]string{"next_hops[4].id: 2 is already next_hops[1]"}},
		{"next-hop id out of range", func(t *testing.T) string {
			return sub(t, "{id: 4, type: receive}", "{id: 4, type: receive}\n  - {id: 600000, type: discard}")
		}, []string{"next_hops[5].id: 600000 out of range 0..524287"}},
		{"bad next-hop type", func(t *testing.T) string { return sub(t, "{id: 4, type: receive}", "{id: 4, type: punt}") },
			[]string{`next_hops[4].type: "punt": must be interface, tunnel, ecmp, receive or discard`}},
		{"fields that do not apply", func(t *testing.T) string {
			return sub(t, "{id: 4, type: receive}", "{id: 4, type: receive, port: pod1, vni: 3}")
		}, []string{"next_hops[4].port: does not apply to a receive next-hop", "next_hops[4].vni: does not apply"}},
		{"interface next-hop to an unknown port", func(t *testing.T) string {
			return sub(t, `port: pod1, dst_mac: "02:00:0a:0a:01:02"`, `port: pod9, dst_mac: "zz"`)
		}, []string{`next_hops[0].port: "pod9" is not a port`, `next_hops[0].dst_mac: "zz" is not a MAC address`}},
		{"interface next-hop without MAC", func(t *testing.T) string {
			return sub(t, `port: pod1, dst_mac: "02:00:0a:0a:01:02"`, `port: pod1`)
		}, []string{"next_hops[0].dst_mac: required"}},
		{"tunnel out of a pod port", func(t *testing.T) string {
			return sub(t, "port: fabric, encap: vxlan", "port: pod1, encap: vxlan")
		}, []string{`next_hops[1].port: "pod1" is a pod port: tunnels leave by the fabric port`}},
		{"tunnel encap", func(t *testing.T) string { return sub(t, "encap: vxlan", "encap: gre") },
			[]string{`next_hops[1].encap: "gre": must be vxlan, mplsoudp or mplsogre`}},
		{"mplsogre without a label", func(t *testing.T) string {
			return sub(t, "encap: mplsoudp, tunnel_dst: 192.168.100.3,\n     tunnel_gw: 192.168.100.254, label: 100}",
				"encap: mplsogre, tunnel_dst: 192.168.100.3}")
		}, []string{"next_hops[2].label: required for an mplsogre tunnel"}},
		{"mplsogre with a vni", func(t *testing.T) string {
			return sub(t, "encap: mplsoudp, tunnel_dst: 192.168.100.3,\n     tunnel_gw: 192.168.100.254, label: 100}",
				"encap: mplsogre, tunnel_dst: 192.168.100.3, label: 100, vni: 7}")
		}, []string{"next_hops[2].vni: an mplsogre tunnel takes a label, not a vni"}},
		{"mplsogre label range", func(t *testing.T) string {
			return sub(t, "encap: mplsoudp, tunnel_dst: 192.168.100.3,\n     tunnel_gw: 192.168.100.254, label: 100}",
				"encap: mplsogre, tunnel_dst: 192.168.100.3, label: 1048576}")
		}, []string{"next_hops[2].label: 1048576 out of range 16..1048575"}},
		{"tunnel without destination", func(t *testing.T) string {
			return sub(t, "tunnel_dst: 192.168.100.2, ", "")
		}, []string{"next_hops[1].tunnel_dst: required"}},
		{"vxlan with a label", func(t *testing.T) string { return sub(t, "vni: 100}", "label: 100}") },
			[]string{"next_hops[1].vni: required for a vxlan tunnel", "next_hops[1].label: a vxlan tunnel takes a vni"}},
		{"mplsoudp label range", func(t *testing.T) string {
			return sub(t, "tunnel_gw: 192.168.100.254, label: 100}", "tunnel_gw: 192.168.100.254, label: 3}")
		}, []string{"next_hops[2].label: 3 out of range 16..1048575"}},
		{"VNI range", func(t *testing.T) string { return sub(t, "vni: 100}", "vni: 16777216}") },
			[]string{"next_hops[1].vni: 16777216 out of range 0..16777215"}},
		{"ECMP members", func(t *testing.T) string { return sub(t, "members: [2, 3]", "members: [2, 8, 4, 9]") },
			[]string{"next_hops[3].members[1]: 8 is not defined",
				`next_hops[3].members[2]: next-hop 4 is "receive": members must be interface or tunnel`,
				"next_hops[3].members[3]: a group cannot contain itself"}},
		{"empty ECMP group", func(t *testing.T) string { return sub(t, "members: [2, 3]", "members: []") },
			[]string{"next_hops[3].members: 0 members"}},
		{"route prefix", func(t *testing.T) string { return sub(t, "prefix: 10.10.2.0/24", "prefix: 10.10.2.1/24") },
			[]string{"routes[2].prefix: 10.10.2.1/24 has host bits set (the network is 10.10.2.0/24)"}},
		{"route prefix not a prefix", func(t *testing.T) string { return sub(t, "prefix: 10.10.2.0/24", "prefix: 10.10.2.0/33") },
			[]string{`routes[2].prefix: "10.10.2.0/33" is not an IPv4 or IPv6 prefix`}},
		{"IPv6 route prefixes", func(t *testing.T) string {
			return sub(t, `  - {vrf: 1, prefix: "fd00:20::/64", next_hop: 9}
`, `  - {vrf: 1, prefix: "fd00:20::/64", next_hop: 9}
  - {vrf: 1, prefix: "fd00:30::1/64", next_hop: 1}
  - {vrf: 1, prefix: "fd00:30::/129", next_hop: 1}
  - {vrf: 1, prefix: "fd00:20::/64", next_hop: 1}
  - {vrf: 1, prefix: "fe80::%eth0/64", next_hop: 1}
  - {vrf: 1, prefix: "::ffff:10.0.0.0/104", next_hop: 1}
  - {vrf: 1, next_hop: 1}
`)
		}, []string{"routes[6].prefix: fd00:30::1/64 has host bits set (the network is fd00:30::/64)",
			`routes[7].prefix: "fd00:30::/129" is not an IPv4 or IPv6 prefix`,
			"routes[8].prefix: fd00:20::/64 in VRF 1 is already routes[5]",
			`routes[9].prefix: "fe80::%eth0/64" is not an IPv4 or IPv6 prefix`,
			`routes[10].prefix: "::ffff:10.0.0.0/104" is not an IPv4 or IPv6 prefix`,
			"routes[11].prefix: required"}},
		{"duplicate route", func(t *testing.T) string { return sub(t, "prefix: 10.10.2.0/24", "prefix: 10.10.1.2/32") },
			[]string{"routes[2].prefix: 10.10.1.2/32 in VRF 1 is already routes[0]"}},
		{"route VRF", func(t *testing.T) string {
			return sub(t, "{vrf: 1, prefix: 0.0.0.0/0", "{vrf: 4096, prefix: 0.0.0.0/0")
		},
			[]string{"routes[3].vrf: VRF 4096 out of range 0..4095"}},
		{"VRF beyond tables.vrfs", func(t *testing.T) string { return good + "tables: {vrfs: 1}\n" },
			[]string{"ports[1].vrf: VRF 1 out of range 0..0 (tables.vrfs)", "routes[0].vrf: VRF 1 out of range 0..0",
				"vrfs[0].vrf: VRF 1 out of range 0..0 (tables.vrfs)"}},
		{"too many routes", func(t *testing.T) string { return good + "tables: {fib4_routes: 2}\n" },
			[]string{"routes[2]: more than 2 routes in VRF 1 (tables.fib4_routes)"}},
		{"too many IPv6 routes", func(t *testing.T) string { return good + "tables: {fib6_routes: 1}\n" },
			[]string{"routes[5]: more than 1 routes in VRF 1 (tables.fib6_routes)"}},
		{"VNI and label maps", func(t *testing.T) string {
			return sub(t, "vnis: [{vni: 100, vrf: 1}, {vni: 0, vrf: 2}]\nlabels: [{label: 100, vrf: 1}]",
				"vnis: [{vni: 100, vrf: 1}, {vni: 100, vrf: 2}, {vrf: 1}]\nlabels: [{label: 15, vrf: 1}, {label: 16, vrf: -1}]")
		}, []string{"vnis[1].vni: 100 is already vnis[0]", "vnis[2].vni: required",
			"labels[0].label: 15 out of range 16..1048575", "labels[1].vrf: VRF -1 out of range"}},
		{"neighbours", func(t *testing.T) string {
			return sub(t, `neighbors: [{ip: 192.168.100.254, mac: "02:aa:00:00:00:01"}]`,
				`neighbors: [{ip: 192.168.100.254, mac: "02:aa:00:00:00:01"}, {ip: 192.168.100.254, mac: "00:00:00:00:00:00"}, {mac: "02:aa:00:00:00:01"}]`)
		}, []string{"neighbors[1].ip: 192.168.100.254 is already neighbors[0]", "neighbors[1].mac: 00:00:00:00:00:00: need a unicast MAC",
			"neighbors[2].ip: required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml(t)))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestLoadNamesFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "node.yaml")
	if err := os.WriteFile(f, []byte("ports: [{name: x}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(f)
	if err == nil || !strings.HasPrefix(err.Error(), f+": ") || !strings.Contains(err.Error(), "ports[0].devargs: required") {
		t.Fatalf("err %v", err)
	}
}

// recorder is a fake dataplane that logs calls and fails one on demand.
type recorder struct {
	calls  []string
	failAt string
	nextID fastpath.PortID
}

func (r *recorder) rec(s string) error {
	r.calls = append(r.calls, s)
	if r.failAt != "" && strings.HasPrefix(s, r.failAt) {
		return errors.New("refused")
	}
	return nil
}

func (r *recorder) AddPort(devargs string, pc fastpath.PortConfig) (fastpath.PortID, error) {
	id := r.nextID
	r.nextID++
	return id, r.rec(fmt.Sprintf("port %s %s vrf=%d mac=%s ip=%v ip6=%v", devargs, pc.Kind, pc.VRF, pc.MAC, pc.IPv4, pc.IPv6))
}
func (r *recorder) SetVRFAddress(vrf uint16, addr netip.Addr) error {
	return r.rec(fmt.Sprintf("vrf %d %s", vrf, addr))
}
func (r *recorder) SetVRFAddress6(vrf uint16, addr netip.Addr) error {
	return r.rec(fmt.Sprintf("vrf6 %d %s", vrf, addr))
}
func (r *recorder) SetNeighbor(ip netip.Addr, mac net.HardwareAddr) error {
	return r.rec(fmt.Sprintf("neigh %s %s", ip, mac))
}
func (r *recorder) SetNextHop(id uint32, nh fastpath.NextHop) error {
	s := fmt.Sprintf("nh %d type=%d port=%d", id, nh.Type, nh.Port)
	switch nh.Type {
	case fastpath.NHIface:
		s += " dst=" + nh.DstMAC.String()
	case fastpath.NHTunnel:
		s += fmt.Sprintf(" encap=%d dst=%s gw=%v vni=%d", nh.Encap, nh.TunnelDst, nh.TunnelGW, nh.VNI)
	case fastpath.NHECMP:
		s += fmt.Sprintf(" members=%v", nh.Members)
	}
	return r.rec(s)
}
func (r *recorder) AddRoute4(vrf uint16, p netip.Prefix, nh uint32) error {
	return r.rec(fmt.Sprintf("route %d %s %d", vrf, p, nh))
}
func (r *recorder) AddRoute6(vrf uint16, p netip.Prefix, nh uint32) error {
	return r.rec(fmt.Sprintf("route6 %d %s %d", vrf, p, nh))
}
func (r *recorder) SetVNI(vni uint32, vrf uint16) error {
	return r.rec(fmt.Sprintf("vni %d %d", vni, vrf))
}
func (r *recorder) SetLabel(label uint32, vrf uint16) error {
	return r.rec(fmt.Sprintf("label %d %d", label, vrf))
}

func TestApplyOrder(t *testing.T) {
	c, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{nextID: 3}
	ports, err := c.Apply(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"port net_af_packet0,iface=fab1 fabric vrf=0 mac= ip=[192.168.100.1] ip6=[]",
		"port net_af_packet1,iface=p1h pod vrf=1 mac=02:00:0a:0a:01:02 ip=[10.10.1.2] ip6=[fd00:10::2]",
		"port net_af_packet2,iface=p2h pod vrf=1 mac=02:00:0a:0a:01:03 ip=[10.10.1.3 10.10.1.4] ip6=[]",
		"vrf 1 10.10.1.1", // VRF addresses right after the ports
		"vrf6 1 fd00:10::1",
		"vrf 2 10.20.0.1", // no address6: no IPv6 call
		"neigh 192.168.100.254 02:aa:00:00:00:01",
		"nh 1 type=2 port=4 dst=02:00:0a:0a:01:02",
		"nh 2 type=3 port=3 encap=0 dst=192.168.100.2 gw=invalid IP vni=100",
		"nh 3 type=3 port=3 encap=1 dst=192.168.100.3 gw=192.168.100.254 vni=100",
		"nh 4 type=1 port=0",
		"nh 0 type=0 port=0",
		"nh 9 type=4 port=0 members=[2 3]", // groups after their members
		"route 1 10.10.1.2/32 1",
		"route 1 10.10.1.1/32 4",
		"route 1 10.10.2.0/24 9",
		"route 1 0.0.0.0/0 0",
		"route6 1 fd00:10::2/128 1",
		"route6 1 fd00:20::/64 9",
		"vni 100 1",
		"vni 0 2",
		"label 100 1",
	}
	if !reflect.DeepEqual(r.calls, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(r.calls, "\n"), strings.Join(want, "\n"))
	}
	wantPorts := []AppliedPort{{"fabric", fastpath.PortFabric, 3}, {"pod1", fastpath.PortPod, 4}, {"pod2", fastpath.PortPod, 5}}
	if !reflect.DeepEqual(ports, wantPorts) {
		t.Errorf("ports %+v, want %+v", ports, wantPorts)
	}
}

func TestApplyErrors(t *testing.T) {
	c, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ failAt, want string }{
		{"port net_af_packet1", "ports[1] (pod1): refused"},
		{"vrf 2", "vrfs[1]: refused"},
		{"vrf6 1", "vrfs[0]: refused"},
		{"neigh", "neighbors[0]: refused"},
		{"nh 3", "next_hops[2]: refused"},
		{"nh 9", "next_hops[3]: refused"},
		{"route 1 10.10.2.0/24", "routes[2]: refused"},
		{"route6 1 fd00:20::/64", "routes[5]: refused"},
		{"vni 0", "vnis[1]: refused"},
		{"label", "labels[0]: refused"},
	} {
		r := &recorder{failAt: tc.failAt}
		ports, err := c.Apply(context.Background(), r)
		if err == nil || err.Error() != tc.want {
			t.Errorf("fail at %q: err %v, want %q", tc.failAt, err, tc.want)
		}
		if strings.HasPrefix(tc.failAt, "port") && len(ports) != 1 {
			t.Errorf("fail at %q: ports %v, want the one added before", tc.failAt, ports)
		}
		if last := r.calls[len(r.calls)-1]; !strings.HasPrefix(last, tc.failAt) {
			t.Errorf("fail at %q: went on after the error to %q", tc.failAt, last)
		}
	}

	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("SIGTERM"))
	r := &recorder{}
	if _, err := c.Apply(ctx, r); err == nil || err.Error() != "ports[0] (fabric): SIGTERM" || len(r.calls) != 0 {
		t.Errorf("cancelled: err %v, calls %v", err, r.calls)
	}

	bad := &Config{}
	if _, err := bad.Apply(context.Background(), &recorder{}); err == nil {
		t.Error("Apply of an invalid config: no error")
	}
}
