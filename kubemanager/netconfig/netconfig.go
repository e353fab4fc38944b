// Package netconfig is kube-manager's network configuration: the cluster's
// default pod network and the pool that isolated namespaces' networks are
// carved from. Flags bind to a Config; Validate refuses a bad value and
// names the flag it came from.
package netconfig

import (
	"flag"
	"fmt"
	"net/netip"

	"github.com/filament-net/filament/kubemanager/apis/v1alpha1"
)

// IsolatedAnnotation on a Namespace, value "true", gives its pods a
// VirtualNetwork of their own (Tungsten Fabric's isolated namespaces).
const IsolatedAnnotation = "filament.dev/isolated"

// IsolatedNetworkPrefix + the namespace's name is its network's name.
const IsolatedNetworkPrefix = "ns-"

// Config is what the flags say.
type Config struct {
	// The default pod network.
	Name          string
	SubnetV4      string
	SubnetV6      string
	Encapsulation string
	VNI           uint
	Label         uint

	// Isolated namespaces: subnets of IsolatedPrefixV4 (V6) bits carved
	// from the pools, VNIs (labels) counted up from the bases.
	IsolatedPoolV4   string
	IsolatedPrefixV4 int
	IsolatedPoolV6   string
	IsolatedPrefixV6 int
	IsolatedVNIBase  uint
	IsolatedVNIMax   uint

	// Parsed by Validate.
	V4, V6                 netip.Prefix
	PoolV4, PoolV6         netip.Prefix
	hasV4, hasV6, poolV6ok bool
}

// RegisterFlags binds c to flags in fs with sane defaults: IPv4 only,
// 10.244.0.0/16, VXLAN VNI 1; isolated namespaces get /24s of
// 10.128.0.0/12 and VNIs from 4096.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Name, "pod-network", "default", "name of the cluster's default pod VirtualNetwork")
	fs.StringVar(&c.SubnetV4, "pod-subnet-v4", "10.244.0.0/16", "IPv4 prefix of the default pod network (empty: none)")
	fs.StringVar(&c.SubnetV6, "pod-subnet-v6", "", "IPv6 prefix of the default pod network (empty: none), e.g. fd00:244::/64")
	fs.StringVar(&c.Encapsulation, "pod-encapsulation", v1alpha1.EncapVXLAN, "encapsulation of the pod networks: vxlan, mplsoudp or mplsogre")
	fs.UintVar(&c.VNI, "pod-vni", 1, "VXLAN VNI of the default pod network (1..16777215)")
	fs.UintVar(&c.Label, "pod-label", 16, "MPLS label of the default pod network (16..1048575), with the MPLS encapsulations")
	fs.StringVar(&c.IsolatedPoolV4, "isolated-pool-v4", "10.128.0.0/12", "IPv4 pool that isolated namespaces' subnets are carved from (empty: none)")
	fs.IntVar(&c.IsolatedPrefixV4, "isolated-prefix-v4", 24, "prefix length of an isolated namespace's IPv4 subnet")
	fs.StringVar(&c.IsolatedPoolV6, "isolated-pool-v6", "", "IPv6 pool that isolated namespaces' subnets are carved from (empty: none)")
	fs.IntVar(&c.IsolatedPrefixV6, "isolated-prefix-v6", 64, "prefix length of an isolated namespace's IPv6 subnet")
	fs.UintVar(&c.IsolatedVNIBase, "isolated-vni-base", 4096, "first VNI (or MPLS label) of isolated namespaces' networks")
	fs.UintVar(&c.IsolatedVNIMax, "isolated-vni-max", 1048575, "last VNI (or MPLS label) of isolated namespaces' networks")
}

// Validate parses the prefixes and checks every value, naming the flag of
// the first bad one.
func (c *Config) Validate() error {
	var err error
	if c.Name == "" || len(c.Name) > 200 {
		return fmt.Errorf("--pod-network %q: want a name of 1 to 200 characters", c.Name)
	}
	if c.V4, c.hasV4, err = subnet("--pod-subnet-v4", c.SubnetV4, true, 30); err != nil {
		return err
	}
	if c.V6, c.hasV6, err = subnet("--pod-subnet-v6", c.SubnetV6, false, 126); err != nil {
		return err
	}
	if !c.hasV4 && !c.hasV6 {
		return fmt.Errorf("--pod-subnet-v4 and --pod-subnet-v6 are both empty: the pod network needs a subnet")
	}
	switch c.Encapsulation {
	case v1alpha1.EncapVXLAN:
		if c.VNI < 1 || c.VNI > 16777215 {
			return fmt.Errorf("--pod-vni %d: want 1..16777215", c.VNI)
		}
	case v1alpha1.EncapMPLSoUDP, v1alpha1.EncapMPLSoGRE:
		if c.Label < 16 || c.Label > 1048575 {
			return fmt.Errorf("--pod-label %d: want 16..1048575", c.Label)
		}
	default:
		return fmt.Errorf("--pod-encapsulation %q: want vxlan, mplsoudp or mplsogre", c.Encapsulation)
	}
	var hasPool bool
	if c.PoolV4, hasPool, err = subnet("--isolated-pool-v4", c.IsolatedPoolV4, true, 30); err != nil {
		return err
	}
	if hasPool && (c.IsolatedPrefixV4 < c.PoolV4.Bits() || c.IsolatedPrefixV4 > 30) {
		return fmt.Errorf("--isolated-prefix-v4 %d: want %d..30 (inside --isolated-pool-v4 %s)", c.IsolatedPrefixV4, c.PoolV4.Bits(), c.PoolV4)
	}
	if hasPool && c.hasV4 && c.PoolV4.Overlaps(c.V4) {
		return fmt.Errorf("--isolated-pool-v4 %s overlaps --pod-subnet-v4 %s", c.PoolV4, c.V4)
	}
	if c.PoolV6, c.poolV6ok, err = subnet("--isolated-pool-v6", c.IsolatedPoolV6, false, 126); err != nil {
		return err
	}
	if c.poolV6ok && (c.IsolatedPrefixV6 < c.PoolV6.Bits() || c.IsolatedPrefixV6 > 126) {
		return fmt.Errorf("--isolated-prefix-v6 %d: want %d..126 (inside --isolated-pool-v6 %s)", c.IsolatedPrefixV6, c.PoolV6.Bits(), c.PoolV6)
	}
	if c.poolV6ok && c.hasV6 && c.PoolV6.Overlaps(c.V6) {
		return fmt.Errorf("--isolated-pool-v6 %s overlaps --pod-subnet-v6 %s", c.PoolV6, c.V6)
	}
	maxID := uint(16777215)
	if c.Encapsulation != v1alpha1.EncapVXLAN {
		maxID = 1048575
	}
	if c.IsolatedVNIBase < 16 || c.IsolatedVNIBase > maxID {
		return fmt.Errorf("--isolated-vni-base %d: want 16..%d", c.IsolatedVNIBase, maxID)
	}
	if c.IsolatedVNIMax < c.IsolatedVNIBase || c.IsolatedVNIMax > maxID {
		return fmt.Errorf("--isolated-vni-max %d: want %d..%d", c.IsolatedVNIMax, c.IsolatedVNIBase, maxID)
	}
	defID := c.VNI
	if c.Encapsulation != v1alpha1.EncapVXLAN {
		defID = c.Label
	}
	if defID >= c.IsolatedVNIBase && defID <= c.IsolatedVNIMax {
		return fmt.Errorf("--isolated-vni-base %d..--isolated-vni-max %d holds the default network's VNI or label %d", c.IsolatedVNIBase, c.IsolatedVNIMax, defID)
	}
	return nil
}

// subnet parses an optional prefix of one family, without host bits and no
// longer than maxBits.
func subnet(flagName, s string, v4 bool, maxBits int) (netip.Prefix, bool, error) {
	if s == "" {
		return netip.Prefix{}, false, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, false, fmt.Errorf("%s %q: %w", flagName, s, err)
	}
	if p.Addr().Is4() != v4 || p.Addr().Is4In6() {
		return p, false, fmt.Errorf("%s %q: not an IPv%s prefix", flagName, s, map[bool]string{true: "4", false: "6"}[v4])
	}
	if p.Masked() != p {
		return p, false, fmt.Errorf("%s %q: host bits set (want %s)", flagName, s, p.Masked())
	}
	if p.Bits() > maxBits {
		return p, false, fmt.Errorf("%s %q: too small, at most /%d", flagName, s, maxBits)
	}
	return p, true, nil
}

// DefaultNetwork is the default pod network's spec.
func (c *Config) DefaultNetwork() v1alpha1.VirtualNetworkSpec {
	var subs []v1alpha1.Subnet
	if c.hasV4 {
		subs = append(subs, SubnetWithGateway(c.V4))
	}
	if c.hasV6 {
		subs = append(subs, SubnetWithGateway(c.V6))
	}
	spec := v1alpha1.VirtualNetworkSpec{Subnets: subs, Encapsulation: c.Encapsulation, Isolation: v1alpha1.IsolationShared}
	c.setID(&spec, c.VNI, c.Label)
	return spec
}

// IsolatedNetwork is the spec of namespace ns's network with the i-th
// subnet(s) of the pools and the i-th identifier; ok is false when the
// pools or the identifiers are used up.
func (c *Config) IsolatedNetwork(ns string, i int) (spec v1alpha1.VirtualNetworkSpec, ok bool) {
	if i < 0 || uint(i) > c.IsolatedVNIMax-c.IsolatedVNIBase {
		return spec, false
	}
	var subs []v1alpha1.Subnet
	if c.IsolatedPoolV4 != "" {
		p, ok := nthSubnet(c.PoolV4, c.IsolatedPrefixV4, i)
		if !ok {
			return spec, false
		}
		subs = append(subs, SubnetWithGateway(p))
	}
	if c.poolV6ok {
		p, ok := nthSubnet(c.PoolV6, c.IsolatedPrefixV6, i)
		if !ok {
			return spec, false
		}
		subs = append(subs, SubnetWithGateway(p))
	}
	if len(subs) == 0 {
		return spec, false
	}
	spec = v1alpha1.VirtualNetworkSpec{Subnets: subs, Encapsulation: c.Encapsulation,
		Isolation: v1alpha1.IsolationNamespace, Namespace: ns}
	id := uint32(c.IsolatedVNIBase) + uint32(i)
	c.setID(&spec, uint(id), uint(id))
	return spec, true
}

func (c *Config) setID(spec *v1alpha1.VirtualNetworkSpec, vni, label uint) {
	if c.Encapsulation == v1alpha1.EncapVXLAN {
		spec.VNI = uint32(vni)
	} else {
		spec.Label = uint32(label)
	}
}

// SubnetWithGateway gives p its first host address as the gateway.
func SubnetWithGateway(p netip.Prefix) v1alpha1.Subnet {
	return v1alpha1.Subnet{CIDR: p.String(), Gateway: p.Addr().Next().String()}
}

// nthSubnet is the i-th prefix of length bits inside pool.
func nthSubnet(pool netip.Prefix, bits, i int) (netip.Prefix, bool) {
	shift := bits - pool.Bits()
	if shift < 63 && uint64(i) >= uint64(1)<<shift {
		return netip.Prefix{}, false
	}
	a := pool.Addr().As16()
	v := addShifted(a[:], uint64(i), pool.Addr().BitLen()-bits)
	addr := netip.AddrFrom16(v)
	if pool.Addr().Is4() {
		addr = netip.AddrFrom4([4]byte(v[12:]))
	}
	return netip.PrefixFrom(addr, bits), true
}

// addShifted returns b (a 16-byte big-endian number) + n << shift.
func addShifted(b []byte, n uint64, shift int) [16]byte {
	var out [16]byte
	copy(out[:], b)
	// n << shift as a 128-bit number, added from the least significant byte
	var add [16]byte
	for bit := 0; bit < 64; bit++ {
		if n&(1<<bit) == 0 {
			continue
		}
		pos := bit + shift // bit position from the least significant
		if pos >= 128 {
			continue
		}
		add[15-pos/8] |= 1 << (pos % 8)
	}
	carry := 0
	for k := 15; k >= 0; k-- {
		s := int(out[k]) + int(add[k]) + carry
		out[k], carry = byte(s), s>>8
	}
	return out
}
