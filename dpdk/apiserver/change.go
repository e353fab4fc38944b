package apiserver

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"

	"github.com/filament-net/filament/dpdk/fastpath"
)

// A change takes one object from its old value to its new one (either may
// be absent). A batch becomes a set of changes (its net effect), ordered so
// that the fast path accepts each in turn, applied one by one and, if the
// fast path refuses one, undone by their inverses in reverse order.
type change interface {
	// rank orders changes when several could go: upserts before deletes,
	// in dependency order.
	rank() int
	// ready says whether the fast path accepts the change in state s.
	ready(s *state) bool
	// apply is the change's effect on the model.
	apply(s *state)
	// exec programs the fast path and, if it succeeds, applies the change
	// to the live model.
	exec(dp Dataplane, live *state) error
	inverse() change
	op() int // index of the op that asked for it
	String() string
}

type changeKind int

const (
	created changeKind = iota
	updated
	deleted
)

// ranks
const (
	rankPortSet = iota
	rankVRFSet
	rankNHSet
	rankGroupSet
	rankRouteSet
	// Route deletes right after the route sets: one fast path call per
	// VRF does both (plannedRoutes); nothing between depends on routes.
	rankRouteDel
	rankMapSet
	rankMapDel
	rankGroupDel
	rankNHDel
	rankVRFDel
	rankPortDel
	// Last: a static neighbour the batch created cannot be removed again
	// (the fast path has no DelNeighbor yet), so nothing may fail after it.
	rankNeigh
)

func kindOf(hadOld, hasNew bool) changeKind {
	switch {
	case !hadOld:
		return created
	case !hasNew:
		return deleted
	}
	return updated
}

// ---- ports --------------------------------------------------------------------

type portChange struct {
	idx      int
	name     string
	old, new *port
}

func (c *portChange) op() int          { return c.idx }
func (c *portChange) kind() changeKind { return kindOf(c.old != nil, c.new != nil) }
func (c *portChange) inverse() change {
	return &portChange{idx: c.idx, name: c.name, old: c.new, new: c.old}
}

func (c *portChange) String() string {
	switch c.kind() {
	case created:
		return fmt.Sprintf("add port %s (%s)", c.name, c.new.devargs)
	case deleted:
		return fmt.Sprintf("delete port %s", c.name)
	}
	return fmt.Sprintf("update port %s", c.name)
}

func (c *portChange) rank() int {
	if c.new == nil {
		return rankPortDel
	}
	return rankPortSet
}

func (c *portChange) ready(s *state) bool {
	switch {
	case c.new == nil:
		return s.portRefs.get(c.name) == 0
	case c.old == nil:
		if s.portByDevice(c.new.device(), c.name) != nil {
			return false
		}
		if c.new.kind != fastpath.PortPod && s.portOfKind(c.new.kind, c.name) != nil {
			return false
		}
	}
	return true
}

func (c *portChange) apply(s *state) {
	if c.new == nil {
		s.delPort(c.name)
	} else {
		s.setPort(c.new)
	}
}

func (c *portChange) exec(dp Dataplane, live *state) error {
	cur, _ := live.ports.get(c.name)
	switch {
	case c.new == nil:
		if err := dp.DelPort(cur.id); err != nil {
			return err
		}
		live.delPort(c.name)
	case cur == nil:
		id, err := dp.AddPort(c.new.devargs, c.new.config())
		if err != nil {
			return err
		}
		p := *c.new
		p.id = id
		live.setPort(&p)
	default:
		if err := dp.UpdatePort(cur.id, c.new.config()); err != nil {
			return err
		}
		p := *c.new
		p.id = cur.id
		live.setPort(&p)
	}
	return nil
}

// ---- next-hops ----------------------------------------------------------------

type nhChange struct {
	idx      int
	id       uint32
	old, new *nextHop
}

func (c *nhChange) op() int          { return c.idx }
func (c *nhChange) kind() changeKind { return kindOf(c.old != nil, c.new != nil) }
func (c *nhChange) inverse() change {
	return &nhChange{idx: c.idx, id: c.id, old: c.new, new: c.old}
}

func (c *nhChange) String() string {
	switch c.kind() {
	case created:
		return fmt.Sprintf("add next-hop %d (%s)", c.id, typeName(c.new.typ))
	case deleted:
		return fmt.Sprintf("delete next-hop %d", c.id)
	}
	return fmt.Sprintf("replace next-hop %d (%s)", c.id, typeName(c.new.typ))
}

func (c *nhChange) rank() int {
	group := (c.new != nil && c.new.typ == fastpath.NHECMP) || (c.new == nil && c.old.typ == fastpath.NHECMP)
	switch {
	case c.new != nil && group:
		return rankGroupSet
	case c.new != nil:
		return rankNHSet
	case group:
		return rankGroupDel
	}
	return rankNHDel
}

func (c *nhChange) ready(s *state) bool {
	if c.new == nil {
		return s.nhRoutes.get(c.id) == 0 && s.nhGroups.get(c.id) == 0
	}
	n := c.new
	if isMemberType(n.typ) {
		if _, ok := s.ports.get(n.port); !ok {
			return false
		}
	} else if s.nhGroups.get(c.id) > 0 {
		return false // an ECMP group still holds it: the group changes first
	}
	for _, m := range n.members {
		mn, ok := s.nhs.get(m)
		if !ok || !isMemberType(mn.typ) {
			return false
		}
	}
	return true
}

func (c *nhChange) apply(s *state) {
	if c.new == nil {
		s.delNH(c.id)
	} else {
		s.setNH(c.new)
	}
}

func (c *nhChange) exec(dp Dataplane, live *state) error {
	if c.new == nil {
		if err := dp.DelNextHop(c.id); err != nil {
			return err
		}
		live.delNH(c.id)
		return nil
	}
	n := c.new
	fn := fastpath.NextHop{
		Type: n.typ, DstMAC: n.dstMAC, Encap: n.encap, TunnelDst: n.tunDst, TunnelGW: n.tunGW,
		VNI: n.tag, Members: n.members,
	}
	if isMemberType(n.typ) {
		p, ok := live.ports.get(n.port)
		if !ok {
			return &fastpath.Error{Op: c.String(), Errno: einval, Msg: fmt.Sprintf("port %q does not exist", n.port)}
		}
		fn.Port = p.id
	}
	if err := dp.SetNextHop(c.id, fn); err != nil {
		return err
	}
	live.setNH(n)
	return nil
}

// ---- routes ---------------------------------------------------------------------

// routeChange is one route's change. Routes are not changes by themselves:
// they go in batches (routeBatch), one fast path call per VRF.
type routeChange struct {
	idx            int
	key            routeKey
	old, new       uint32
	hadOld, hasNew bool
}

func (c routeChange) inverse() routeChange {
	return routeChange{idx: c.idx, key: c.key, old: c.new, new: c.old, hadOld: c.hasNew, hasNew: c.hadOld}
}

func (c routeChange) String() string {
	if !c.hasNew {
		return fmt.Sprintf("delete route %s in VRF %d", c.key.prefix(), c.key.vrf)
	}
	return fmt.Sprintf("route %s in VRF %d to next-hop %d", c.key.prefix(), c.key.vrf, c.new)
}

// routeBatch is route changes (of one VRF once order has planned them)
// that the fast path applies in one call, UpdateRoutes4: all or none.
type routeBatch struct {
	rs []routeChange
}

func (c *routeBatch) op() int { return c.rs[0].idx }

// size is the number of routes changed.
func (c *routeBatch) size() int { return len(c.rs) }

func (c *routeBatch) inverse() change {
	inv := make([]routeChange, len(c.rs))
	for i, r := range c.rs {
		inv[len(c.rs)-1-i] = r.inverse()
	}
	return &routeBatch{rs: inv}
}

func (c *routeBatch) String() string {
	if len(c.rs) == 1 {
		return c.rs[0].String()
	}
	set := 0
	for _, r := range c.rs {
		if r.hasNew {
			set++
		}
	}
	vrf := fmt.Sprintf("VRF %d", c.rs[0].key.vrf)
	if slices.ContainsFunc(c.rs, func(r routeChange) bool { return r.key.vrf != c.rs[0].key.vrf }) {
		vrf = "several VRFs"
	}
	return fmt.Sprintf("%d routes in %s (%d set, %d deleted)", len(c.rs), vrf, set, len(c.rs)-set)
}

// rank is by the first route: diff makes batches of sets and batches of
// deletes (plannedRoutes mixes them, after ranks served).
func (c *routeBatch) rank() int {
	if c.rs[0].hasNew {
		return rankRouteSet
	}
	return rankRouteDel
}

func (c *routeBatch) ready(s *state) bool {
	ready, _ := c.split(s)
	return ready == c
}

// split parts the batch into the routes the fast path accepts in state s
// (a deletion, or a route to an existing next-hop) and the others, either
// nil if empty (ready is c itself if all are).
func (c *routeBatch) split(s *state) (ready, wait *routeBatch) {
	exists := map[uint32]bool{}
	ok := func(r routeChange) bool {
		if !r.hasNew {
			return true
		}
		e, known := exists[r.new]
		if !known {
			_, e = s.nhs.get(r.new)
			exists[r.new] = e
		}
		return e
	}
	n := 0
	for _, r := range c.rs {
		if ok(r) {
			n++
		}
	}
	switch n {
	case len(c.rs):
		return c, nil
	case 0:
		return nil, c
	}
	ready, wait = &routeBatch{rs: make([]routeChange, 0, n)}, &routeBatch{}
	for _, r := range c.rs {
		if ok(r) {
			ready.rs = append(ready.rs, r)
		} else {
			wait.rs = append(wait.rs, r)
		}
	}
	return ready, wait
}

func (c *routeBatch) apply(s *state) { s.applyRoutes(c.rs) }

// applyRefs is the batch's effect on the reference counts only: what
// order's passes need (no change's ready reads the route table).
func (c *routeBatch) applyRefs(s *state) {
	var refs routeRefs
	for _, r := range c.rs {
		refs.add(r)
	}
	refs.applyTo(s)
}

// exec programs the batch, of one VRF's IPv4 or IPv6 FIB, with one fast
// path call.
func (c *routeBatch) exec(dp Dataplane, live *state) error {
	k0 := c.rs[0].key
	for _, r := range c.rs {
		if r.key.table() != k0.table() {
			return &fastpath.Error{Op: c.String(), Errno: einval, Msg: "a route batch of several VRFs or families (a bug of the server's plan)"}
		}
	}
	nh := func(r routeChange) uint32 {
		if r.hasNew {
			return r.new
		}
		return fastpath.NoNextHop
	}
	var err error
	if k0.v6 {
		rs := make([]fastpath.Route6, len(c.rs))
		for i, r := range c.rs {
			rs[i] = fastpath.Route6{Prefix: r.key.prefix(), NextHop: nh(r)}
		}
		err = dp.UpdateRoutes6(k0.vrf, rs)
	} else {
		rs := make([]fastpath.Route4, len(c.rs))
		for i, r := range c.rs {
			rs[i] = fastpath.Route4{Prefix: r.key.prefix(), NextHop: nh(r)}
		}
		err = dp.UpdateRoutes4(k0.vrf, rs)
	}
	if err != nil {
		return err
	}
	c.apply(live)
	return nil
}

// bulkIndexRE finds which route of a batch the fast path refused
// (fp_route4_add_bulk's message: "route 12 of 50000 ...").
var bulkIndexRE = regexp.MustCompile(`\broute (\d+) of (\d+)\b`)

// culprit is the route that failed the batch, as far as the fast path's
// error says (else the batch's first).
func (c *routeBatch) culprit(err error) (int, string) {
	var fe *fastpath.Error
	if errors.As(err, &fe) {
		if m := bulkIndexRE.FindStringSubmatch(fe.Msg); m != nil {
			i, _ := strconv.Atoi(m[1])
			n, _ := strconv.Atoi(m[2])
			if n == len(c.rs) && i < n {
				return c.rs[i].idx, c.rs[i].String()
			}
		}
	}
	return c.op(), c.String()
}

// plannedRoutes splits the route batches order planned into one per VRF
// and family (one fast path FIB), in that order: each run of consecutive
// route batches in the plan (route changes between which nothing else
// happens) becomes one batch per FIB, its sets and deletes in the plan's
// order. Changes of different routes do not depend on each other, so a run
// may be regrouped.
func plannedRoutes(plan []change) []change {
	out := make([]change, 0, len(plan))
	for i := 0; i < len(plan); {
		if _, ok := plan[i].(*routeBatch); !ok {
			out = append(out, plan[i])
			i++
			continue
		}
		j := i
		count := map[uint32]int{}
		for ; j < len(plan); j++ {
			rb, ok := plan[j].(*routeBatch)
			if !ok {
				break
			}
			for _, r := range rb.rs {
				count[r.key.table()]++
			}
		}
		if j == i+1 && len(count) == 1 {
			out = append(out, plan[i]) // one batch of one VRF: as it is
			i = j
			continue
		}
		byFIB := make(map[uint32]*routeBatch, len(count))
		for fib, n := range count {
			byFIB[fib] = &routeBatch{rs: make([]routeChange, 0, n)}
		}
		for ; i < j; i++ {
			for _, r := range plan[i].(*routeBatch).rs {
				b := byFIB[r.key.table()]
				b.rs = append(b.rs, r)
			}
		}
		for _, fib := range slices.Sorted(maps.Keys(byFIB)) {
			out = append(out, byFIB[fib])
		}
	}
	return out
}

// ---- VNI and label maps ---------------------------------------------------------

type mapChange struct {
	idx            int
	label          bool // MPLS label, else VNI
	key            uint32
	old, new       uint16
	hadOld, hasNew bool
}

func (c *mapChange) op() int { return c.idx }
func (c *mapChange) inverse() change {
	return &mapChange{idx: c.idx, label: c.label, key: c.key, old: c.new, new: c.old, hadOld: c.hasNew, hasNew: c.hadOld}
}

func (c *mapChange) what() string {
	if c.label {
		return "label"
	}
	return "VNI"
}

func (c *mapChange) String() string {
	if !c.hasNew {
		return fmt.Sprintf("delete %s %d", c.what(), c.key)
	}
	return fmt.Sprintf("%s %d to VRF %d", c.what(), c.key, c.new)
}

func (c *mapChange) rank() int {
	if c.hasNew {
		return rankMapSet
	}
	return rankMapDel
}

func (c *mapChange) ready(*state) bool { return true }

func (c *mapChange) table(s *state) *table[uint32, uint16] {
	if c.label {
		return s.labels
	}
	return s.vnis
}

func (c *mapChange) apply(s *state) {
	if c.hasNew {
		c.table(s).set(c.key, c.new)
	} else {
		c.table(s).del(c.key)
	}
}

func (c *mapChange) exec(dp Dataplane, live *state) error {
	var err error
	switch {
	case c.label && c.hasNew:
		err = dp.SetLabel(c.key, c.new)
	case c.label:
		err = dp.DelLabel(c.key)
	case c.hasNew:
		err = dp.SetVNI(c.key, c.new)
	default:
		err = dp.DelVNI(c.key)
	}
	if err != nil {
		return err
	}
	c.apply(live)
	return nil
}

// ---- static neighbours -----------------------------------------------------------

type neighChange struct {
	idx      int
	ip       netip.Addr
	old, new net.HardwareAddr
}

func (c *neighChange) op() int { return c.idx }
func (c *neighChange) inverse() change {
	return &neighChange{idx: c.idx, ip: c.ip, old: c.new, new: c.old}
}

func (c *neighChange) String() string {
	if c.new == nil {
		return fmt.Sprintf("delete neighbour %s", c.ip)
	}
	return fmt.Sprintf("neighbour %s at %s", c.ip, c.new)
}

func (c *neighChange) rank() int         { return rankNeigh }
func (c *neighChange) ready(*state) bool { return true }

func (c *neighChange) apply(s *state) {
	if c.new == nil {
		s.neigh.del(c.ip)
	} else {
		s.neigh.set(c.ip, c.new)
	}
}

func (c *neighChange) exec(dp Dataplane, live *state) error {
	if c.new == nil {
		nd, ok := dp.(neighborDeleter)
		if !ok {
			return &fastpath.Error{Op: c.String(), Errno: enotsup, Msg: "the fast path cannot delete static neighbours yet"}
		}
		if err := nd.DelNeighbor(c.ip); err != nil {
			return err
		}
	} else if err := dp.SetNeighbor(c.ip, c.new); err != nil {
		return err
	}
	c.apply(live)
	return nil
}

// ---- the vRouter's VRF addresses --------------------------------------------------

// vrfAddrs are the vRouter's addresses in a VRF: v4 always, v6 when the
// VRF has IPv6 (netip.Addr{} otherwise).
type vrfAddrs struct{ v4, v6 netip.Addr }

func (a vrfAddrs) String() string {
	if a.v6.IsValid() {
		return a.v4.String() + " " + a.v6.String()
	}
	return a.v4.String()
}

type vrfAddrChange struct {
	idx      int
	vrf      uint16
	old, new vrfAddrs
}

func (c *vrfAddrChange) op() int { return c.idx }
func (c *vrfAddrChange) inverse() change {
	return &vrfAddrChange{idx: c.idx, vrf: c.vrf, old: c.new, new: c.old}
}

func (c *vrfAddrChange) String() string {
	if !c.new.v4.IsValid() {
		return fmt.Sprintf("clear VRF %d address", c.vrf)
	}
	return fmt.Sprintf("VRF %d address %s", c.vrf, c.new)
}

func (c *vrfAddrChange) rank() int {
	if c.new.v4.IsValid() {
		return rankVRFSet
	}
	return rankVRFDel
}

func (c *vrfAddrChange) ready(*state) bool { return true }

func (c *vrfAddrChange) apply(s *state) {
	if c.new.v4.IsValid() {
		s.vrfAddr.set(c.vrf, c.new)
	} else {
		s.vrfAddr.del(c.vrf)
	}
}

func (c *vrfAddrChange) exec(dp Dataplane, live *state) error {
	if err := dp.SetVRFAddress(c.vrf, c.new.v4); err != nil {
		return err
	}
	if c.new.v6 != c.old.v6 {
		if err := dp.SetVRFAddress6(c.vrf, c.new.v6); err != nil {
			// The IPv4 half is set: put it back so the live state is
			// the old one whole (the batch's undo starts from it).
			if undo := dp.SetVRFAddress(c.vrf, c.old.v4); undo != nil {
				return fmt.Errorf("%w (and restoring the IPv4 address: %v)", err, undo)
			}
			return err
		}
	}
	c.apply(live)
	return nil
}

// ---- diff and order ------------------------------------------------------------------

// diff lists the changes that take the state to the simulation's (a layer
// over it), each with the index of the last op on its key; the routes'
// come as two route batches (sets, deletes) in op order.
func (sm *simulation) diff() []change {
	base, sim, ops := sm.base, sm.v, sm.ops
	var out []change
	for name, s := range sim.ports.m {
		old, _ := base.ports.get(name)
		var nw *port
		if s.ok {
			nw = s.v
		}
		if (old == nil) != (nw == nil) || (old != nil && !old.same(nw)) {
			out = append(out, &portChange{idx: ops.port[name], name: name, old: old, new: nw})
		}
	}
	for id, s := range sim.nhs.m {
		old, _ := base.nhs.get(id)
		var nw *nextHop
		if s.ok {
			nw = s.v
		}
		if (old == nil) != (nw == nil) || (old != nil && !old.same(nw)) {
			out = append(out, &nhChange{idx: ops.nh[id], id: id, old: old, new: nw})
		}
	}
	nset := 0
	for _, r := range sm.routes {
		if r.hasNew {
			nset++
		}
	}
	switch {
	case len(sm.routes) == 0:
	case nset == len(sm.routes) || nset == 0:
		out = append(out, &routeBatch{rs: sm.routes})
	default:
		sets := &routeBatch{rs: make([]routeChange, 0, nset)}
		dels := &routeBatch{rs: make([]routeChange, 0, len(sm.routes)-nset)}
		for _, r := range sm.routes {
			if r.hasNew {
				sets.rs = append(sets.rs, r)
			} else {
				dels.rs = append(dels.rs, r)
			}
		}
		out = append(out, sets, dels)
	}
	for _, label := range []bool{false, true} {
		st, bt, idx := sim.vnis, base.vnis, ops.vni
		if label {
			st, bt, idx = sim.labels, base.labels, ops.label
		}
		for k, s := range st.m {
			old, had := bt.get(k)
			if had != s.ok || old != s.v {
				out = append(out, &mapChange{idx: idx[k], label: label, key: k, old: old, new: s.v, hadOld: had, hasNew: s.ok})
			}
		}
	}
	for ip, s := range sim.neigh.m {
		old, _ := base.neigh.get(ip)
		var nw net.HardwareAddr
		if s.ok {
			nw = s.v
		}
		if (old == nil) != (nw == nil) || !slices.Equal(old, nw) {
			out = append(out, &neighChange{idx: ops.neigh[ip], ip: ip, old: old, new: nw})
		}
	}
	for vrf, s := range sim.vrfAddr.m {
		old, _ := base.vrfAddr.get(vrf)
		var nw vrfAddrs
		if s.ok {
			nw = s.v
		}
		if old != nw {
			out = append(out, &vrfAddrChange{idx: ops.vrfAddr[vrf], vrf: vrf, old: old, new: nw})
		}
	}
	// Deterministic: by rank, then by the op that asked.
	slices.SortStableFunc(out, func(a, b change) int {
		if a.rank() != b.rank() {
			return a.rank() - b.rank()
		}
		return a.op() - b.op()
	})
	return out
}

// order finds an order in which the fast path accepts every change, by
// passes over the changes in rank order, each taking those that are ready.
// It fails (returning the changes left) only if no order exists, e.g. a
// tunnel moved to a new fabric port that can only be added once the old
// one, which the tunnel holds, is gone.
func order(base *state, changes []change) (plan, stuck []change) {
	sim := base.child()
	var pending, last []change
	for _, c := range changes {
		if c.rank() == rankNeigh {
			last = append(last, c) // after everything, whatever the passes
		} else {
			pending = append(pending, c)
		}
	}
	for len(pending) > 0 {
		var next []change
		progress := false
		for _, c := range pending {
			if rb, ok := c.(*routeBatch); ok {
				// The routes that are ready go in this pass, the others
				// wait; only reference counts are needed in sim.
				ready, wait := rb.split(sim)
				if ready != nil {
					ready.applyRefs(sim)
					plan = append(plan, ready)
					progress = true
				}
				if wait != nil {
					next = append(next, wait)
				}
				continue
			}
			if c.ready(sim) {
				c.apply(sim)
				plan = append(plan, c)
				progress = true
			} else {
				next = append(next, c)
			}
		}
		if !progress {
			return plan, next
		}
		pending = next
	}
	return append(plannedRoutes(plan), last...), nil
}

// size is how many objects a change changes (a route batch: its routes).
func size(c change) int {
	if rb, ok := c.(*routeBatch); ok {
		return rb.size()
	}
	return 1
}
