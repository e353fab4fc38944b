// Package ipam allocates pod addresses from this node's block of each
// network (standalone mode): one IPv4 address per attachment, and one
// IPv6 address too in a dual-stack network. Allocations are keyed by
// (containerID, ifName), persisted atomically in the state directory
// (statefile) after every change, and reloaded at start: an ADD repeated,
// or repeated after an agent restart, gets the same addresses; a DEL
// releases only the allocations of its own containerID, never a newer
// sandbox's.
package ipam

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"path/filepath"
	"sync"

	"github.com/filament-net/filament/agent/statefile"
)

// ErrExhausted: the block has no free address.
var ErrExhausted = errors.New("address block exhausted")

// Key names an attachment.
type Key struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifName"`
}

// Pool is one network's allocation range.
type Pool struct {
	Subnet  netip.Prefix // the network's: its network and broadcast addresses are never given
	Block   netip.Prefix // this node's part of it: its first and last address are never given either (blocks of /30 and larger)
	Gateway netip.Addr   // never given

	// IPv6, in a dual-stack network (else zero). Never given: Subnet6's
	// first address (the subnet-router anycast address), Block6's first
	// (the same if the block is the subnet; a tidy rule otherwise) and
	// Gateway6.
	Subnet6  netip.Prefix
	Block6   netip.Prefix
	Gateway6 netip.Addr
}

// DualStack reports whether the pool gives IPv6 addresses too.
func (p Pool) DualStack() bool { return p.Block6.IsValid() }

// Addresses are an attachment's addresses: IPv6 is zero in an IPv4-only
// network.
type Addresses struct {
	IPv4 netip.Addr
	IPv6 netip.Addr
}

// Allocation is one address given out.
type Allocation struct {
	Network string     `json:"network"`
	Key     Key        `json:"key"`
	Address netip.Addr `json:"address"`
}

type file struct {
	Allocations []Allocation `json:"allocations"`
}

// IPAM is safe for concurrent use.
type IPAM struct {
	mu    sync.Mutex
	path  string
	pools map[string]Pool
	alloc map[string]map[netip.Addr]Key // network -> address -> owner
}

// FileName is the state file's name in the state directory.
const FileName = "ipam.json"

// Open loads dir/ipam.json (a missing file is an empty IPAM; leftover
// temporary files of an interrupted write are removed). Allocations of
// networks not in pools, or outside their block, are kept in the file
// untouched but never given (a config change does not silently reassign).
func Open(dir string, pools map[string]Pool) (*IPAM, error) {
	m := &IPAM{path: filepath.Join(dir, FileName), pools: pools, alloc: map[string]map[netip.Addr]Key{}}
	statefile.Clean(m.path)
	var f file
	if _, err := statefile.Load(m.path, &f); err != nil {
		return nil, err
	}
	for _, a := range f.Allocations {
		if m.alloc[a.Network] == nil {
			m.alloc[a.Network] = map[netip.Addr]Key{}
		}
		m.alloc[a.Network][a.Address] = a.Key
	}
	return m, nil
}

// Allocate returns the addresses of (network, key), allocating the lowest
// free one of each block (IPv4, and IPv6 in a dual-stack network) that it
// has none of, saved together: on an error nothing new is held.
func (m *IPAM) Allocate(network string, key Key) (Addresses, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pools[network]
	if !ok {
		return Addresses{}, fmt.Errorf("no network %q", network)
	}
	have := m.lookup(network, key)
	var got Addresses
	var err error
	if got.IPv4 = have.IPv4; !got.IPv4.IsValid() {
		if got.IPv4, err = m.free4(network, p); err != nil {
			return Addresses{}, err
		}
	}
	if got.IPv6 = have.IPv6; !got.IPv6.IsValid() && p.DualStack() {
		if got.IPv6, err = m.free6(network, p); err != nil {
			return Addresses{}, err
		}
	}
	if got == have {
		return got, nil
	}
	used := m.alloc[network]
	if used == nil {
		used = map[netip.Addr]Key{}
		m.alloc[network] = used
	}
	var added []netip.Addr
	for _, a := range []netip.Addr{got.IPv4, got.IPv6} {
		if a.IsValid() && a != have.IPv4 && a != have.IPv6 {
			used[a] = key
			added = append(added, a)
		}
	}
	if err := m.save(); err != nil {
		for _, a := range added {
			delete(used, a)
		}
		return Addresses{}, err
	}
	return got, nil
}

// free4 is the lowest free IPv4 address of p's block.
func (m *IPAM) free4(network string, p Pool) (netip.Addr, error) {
	skip := map[netip.Addr]bool{p.Subnet.Addr(): true, last(p.Subnet): true, p.Gateway: true}
	if p.Block.Bits() <= 30 {
		// nor the block's own first and last (10.1.2.0 and 10.1.2.255
		// of a /24 block): valid in a larger subnet, but they confuse
		// people and some tools
		skip[p.Block.Addr()], skip[last(p.Block)] = true, true
	}
	return m.lowestFree(network, p.Block, skip)
}

// free6 is the lowest free IPv6 address of p's IPv6 block.
func (m *IPAM) free6(network string, p Pool) (netip.Addr, error) {
	skip := map[netip.Addr]bool{p.Subnet6.Addr(): true, p.Block6.Addr(): true, p.Gateway6: true}
	return m.lowestFree(network, p.Block6, skip)
}

// lowestFree walks blk from its first address: at most one step per
// address held, plus the skipped ones.
func (m *IPAM) lowestFree(network string, blk netip.Prefix, skip map[netip.Addr]bool) (netip.Addr, error) {
	used := m.alloc[network]
	for a := blk.Addr(); a.IsValid() && blk.Contains(a); a = a.Next() {
		if skip[a] {
			continue
		}
		if _, taken := used[a]; !taken {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("network %q block %s: %w", network, blk, ErrExhausted)
}

// Lookup returns the addresses of (network, key) if it has any.
func (m *IPAM) Lookup(network string, key Key) (Addresses, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.lookup(network, key)
	return a, a.IPv4.IsValid() || a.IPv6.IsValid()
}

func (m *IPAM) lookup(network string, key Key) Addresses {
	var out Addresses
	for a, k := range m.alloc[network] {
		if k != key {
			continue
		}
		if a.Is4() {
			out.IPv4 = a
		} else {
			out.IPv6 = a
		}
	}
	return out
}

// Release frees the addresses held by exactly key (same containerID and
// ifName) in every network; it reports whether it freed any.
func (m *IPAM) Release(key Key) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	type freed struct {
		net string
		a   netip.Addr
	}
	var gone []freed
	for n, used := range m.alloc {
		for a, k := range used {
			if k == key {
				delete(used, a)
				gone = append(gone, freed{n, a})
			}
		}
	}
	if len(gone) == 0 {
		return false, nil
	}
	if err := m.save(); err != nil {
		for _, g := range gone {
			m.alloc[g.net][g.a] = key
		}
		return false, err
	}
	return true, nil
}

// ReleaseIPv6 frees the IPv6 address key holds in network, keeping its
// IPv4 one (the network stopped being dual stack); it reports whether it
// freed one.
func (m *IPAM) ReleaseIPv6(network string, key Key) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.lookup(network, key).IPv6
	if !a.IsValid() {
		return false, nil
	}
	delete(m.alloc[network], a)
	if err := m.save(); err != nil {
		m.alloc[network][a] = key
		return false, err
	}
	return true, nil
}

// All lists the allocations.
func (m *IPAM) All() []Allocation {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Allocation
	for n, used := range m.alloc {
		for a, k := range used {
			out = append(out, Allocation{Network: n, Key: k, Address: a})
		}
	}
	return out
}

func (m *IPAM) save() error {
	var f file
	for n, used := range m.alloc {
		for a, k := range used {
			f.Allocations = append(f.Allocations, Allocation{Network: n, Key: k, Address: a})
		}
	}
	return statefile.Save(m.path, &f)
}

// Capacity is how many addresses the pool's IPv4 block and IPv6 block
// (0 if none) can give: the block's size less what is never given.
func (p Pool) Capacity() (v4, v6 float64) {
	count := func(blk netip.Prefix, skip ...netip.Addr) float64 {
		n := math.Ldexp(1, blk.Addr().BitLen()-blk.Bits())
		seen := map[netip.Addr]bool{}
		for _, a := range skip {
			if a.IsValid() && blk.Contains(a) && !seen[a] {
				seen[a] = true
				n--
			}
		}
		return max(n, 0)
	}
	skip4 := []netip.Addr{p.Subnet.Addr(), last(p.Subnet), p.Gateway}
	if p.Block.Bits() <= 30 {
		skip4 = append(skip4, p.Block.Addr(), last(p.Block))
	}
	v4 = count(p.Block, skip4...)
	if p.DualStack() {
		v6 = count(p.Block6, p.Subnet6.Addr(), p.Block6.Addr(), p.Gateway6)
	}
	return v4, v6
}

func last(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	host := 32 - p.Bits()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= uint32(uint64(1)<<host - 1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
