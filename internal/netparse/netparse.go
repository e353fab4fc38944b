// Package netparse parses the addresses that configuration files and API
// requests carry as text, with the errors an operator should read: what was
// given and what is wanted. One place, so that the dataplane's YAML, its API
// and the agent refuse the same things with the same words.
package netparse

import (
	"fmt"
	"net"
	"net/netip"
)

// MAC parses a 6-byte MAC address.
func MAC(s string) (net.HardwareAddr, error) {
	m, err := net.ParseMAC(s)
	if err != nil || len(m) != 6 {
		return nil, fmt.Errorf("%q is not a MAC address", s)
	}
	return m, nil
}

// UnicastMAC parses a MAC that may be a frame's source: not zero, not
// multicast or broadcast.
func UnicastMAC(s string) (net.HardwareAddr, error) {
	m, err := MAC(s)
	if err != nil {
		return nil, err
	}
	if m[0]&1 != 0 {
		return nil, fmt.Errorf("%s is a multicast address, need a unicast one", m)
	}
	if string(m) == "\x00\x00\x00\x00\x00\x00" {
		return nil, fmt.Errorf("%s: need a unicast MAC, not zero", m)
	}
	return m, nil
}

// IPv4 parses an IPv4 address.
func IPv4(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("%q is not an IPv4 address", s)
	}
	return a, nil
}

// HostIPv4 parses an address a host can have: not 0.0.0.0, multicast or
// broadcast.
func HostIPv4(s string) (netip.Addr, error) {
	a, err := IPv4(s)
	if err != nil {
		return a, err
	}
	if a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return netip.Addr{}, fmt.Errorf("%s cannot be a host's address", a)
	}
	return a, nil
}

// Prefix4 parses an IPv4 network prefix; host bits must be zero.
func Prefix4(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, fmt.Errorf("required (e.g. 10.1.0.0/24)")
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv4 prefix (address/length)", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%s has host bits set (the network is %s)", p, p.Masked())
	}
	return p, nil
}

// HostIPv6 parses an IPv6 address a host can be given: not unspecified,
// loopback, multicast, link-local (derived, never configured) or an
// IPv4-mapped address.
func HostIPv6(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q is not an IPv6 address", s)
	}
	if a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a.IsLinkLocalUnicast() {
		return netip.Addr{}, fmt.Errorf("%s cannot be a host's address", a)
	}
	return a, nil
}

// HostIP parses a host's address of either family (HostIPv4, HostIPv6).
func HostIP(s string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(s); err == nil && a.Is6() && !a.Is4In6() {
		return HostIPv6(s)
	}
	return HostIPv4(s)
}

// Prefix parses an IPv4 or IPv6 network prefix; host bits must be zero.
func Prefix(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, fmt.Errorf("required (e.g. 10.1.0.0/24 or fd00:1::/64)")
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Addr().Zone() != "" || p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv4 or IPv6 prefix (address/length)", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%s has host bits set (the network is %s)", p, p.Masked())
	}
	return p, nil
}
