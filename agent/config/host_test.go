package config

import (
	"strings"
	"testing"
)

func TestHost(t *testing.T) {
	c, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Host.Enabled() {
		t.Errorf("host port on without a host section: %+v", c.Host)
	}
	c, err = Parse([]byte(good + "host: {interface: vhost0, prefix_len: 24, gateway: 192.168.100.254}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Host.Enabled() || c.Underlay().String() != "192.168.100.1/24" || c.Host.Gateway.String() != "192.168.100.254" {
		t.Errorf("%+v", c.Host)
	}
}

func TestHostBad(t *testing.T) {
	blue := "  - name: blue\n    vrf: 2\n    vni: 200\n    subnet: 10.20.128.0/17\n    gateway: 10.20.128.1\n    pod_block: 10.20.129.0/24\npeers:\n"
	for _, tc := range []struct{ host, from, to, want string }{
		{"host: {interface: vhost0}", "", "", "host.prefix_len: 0: want 1..32"},
		{"host: {prefix_len: 24}", "", "", "host.interface: required with host.prefix_len"},
		{"host: {interface: vhost0-too-long-name, prefix_len: 24}", "", "", `host.interface: "vhost0-too-long-name"`},
		{"host: {interface: vhost0, prefix_len: 24, gateway: 192.168.1.1}", "", "", "host.gateway: 192.168.1.1: want another address of the underlay subnet 192.168.100.0/24"},
		{"host: {interface: vhost0, prefix_len: 24, gateway: nope}", "", "", `host.gateway: "nope" is not an IPv4 address`},
		{"host: {interface: vhost0, prefix_len: 24}", "peers:\n", blue, "networks[1].subnet: 10.20.128.0/17 overlaps networks[0]'s 10.20.0.0/16"},
		{"host: {interface: vhost0, prefix_len: 24}", "underlay_ip: 192.168.100.2", "underlay_ip: 10.20.200.2",
			"peers[0].underlay_ip: 10.20.200.2 is inside networks[0]'s subnet 10.20.0.0/16"},
	} {
		cfg := good + tc.host + "\n"
		if tc.from != "" {
			if !strings.Contains(cfg, tc.from) {
				t.Fatalf("%q not in the config", tc.from)
			}
			cfg = strings.Replace(cfg, tc.from, tc.to, 1)
		}
		_, err := Parse([]byte(cfg))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s (%q -> %q): error %v, want %q", tc.host, tc.from, tc.to, err, tc.want)
		}
	}
	// The same overlaps are fine without a host port.
	cfg := strings.Replace(good, "underlay_ip: 192.168.100.2", "underlay_ip: 10.20.200.2", 1)
	if _, err := Parse([]byte(cfg)); err != nil {
		t.Errorf("without a host port: %v", err)
	}
}

// An IPv6 host port: opt-in with host.prefix_len6, which needs the IPv6
// underlay address.
func TestHostIPv6(t *testing.T) {
	dualHost := strings.Replace(dual, `fabric: {underlay_ip: 192.168.100.1, underlay_ipv6: "fd00:100::1"}`,
		`fabric: {underlay_ip: 192.168.100.1, underlay_ipv6: "fd00:100::1"}
host: {interface: vhost0, prefix_len: 24, prefix_len6: 64}`, 1)
	c, err := Parse([]byte(dualHost))
	if err != nil {
		t.Fatal(err)
	}
	if c.Underlay6().String() != "fd00:100::1/64" {
		t.Errorf("Underlay6 %v", c.Underlay6())
	}
	// Without prefix_len6 the host port stays IPv4.
	c, err = Parse([]byte(strings.Replace(dualHost, ", prefix_len6: 64", "", 1)))
	if err != nil || c.Underlay6().IsValid() {
		t.Errorf("without prefix_len6: %v %v", c.Underlay6(), err)
	}
	for _, tc := range []struct{ from, to, want string }{
		{"prefix_len6: 64", "prefix_len6: 129", "host.prefix_len6: 129: want 1..128"},
		{`, underlay_ipv6: "fd00:100::1"}`, "}", "host.prefix_len6: needs fabric.underlay_ipv6"},
		{"interface: vhost0, prefix_len: 24, ", "", "host.interface: required with host.prefix_len, host.gateway or host.prefix_len6"},
	} {
		_, err := Parse([]byte(strings.Replace(dualHost, tc.from, tc.to, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q -> %q: %v, want %q", tc.from, tc.to, err, tc.want)
		}
	}
}
