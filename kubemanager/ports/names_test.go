package ports

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestPortName(t *testing.T) {
	if got := PortName("web-0"); got != "web-0-eth0" {
		t.Errorf("PortName(web-0) = %s", got)
	}
	long := strings.Repeat("a", 253)
	other := strings.Repeat("a", 252) + "b"
	n1, n2 := PortName(long), PortName(other)
	if len(n1) != 253 || len(n2) != 253 || n1 == n2 || !strings.HasSuffix(n1, "-eth0") {
		t.Errorf("long names: %d %d, distinct %v: %s", len(n1), len(n2), n1 != n2, n1)
	}
}

func TestMAC(t *testing.T) {
	for addr, want := range map[string]string{
		"10.244.0.5":         "02:fe:0a:f4:00:05",
		"fd00:244::1:203":    "02:fe:00:01:02:03",
		"10.255.255.254":     "02:fe:0a:ff:ff:fe",
		"fd00::ffff:ffff:fe": "02:fe:ff:ff:00:fe",
	} {
		if got := MAC(netip.MustParseAddr(addr)); got != want {
			t.Errorf("MAC(%s) = %s, want %s", addr, got, want)
		}
	}
}

func TestWanted(t *testing.T) {
	for _, tc := range []struct {
		spec corev1.PodSpec
		want bool
	}{
		{corev1.PodSpec{NodeName: "n"}, true},
		{corev1.PodSpec{}, false},
		{corev1.PodSpec{NodeName: "n", HostNetwork: true}, false},
	} {
		if got := Wanted(&corev1.Pod{Spec: tc.spec}); got != tc.want {
			t.Errorf("Wanted(%+v) = %v", tc.spec, got)
		}
	}
}
