package apiserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/dpdk/fastpath"
	"github.com/filament-net/filament/internal/netparse"
)

const (
	einval  = syscall.EINVAL
	enotsup = syscall.ENOTSUP
)

// neighborDeleter is the fast path's planned DelNeighbor: when
// *fastpath.Dataplane has it, static neighbours can be deleted.
// TODO(fastpath): add (*fastpath.Dataplane).DelNeighbor(ip netip.Addr)
// error (unpin a static neighbour; keep it, as learnt, while tunnels use it).
type neighborDeleter interface {
	DelNeighbor(ip netip.Addr) error
}

// opIndex remembers which op last touched each key: changes are reported
// under it.
type opIndex struct {
	port    map[string]int
	nh      map[uint32]int
	route   map[routeKey]int // every route op, changing or not: one op per route
	vni     map[uint32]int
	label   map[uint32]int
	neigh   map[netip.Addr]int
	vrfAddr map[uint16]int
}

func newOpIndex() *opIndex {
	return &opIndex{port: map[string]int{}, nh: map[uint32]int{}, route: map[routeKey]int{},
		vni: map[uint32]int{}, label: map[uint32]int{}, neigh: map[netip.Addr]int{}, vrfAddr: map[uint16]int{}}
}

// opErr is a refused op.
type opErr struct {
	i    int // op index (len(ops) for the batch as a whole)
	code codes.Code
	msg  string // starts with the field path: "ops[3].route.prefix: ..."
}

// outcome counts what the ops found, for ApplyResponse and logs.
type outcome struct {
	created, updated, deleted, unchanged int
}

// simulation is a batch applied to a layer over the state. Phase one reads
// each op: its fields, its key (one op per object in a batch), what it
// changes from the current state. Phase two checks the references of what
// changes against the state the whole batch leads to, so a batch's ops may
// come in any order: the server orders the changes itself (see order).
type simulation struct {
	srv    *Server
	base   *state // the current state
	v      *state // base plus the batch
	ops    *opIndex
	errs   []opErr
	out    outcome
	keys   map[string]int // object -> op, for duplicates (routes: ops.route)
	checks []func()       // phase two
	// Routes, which come by the million, take a leaner path: their changes
	// are listed here in op order (not copied into the layer v, which only
	// gets their reference counts), and their next-hops are checked in
	// phase two from this list.
	routes    []routeChange
	routeRefs routeRefs // the routes' references, for v after phase one
	// routeErrs counts the routes' errors of each phase; only the first
	// maxBatchErrs of each are kept (they come in op order, so the first
	// maxBatchErrs of all are among them), the others counted in moreErrs.
	routeErrs [2]int
	moreErrs  int
	// touchedNeigh says the batch changed neighbours or tunnels: the
	// neighbour table's capacity is checked.
	touchedNeigh bool
}

func (sm *simulation) fail(i int, e *fieldErrs, code codes.Code) bool {
	if len(e.errs) == 0 {
		return false
	}
	for _, m := range e.errs {
		sm.errs = append(sm.errs, opErr{i, code, m})
	}
	return true
}

// claim takes an object for op i; a second op on it is refused.
func (sm *simulation) claim(i int, path, key string) bool {
	if j, dup := sm.keys[key]; dup {
		sm.errs = append(sm.errs, opErr{i, codes.InvalidArgument,
			fmt.Sprintf("%s: %s is also ops[%d]: one op per object in a batch", path, key, j)})
		return false
	}
	sm.keys[key] = i
	return true
}

// check queues a phase two check of op i.
func (sm *simulation) check(i int, f func(e *fieldErrs)) {
	sm.checks = append(sm.checks, func() {
		var e fieldErrs
		f(&e)
		sm.fail(i, &e, codes.InvalidArgument)
	})
}

// simulate validates a batch against the state plus the batch's effects.
func (s *Server) simulate(base *state, ops []*pb.Op) *simulation {
	sm := &simulation{srv: s, base: base, v: base.child(), ops: newOpIndex(), keys: map[string]int{}}
	nroutes := 0
	for _, op := range ops {
		if _, ok := op.GetObject().(*pb.Op_Route); ok {
			nroutes++
		}
	}
	if nroutes > 0 {
		sm.ops.route = make(map[routeKey]int, nroutes)
		sm.routes = make([]routeChange, 0, nroutes)
	}
	for i, op := range ops {
		if op == nil {
			sm.errs = append(sm.errs, opErr{i, codes.InvalidArgument, opPath(i) + ": empty op"})
			continue
		}
		switch op.Action {
		case pb.Action_ACTION_CREATE, pb.Action_ACTION_REPLACE, pb.Action_ACTION_DELETE:
		default:
			sm.errs = append(sm.errs, opErr{i, codes.InvalidArgument,
				fmt.Sprintf("%s.action: %v: must be ACTION_CREATE, ACTION_REPLACE or ACTION_DELETE", opPath(i), op.Action)})
			continue
		}
		if o, ok := op.Object.(*pb.Op_Route); ok {
			sm.route(i, op.Action, o.Route)
			continue
		}
		path := opPath(i)
		switch o := op.Object.(type) {
		case *pb.Op_Port:
			sm.port(i, path+".port", op.Action, o.Port)
		case *pb.Op_NextHop:
			sm.nextHop(i, path+".next_hop", op.Action, o.NextHop)
		case *pb.Op_Vni:
			if o.Vni == nil {
				sm.nilObject(i, path+".vni")
			} else {
				sm.mapOp(i, path+".vni", op.Action, false, o.Vni.Vni, o.Vni.Vrf)
			}
		case *pb.Op_Label:
			if o.Label == nil {
				sm.nilObject(i, path+".label")
			} else {
				sm.mapOp(i, path+".label", op.Action, true, o.Label.Label, o.Label.Vrf)
			}
		case *pb.Op_Neighbor:
			sm.neighbor(i, path+".neighbor", op.Action, o.Neighbor)
		case *pb.Op_VrfAddress:
			sm.vrfAddress(i, path+".vrf_address", op.Action, o.VrfAddress)
		default:
			sm.errs = append(sm.errs, opErr{i, codes.InvalidArgument,
				path + ": no object: set one of port, next_hop, route, vni, label, neighbor, vrf_address"})
		}
	}
	sm.routeRefs.applyTo(sm.v)
	for _, c := range sm.checks {
		c()
	}
	sm.checkRouteNextHops()
	if n := sm.v.ports.len(); n > fastpath.MaxPorts && n > sm.base.ports.len() {
		sm.errs = append(sm.errs, opErr{len(ops), codes.InvalidArgument,
			fmt.Sprintf("ops: %d ports: a dataplane has at most %d", n, fastpath.MaxPorts)})
	}
	if sm.touchedNeigh {
		if n := sm.v.neighborCount(); n > fastpath.MaxNeighbors {
			sm.errs = append(sm.errs, opErr{len(ops), codes.InvalidArgument, fmt.Sprintf(
				"ops: %d underlay neighbours (static ones and tunnel endpoints): the table holds %d", n, fastpath.MaxNeighbors)})
		}
	}
	slices.SortStableFunc(sm.errs, func(a, b opErr) int { return a.i - b.i })
	return sm
}

func opPath(i int) string { return "ops[" + strconv.Itoa(i) + "]" }

func routePath(i int) string { return opPath(i) + ".route" }

// refusal is the batch's refusal: its errors as one gRPC status.
func (sm *simulation) refusal() error { return refusal(sm.errs, sm.moreErrs) }

// nilObject refuses an op whose object is set but empty (a nil message).
func (sm *simulation) nilObject(i int, path string) {
	sm.errs = append(sm.errs, opErr{i, codes.InvalidArgument, path + ": empty"})
}

// verdict settles a create or replace of an object that exists (or not) in
// the current state with the same contents (or not): whether it changes
// anything, or is refused.
func (sm *simulation) verdict(i int, path string, act pb.Action, exists, same bool, what string) (change, ok bool) {
	switch {
	case exists && same:
		sm.out.unchanged++
		return false, true
	case exists && act == pb.Action_ACTION_CREATE:
		var e fieldErrs
		e.add(path, "%s", what)
		sm.fail(i, &e, codes.InvalidArgument)
		return false, false
	case exists:
		sm.out.updated++
	default:
		sm.out.created++
	}
	return true, true
}

func (sm *simulation) port(i int, path string, act pb.Action, p *pb.Port) {
	if p == nil {
		sm.nilObject(i, path)
		return
	}
	var e fieldErrs
	if act == pb.Action_ACTION_DELETE {
		checkPortName(&e, path+".name", p.Name)
		if sm.fail(i, &e, codes.InvalidArgument) || !sm.claim(i, path, fmt.Sprintf("port %q", p.Name)) {
			return
		}
		if _, ok := sm.base.ports.get(p.Name); !ok {
			sm.out.unchanged++
			return
		}
		sm.v.delPort(p.Name)
		sm.ops.port[p.Name] = i
		sm.out.deleted++
		sm.check(i, func(e *fieldErrs) {
			if sm.v.portRefs.get(p.Name) > 0 {
				e.add(path+".name", "port %q is used by next-hops %s: delete or repoint them too",
					p.Name, ids(sm.v.nhsUsingPort(p.Name)))
			}
		})
		return
	}
	np := sm.srv.portFromPB(&e, path, p)
	if sm.fail(i, &e, codes.InvalidArgument) || !sm.claim(i, path, fmt.Sprintf("port %q", p.Name)) {
		return
	}
	old, exists := sm.base.ports.get(np.name)
	if exists && act == pb.Action_ACTION_REPLACE && !old.same(np) {
		if old.devargs != np.devargs {
			e.add(path+".devargs", "cannot change (is %q): delete the port and create it again", old.devargs)
		}
		if old.kind != np.kind {
			e.add(path+".kind", "cannot change (is %s): delete the port and create it again", kindName(old.kind))
		}
		if old.rxq != np.rxq {
			e.add(path+".rx_queues", "cannot change (is %d): delete the port and create it again", old.rxq)
		}
		if old.kind == np.kind && np.kind != fastpath.PortPod && macString(old.mac) != macString(np.mac) {
			e.add(path+".mac", "a %s port's MAC cannot change (is %q): delete the port and create it again",
				kindName(np.kind), macString(old.mac))
		}
		if sm.fail(i, &e, codes.InvalidArgument) {
			return
		}
	}
	change, ok := sm.verdict(i, path, act, exists, exists && old.same(np),
		fmt.Sprintf("port %q exists with other contents (ACTION_REPLACE updates it)", np.name))
	if !change || !ok {
		return
	}
	if exists {
		np.id = old.id
	}
	sm.v.setPort(np)
	sm.ops.port[np.name] = i
	sm.check(i, func(e *fieldErrs) {
		v := sm.v
		if q := v.portByDevice(np.device(), np.name); q != nil {
			e.add(path+".devargs", "device %q is already port %q", np.device(), q.name)
		}
		if np.kind != fastpath.PortPod {
			if q := v.portOfKind(np.kind, np.name); q != nil {
				e.add(path+".kind", "there is one %s port per dataplane, and port %q is it", kindName(np.kind), q.name)
			}
		}
		// Only an MTU that a tunnel's overhead can take below IPv6's
		// minimum needs the walk over the next-hops.
		if exists && np.linkMTU() < ipv6MinMTU+maxEncapOverhead {
			var bad []string
			for _, id := range v.nhsUsingPort(np.name) {
				if why := v.short6(id); why != "" && v.carries6(id) {
					bad = append(bad, why)
				}
			}
			if len(bad) > 0 {
				more := ""
				if len(bad) > 1 {
					more = fmt.Sprintf(" (and %d more next-hops)", len(bad)-1)
				}
				e.add(path+".mtu", "%d: %s%s, and IPv6 routes use it: IPv6 needs an MTU of at least %d (RFC 8200)",
					np.linkMTU(), bad[0], more, ipv6MinMTU)
			}
		}
		if np.kind == fastpath.PortPod {
			if a, ok := v.vrfAddr.get(np.vrf); ok {
				for j, ip := range np.ipv4 {
					if ip == a.v4 {
						e.add(fmt.Sprintf("%s.ipv4[%d]", path, j), "%s is the vRouter's address in VRF %d", ip, np.vrf)
					}
				}
				for j, ip := range np.ipv6 {
					if ip == a.v6 {
						e.add(fmt.Sprintf("%s.ipv6[%d]", path, j), "%s is the vRouter's IPv6 address in VRF %d", ip, np.vrf)
					}
				}
			}
		}
	})
}

func (sm *simulation) nextHop(i int, path string, act pb.Action, n *pb.NextHop) {
	if n == nil {
		sm.nilObject(i, path)
		return
	}
	var e fieldErrs
	if act == pb.Action_ACTION_DELETE {
		sm.srv.checkNHID(&e, path+".id", n.Id)
		if sm.fail(i, &e, codes.InvalidArgument) || !sm.claim(i, path, fmt.Sprintf("next-hop %d", n.Id)) {
			return
		}
		old, ok := sm.base.nhs.get(n.Id)
		if !ok {
			sm.out.unchanged++
			return
		}
		if _, ok := old.neighbor(); ok {
			sm.touchedNeigh = true
		}
		sm.v.delNH(n.Id)
		sm.ops.nh[n.Id] = i
		sm.out.deleted++
		sm.check(i, func(e *fieldErrs) {
			r, g := sm.v.nhRoutes.get(n.Id), sm.v.nhGroups.get(n.Id)
			var users []string
			if r > 0 {
				users = append(users, fmt.Sprintf("%d routes", r))
			}
			if g > 0 {
				users = append(users, "ECMP groups "+ids(sm.v.groupsOf(n.Id)))
			}
			if len(users) > 0 {
				e.add(path+".id", "next-hop %d is used by %s: repoint or delete them too", n.Id, strings.Join(users, " and "))
			}
		})
		return
	}
	nn := sm.srv.nextHopFromPB(&e, path, n)
	for j, m := range n.Members {
		if m == n.Id {
			e.add(fmt.Sprintf("%s.members[%d]", path, j), "a group cannot contain itself")
		}
	}
	if sm.fail(i, &e, codes.InvalidArgument) || !sm.claim(i, path, fmt.Sprintf("next-hop %d", n.Id)) {
		return
	}
	old, exists := sm.base.nhs.get(nn.id)
	change, ok := sm.verdict(i, path, act, exists, exists && old.same(nn),
		fmt.Sprintf("next-hop %d exists with other contents (ACTION_REPLACE replaces it)", nn.id))
	if !change || !ok {
		return
	}
	if _, ok := nn.neighbor(); ok {
		sm.touchedNeigh = true
	}
	if exists {
		if _, ok := old.neighbor(); ok {
			sm.touchedNeigh = true
		}
	}
	sm.v.setNH(nn)
	sm.ops.nh[nn.id] = i
	sm.check(i, func(e *fieldErrs) {
		v := sm.v
		if isMemberType(nn.typ) {
			p, ok := v.ports.get(nn.port)
			switch {
			case !ok:
				e.add(path+".port", "%q is not a port", nn.port)
			case nn.typ == fastpath.NHTunnel && p.kind != fastpath.PortFabric:
				e.add(path+".port", "%q is a %s port: tunnels leave by the fabric port", nn.port, kindName(p.kind))
			case nn.typ == fastpath.NHTunnel && nn.tunDst.Is6() && len(p.ipv6) == 0:
				// the outer header's source is the fabric's IPv6 address
				e.add(path+".tunnel_dst", "%s: an IPv6 underlay needs the fabric port %q to have an IPv6 address (ipv6)", nn.tunDst, nn.port)
			}
		} else if v.nhGroups.get(nn.id) > 0 {
			e.add(path+".type", "next-hop %d is a member of ECMP groups %s: it must stay an interface or tunnel next-hop",
				nn.id, ids(v.groupsOf(nn.id)))
		}
		if why := v.short6(nn.id); why != "" && v.carries6(nn.id) {
			field := ".port"
			if nn.typ == fastpath.NHECMP {
				field = ".members"
			}
			e.add(path+field, "%s, and IPv6 routes use it: IPv6 needs an MTU of at least %d (RFC 8200)", why, ipv6MinMTU)
		}
		for j, m := range nn.members {
			mn, ok := v.nhs.get(m)
			switch {
			case m == nn.id:
			case !ok:
				e.add(fmt.Sprintf("%s.members[%d]", path, j), "next-hop %d does not exist", m)
			case !isMemberType(mn.typ):
				e.add(fmt.Sprintf("%s.members[%d]", path, j),
					"next-hop %d is a %s next-hop: members must be interface or tunnel next-hops", m, typeName(mn.typ))
			}
		}
	})
}

// route reads a route op. It builds no path or message unless the op is
// refused: a batch may hold a million.
func (sm *simulation) route(i int, act pb.Action, r *pb.Route) {
	if r == nil {
		sm.nilObject(i, routePath(i))
		return
	}
	p, err := netparse.Prefix(r.Prefix)
	del := act == pb.Action_ACTION_DELETE
	if err != nil || r.Vrf >= sm.srv.limits.VRFs || (!del && r.NextHop >= sm.srv.limits.NextHops) {
		var e fieldErrs
		path := routePath(i)
		sm.srv.checkVRF(&e, path+".vrf", r.Vrf)
		if err != nil {
			e.add(path+".prefix", "%v", err)
		}
		if !del {
			sm.srv.checkNHID(&e, path+".next_hop", r.NextHop)
		}
		sm.routeFail(0, i, e.errs...)
		return
	}
	k := newRouteKey(uint16(r.Vrf), p)
	if j, dup := sm.ops.route[k]; dup {
		sm.routeFail(0, i, fmt.Sprintf("%s: route %s in VRF %d is also ops[%d]: one op per object in a batch",
			routePath(i), p, r.Vrf, j))
		return
	}
	sm.ops.route[k] = i
	old, exists := sm.base.routes.get(k)
	c := routeChange{idx: i, key: k, old: old, hadOld: exists, new: r.NextHop, hasNew: !del}
	switch {
	case del && !exists:
		sm.out.unchanged++
		return
	case del:
		sm.out.deleted++
		c.new = 0
	case exists && old == r.NextHop:
		sm.out.unchanged++
		return
	case exists && act == pb.Action_ACTION_CREATE:
		sm.routeFail(0, i, fmt.Sprintf("%s: %s in VRF %d exists with next-hop %d (ACTION_REPLACE repoints it)",
			routePath(i), p, r.Vrf, old))
		return
	case exists:
		sm.out.updated++
	default:
		sm.out.created++
	}
	sm.routes = append(sm.routes, c)
	sm.routeRefs.add(c)
}

// routeFail records errors of route op i found in phase (0 or 1: phase
// two's next-hop check).
func (sm *simulation) routeFail(phase, i int, msgs ...string) {
	for _, m := range msgs {
		if sm.routeErrs[phase] < maxBatchErrs {
			sm.errs = append(sm.errs, opErr{i, codes.InvalidArgument, m})
		} else {
			sm.moreErrs++
		}
		sm.routeErrs[phase]++
	}
}

// checkRouteNextHops is phase two for routes: each route's next-hop exists
// in the state the batch leads to, and an IPv6 route's sends IPv6's
// minimum MTU.
func (sm *simulation) checkRouteNextHops() {
	exists := map[uint32]bool{}
	short6 := map[uint32]string{}
	for _, c := range sm.routes {
		if !c.hasNew {
			continue
		}
		ok, known := exists[c.new]
		if !known {
			_, ok = sm.v.nhs.get(c.new)
			exists[c.new] = ok
		}
		if !ok {
			sm.routeFail(1, c.idx, fmt.Sprintf("%s.next_hop: next-hop %d does not exist", routePath(c.idx), c.new))
			continue
		}
		if !c.key.v6 {
			continue
		}
		why, known := short6[c.new]
		if !known {
			why = sm.v.short6(c.new)
			short6[c.new] = why
		}
		if why != "" {
			sm.routeFail(1, c.idx, fmt.Sprintf("%s.next_hop: %s: IPv6 needs an MTU of at least %d (RFC 8200)",
				routePath(c.idx), why, ipv6MinMTU))
		}
	}
}

// mapOp is a VNI or label -> VRF op.
func (sm *simulation) mapOp(i int, path string, act pb.Action, label bool, key, vrf uint32) {
	var e fieldErrs
	what, field, t, bt, idx := "VNI", "vni", sm.v.vnis, sm.base.vnis, sm.ops.vni
	if label {
		what, field, t, bt, idx = "label", "label", sm.v.labels, sm.base.labels, sm.ops.label
		if key < minLabel || key > maxLabel {
			e.add(path+"."+field, "%d out of range %d..%d", key, minLabel, maxLabel)
		}
	} else if key > maxVNI {
		e.add(path+"."+field, "%d out of range 0..%d", key, maxVNI)
	}
	if act != pb.Action_ACTION_DELETE {
		sm.srv.checkVRF(&e, path+".vrf", vrf)
	}
	if sm.fail(i, &e, codes.InvalidArgument) || !sm.claim(i, path, fmt.Sprintf("%s %d", what, key)) {
		return
	}
	old, exists := bt.get(key)
	if act == pb.Action_ACTION_DELETE {
		if !exists {
			sm.out.unchanged++
			return
		}
		t.del(key)
		sm.out.deleted++
		idx[key] = i
		return
	}
	change, ok := sm.verdict(i, path, act, exists, exists && uint32(old) == vrf,
		fmt.Sprintf("%s %d exists, mapped to VRF %d (ACTION_REPLACE remaps it)", what, key, old))
	if !change || !ok {
		return
	}
	t.set(key, uint16(vrf))
	idx[key] = i
}

func (sm *simulation) neighbor(i int, path string, act pb.Action, n *pb.Neighbor) {
	if n == nil {
		sm.nilObject(i, path)
		return
	}
	var e fieldErrs
	ip, err := netparse.HostIP(n.Ip)
	if err != nil {
		e.add(path+".ip", "%v", err)
	}
	var mac net.HardwareAddr
	if act != pb.Action_ACTION_DELETE {
		if mac, err = netparse.UnicastMAC(n.Mac); err != nil {
			e.add(path+".mac", "%v", err)
		}
	}
	if sm.fail(i, &e, codes.InvalidArgument) || !sm.claim(i, path, fmt.Sprintf("neighbour %s", ip)) {
		return
	}
	old, exists := sm.base.neigh.get(ip)
	if act == pb.Action_ACTION_DELETE {
		if !exists {
			sm.out.unchanged++
			return
		}
		if _, ok := sm.srv.dp.(neighborDeleter); !ok {
			// TODO(fastpath): DelNeighbor; until then refused whole.
			e.add(path, "deleting static neighbour %s needs the fast path's DelNeighbor, which this build does not have", ip)
			sm.fail(i, &e, codes.Unimplemented)
			return
		}
		sm.v.neigh.del(ip)
		sm.out.deleted++
	} else {
		change, ok := sm.verdict(i, path, act, exists, exists && slices.Equal(old, mac),
			fmt.Sprintf("neighbour %s exists at %s (ACTION_REPLACE changes it)", ip, old))
		if !change || !ok {
			return
		}
		sm.v.neigh.set(ip, mac)
	}
	sm.touchedNeigh = true
	sm.ops.neigh[ip] = i
}

func (sm *simulation) vrfAddress(i int, path string, act pb.Action, a *pb.VrfAddress) {
	if a == nil {
		sm.nilObject(i, path)
		return
	}
	var e fieldErrs
	sm.srv.checkVRF(&e, path+".vrf", a.Vrf)
	var addr vrfAddrs
	if act != pb.Action_ACTION_DELETE {
		var err error
		switch addr.v4, err = netparse.HostIPv4(a.Address); {
		case a.Address == "":
			e.add(path+".address", "required: the vRouter's IPv4 address in the VRF (the pods' gateway)")
		case err != nil:
			e.add(path+".address", "%v", err)
		case addr.v4.IsLoopback():
			e.add(path+".address", "%s is a loopback address: need a unicast host address", addr.v4)
		}
		if a.Address6 != "" {
			switch addr.v6, err = netparse.HostIPv6(a.Address6); {
			case err != nil:
				e.add(path+".address6", "%v", err)
			case addr.v6.IsLoopback():
				e.add(path+".address6", "%s is a loopback address: need a unicast host address", addr.v6)
			}
		}
	}
	if sm.fail(i, &e, codes.InvalidArgument) || !sm.claim(i, path, fmt.Sprintf("the address of VRF %d", a.Vrf)) {
		return
	}
	vrf := uint16(a.Vrf)
	old, exists := sm.base.vrfAddr.get(vrf)
	if act == pb.Action_ACTION_DELETE {
		if !exists {
			sm.out.unchanged++
			return
		}
		sm.v.vrfAddr.del(vrf)
		sm.out.deleted++
		sm.ops.vrfAddr[vrf] = i
		return
	}
	change, ok := sm.verdict(i, path, act, exists, exists && old == addr,
		fmt.Sprintf("VRF %d has address %s (ACTION_REPLACE changes it)", vrf, old))
	if !change || !ok {
		return
	}
	sm.v.vrfAddr.set(vrf, addr)
	sm.ops.vrfAddr[vrf] = i
	sm.check(i, func(e *fieldErrs) {
		sm.v.ports.each(func(name string, p *port) {
			if p.kind != fastpath.PortPod || p.vrf != vrf {
				return
			}
			if slices.Contains(p.ipv4, addr.v4) {
				e.add(path+".address", "%s is the address of pod port %q in VRF %d", addr.v4, name, vrf)
			}
			if addr.v6.IsValid() && slices.Contains(p.ipv6, addr.v6) {
				e.add(path+".address6", "%s is the address of pod port %q in VRF %d", addr.v6, name, vrf)
			}
		})
	})
}

func ids(l []uint32) string {
	s := make([]string, len(l))
	for i, v := range l {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, ", ")
}

// refusal turns a simulation's errors (and more not kept) into one gRPC
// status: the first error's code, at most maxBatchErrs messages.
func refusal(errs []opErr, more int) error {
	msgs := make([]string, 0, maxBatchErrs+1)
	for i, e := range errs {
		if i == maxBatchErrs {
			break
		}
		msgs = append(msgs, e.msg)
	}
	if n := len(errs) + more - len(msgs); n > 0 {
		msgs = append(msgs, fmt.Sprintf("(and %d more)", n))
	}
	return status.Error(errs[0].code, "batch refused, nothing changed: "+strings.Join(msgs, "; "))
}

// codeOf maps a fast path error to a gRPC code.
func codeOf(err error) codes.Code {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.ENOMEM), errors.Is(err, syscall.ENOBUFS):
		return codes.ResourceExhausted
	case errors.Is(err, syscall.EINVAL):
		return codes.InvalidArgument
	case errors.Is(err, syscall.ENOENT):
		return codes.NotFound
	case errors.Is(err, syscall.EBUSY):
		return codes.FailedPrecondition
	case errors.Is(err, syscall.EEXIST):
		return codes.AlreadyExists
	case errors.Is(err, syscall.ENOTSUP):
		return codes.Unimplemented
	case errors.Is(err, syscall.ENODEV):
		var fe *fastpath.Error
		if errors.As(err, &fe) && fe.Msg == "dataplane closed" {
			return codes.Unavailable
		}
		return codes.FailedPrecondition // a device that cannot be probed
	}
	return codes.Internal
}
