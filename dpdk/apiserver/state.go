package apiserver

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/filament-net/filament/dpdk/fastpath"
)

// The model: what the API (and the startup configuration) programmed, in
// resolved form. Objects are never modified in place: a change stores a new
// object, so layers and rollback records can share them.

type port struct {
	name    string
	devargs string
	kind    fastpath.PortKind
	vrf     uint16
	mac     net.HardwareAddr // nil: none (fabric, host: keep the device's)
	ipv4    []netip.Addr
	ipv6    []netip.Addr
	mtu     int
	rxq     int
	id      fastpath.PortID // runtime: not part of the desired state
}

// same compares the desired state, not the DPDK port id.
func (p *port) same(q *port) bool {
	return p.name == q.name && p.devargs == q.devargs && p.kind == q.kind && p.vrf == q.vrf &&
		bytes.Equal(p.mac, q.mac) && slices.Equal(p.ipv4, q.ipv4) && slices.Equal(p.ipv6, q.ipv6) && p.mtu == q.mtu && p.rxq == q.rxq
}

// linkMTU is the port's MTU, 0 meaning the default.
func (p *port) linkMTU() int {
	if p.mtu == 0 {
		return defaultMTU
	}
	return p.mtu
}

// device is the DPDK device name: devargs up to the first comma.
func (p *port) device() string { return deviceName(p.devargs) }

func (p *port) config() fastpath.PortConfig {
	return fastpath.PortConfig{
		Kind:     p.kind,
		RxQueues: p.rxq,
		MTU:      p.mtu,
		VRF:      p.vrf,
		MAC:      p.mac,
		IPv4:     p.ipv4,
		IPv6:     p.ipv6,
	}
}

type nextHop struct {
	id      uint32
	typ     fastpath.NHType
	port    string // interface, tunnel
	dstMAC  net.HardwareAddr
	encap   fastpath.Encap
	tunDst  netip.Addr
	tunGW   netip.Addr
	tag     uint32 // tunnel: VNI (vxlan) or label (mplsoudp)
	members []uint32
}

func (n *nextHop) same(m *nextHop) bool {
	return n.id == m.id && n.typ == m.typ && n.port == m.port && bytes.Equal(n.dstMAC, m.dstMAC) &&
		n.encap == m.encap && n.tunDst == m.tunDst && n.tunGW == m.tunGW && n.tag == m.tag &&
		slices.Equal(n.members, m.members)
}

func isMemberType(t fastpath.NHType) bool { return t == fastpath.NHIface || t == fastpath.NHTunnel }

// neighbor is the underlay address a tunnel next-hop resolves: its gateway,
// else its destination.
func (n *nextHop) neighbor() (netip.Addr, bool) {
	if n.typ != fastpath.NHTunnel {
		return netip.Addr{}, false
	}
	if n.tunGW.IsValid() {
		return n.tunGW, true
	}
	return n.tunDst, true
}

// routeKey is a route's key, compact (24 bytes, no pointers: a million
// routes are a map the garbage collector need not scan): the VRF, the
// family, the prefix's address (host order; an IPv4 one in lo) and its
// length.
type routeKey struct {
	hi, lo uint64
	vrf    uint16
	bits   uint8
	v6     bool
}

// newRouteKey keys a prefix (the caller checked it is one).
func newRouteKey(vrf uint16, p netip.Prefix) routeKey {
	if p.Addr().Is4() {
		a := p.Addr().As4()
		return routeKey{lo: uint64(binary.BigEndian.Uint32(a[:])), vrf: vrf, bits: uint8(p.Bits())}
	}
	a := p.Addr().As16()
	return routeKey{hi: binary.BigEndian.Uint64(a[:8]), lo: binary.BigEndian.Uint64(a[8:]), vrf: vrf,
		bits: uint8(p.Bits()), v6: true}
}

func (k routeKey) prefix() netip.Prefix {
	if !k.v6 {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], uint32(k.lo))
		return netip.PrefixFrom(netip.AddrFrom4(a), int(k.bits))
	}
	var a [16]byte
	binary.BigEndian.PutUint64(a[:8], k.hi)
	binary.BigEndian.PutUint64(a[8:], k.lo)
	return netip.PrefixFrom(netip.AddrFrom16(a), int(k.bits))
}

// table is the fast path table the route lives in: its VRF's IPv4 or IPv6
// FIB (one fast path call changes one).
func (k routeKey) table() uint32 {
	t := uint32(k.vrf) << 1
	if k.v6 {
		t |= 1
	}
	return t
}

// less sorts by VRF, family (IPv4 first), address, then length.
func (k routeKey) less(o routeKey) int {
	if c := cmp.Compare(k.table(), o.table()); c != 0 {
		return c
	}
	if c := cmp.Compare(k.hi, o.hi); c != 0 {
		return c
	}
	if c := cmp.Compare(k.lo, o.lo); c != 0 {
		return c
	}
	return cmp.Compare(k.bits, o.bits)
}

// ---- layered tables ----------------------------------------------------------

// table is a map that can be layered over a parent: a batch is simulated
// in a layer over the live state, which stays untouched until the batch is
// applied.
type table[K comparable, V any] struct {
	parent *table[K, V]
	m      map[K]slot[V]
}

type slot[V any] struct {
	v  V
	ok bool // false: deleted in this layer
}

func newTable[K comparable, V any](parent *table[K, V]) *table[K, V] {
	return &table[K, V]{parent: parent, m: map[K]slot[V]{}}
}

func (t *table[K, V]) get(k K) (V, bool) {
	for x := t; x != nil; x = x.parent {
		if s, found := x.m[k]; found {
			return s.v, s.ok
		}
	}
	var zero V
	return zero, false
}

func (t *table[K, V]) set(k K, v V) { t.m[k] = slot[V]{v, true} }

func (t *table[K, V]) del(k K) {
	if t.parent == nil {
		delete(t.m, k)
		return
	}
	t.m[k] = slot[V]{}
}

// each calls f for every present entry, in no order.
func (t *table[K, V]) each(f func(K, V)) {
	if t.parent == nil {
		for k, s := range t.m {
			f(k, s.v)
		}
		return
	}
	seen := map[K]bool{}
	for x := t; x != nil; x = x.parent {
		for k, s := range x.m {
			if seen[k] {
				continue
			}
			seen[k] = true
			if s.ok {
				f(k, s.v)
			}
		}
	}
}

// len counts present entries (the base layer only: O(1)).
func (t *table[K, V]) len() int {
	if t.parent == nil {
		return len(t.m)
	}
	n := 0
	t.each(func(K, V) { n++ })
	return n
}

// routeTable is the routes' table: a map from the compact key to the
// next-hop (12 bytes a route, about 30 with the map's own), layered like
// table; a layer marks a deleted route with noRoute.
type routeTable struct {
	parent *routeTable
	m      map[routeKey]uint32
	// dels counts deletions from the base table since it was last built:
	// a Go map never shrinks, and the deleted slots it keeps (tombstones)
	// lengthen lookups of absent keys (every new route) until it next
	// grows. compact rebuilds it.
	dels int
}

// noRoute marks a deletion in a layer (next-hop ids are below 2^24).
const noRoute = ^uint32(0)

func newRouteTable(parent *routeTable) *routeTable {
	return &routeTable{parent: parent, m: map[routeKey]uint32{}}
}

func (t *routeTable) get(k routeKey) (uint32, bool) {
	for x := t; x != nil; x = x.parent {
		if nh, found := x.m[k]; found {
			return nh, nh != noRoute
		}
	}
	return 0, false
}

func (t *routeTable) set(k routeKey, nh uint32) { t.m[k] = nh }

func (t *routeTable) del(k routeKey) {
	if t.parent == nil {
		delete(t.m, k)
		t.dels++
		return
	}
	t.m[k] = noRoute
}

// compactMin is the fewest deletions compact rebuilds the table for.
const compactMin = 4096

// compact rebuilds the base table once it has seen more deletions than it
// holds routes (and compactMin): the copy costs no more than the
// deletions did, and gives the memory back.
func (t *routeTable) compact() {
	if t.parent != nil || t.dels < max(len(t.m), compactMin) {
		return
	}
	m := make(map[routeKey]uint32, len(t.m))
	for k, nh := range t.m {
		m[k] = nh
	}
	t.m, t.dels = m, 0
}

// each calls f for every present route, in no order.
func (t *routeTable) each(f func(routeKey, uint32)) {
	if t.parent == nil {
		for k, nh := range t.m {
			f(k, nh)
		}
		return
	}
	seen := map[routeKey]bool{}
	for x := t; x != nil; x = x.parent {
		for k, nh := range x.m {
			if seen[k] {
				continue
			}
			seen[k] = true
			if nh != noRoute {
				f(k, nh)
			}
		}
	}
}

// len counts present routes.
func (t *routeTable) len() int {
	if t.parent == nil {
		return len(t.m)
	}
	n := 0
	t.each(func(routeKey, uint32) { n++ })
	return n
}

// counter counts references, layered like table.
type counter[K comparable] struct {
	parent *counter[K]
	m      map[K]int
}

func newCounter[K comparable](parent *counter[K]) *counter[K] {
	return &counter[K]{parent: parent, m: map[K]int{}}
}

func (c *counter[K]) get(k K) int {
	n := 0
	for x := c; x != nil; x = x.parent {
		n += x.m[k]
	}
	return n
}

func (c *counter[K]) add(k K, d int) {
	v := c.m[k] + d
	if v == 0 && c.parent == nil {
		delete(c.m, k)
		return
	}
	c.m[k] = v
}

// ---- the state -----------------------------------------------------------------

// state is the model, or a layer over it (child).
type state struct {
	ports   *table[string, *port]
	nhs     *table[uint32, *nextHop]
	routes  *routeTable
	vnis    *table[uint32, uint16]
	labels  *table[uint32, uint16]
	neigh   *table[netip.Addr, net.HardwareAddr] // static neighbours
	vrfAddr *table[uint16, vrfAddrs]

	portRefs  *counter[string]     // next-hops out of the port
	nhRoutes  *counter[uint32]     // routes to the next-hop
	nhRoutes6 *counter[uint32]     // IPv6 routes to the next-hop (it needs an IPv6 MTU)
	nhGroups  *counter[uint32]     // ECMP memberships of the next-hop
	tunNeigh  *counter[netip.Addr] // tunnel next-hops resolving the neighbour
	vrfRoutes *counter[uint16]     // routes in the VRF
}

func newState() *state { return (*state)(nil).child() }

// child is a layer over s (s nil: an empty base state).
func (s *state) child() *state {
	if s == nil {
		return &state{
			ports: newTable[string, *port](nil), nhs: newTable[uint32, *nextHop](nil),
			routes: newRouteTable(nil), vnis: newTable[uint32, uint16](nil),
			labels: newTable[uint32, uint16](nil), neigh: newTable[netip.Addr, net.HardwareAddr](nil),
			vrfAddr:  newTable[uint16, vrfAddrs](nil),
			portRefs: newCounter[string](nil), nhRoutes: newCounter[uint32](nil), nhRoutes6: newCounter[uint32](nil),
			nhGroups: newCounter[uint32](nil), tunNeigh: newCounter[netip.Addr](nil),
			vrfRoutes: newCounter[uint16](nil),
		}
	}
	return &state{
		ports: newTable(s.ports), nhs: newTable(s.nhs), routes: newRouteTable(s.routes),
		vnis: newTable(s.vnis), labels: newTable(s.labels), neigh: newTable(s.neigh),
		vrfAddr: newTable(s.vrfAddr), portRefs: newCounter(s.portRefs),
		nhRoutes: newCounter(s.nhRoutes), nhRoutes6: newCounter(s.nhRoutes6), nhGroups: newCounter(s.nhGroups),
		tunNeigh: newCounter(s.tunNeigh), vrfRoutes: newCounter(s.vrfRoutes),
	}
}

func (s *state) setPort(p *port) { s.ports.set(p.name, p) }
func (s *state) delPort(name string) {
	s.ports.del(name)
}

func (s *state) nhRefs(n *nextHop, d int) {
	switch n.typ {
	case fastpath.NHIface:
		s.portRefs.add(n.port, d)
	case fastpath.NHTunnel:
		s.portRefs.add(n.port, d)
		a, _ := n.neighbor()
		s.tunNeigh.add(a, d)
	case fastpath.NHECMP:
		for _, m := range n.members {
			s.nhGroups.add(m, d)
		}
	}
}

func (s *state) setNH(n *nextHop) {
	if old, ok := s.nhs.get(n.id); ok {
		s.nhRefs(old, -1)
	}
	s.nhs.set(n.id, n)
	s.nhRefs(n, 1)
}

func (s *state) delNH(id uint32) {
	if old, ok := s.nhs.get(id); ok {
		s.nhRefs(old, -1)
		s.nhs.del(id)
	}
}

// applyRoutes applies route changes to the model: rs's old values are
// what s holds (changes come from a simulation over s, or are the
// inverses of changes applied), so the table is written without being
// read, and the references are counted once for all.
func (s *state) applyRoutes(rs []routeChange) {
	var refs routeRefs
	for _, r := range rs {
		if r.hasNew {
			s.routes.set(r.key, r.new)
		} else {
			s.routes.del(r.key)
		}
		refs.add(r)
	}
	refs.applyTo(s)
	s.routes.compact()
}

// routeRefs sums the reference changes of route changes, for the counters
// to take once: a batch moves the counts of a few next-hops and VRFs by
// many.
type routeRefs struct {
	nh  deltas[uint32]
	nh6 deltas[uint32] // of IPv6 routes only
	vrf deltas[uint16]
}

func (r *routeRefs) add(c routeChange) {
	moveRef(&r.nh, c)
	if c.key.v6 {
		moveRef(&r.nh6, c)
	}
	switch {
	case c.hadOld && !c.hasNew:
		r.vrf.add(c.key.vrf, -1)
	case c.hasNew && !c.hadOld:
		r.vrf.add(c.key.vrf, 1)
	}
}

// moveRef moves a route's reference from its old next-hop to its new one.
func moveRef(d *deltas[uint32], c routeChange) {
	if c.hadOld && c.hasNew && c.old == c.new {
		return
	}
	if c.hadOld {
		d.add(c.old, -1)
	}
	if c.hasNew {
		d.add(c.new, 1)
	}
}

func (r *routeRefs) applyTo(s *state) {
	r.nh.each(s.nhRoutes.add)
	r.nh6.each(s.nhRoutes6.add)
	r.vrf.each(s.vrfRoutes.add)
}

// deltas sums changes by key: in a slice while there are few keys, then
// in a map.
type deltas[K comparable] struct {
	keys []K
	ds   []int
	m    map[K]int
}

const deltasLinear = 8

func (d *deltas[K]) add(k K, n int) {
	if d.m != nil {
		d.m[k] += n
		return
	}
	for i, x := range d.keys {
		if x == k {
			d.ds[i] += n
			return
		}
	}
	if len(d.keys) < deltasLinear {
		d.keys, d.ds = append(d.keys, k), append(d.ds, n)
		return
	}
	d.m = make(map[K]int, 4*deltasLinear)
	for i, x := range d.keys {
		d.m[x] = d.ds[i]
	}
	d.m[k] += n
}

// each calls f with every key whose sum is not zero.
func (d *deltas[K]) each(f func(K, int)) {
	if d.m != nil {
		for k, n := range d.m {
			if n != 0 {
				f(k, n)
			}
		}
		return
	}
	for i, k := range d.keys {
		if d.ds[i] != 0 {
			f(k, d.ds[i])
		}
	}
}

// portByDevice finds another port on the same DPDK device.
func (s *state) portByDevice(dev, except string) *port {
	var found *port
	s.ports.each(func(name string, p *port) {
		if name != except && p.device() == dev {
			found = p
		}
	})
	return found
}

// portOfKind finds another port of a kind there is one of (fabric, host).
func (s *state) portOfKind(k fastpath.PortKind, except string) *port {
	var found *port
	s.ports.each(func(name string, p *port) {
		if name != except && p.kind == k {
			found = p
		}
	})
	return found
}

// nhsUsingPort lists (sorted) the next-hops out of a port.
func (s *state) nhsUsingPort(name string) []uint32 {
	var ids []uint32
	s.nhs.each(func(id uint32, n *nextHop) {
		if isMemberType(n.typ) && n.port == name {
			ids = append(ids, id)
		}
	})
	slices.Sort(ids)
	return ids
}

// maxEncapOverhead is the largest Encap.Overhead.
const maxEncapOverhead = fastpath.VXLANOverhead + fastpath.Outer6Extra

// sendMTU is the largest inner packet an interface or tunnel next-hop
// sends (the fast path's nh->mtu) and what makes it so; ok is false when
// its port does not exist.
func (s *state) sendMTU(n *nextHop) (mtu int, why string, ok bool) {
	p, ok := s.ports.get(n.port)
	if !ok {
		return 0, "", false
	}
	if n.typ != fastpath.NHTunnel {
		return p.linkMTU(), fmt.Sprintf("port %q has MTU %d", n.port, p.linkMTU()), true
	}
	o, fam := n.encap.Overhead(n.tunDst.Is6()), 4
	if n.tunDst.Is6() {
		fam = 6
	}
	return p.linkMTU() - o, fmt.Sprintf("port %q's MTU %d less %d of %s over IPv%d", n.port, p.linkMTU(), o,
		encapName(n.encap), fam), true
}

// short6 says why next-hop id cannot carry IPv6: it, or a member of it,
// sends less than ipv6MinMTU; "" when it can (or does not exist).
func (s *state) short6(id uint32) string {
	n, ok := s.nhs.get(id)
	if !ok {
		return ""
	}
	members := []uint32{id}
	if n.typ == fastpath.NHECMP {
		members = n.members
	}
	for _, m := range members {
		mn, ok := s.nhs.get(m)
		if !ok || !isMemberType(mn.typ) {
			continue
		}
		mtu, why, ok := s.sendMTU(mn)
		if !ok || mtu >= ipv6MinMTU {
			continue
		}
		if m != id {
			return fmt.Sprintf("ECMP member next-hop %d sends at most %d bytes (%s)", m, mtu, why)
		}
		return fmt.Sprintf("next-hop %d sends at most %d bytes (%s)", id, mtu, why)
	}
	return ""
}

// carries6 reports whether IPv6 routes use next-hop id, directly or
// through an ECMP group.
func (s *state) carries6(id uint32) bool {
	if s.nhRoutes6.get(id) > 0 {
		return true
	}
	if s.nhGroups.get(id) == 0 {
		return false
	}
	for _, g := range s.groupsOf(id) {
		if s.nhRoutes6.get(g) > 0 {
			return true
		}
	}
	return false
}

// groupsOf lists (sorted) the ECMP groups a next-hop is a member of.
func (s *state) groupsOf(id uint32) []uint32 {
	var ids []uint32
	s.nhs.each(func(gid uint32, n *nextHop) {
		if n.typ == fastpath.NHECMP && slices.Contains(n.members, id) {
			ids = append(ids, gid)
		}
	})
	slices.Sort(ids)
	return ids
}

// neighborCount is the number of underlay neighbours the fast path keeps:
// static ones and those of tunnels.
func (s *state) neighborCount() int {
	all := map[netip.Addr]bool{}
	s.neigh.each(func(a netip.Addr, _ net.HardwareAddr) { all[a] = true })
	s.nhs.each(func(_ uint32, n *nextHop) {
		if a, ok := n.neighbor(); ok {
			all[a] = true
		}
	})
	return len(all)
}
