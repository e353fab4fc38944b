package netconfig

import (
	"flag"
	"strings"
	"testing"
)

func parse(t *testing.T, args ...string) (*Config, error) {
	t.Helper()
	var c Config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return &c, c.Validate()
}

func TestDefaults(t *testing.T) {
	c, err := parse(t)
	if err != nil {
		t.Fatal(err)
	}
	d := c.DefaultNetwork()
	if len(d.Subnets) != 1 || d.Subnets[0].CIDR != "10.244.0.0/16" || d.Subnets[0].Gateway != "10.244.0.1" || d.VNI != 1 || d.Encapsulation != "vxlan" {
		t.Errorf("default network %+v", d)
	}
	iso, ok := c.IsolatedNetwork("team-a", 3)
	if !ok || iso.Subnets[0].CIDR != "10.128.3.0/24" || iso.VNI != 4099 || iso.Namespace != "team-a" || iso.Isolation != "Namespace" {
		t.Errorf("isolated network 3: %+v %v", iso, ok)
	}
	if _, ok := c.IsolatedNetwork("x", 4096); ok {
		t.Error("the 4097th /24 of a /12 was handed out")
	}
}

func TestDualStack(t *testing.T) {
	c, err := parse(t, "--pod-subnet-v6", "fd00:244::/64", "--isolated-pool-v6", "fd00:100::/48", "--isolated-pool-v4", "")
	if err != nil {
		t.Fatal(err)
	}
	if d := c.DefaultNetwork(); len(d.Subnets) != 2 || d.Subnets[1].Gateway != "fd00:244::1" {
		t.Errorf("default network %+v", d)
	}
	iso, ok := c.IsolatedNetwork("b", 258)
	if !ok || len(iso.Subnets) != 1 || iso.Subnets[0].CIDR != "fd00:100:0:102::/64" {
		t.Errorf("isolated network 258: %+v", iso)
	}
}

func TestRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--pod-subnet-v4", "10.244.0.1/16"}, "--pod-subnet-v4"},
		{[]string{"--pod-subnet-v4", "fd00::/64"}, "--pod-subnet-v4"},
		{[]string{"--pod-subnet-v4", "10.0.0.0/31"}, "--pod-subnet-v4"},
		{[]string{"--pod-subnet-v6", "banana"}, "--pod-subnet-v6"},
		{[]string{"--pod-subnet-v4", ""}, "--pod-subnet-v4"},
		{[]string{"--pod-vni", "0"}, "--pod-vni"},
		{[]string{"--pod-vni", "16777216"}, "--pod-vni"},
		{[]string{"--pod-encapsulation", "gre"}, "--pod-encapsulation"},
		{[]string{"--pod-encapsulation", "mplsoudp", "--pod-label", "3"}, "--pod-label"},
		{[]string{"--isolated-pool-v4", "10.244.128.0/20"}, "--isolated-pool-v4"},
		{[]string{"--isolated-prefix-v4", "8"}, "--isolated-prefix-v4"},
		{[]string{"--isolated-vni-base", "0"}, "--isolated-vni-base"},
		{[]string{"--isolated-vni-base", "100", "--isolated-vni-max", "50"}, "--isolated-vni-max"},
		{[]string{"--pod-vni", "5000"}, "--isolated-vni-base"},
		{[]string{"--pod-network", ""}, "--pod-network"},
	} {
		_, err := parse(t, tc.args...)
		if err == nil || !strings.HasPrefix(err.Error(), tc.flag) {
			t.Errorf("%v: error %v, want one naming %s", tc.args, err, tc.flag)
		}
	}
}
