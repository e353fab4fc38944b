package plugin

import (
	"fmt"
	"io"
	"net"
	"net/netip"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/filament-net/filament/agent/cniapi"
)

// ToCNIResult turns the agent's result into a CNI 1.1.0 result; it refuses
// one that is not self-consistent (an IP naming no interface, a missing
// address), which would only confuse the runtime.
func ToCNIResult(r *cniapi.Result) (*current.Result, error) {
	if r == nil {
		return nil, fmt.Errorf("no result")
	}
	out := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	for _, in := range r.Interfaces {
		if in.Name == "" {
			return nil, fmt.Errorf("an interface has no name")
		}
		out.Interfaces = append(out.Interfaces, &current.Interface{
			Name: in.Name, Mac: in.MAC, Mtu: in.MTU, Sandbox: in.Sandbox, SocketPath: in.SocketPath,
		})
	}
	for i, ip := range r.IPs {
		if !ip.Address.IsValid() {
			return nil, fmt.Errorf("ips[%d]: no address", i)
		}
		c := &current.IPConfig{Address: ipNet(ip.Address, false), Gateway: netIP(ip.Gateway)}
		switch {
		case ip.Interface >= 0 && ip.Interface < len(r.Interfaces):
			c.Interface = current.Int(ip.Interface)
		case ip.Interface == -1:
		default:
			return nil, fmt.Errorf("ips[%d]: interface %d out of range (%d interfaces)", i, ip.Interface, len(r.Interfaces))
		}
		out.IPs = append(out.IPs, c)
	}
	for i, rt := range r.Routes {
		if !rt.Dst.IsValid() {
			return nil, fmt.Errorf("routes[%d]: no destination", i)
		}
		out.Routes = append(out.Routes, &types.Route{Dst: ipNet(rt.Dst, true), GW: netIP(rt.GW)})
	}
	return out, nil
}

// PrintResult writes res to w as the CNI version the runtime asked for
// (CNI 0.3.x/0.4.0 results lose what they cannot carry: interface MTU and
// socket path).
func PrintResult(w io.Writer, res *current.Result, cniVersion string) error {
	r, err := res.GetAsVersion(cniVersion)
	if err != nil {
		return types.NewError(types.ErrIncompatibleCNIVersion, "cannot convert the result", err.Error())
	}
	if err := r.PrintTo(w); err != nil {
		return types.NewError(types.ErrIOFailure, "cannot write the result", err.Error())
	}
	return nil
}

// FromCNIResult turns a CNI result of any version (CHECK's prevResult) into
// the agent's terms.
func FromCNIResult(r types.Result) (*cniapi.Result, error) {
	res, err := current.NewResultFromResult(r)
	if err != nil {
		return nil, err
	}
	out := &cniapi.Result{Interfaces: []cniapi.Interface{}, IPs: []cniapi.IP{}}
	for _, in := range res.Interfaces {
		if in == nil {
			continue
		}
		out.Interfaces = append(out.Interfaces, cniapi.Interface{
			Name: in.Name, MAC: in.Mac, MTU: in.Mtu, Sandbox: in.Sandbox, SocketPath: in.SocketPath,
		})
	}
	for i, ip := range res.IPs {
		if ip == nil {
			continue
		}
		p, ok := prefix(ip.Address)
		if !ok {
			return nil, fmt.Errorf("ips[%d]: bad address %v", i, ip.Address)
		}
		c := cniapi.IP{Interface: -1, Address: p, Gateway: addr(ip.Gateway)}
		if ip.Interface != nil {
			c.Interface = *ip.Interface
		}
		out.IPs = append(out.IPs, c)
	}
	for i, rt := range res.Routes {
		if rt == nil {
			continue
		}
		p, ok := prefix(rt.Dst)
		if !ok {
			return nil, fmt.Errorf("routes[%d]: bad destination %v", i, rt.Dst)
		}
		out.Routes = append(out.Routes, cniapi.Route{Dst: p, GW: addr(rt.GW)})
	}
	return out, nil
}

func ipNet(p netip.Prefix, masked bool) net.IPNet {
	if masked {
		p = p.Masked()
	}
	return net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func netIP(a netip.Addr) net.IP {
	if !a.IsValid() {
		return nil
	}
	return net.IP(a.AsSlice())
}

func prefix(n net.IPNet) (netip.Prefix, bool) {
	ones, bits := n.Mask.Size()
	if bits == 0 {
		return netip.Prefix{}, false
	}
	ip := n.IP
	if bits == 32 {
		ip = ip.To4()
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok || a.BitLen() != bits {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones), true
}

func addr(ip net.IP) netip.Addr {
	if ip == nil {
		return netip.Addr{}
	}
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	a, _ := netip.AddrFromSlice(ip)
	return a
}
