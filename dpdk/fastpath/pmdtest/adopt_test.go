package pmdtest

import (
	"net"
	"strings"
	"testing"

	"github.com/filament-net/filament/dpdk/fastpath"
)

// ealDevice is a device EAL probes at start (main_test.go's --vdev), as a PCI
// NIC given with -a is: a port naming it takes it over.
const ealDevice = "net_null_eal0"

// TestPortTakesOverEALDevice: a port on a device EAL probed at start,
// which is how PCI NICs (-a) reach the dataplane. Its arguments belong
// to EAL: a port that repeats them is refused, not silently half-applied.
// Deleted, the device is released, and a new port probes it again.
func TestPortTakesOverEALDevice(t *testing.T) {
	pc := fastpath.PortConfig{Kind: fastpath.PortPod, VRF: 1, MAC: net.HardwareAddr{0x02, 0, 0, 0xad, 0x0b, 0x01}}
	if _, err := dp.AddPort(ealDevice+",size=128", pc); err == nil || !strings.Contains(err.Error(), "give its arguments there") {
		t.Fatalf("port with arguments on an EAL device: %v, want refused", err)
	}
	id, err := dp.AddPort(ealDevice, pc)
	if err != nil {
		t.Fatalf("port on the EAL device: %v", err)
	}
	if _, err := dp.AddPort(ealDevice, pc); err == nil || !strings.Contains(err.Error(), "already a port") {
		t.Fatalf("second port on the device: %v, want already a port", err)
	}
	if err := dp.DelPort(id); err != nil {
		t.Fatal(err)
	}
	id, err = dp.AddPort(ealDevice, pc)
	if err != nil {
		t.Fatalf("port on the released device, probed again: %v", err)
	}
	if err := dp.DelPort(id); err != nil {
		t.Fatal(err)
	}
}
