package netparse

import (
	"strings"
	"testing"
)

func TestParsers(t *testing.T) {
	for _, c := range []struct {
		name string
		f    func(string) error
		in   string
		err  string // "" = valid
	}{
		{"mac", func(s string) error { _, err := MAC(s); return err }, "02:00:00:00:00:01", ""},
		{"mac", func(s string) error { _, err := MAC(s); return err }, "zz", `"zz" is not a MAC address`},
		{"mac 8 bytes", func(s string) error { _, err := MAC(s); return err }, "02:00:00:00:00:00:00:01", "is not a MAC address"},
		{"unicast", func(s string) error { _, err := UnicastMAC(s); return err }, "01:00:5e:00:00:01", "multicast"},
		{"unicast zero", func(s string) error { _, err := UnicastMAC(s); return err }, "00:00:00:00:00:00", "not zero"},
		{"ipv4", func(s string) error { _, err := IPv4(s); return err }, "fd00::1", "not an IPv4 address"},
		{"host", func(s string) error { _, err := HostIPv4(s); return err }, "10.0.0.1", ""},
		{"host multicast", func(s string) error { _, err := HostIPv4(s); return err }, "224.0.0.1", "cannot be a host's address"},
		{"host broadcast", func(s string) error { _, err := HostIPv4(s); return err }, "255.255.255.255", "cannot be a host's address"},
		{"prefix", func(s string) error { _, err := Prefix4(s); return err }, "10.1.0.0/24", ""},
		{"prefix host bits", func(s string) error { _, err := Prefix4(s); return err }, "10.1.0.1/24", "host bits set (the network is 10.1.0.0/24)"},
		{"prefix empty", func(s string) error { _, err := Prefix4(s); return err }, "", "required"},
		{"prefix v6", func(s string) error { _, err := Prefix4(s); return err }, "fd00::/64", "not an IPv4 prefix"},
		{"host6", func(s string) error { _, err := HostIPv6(s); return err }, "fd00::1", ""},
		{"host6 v4", func(s string) error { _, err := HostIPv6(s); return err }, "10.0.0.1", "not an IPv6 address"},
		{"host6 mapped", func(s string) error { _, err := HostIPv6(s); return err }, "::ffff:10.0.0.1", "not an IPv6 address"},
		{"host6 link-local", func(s string) error { _, err := HostIPv6(s); return err }, "fe80::1", "cannot be a host's address"},
		{"host6 multicast", func(s string) error { _, err := HostIPv6(s); return err }, "ff02::1", "cannot be a host's address"},
		{"host6 unspecified", func(s string) error { _, err := HostIPv6(s); return err }, "::", "cannot be a host's address"},
		{"host either", func(s string) error { _, err := HostIP(s); return err }, "2001:db8::1", ""},
		{"host either v4", func(s string) error { _, err := HostIP(s); return err }, "224.0.0.1", "cannot be a host's address"},
		{"prefix either", func(s string) error { _, err := Prefix(s); return err }, "fd00:1::/64", ""},
		{"prefix either v4", func(s string) error { _, err := Prefix(s); return err }, "0.0.0.0/0", ""},
		{"prefix either host bits", func(s string) error { _, err := Prefix(s); return err }, "fd00::1/64", "host bits set (the network is fd00::/64)"},
		{"prefix either zone", func(s string) error { _, err := Prefix(s); return err }, "fe80::%eth0/64", "not an IPv4 or IPv6 prefix"},
	} {
		err := c.f(c.in)
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s %q: %v, want %q", c.name, c.in, err, c.err)
		}
	}
}
