package kubesource

import (
	"net/netip"
	"testing"

	"github.com/filament-net/filament/agent/config"
	"github.com/filament-net/filament/kubemanager/apis/v1alpha1"
)

func TestNetwork(t *testing.T) {
	vn := &v1alpha1.VirtualNetwork{Spec: v1alpha1.VirtualNetworkSpec{VNI: 7, Subnets: []v1alpha1.Subnet{
		{CIDR: "fd00:30::/64"}, {CIDR: "10.30.0.0/16", Gateway: "10.30.0.254"}, {CIDR: "10.31.0.0/16"}}}}
	vn.Name = "red"
	nw, err := Network(vn)
	if err != nil {
		t.Fatal(err)
	}
	want := config.Network{Name: "red", VNI: 7, Encap: config.EncapVXLAN,
		Subnet: netip.MustParsePrefix("10.30.0.0/16"), Gateway: netip.MustParseAddr("10.30.0.254"),
		Subnet6: netip.MustParsePrefix("fd00:30::/64"), Gateway6: netip.MustParseAddr("fd00:30::1")}
	if nw.Name != want.Name || nw.VNI != want.VNI || nw.Encap != want.Encap || nw.Subnet != want.Subnet ||
		nw.Gateway != want.Gateway || nw.Subnet6 != want.Subnet6 || nw.Gateway6 != want.Gateway6 || nw.VRF != 0 {
		t.Errorf("Network = %+v, want %+v", nw, want)
	}
	vn.Spec.Subnets = []v1alpha1.Subnet{{CIDR: "fd00:30::/64"}}
	if _, err := Network(vn); err == nil {
		t.Error("IPv6-only VirtualNetwork: want an error (the agent's networks have IPv4)")
	}
}
