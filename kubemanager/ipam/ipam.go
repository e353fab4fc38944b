// Package ipam hands out pod addresses from a network's subnets. Its state
// lives only in the API server: each block of 256 addresses of a network's
// subnet is a ConfigMap (ipam-<network>-v4-<block>) whose keys are the
// claimed offsets and whose values name the owner pod (namespace/name/uid).
// Every claim and release is an update with the block's resourceVersion (or
// the creation of a block by its deterministic name), so two writers (two
// leaders for a moment, or a restart that races its predecessor's last
// write) cannot both claim one address: the second gets a conflict, reads
// the block again and picks another. A claim is written before the Port
// that carries its address, so a restart between the two finds the claim by
// the pod's uid and reuses it: nothing leaks, nothing is handed out twice.
//
// Blocks rather than one object per network: a 10,000-pod network's single
// object (~80 B per claim) would be rewritten whole on every claim and nears
// etcd's 1.5 MB object limit; a block stays under 20 KB.
package ipam

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// BlockSize is the number of addresses per block object.
const BlockSize = 256

// MaxHosts caps the addresses used of one subnet (an IPv6 /64 has 2^64):
// 2^24, so offsets fit in uint32 and the in-memory state stays bounded.
const MaxHosts = 1 << 24

// Labels of a block ConfigMap.
const (
	LabelNetwork = "filament.dev/ipam-network"
	LabelFamily  = "filament.dev/ipam-family"
)

// ErrFull: the subnet has no free address.
var ErrFull = errors.New("no free address")

// Owner is the pod an address belongs to.
type Owner struct{ Namespace, Name, UID string }

func (o Owner) String() string { return o.Namespace + "/" + o.Name + "/" + o.UID }

func parseOwner(s string) (Owner, bool) {
	p := strings.Split(s, "/")
	if len(p) != 3 {
		return Owner{}, false
	}
	return Owner{p[0], p[1], p[2]}, true
}

// Claim is one claimed address.
type Claim struct {
	Network string
	Addr    netip.Addr
	Owner   Owner
}

// Allocator holds the claims of every network it has loaded.
type Allocator struct {
	cs  kubernetes.Interface
	ns  string // where the blocks live
	log *zap.Logger

	mu    sync.Mutex // guards pools (each pool has its own lock)
	pools map[poolKey]*pool

	used, size *prometheus.Desc
}

type poolKey struct {
	network string
	prefix  netip.Prefix
}

// New makes an Allocator keeping its blocks in namespace ns.
func New(cs kubernetes.Interface, ns string, log *zap.Logger) *Allocator {
	return &Allocator{
		cs: cs, ns: ns, log: log, pools: map[poolKey]*pool{},
		used: prometheus.NewDesc("filament_kube_manager_ipam_used_addresses",
			"Addresses claimed in a network's subnet.", []string{"network", "subnet"}, nil),
		size: prometheus.NewDesc("filament_kube_manager_ipam_size_addresses",
			"Addresses a network's subnet can hand out (without network, gateway and broadcast; at most 2^24).", []string{"network", "subnet"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (a *Allocator) Describe(ch chan<- *prometheus.Desc) { ch <- a.used; ch <- a.size }

// Collect implements prometheus.Collector: usage per network and subnet.
func (a *Allocator) Collect(ch chan<- prometheus.Metric) {
	a.mu.Lock()
	pools := make([]*pool, 0, len(a.pools))
	for _, p := range a.pools {
		pools = append(pools, p)
	}
	a.mu.Unlock()
	for _, p := range pools {
		p.mu.Lock()
		used := len(p.byOffset)
		p.mu.Unlock()
		ch <- prometheus.MustNewConstMetric(a.used, prometheus.GaugeValue, float64(used), p.network, p.prefix.String())
		ch <- prometheus.MustNewConstMetric(a.size, prometheus.GaugeValue, float64(p.last-p.first+1), p.network, p.prefix.String())
	}
}

// pool is one network's subnet: its blocks as last read or written.
type pool struct {
	network string
	prefix  netip.Prefix
	family  string // "v4" or "v6"
	base    *big.Int
	first   uint32 // offsets first..last are handed out
	last    uint32

	mu       sync.Mutex // held across a block's write: one writer per pool in this process
	qmu      sync.Mutex // guards queue
	queue    []*request // claims waiting for the next commit
	loaded   bool
	blocks   map[uint32]*block // by block index
	byOffset map[uint32]Owner
	byUID    map[string]uint32
	next     uint32 // where the search for a free offset starts
}

type block struct {
	exists bool
	rv     string
	data   map[string]string // offset -> owner
}

func (a *Allocator) pool(network string, prefix netip.Prefix) *pool {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := poolKey{network, prefix}
	if p := a.pools[k]; p != nil {
		return p
	}
	hostBits := prefix.Addr().BitLen() - prefix.Bits()
	n := uint64(MaxHosts)
	if hostBits < 24 {
		n = uint64(1) << hostBits
	}
	p := &pool{network: network, prefix: prefix, family: "v6",
		base: new(big.Int).SetBytes(prefix.Addr().AsSlice()),
		// offset 0 is the network's address (IPv4) or the subnet-router
		// anycast one (IPv6), 1 the gateway; IPv4's last is broadcast
		first: 2, last: uint32(n - 1),
	}
	if prefix.Addr().Is4() {
		p.family, p.last = "v4", uint32(n-2)
	}
	a.pools[k] = p
	return p
}

// blockName is the block's ConfigMap name: DNS-1123, at most 253.
func (p *pool) blockName(idx uint32) string {
	return "ipam-" + nameSafe(p.network) + "-" + p.family + "-" + strconv.FormatUint(uint64(idx), 10)
}

// nameSafe keeps a network name short enough for object names and label
// values (63).
func nameSafe(network string) string {
	if len(network) <= 50 {
		return network
	}
	h := sha256.Sum256([]byte(network))
	return network[:40] + "-" + hex.EncodeToString(h[:4])
}

func (p *pool) addr(off uint32) netip.Addr {
	v := new(big.Int).Add(p.base, big.NewInt(int64(off)))
	b := make([]byte, p.prefix.Addr().BitLen()/8)
	v.FillBytes(b)
	a, _ := netip.AddrFromSlice(b)
	return a
}

func (p *pool) offset(a netip.Addr) (uint32, bool) {
	if !p.prefix.Contains(a) {
		return 0, false
	}
	v := new(big.Int).Sub(new(big.Int).SetBytes(a.AsSlice()), p.base)
	if !v.IsUint64() || v.Uint64() < uint64(p.first) || v.Uint64() > uint64(p.last) {
		return 0, false
	}
	return uint32(v.Uint64()), true
}

// load reads the pool's blocks from the API server (a quorum read) once.
func (a *Allocator) load(ctx context.Context, p *pool) error {
	if p.loaded {
		return nil
	}
	list, err := a.cs.CoreV1().ConfigMaps(a.ns).List(ctx, metav1.ListOptions{
		LabelSelector: LabelNetwork + "=" + nameSafe(p.network) + "," + LabelFamily + "=" + p.family})
	if err != nil {
		return fmt.Errorf("ipam: list blocks of %s: %w", p.network, err)
	}
	p.blocks, p.byOffset, p.byUID, p.next = map[uint32]*block{}, map[uint32]Owner{}, map[string]uint32{}, p.first
	for i := range list.Items {
		cm := &list.Items[i]
		idx, ok := p.blockIndex(cm.Name)
		if !ok {
			continue
		}
		p.setBlock(idx, cm)
	}
	p.loaded = true
	a.log.Info("ipam: loaded", zap.String("network", p.network), zap.Stringer("subnet", p.prefix), zap.Int("claims", len(p.byOffset)))
	return nil
}

func (p *pool) blockIndex(name string) (uint32, bool) {
	prefix := p.blockName(0)
	prefix = prefix[:len(prefix)-1]
	if !strings.HasPrefix(name, prefix) {
		return 0, false
	}
	v, err := strconv.ParseUint(name[len(prefix):], 10, 32)
	return uint32(v), err == nil
}

// setBlock replaces block idx's claims by cm's (nil: the block is absent).
func (p *pool) setBlock(idx uint32, cm *corev1.ConfigMap) {
	if old := p.blocks[idx]; old != nil {
		for k := range old.data {
			off, _ := strconv.ParseUint(k, 10, 32)
			if o, ok := p.byOffset[uint32(off)]; ok {
				delete(p.byUID, o.UID)
				delete(p.byOffset, uint32(off))
			}
		}
	}
	b := &block{data: map[string]string{}}
	if cm != nil {
		b.exists, b.rv = true, cm.ResourceVersion
		for k, v := range cm.Data {
			off, err := strconv.ParseUint(k, 10, 32)
			o, ok := parseOwner(v)
			if err != nil || !ok || uint32(off)/BlockSize != idx {
				continue
			}
			b.data[k] = v
			p.byOffset[uint32(off)] = o
			p.byUID[o.UID] = uint32(off)
		}
	}
	p.blocks[idx] = b
}

// refresh reads block idx again after a conflict.
func (a *Allocator) refresh(ctx context.Context, p *pool, idx uint32) error {
	cm, err := a.cs.CoreV1().ConfigMaps(a.ns).Get(ctx, p.blockName(idx), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		p.setBlock(idx, nil)
		return nil
	}
	if err != nil {
		return fmt.Errorf("ipam: read block %s: %w", p.blockName(idx), err)
	}
	p.setBlock(idx, cm)
	return nil
}

// write stores block idx with data, as a create if it does not exist yet or
// an update at its resourceVersion; conflict reports a lost race.
func (a *Allocator) write(ctx context.Context, p *pool, idx uint32, data map[string]string) (conflict bool, err error) {
	b := p.blocks[idx]
	if b == nil {
		b = &block{} // not read yet: create it
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: p.blockName(idx), ResourceVersion: b.rv,
			Labels: map[string]string{LabelNetwork: nameSafe(p.network), LabelFamily: p.family}},
		Data: data,
	}
	var out *corev1.ConfigMap
	if b.exists {
		out, err = a.cs.CoreV1().ConfigMaps(a.ns).Update(ctx, cm, metav1.UpdateOptions{})
	} else {
		cm.ResourceVersion = ""
		out, err = a.cs.CoreV1().ConfigMaps(a.ns).Create(ctx, cm, metav1.CreateOptions{})
	}
	switch {
	case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err):
		return true, a.refresh(ctx, p, idx)
	case err != nil:
		return false, fmt.Errorf("ipam: write block %s: %w", cm.Name, err)
	}
	p.setBlock(idx, out)
	return false, nil
}

// Claim returns owner's address in network's subnet prefix: want if the
// owner holds it or it is free, else the one the owner holds, else the
// next free one.
//
// Claims of one subnet are committed in groups: a caller queues its
// request, and whoever holds the subnet's lock next writes every queued
// request, one update per block touched. With a few workers claiming at
// once this divides the API writes by about their number.
func (a *Allocator) Claim(ctx context.Context, network string, prefix netip.Prefix, owner Owner, want netip.Addr) (netip.Addr, error) {
	p := a.pool(network, prefix)
	r := &request{owner: owner, want: want, done: make(chan result, 1)}
	p.qmu.Lock()
	p.queue = append(p.queue, r)
	p.qmu.Unlock()
	p.mu.Lock()
	p.qmu.Lock()
	batch := p.queue
	p.queue = nil
	p.qmu.Unlock()
	if len(batch) > 0 {
		a.commit(ctx, p, batch)
	}
	p.mu.Unlock()
	// Filled by this caller's commit or by an earlier holder of p.mu.
	res := <-r.done
	return res.addr, res.err
}

type request struct {
	owner Owner
	want  netip.Addr
	done  chan result
}

type result struct {
	addr netip.Addr
	err  error
}

// commit claims an address for each request; p.mu is held.
func (a *Allocator) commit(ctx context.Context, p *pool, batch []*request) {
	if err := a.load(ctx, p); err != nil {
		for _, r := range batch {
			r.done <- result{err: err}
		}
		return
	}
	for attempt := 0; len(batch) > 0; attempt++ {
		if attempt == 100 {
			for _, r := range batch {
				r.done <- result{err: fmt.Errorf("ipam: %s %s: too many conflicts", p.network, p.prefix)}
			}
			return
		}
		// Choose an offset per request, none twice.
		chosen := map[uint32]*request{}
		byBlock := map[uint32][]uint32{}
		for _, r := range batch {
			off, held, err := p.choose(r.owner, r.want, chosen)
			switch {
			case err != nil:
				r.done <- result{err: fmt.Errorf("ipam: %s %s: %w", p.network, p.prefix, err)}
			case held:
				r.done <- result{addr: p.addr(off)}
			default:
				chosen[off] = r
				byBlock[off/BlockSize] = append(byBlock[off/BlockSize], off)
			}
		}
		batch = batch[:0:0]
		for idx, offs := range byBlock {
			data := copyMap(p.blocks[idx])
			for _, off := range offs {
				data[strconv.FormatUint(uint64(off), 10)] = chosen[off].owner.String()
			}
			conflict, err := a.write(ctx, p, idx, data)
			for _, off := range offs {
				r := chosen[off]
				switch {
				case err != nil:
					r.done <- result{err: err}
				case conflict:
					batch = append(batch, r) // the block read again: choose again
				default:
					r.done <- result{addr: p.addr(off)}
				}
			}
			if conflict {
				a.log.Info("ipam: block changed under us, trying again", zap.String("block", p.blockName(idx)), zap.Int("claims", len(offs)))
			}
		}
	}
}

// choose picks owner's offset: want if owner holds it or it is free, else
// the one owner holds (held true: nothing to write), else a free one;
// offsets in chosen are taken by other requests of the batch.
func (p *pool) choose(owner Owner, want netip.Addr, chosen map[uint32]*request) (off uint32, held bool, err error) {
	if want.IsValid() {
		if w, in := p.offset(want); in {
			o, taken := p.byOffset[w]
			if taken && o.UID == owner.UID {
				return w, true, nil
			}
			if !taken && chosen[w] == nil {
				return w, false, nil
			}
		}
	}
	if h, has := p.byUID[owner.UID]; has {
		return h, true, nil
	}
	off, ok := p.free(chosen)
	if !ok {
		return 0, false, ErrFull
	}
	p.next = off + 1
	return off, false, nil
}

// free finds an unclaimed offset from p.next on, wrapping once; the
// cursor moves on so that a released address is not handed out again at
// once (an agent or a pod's neighbours may still have it in a cache).
func (p *pool) free(chosen map[uint32]*request) (uint32, bool) {
	n := p.last - p.first + 1
	if uint32(len(p.byOffset)+len(chosen)) >= n {
		return 0, false
	}
	off := p.next
	for i := uint32(0); i < n; i++ {
		if off < p.first || off > p.last {
			off = p.first
		}
		if _, taken := p.byOffset[off]; !taken && chosen[off] == nil {
			return off, true
		}
		off++
	}
	return 0, false
}

func copyMap(b *block) map[string]string {
	out := map[string]string{}
	if b != nil {
		for k, v := range b.data {
			out[k] = v
		}
	}
	return out
}

// Release drops uid's claim in network's subnet prefix, if it has one.
func (a *Allocator) Release(ctx context.Context, network string, prefix netip.Prefix, uid string) error {
	p := a.pool(network, prefix)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := a.load(ctx, p); err != nil {
		return err
	}
	for attempt := 0; attempt < 100; attempt++ {
		off, ok := p.byUID[uid]
		if !ok {
			return nil
		}
		idx := off / BlockSize
		data := copyMap(p.blocks[idx])
		delete(data, strconv.FormatUint(uint64(off), 10))
		conflict, err := a.write(ctx, p, idx, data)
		if err != nil {
			return err
		}
		if !conflict {
			return nil
		}
	}
	return fmt.Errorf("ipam: %s %s: too many conflicts releasing %s", network, prefix, uid)
}

// ReleaseAddr drops the claim of addr if uid holds it: the second address
// a pod got when two writers raced for it, found by a sweep.
func (a *Allocator) ReleaseAddr(ctx context.Context, network string, prefix netip.Prefix, addr netip.Addr, uid string) error {
	p := a.pool(network, prefix)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := a.load(ctx, p); err != nil {
		return err
	}
	off, ok := p.offset(addr)
	if !ok {
		return nil
	}
	for attempt := 0; attempt < 100; attempt++ {
		if o, held := p.byOffset[off]; !held || o.UID != uid {
			return nil
		}
		idx := off / BlockSize
		data := copyMap(p.blocks[idx])
		delete(data, strconv.FormatUint(uint64(off), 10))
		conflict, err := a.write(ctx, p, idx, data)
		if err != nil {
			return err
		}
		if !conflict {
			return nil
		}
	}
	return fmt.Errorf("ipam: %s %s: too many conflicts releasing %s", network, prefix, addr)
}

// Claims lists the claims of network's subnet prefix (loading it if needed).
func (a *Allocator) Claims(ctx context.Context, network string, prefix netip.Prefix) ([]Claim, error) {
	p := a.pool(network, prefix)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := a.load(ctx, p); err != nil {
		return nil, err
	}
	out := make([]Claim, 0, len(p.byOffset))
	for off, o := range p.byOffset {
		out = append(out, Claim{Network: network, Addr: p.addr(off), Owner: o})
	}
	return out, nil
}

// Forget drops every pool from memory: the next use reads the API server
// again (a new term as leader starts from what is stored, not from what a
// previous term remembered).
func (a *Allocator) Forget() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pools = map[poolKey]*pool{}
}

// DeleteNetwork removes the blocks of a network that is gone.
func (a *Allocator) DeleteNetwork(ctx context.Context, network string) error {
	err := a.cs.CoreV1().ConfigMaps(a.ns).DeleteCollection(ctx, metav1.DeleteOptions{},
		metav1.ListOptions{LabelSelector: LabelNetwork + "=" + nameSafe(network)})
	if err != nil {
		return fmt.Errorf("ipam: delete blocks of %s: %w", network, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for k := range a.pools {
		if k.network == network {
			delete(a.pools, k)
		}
	}
	return nil
}
