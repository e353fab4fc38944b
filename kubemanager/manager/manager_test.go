package manager

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/filament-net/filament/kubemanager/apis/v1alpha1"
	"github.com/filament-net/filament/kubemanager/ipam"
	"github.com/filament-net/filament/kubemanager/ports"
)

func mkNamespace(t *testing.T, name string, isolated bool) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if isolated {
		ns.Annotations = map[string]string{"filament.dev/isolated": "true"}
	}
	if _, err := kube.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func mkNode(t *testing.T, name string) {
	t.Helper()
	_, err := kube.CoreV1().Nodes().Create(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

func podObj(ns, name, node string, hostNetwork bool) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{NodeName: node, HostNetwork: hostNetwork,
			Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
}

func mkPod(t *testing.T, ns, name, node string, hostNetwork bool) *corev1.Pod {
	t.Helper()
	p, err := kube.CoreV1().Pods(ns).Create(context.Background(), podObj(ns, name, node, hostNetwork), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// mkPods creates n pods at once (16 clients in parallel).
func mkPods(t *testing.T, ns, prefix, node string, n int) {
	t.Helper()
	if err := createPods(ns, prefix, node, n); err != nil {
		t.Fatal(err)
	}
}

func createPods(ns, prefix, node string, n int) error {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				_, err := kube.CoreV1().Pods(ns).Create(context.Background(), podObj(ns, fmt.Sprintf("%s-%d", prefix, i), node, false), metav1.CreateOptions{})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	return <-errs // nil if none
}

func deletePod(t *testing.T, ns, name string) {
	t.Helper()
	zero := int64(0)
	if err := kube.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
}

// poll calls cond every 20 ms until it is true or timeout passes.
func poll(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v (%s)", what, timeout, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func allocated(p *v1alpha1.Port) bool {
	return meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionAllocated)
}

// waitPort waits for pod's Port to be Allocated for its uid.
func waitPort(t *testing.T, pod *corev1.Pod) *v1alpha1.Port {
	t.Helper()
	var port *v1alpha1.Port
	poll(t, 30*time.Second, "port of "+pod.Name, func() (bool, string) {
		p, err := crd.Ports.Get(context.Background(), pod.Namespace, ports.PortName(pod.Name))
		if err != nil {
			return false, err.Error()
		}
		port = p
		return p.Spec.Pod.UID == string(pod.UID) && allocated(p), fmt.Sprintf("%+v", p.Status)
	})
	return port
}

func portsIn(t *testing.T, ns string) []v1alpha1.Port {
	t.Helper()
	l, err := crd.Ports.List(context.Background(), ns, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

// claims reads every address claim of network from the API server (the
// block ConfigMaps), by owner namespace.
func claims(t *testing.T, network, ownerNS string) map[string]string {
	t.Helper()
	l, err := kube.CoreV1().ConfigMaps(systemNS).List(context.Background(), metav1.ListOptions{LabelSelector: ipam.LabelNetwork + "=" + network})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{} // block/offset -> owner
	for _, cm := range l.Items {
		for k, v := range cm.Data {
			if strings.HasPrefix(v, ownerNS+"/") {
				out[cm.Name+"/"+k] = v
			}
		}
	}
	return out
}

func metricValue(t *testing.T, c prometheus.Collector, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue next
				}
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func TestPodToPort(t *testing.T) {
	ctx := context.Background()
	mkNode(t, "node-a")
	mkNamespace(t, "t-basic", false)
	r := startManager(t, "km", time.Minute)

	// The default network, from the flags.
	var vn *v1alpha1.VirtualNetwork
	poll(t, 30*time.Second, "default network", func() (bool, string) {
		var err error
		vn, err = crd.VirtualNetworks.Get(ctx, "", "default")
		return err == nil, fmt.Sprint(err)
	})
	if len(vn.Spec.Subnets) != 2 || vn.Spec.Subnets[0].CIDR != "10.244.0.0/16" || vn.Spec.Subnets[1].CIDR != "fd00:244::/64" || vn.Spec.VNI != 1 {
		t.Fatalf("default network %+v", vn.Spec)
	}

	host := mkPod(t, "t-basic", "hostnet", "node-a", true)
	unscheduled := mkPod(t, "t-basic", "pending", "", false)
	a := mkPod(t, "t-basic", "a", "node-a", false)
	b := mkPod(t, "t-basic", "b", "node-a", false)
	pa, pb := waitPort(t, a), waitPort(t, b)
	for _, p := range []*v1alpha1.Port{pa, pb} {
		if len(p.Spec.IPs) != 2 || p.Spec.Node != "node-a" || p.Spec.Network != "default" || p.Spec.VNI != 1 || p.Spec.Interface != "eth0" {
			t.Errorf("port %s: %+v", p.Name, p.Spec)
		}
		v4, v6 := netip.MustParseAddr(p.Spec.IPs[0]), netip.MustParseAddr(p.Spec.IPs[1])
		if !netip.MustParsePrefix("10.244.0.0/16").Contains(v4) || !netip.MustParsePrefix("fd00:244::/64").Contains(v6) {
			t.Errorf("port %s: addresses %v outside the subnets", p.Name, p.Spec.IPs)
		}
		if p.Spec.MAC != ports.MAC(v4) {
			t.Errorf("port %s: MAC %s, want %s", p.Name, p.Spec.MAC, ports.MAC(v4))
		}
		if len(p.OwnerReferences) != 1 || p.OwnerReferences[0].Kind != "Pod" {
			t.Errorf("port %s: owner references %+v", p.Name, p.OwnerReferences)
		}
	}
	if pa.Spec.IPs[0] == pb.Spec.IPs[0] || pa.Spec.IPs[1] == pb.Spec.IPs[1] {
		t.Fatalf("two pods share an address: %v %v", pa.Spec.IPs, pb.Spec.IPs)
	}
	t.Logf("a: %v %s, b: %v %s", pa.Spec.IPs, pa.Spec.MAC, pb.Spec.IPs, pb.Spec.MAC)
	if raw, err := kube.CoreV1().RESTClient().Get().AbsPath("/apis/filament.dev/v1alpha1/namespaces/t-basic/ports/" + pa.Name).DoRaw(ctx); err == nil {
		t.Logf("a Port on the wire (JSON, with managedFields): %d bytes", len(raw))
	}

	// Bind the pending pod (what the scheduler does): it gets its Port.
	if err := kube.CoreV1().Pods("t-basic").Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "pending"},
		Target: corev1.ObjectReference{Kind: "Node", Name: "node-a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	unscheduled, _ = kube.CoreV1().Pods("t-basic").Get(ctx, "pending", metav1.GetOptions{})
	waitPort(t, unscheduled)
	// The hostNetwork pod was queued before all of them and needs no API
	// call: by now it has been through, and has no Port.
	poll(t, 10*time.Second, "ports queue drained", func() (bool, string) {
		v, _ := metricValue(t, r.m.metrics.Collectors()[2], "filament_kube_manager_queue_depth", map[string]string{"controller": "ports"})
		return v == 0, fmt.Sprint(v)
	})
	if _, err := crd.Ports.Get(ctx, "t-basic", ports.PortName(host.Name)); !apierrors.IsNotFound(err) {
		t.Errorf("hostNetwork pod's port: %v, want not found", err)
	}
	if n := len(portsIn(t, "t-basic")); n != 3 {
		t.Errorf("%d ports in t-basic, want 3", n)
	}
	if used, ok := metricValue(t, r.m.alloc, "filament_kube_manager_ipam_used_addresses", map[string]string{"network": "default", "subnet": "10.244.0.0/16"}); !ok || used < 3 {
		t.Errorf("ipam used %v %v, want >= 3", used, ok)
	}
	if n, err := testutil.GatherAndCount(prometheusRegistry(t, r.m), "filament_kube_manager_reconcile_seconds"); err != nil || n == 0 {
		t.Errorf("reconcile latency histogram: %d series, %v", n, err)
	}

	// Delete a: its Port goes and its claims are released (in the API
	// server's blocks).
	deletePod(t, "t-basic", "a")
	poll(t, 30*time.Second, "a's port deleted", func() (bool, string) {
		_, err := crd.Ports.Get(ctx, "t-basic", pa.Name)
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	poll(t, 10*time.Second, "a's claims released", func() (bool, string) {
		c := claims(t, "default", "t-basic")
		for _, o := range c {
			if strings.HasSuffix(o, string(a.UID)) {
				return false, fmt.Sprint(c)
			}
		}
		return len(c) == 4, fmt.Sprint(c) // b and pending, two families each
	})

	// A new pod of the same name (another uid) gets a new Port, not a's.
	deletePod(t, "t-basic", "b")
	b2 := mkPod(t, "t-basic", "b", "node-a", false)
	pb2 := waitPort(t, b2)
	if pb2.UID == pb.UID || pb2.Spec.Pod.UID != string(b2.UID) {
		t.Errorf("b's second pod got the first one's port: %+v", pb2)
	}
}

func prometheusRegistry(t *testing.T, m *Manager) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m.Collectors()...)
	return reg
}

// checkDistinct fails if two Ports of the list share an address, and
// returns the addresses.
func checkDistinct(t *testing.T, list []v1alpha1.Port) map[string]string {
	t.Helper()
	seen := map[string]string{}
	for _, p := range list {
		for _, ip := range p.Spec.IPs {
			if other, dup := seen[ip]; dup {
				t.Errorf("address %s on %s and %s", ip, other, p.Name)
			}
			seen[ip] = p.Name
		}
	}
	return seen
}

// waitAllocated waits until ns has n Ports, all Allocated.
func waitAllocated(t *testing.T, ns string, n int, timeout time.Duration) []v1alpha1.Port {
	t.Helper()
	var list []v1alpha1.Port
	poll(t, timeout, fmt.Sprintf("%d allocated ports in %s", n, ns), func() (bool, string) {
		list = portsIn(t, ns)
		done := 0
		for i := range list {
			if allocated(&list[i]) {
				done++
			}
		}
		return done == n && len(list) == n, fmt.Sprintf("%d ports, %d allocated", len(list), done)
	})
	return list
}

// checkNoLeak: the claims of ns's pods are exactly their Ports' addresses.
func checkNoLeak(t *testing.T, ns string, list []v1alpha1.Port) {
	t.Helper()
	want := map[string]bool{}
	for _, p := range list {
		want[p.Spec.Pod.UID] = true
	}
	c := claims(t, "default", ns)
	perUID := map[string]int{}
	for _, o := range c {
		uid := o[strings.LastIndex(o, "/")+1:]
		if !want[uid] {
			t.Errorf("claim of %s, which has no Port", o)
		}
		perUID[uid]++
	}
	for uid := range want {
		if perUID[uid] != 2 {
			t.Errorf("pod %s holds %d claims, want 2 (one per family)", uid, perUID[uid])
		}
	}
}

func TestFiveHundredPods(t *testing.T) {
	mkNode(t, "node-a")
	mkNamespace(t, "t-bulk", false)
	startManager(t, "km", time.Minute)
	start := time.Now()
	mkPods(t, "t-bulk", "p", "node-a", 500)
	created := time.Since(start)
	list := waitAllocated(t, "t-bulk", 500, 2*time.Minute)
	t.Logf("500 pods: created in %v, all 500 Ports allocated %v after the first create", created.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if got := len(checkDistinct(t, list)); got != 1000 {
		t.Errorf("%d distinct addresses, want 1000 (500 x 2 families)", got)
	}
	checkNoLeak(t, "t-bulk", list)
}

// A kube-manager stopped in the middle of 500 allocations and started
// again: no address twice, no claim without its Port.
func TestRestartMidway(t *testing.T) {
	mkNode(t, "node-a")
	mkNamespace(t, "t-restart", false)
	first := startManager(t, "km-1", time.Minute)
	created := make(chan error, 1)
	go func() { created <- createPods("t-restart", "p", "node-a", 500) }()
	poll(t, time.Minute, "150 ports", func() (bool, string) {
		n := len(portsIn(t, "t-restart"))
		return n >= 150, fmt.Sprint(n)
	})
	first.stop()
	mid := len(portsIn(t, "t-restart"))
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	startManager(t, "km-2", time.Minute)
	list := waitAllocated(t, "t-restart", 500, 2*time.Minute)
	t.Logf("stopped with %d of 500 ports made; the second term finished them", mid)
	if got := len(checkDistinct(t, list)); got != 1000 {
		t.Errorf("%d distinct addresses, want 1000", got)
	}
	checkNoLeak(t, "t-restart", list)
}

// Two kube-managers at once (two leaders for a moment, in the extreme):
// the blocks' optimistic concurrency keeps every address on one pod; the
// sweep releases the second claim a pod may get from the race.
func TestTwoWritersAtOnce(t *testing.T) {
	mkNode(t, "node-a")
	mkNamespace(t, "t-two", false)
	startManager(t, "km-x", 500*time.Millisecond)
	startManager(t, "km-y", 500*time.Millisecond)
	mkPods(t, "t-two", "p", "node-a", 200)
	list := waitAllocated(t, "t-two", 200, 2*time.Minute)
	if got := len(checkDistinct(t, list)); got != 400 {
		t.Errorf("%d distinct addresses, want 400", got)
	}
	poll(t, 30*time.Second, "claims equal to ports", func() (bool, string) {
		n := len(claims(t, "default", "t-two"))
		return n == 400, fmt.Sprint(n)
	})
	checkNoLeak(t, "t-two", portsIn(t, "t-two"))
}

// finalize removes a deleted namespace's finalizer, as the namespace
// controller (absent here) would once its content is gone.
func finalize(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	if err := kube.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ns, err := kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns.Spec.Finalizers = nil
	if _, err := kube.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestIsolatedNamespace(t *testing.T) {
	ctx := context.Background()
	mkNode(t, "node-a")
	mkNamespace(t, "t-iso1", true)
	mkNamespace(t, "t-iso2", true)
	startManager(t, "km", time.Minute)
	vns := map[string]*v1alpha1.VirtualNetwork{}
	for _, ns := range []string{"t-iso1", "t-iso2"} {
		poll(t, 30*time.Second, "network of "+ns, func() (bool, string) {
			vn, err := crd.VirtualNetworks.Get(ctx, "", "ns-"+ns)
			vns[ns] = vn
			return err == nil, fmt.Sprint(err)
		})
		vn := vns[ns]
		if vn.Spec.Isolation != "Namespace" || vn.Spec.Namespace != ns || len(vn.Spec.Subnets) != 1 || vn.Spec.VNI < 4096 {
			t.Errorf("network of %s: %+v", ns, vn.Spec)
		}
		if !netip.MustParsePrefix("10.128.0.0/16").Contains(netip.MustParsePrefix(vn.Spec.Subnets[0].CIDR).Addr()) || !strings.HasSuffix(vn.Spec.Subnets[0].CIDR, "/29") {
			t.Errorf("network of %s: subnet %s not a /29 of the pool", ns, vn.Spec.Subnets[0].CIDR)
		}
	}
	if a, b := vns["t-iso1"].Spec, vns["t-iso2"].Spec; a.Subnets[0].CIDR == b.Subnets[0].CIDR || a.VNI == b.VNI {
		t.Fatalf("two isolated namespaces share a subnet or VNI: %+v %+v", a, b)
	}
	subnet := netip.MustParsePrefix(vns["t-iso1"].Spec.Subnets[0].CIDR)

	// A /29 holds 5 pods (network, gateway and broadcast left out).
	var pods []*corev1.Pod
	for i := range 5 {
		pods = append(pods, mkPod(t, "t-iso1", fmt.Sprintf("p%d", i), "node-a", false))
	}
	seen := map[string]bool{}
	for _, p := range pods {
		port := waitPort(t, p)
		if port.Spec.Network != "ns-t-iso1" || len(port.Spec.IPs) != 1 || !subnet.Contains(netip.MustParseAddr(port.Spec.IPs[0])) || port.Spec.VNI != vns["t-iso1"].Spec.VNI {
			t.Errorf("port %s: %+v", port.Name, port.Spec)
		}
		seen[port.Spec.IPs[0]] = true
	}
	if len(seen) != 5 {
		t.Fatalf("5 pods, %d addresses", len(seen))
	}
	// The sixth waits for an address; deleting a pod frees one for it.
	sixth := mkPod(t, "t-iso1", "p5", "node-a", false)
	gone := waitPort(t, pods[2])
	deletePod(t, "t-iso1", "p2")
	p6 := waitPort(t, sixth)
	if p6.Spec.IPs[0] != gone.Spec.IPs[0] {
		t.Errorf("the sixth pod got %v, want the released %v", p6.Spec.IPs, gone.Spec.IPs)
	}

	// The namespace goes: once its pods are gone too, so is its network
	// and its address blocks.
	for _, p := range []string{"p0", "p1", "p3", "p4", "p5"} {
		deletePod(t, "t-iso1", p)
	}
	finalize(t, "t-iso1")
	poll(t, 30*time.Second, "network ns-t-iso1 deleted", func() (bool, string) {
		_, err := crd.VirtualNetworks.Get(ctx, "", "ns-t-iso1")
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	poll(t, 10*time.Second, "blocks of ns-t-iso1 deleted", func() (bool, string) {
		l, err := kube.CoreV1().ConfigMaps(systemNS).List(ctx, metav1.ListOptions{LabelSelector: ipam.LabelNetwork + "=ns-t-iso1"})
		return err == nil && len(l.Items) == 0, fmt.Sprint(err)
	})
	poll(t, 10*time.Second, "pool index of t-iso1 released", func() (bool, string) {
		l, err := kube.CoreV1().ConfigMaps(systemNS).List(ctx, metav1.ListOptions{LabelSelector: "filament.dev/isolated-index"})
		if err != nil {
			return false, err.Error()
		}
		var held []string
		for _, cm := range l.Items {
			held = append(held, cm.Data["namespace"])
		}
		return len(held) == 1 && held[0] == "t-iso2", fmt.Sprint(held)
	})
	if _, err := crd.VirtualNetworks.Get(ctx, "", "ns-t-iso2"); err != nil {
		t.Errorf("the other isolated network: %v", err)
	}
}

// A Port left for a pod uid that no longer exists is removed and its
// claims released when kube-manager starts.
func TestStalePortAtStart(t *testing.T) {
	mkNode(t, "node-a")
	mkNamespace(t, "t-stale", false)
	pod := mkPod(t, "t-stale", "s", "node-a", false)
	r := startManager(t, "km-1", time.Minute)
	old := waitPort(t, pod)
	r.stop()
	// While no kube-manager runs, the pod is replaced by one of the same name.
	deletePod(t, "t-stale", "s")
	again := mkPod(t, "t-stale", "s", "node-a", false)
	startManager(t, "km-2", time.Minute)
	port := waitPort(t, again)
	if port.UID == old.UID {
		t.Fatal("the old Port was reused for another pod")
	}
	poll(t, 10*time.Second, "old claims released", func() (bool, string) {
		c := claims(t, "default", "t-stale")
		for _, o := range c {
			if strings.HasSuffix(o, string(pod.UID)) {
				return false, fmt.Sprint(c)
			}
		}
		return len(c) == 2, fmt.Sprint(c)
	})
}

// A FilamentNode goes when its Node does.
func TestFilamentNodeOfDeletedNode(t *testing.T) {
	ctx := context.Background()
	mkNode(t, "node-gone")
	mkNode(t, "node-kept")
	for _, n := range []string{"node-gone", "node-kept"} {
		if _, err := crd.FilamentNodes.Create(ctx, &v1alpha1.FilamentNode{ObjectMeta: metav1.ObjectMeta{Name: n},
			Spec: v1alpha1.FilamentNodeSpec{UnderlayIPv4: "192.168.100.1", Encapsulations: []string{"vxlan"}}}); err != nil {
			t.Fatal(err)
		}
	}
	startManager(t, "km", time.Minute)
	if err := kube.CoreV1().Nodes().Delete(ctx, "node-gone", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, 30*time.Second, "filamentnode node-gone deleted", func() (bool, string) {
		_, err := crd.FilamentNodes.Get(ctx, "", "node-gone")
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	if _, err := crd.FilamentNodes.Get(ctx, "", "node-kept"); err != nil {
		t.Errorf("node-kept's filamentnode: %v", err)
	}
}

// reconciles is how many reconciles controller has finished (any result).
func reconciles(t *testing.T, m *Manager, controller string) uint64 {
	t.Helper()
	reg := prometheusRegistry(t, m)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() != "filament_kube_manager_reconcile_seconds" {
			continue
		}
		for _, mt := range mf.Metric {
			for _, l := range mt.Label {
				if l.GetName() == "controller" && l.GetValue() == controller {
					n += mt.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return n
}

// An isolated namespace deleted while a pod (its Port) is still on its
// network: the network, its VNI and subnet are kept; once the Port is gone
// they are released, and the next isolated namespace reuses them.
func TestIsolatedNetworkReleasedForReuse(t *testing.T) {
	ctx := context.Background()
	mkNode(t, "node-a")
	mkNamespace(t, "t-reuse1", true)
	r := startManager(t, "km", time.Minute)
	pod := mkPod(t, "t-reuse1", "p0", "node-a", false)
	waitPort(t, pod)
	first, err := crd.VirtualNetworks.Get(ctx, "", "ns-t-reuse1")
	if err != nil {
		t.Fatal(err)
	}

	before := reconciles(t, r.m, "networks")
	finalize(t, "t-reuse1")
	poll(t, 30*time.Second, "the namespace's deletion reconciled", func() (bool, string) {
		n := reconciles(t, r.m, "networks")
		return n > before, fmt.Sprint(n)
	})
	if _, err := crd.VirtualNetworks.Get(ctx, "", "ns-t-reuse1"); err != nil {
		t.Fatalf("network deleted while a Port is on it: %v", err)
	}

	deletePod(t, "t-reuse1", "p0")
	poll(t, 30*time.Second, "network ns-t-reuse1 deleted", func() (bool, string) {
		_, err := crd.VirtualNetworks.Get(ctx, "", "ns-t-reuse1")
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	poll(t, 10*time.Second, "pool index of t-reuse1 released", func() (bool, string) {
		l, err := kube.CoreV1().ConfigMaps(systemNS).List(ctx, metav1.ListOptions{LabelSelector: "filament.dev/isolated-index"})
		if err != nil {
			return false, err.Error()
		}
		for _, cm := range l.Items {
			if cm.Data["namespace"] == "t-reuse1" {
				return false, cm.Name
			}
		}
		return true, ""
	})

	mkNamespace(t, "t-reuse2", true)
	var second *v1alpha1.VirtualNetwork
	poll(t, 30*time.Second, "network of t-reuse2", func() (bool, string) {
		second, err = crd.VirtualNetworks.Get(ctx, "", "ns-t-reuse2")
		return err == nil, fmt.Sprint(err)
	})
	if second.Spec.VNI != first.Spec.VNI || second.Spec.Subnets[0].CIDR != first.Spec.Subnets[0].CIDR {
		t.Errorf("t-reuse2 got VNI %d %s, want the released VNI %d %s", second.Spec.VNI, second.Spec.Subnets[0].CIDR,
			first.Spec.VNI, first.Spec.Subnets[0].CIDR)
	}
}
