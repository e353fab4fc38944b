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
