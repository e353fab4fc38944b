// Package ipam allocates pod addresses from this node's block of each
// network (standalone mode). Allocations are keyed by (containerID,
// ifName), persisted atomically in the state directory (statefile) after
// every change, and reloaded at start: an ADD repeated, or repeated after
// an agent restart, gets the same address; a DEL releases only the
// allocation of its own containerID, never a newer sandbox's.
package ipam

import (
	"errors"
	"fmt"
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

// Allocate returns the address of (network, key), allocating the lowest
// free one of the block if it has none.
func (m *IPAM) Allocate(network string, key Key) (netip.Addr, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pools[network]
	if !ok {
		return netip.Addr{}, fmt.Errorf("no network %q", network)
	}
	used := m.alloc[network]
	for a, k := range used {
		if k == key {
			return a, nil
		}
	}
	skip := map[netip.Addr]bool{p.Subnet.Addr(): true, last(p.Subnet): true, p.Gateway: true}
	if p.Block.Bits() <= 30 {
		// nor the block's own first and last (10.1.2.0 and 10.1.2.255
		// of a /24 block): valid in a larger subnet, but they confuse
		// people and some tools
		skip[p.Block.Addr()], skip[last(p.Block)] = true, true
	}
	for a := p.Block.Addr(); p.Block.Contains(a); a = a.Next() {
		if skip[a] {
			continue
		}
		if _, taken := used[a]; taken {
			continue
		}
		if used == nil {
			used = map[netip.Addr]Key{}
			m.alloc[network] = used
		}
		used[a] = key
		if err := m.save(); err != nil {
			delete(used, a)
			return netip.Addr{}, err
		}
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("network %q block %s: %w", network, p.Block, ErrExhausted)
}

// Lookup returns the address of (network, key) if it has one.
func (m *IPAM) Lookup(network string, key Key) (netip.Addr, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for a, k := range m.alloc[network] {
		if k == key {
			return a, true
		}
	}
	return netip.Addr{}, false
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

func last(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	host := 32 - p.Bits()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= uint32(uint64(1)<<host - 1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
