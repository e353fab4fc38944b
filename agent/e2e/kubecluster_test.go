package e2e

// The whole Kubernetes path: a real kube-apiserver and etcd, the real
// filament-kube-manager binary (leader election on) making Ports from Pod
// objects, and two nodes (a dataplane and an agent in Kubernetes mode
// each, in their netns, a veth fabric between them). The test plays
// kubelet: it creates Pod objects bound to a node and runs filament-cni
// with the pod's K8S_POD_* arguments.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/dpdk/apiclient"
	"github.com/filament-net/filament/internal/testnet"
	"github.com/filament-net/filament/kubemanager/apis/v1alpha1"
)

// The cluster's pod network, as kube-manager's flags make it.
const (
	kubePodSubnet  = "10.44.0.0/16"
	kubePodSubnet6 = "fd00:44::/64"
	kubePodVNI     = 44
	kubeManagerID  = "km-e2e"
)

// kubeCluster is an API server, kube-manager and two nodes.
type kubeCluster struct {
	k       *kubeAPI
	cs      kubernetes.Interface
	tn      *testnet.Net
	nodes   [2]*node
	dp      [2]*apiclient.Client
	proxies [2]*helper
	km      *proc
	kmArgs  []string // to start it again as its Deployment would
	kmAddr  string   // kube-manager's /metrics
	dual    bool
}

// startKubeCluster starts it all. dual: the pod network is dual stack
// (kube-manager's --pod-subnet-v6); the test skips when the dataplane
// cannot do IPv6.
func startKubeCluster(t *testing.T, dual bool) *kubeCluster {
	t.Helper()
	begin := time.Now()
	c := &kubeCluster{k: startKubeAPI(t), dual: dual}
	cs, err := kubernetes.NewForConfig(c.k.env.Config)
	if err != nil {
		t.Fatal(err)
	}
	c.cs = cs
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, ns := range []string{"filament-system", "default"} {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	// The Nodes, as kubelets register them: each agent publishes its
	// node's FilamentNode, owned by its Node (kube-manager deletes the
	// FilamentNode of a missing one).
	for i := 1; i <= 2; i++ {
		name := fmt.Sprintf("node%d", i)
		if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.kmAddr = l.Addr().String()
	l.Close()
	args := []string{filepath.Join(binDir, "filament-kube-manager"), "--kubeconfig", c.k.kubeconfig,
		"--identity", kubeManagerID, "--listen", c.kmAddr, "--log-level", "debug",
		"--lease-duration", "4s", "--renew-deadline", "3s", "--retry-period", "500ms",
		"--pod-subnet-v4", kubePodSubnet, "--pod-vni", fmt.Sprint(kubePodVNI)}
	if dual {
		args = append(args, "--pod-subnet-v6", kubePodSubnet6)
	}
	c.kmArgs = args
	c.km = start(t, filepath.Join(t.TempDir(), "kube-manager.log"), args...)
	waitFor(t, "kube-manager leading and the default network made", 30*time.Second, func() bool {
		l, err := cs.CoordinationV1().Leases("filament-system").Get(ctx, "filament-kube-manager", metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != kubeManagerID {
			return false
		}
		_, err = c.k.crd.VirtualNetworks.Get(ctx, "", "default")
		return err == nil
	})

	c.tn = testnet.New(t)
	ns := [2]string{c.tn.NS("n1"), c.tn.NS("n2")}
	c.tn.Veth(c.tn.Name("f1"), ns[0], c.tn.Name("f2"), ns[1])
	for i := range 2 {
		c.proxies[i] = c.k.proxy(t, ns[i])
		c.nodes[i] = startNodeWith(t, c.tn, nodeOpts{idx: i + 1, ns: ns[i], fabricIf: c.tn.Name(fmt.Sprintf("f%d", i+1)),
			encap: "vxlan", dual: dual, kubeconfig: c.k.kubeconfig})
		c.dp[i] = dial(t, c.nodes[i])
	}
	for _, n := range c.nodes {
		c.k.waitFilamentNode(t, n)
	}
	t.Logf("cluster up in %s", time.Since(begin).Round(time.Millisecond))
	return c
}

// cut closes both nodes' way to the API server (their forwarders
// killed: every connection cut, new ones refused); restore starts new
// forwarders. A forwarder left running while the API server is stopped
// would accept a node's connections and close them (an EOF, not the
// refusal a node gets from a stopped API server on a direct path).
func (c *kubeCluster) cut(t *testing.T) {
	t.Helper()
	for _, p := range c.proxies {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (c *kubeCluster) restore(t *testing.T) {
	t.Helper()
	for i, n := range c.nodes {
		c.proxies[i] = c.k.proxy(t, n.ns)
	}
}

// createPod creates Pod default/name bound to node (spec.nodeName, as
// the scheduler leaves it) and returns its uid.
func (c *kubeCluster) createPod(t *testing.T, name string, n *node) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := c.cs.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.PodSpec{NodeName: n.name,
			Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return string(p.UID)
}

// deletePod deletes the Pod object at once, as kubelet's final delete
// does once the pod's sandbox is gone.
func (c *kubeCluster) deletePod(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.cs.CoreV1().Pods("default").Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
}

// getPort is the pod's Port (kube-manager names it <pod>-eth0), nil if
// there is none.
func (c *kubeCluster) getPort(t *testing.T, pod string) *v1alpha1.Port {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := c.k.crd.Ports.Get(ctx, "default", pod+"-eth0")
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// waitPort polls until the pod's Port has the condition True.
func (c *kubeCluster) waitPort(t *testing.T, pod, cond string, d time.Duration) *v1alpha1.Port {
	t.Helper()
	var p *v1alpha1.Port
	waitFor(t, pod+"'s Port "+cond, d, func() bool {
		p = c.getPort(t, pod)
		return p != nil && meta.IsStatusConditionTrue(p.Status.Conditions, cond)
	})
	return p
}

// add is kubelet's CNI ADD of pod default/name (uid) on node n: the
// pod's addresses and MAC from the result, checked against its Port.
func (c *kubeCluster) add(t *testing.T, n *node, name, uid string, port *v1alpha1.Port) pod {
	t.Helper()
	ns := c.tn.NS(name)
	p := pod{ns: ns, netns: "/var/run/netns/" + ns, cid: "cid-" + ns}
	out, err := n.kubeCNI("ADD", p.cid, p.netns, name, uid, 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = n.kubeCNI("DEL", p.cid, p.netns, name, uid, 2, 5) })
	var res struct {
		Interfaces []struct{ Mac string }
		IPs        []struct{ Address string }
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.Interfaces) != 1 {
		t.Fatalf("ADD result %s: %v", out, err)
	}
	p.result, p.mac = out, res.Interfaces[0].Mac
	var got []string
	for _, ip := range res.IPs {
		a := netip.MustParsePrefix(ip.Address).Addr()
		got = append(got, a.String())
		if a.Is4() {
			p.ip = a
		} else {
			p.ip6 = a
		}
	}
	if strings.Join(got, ",") != strings.Join(port.Spec.IPs, ",") || p.mac != port.Spec.MAC {
		t.Fatalf("ADD of %s gave %v %s, want its Port's %v %s", name, got, p.mac, port.Spec.IPs, port.Spec.MAC)
	}
	if c.dual && (!p.ip.IsValid() || !p.ip6.IsValid()) {
		t.Fatalf("ADD of %s gave %v: want an IPv4 and an IPv6 address (dual stack)", name, got)
	}
	return p
}

// del is kubelet's CNI DEL of the pod.
func (c *kubeCluster) del(t *testing.T, n *node, name, uid string, p pod) {
	t.Helper()
	if _, err := n.kubeCNI("DEL", p.cid, p.netns, name, uid, 2, 5); err != nil {
		t.Fatal(err)
	}
}

// hostRoute tells whether the dataplane routes addr as a host route (/32
// or /128) in any VRF (the agent chooses the VRF ids).
func hostRoute(s *apiclient.State, addr netip.Addr) bool {
	want := netip.PrefixFrom(addr, addr.BitLen()).String()
	for _, r := range s.Routes {
		if r.Prefix == want {
			return true
		}
	}
	return false
}

// podAddrs is the pod's addresses (one or two families).
func podAddrs(p pod) []netip.Addr {
	out := []netip.Addr{p.ip}
	if p.ip6.IsValid() {
		out = append(out, p.ip6)
	}
	return out
}

// routesTo tells whether the dataplane has a host route to each of the
// pod's addresses (all) or to none of them (!all).
func routesTo(s *apiclient.State, p pod, all bool) bool {
	for _, a := range podAddrs(p) {
		if hostRoute(s, a) != all {
			return false
		}
	}
	return true
}

// tunnels lists the dataplane's tunnel next-hops as dst/encap/vni.
func tunnels(s *apiclient.State) []string {
	var out []string
	for _, nh := range s.NextHops {
		if nh.Type == pb.NextHopType_NEXT_HOP_TYPE_TUNNEL {
			out = append(out, fmt.Sprintf("%s/%s/%d", nh.TunnelDst, nh.Encap, nh.Vni))
		}
	}
	return out
}

// kmMetric is a sample of kube-manager's /metrics (the full line's value
// for the series name{labels}), "" if absent.
func (c *kubeCluster) kmMetric(t *testing.T, series string) string {
	t.Helper()
	resp, err := http.Get("http://" + c.kmAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			return v
		}
	}
	return ""
}

// agentLog is everything node n's agents have logged.
func agentLog(t *testing.T, n *node) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(n.dir, "agent-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
	}
	return all.String()
}

// TestKubeTwoNodes: kube-manager makes a Port for each Pod object bound
// to a node (dual stack), kubelet's ADD on each node gives the pod its
// Port's addresses and MAC, the agents mark the Ports Programmed, and the
// pods ping each other across the nodes over VXLAN (the network's VNI)
// in both families. Deleting a pod (DEL, then the Pod object) removes its
// Port, releases its addresses in kube-manager's IPAM, and the other node
// drops its routes; nothing is left on its own node.
func TestKubeTwoNodes(t *testing.T) {
	c := startKubeCluster(t, true)
	n1, n2 := c.nodes[0], c.nodes[1]
	uidA, uidB := c.createPod(t, "pod-a", n1), c.createPod(t, "pod-b", n2)
	start := time.Now()
	portA := c.waitPort(t, "pod-a", v1alpha1.ConditionAllocated, 30*time.Second)
	portB := c.waitPort(t, "pod-b", v1alpha1.ConditionAllocated, 30*time.Second)
	t.Logf("Ports allocated %s after the Pods were created: %v, %v", time.Since(start).Round(time.Millisecond),
		portA.Spec.IPs, portB.Spec.IPs)
	if portA.Spec.Node != n1.name || portB.Spec.Node != n2.name || portA.Spec.Network != "default" ||
		portA.Spec.VNI != kubePodVNI || len(portA.Spec.IPs) != 2 || len(portB.Spec.IPs) != 2 {
		t.Fatalf("Ports: %+v %+v", portA.Spec, portB.Spec)
	}

	a := c.add(t, n1, "pod-a", uidA, portA)
	b := c.add(t, n2, "pod-b", uidB, portB)
	start = time.Now()
	c.waitPort(t, "pod-a", v1alpha1.ConditionProgrammed, 30*time.Second)
	c.waitPort(t, "pod-b", v1alpha1.ConditionProgrammed, 30*time.Second)
	t.Logf("Ports Programmed %s after the ADDs", time.Since(start).Round(time.Millisecond))

	// Each node routes the other's pod through one VXLAN tunnel with the
	// network's VNI to the other's underlay address (from its FilamentNode).
	for i, other := range []pod{b, a} {
		s := dump(t, c.dp[i])
		if !routesTo(s, other, true) {
			t.Fatalf("%s has no host routes to %v: %v", c.nodes[i].name, podAddrs(other), s.Routes)
		}
		want := fmt.Sprintf("192.168.100.%d/ENCAP_VXLAN/%d", 2-i, kubePodVNI)
		if tn := tunnels(s); len(tn) != 1 || tn[0] != want {
			t.Errorf("%s's tunnels %v, want one %s", c.nodes[i].name, tn, want)
		}
	}
	ping(t, c.tn, a, b.ip)
	ping(t, c.tn, b, a.ip)
	ping(t, c.tn, a, b.ip6)
	ping(t, c.tn, b, a.ip6)

	// Both pods' addresses are claimed in kube-manager's IPAM.
	usedV4 := `filament_kube_manager_ipam_used_addresses{network="default",subnet="` + kubePodSubnet + `"}`
	usedV6 := `filament_kube_manager_ipam_used_addresses{network="default",subnet="` + kubePodSubnet6 + `"}`
	if v4, v6 := c.kmMetric(t, usedV4), c.kmMetric(t, usedV6); v4 != "2" || v6 != "2" {
		t.Errorf("kube-manager's IPAM: %s %q, %s %q; want 2 each", usedV4, v4, usedV6, v6)
	}

	// pod-b goes as kubelet ends it: DEL, then the Pod object deleted.
	c.del(t, n2, "pod-b", uidB, b)
	c.deletePod(t, "pod-b")
	start = time.Now()
	waitFor(t, "pod-b's Port deleted", 30*time.Second, func() bool { return c.getPort(t, "pod-b") == nil })
	gone := time.Since(start)
	waitFor(t, "node1's routes to pod-b removed", 30*time.Second, func() bool {
		return routesTo(dump(t, c.dp[0]), b, false)
	})
	t.Logf("after the Pod object's deletion: Port gone in %s, node1's routes to it in %s",
		gone.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	waitFor(t, "pod-b's addresses released in kube-manager's IPAM", 10*time.Second, func() bool {
		return c.kmMetric(t, usedV4) == "1" && c.kmMetric(t, usedV6) == "1"
	})
	s2 := dump(t, c.dp[1])
	if ports, nhs, _ := podObjects(s2); ports != 0 || nhs != 0 || !routesTo(s2, b, false) {
		t.Errorf("node2 after pod-b's DEL: %d pod ports, %d interface next-hops, routes %v", ports, nhs, s2.Routes)
	}
	if h := hostEnds(t, c.tn, n2); len(h) > 0 {
		t.Errorf("node2 keeps host ends: %v", h)
	}
	if out, err := c.tn.Output(b.ns, "ip", "link", "show", "eth0"); err == nil {
		t.Errorf("pod-b keeps eth0: %s", out)
	}
	// pod-a is untouched: its node routes it, it reaches its gateway.
	if s := dump(t, c.dp[0]); !routesTo(s, a, true) {
		t.Errorf("node1 lost pod-a's routes: %v", s.Routes)
	}
	ping(t, c.tn, a, netip.MustParseAddr("10.44.0.1"))
}

// TestKubeAPIServerOutage: a UDP stream from a pod of node1 to a pod of
// node2 (one numbered datagram every 5 ms) while the kube-apiserver
// process is stopped for 30 s (etcd keeps running) and then started again
// on the same address with the same certificate and tokens: not one
// datagram lost; the agents say the API server is away and leave both
// dataplanes exactly as they were. kube-manager loses its Lease and exits 1
// by design; the test plays its Deployment and starts it again at once
// (same arguments, so the same identity: the pod's name across a
// container restart), and once the API server is back it leads and
// continues where it stopped: a pod created just before the stop and one
// created right after the return get Ports with addresses nobody else
// holds, the addresses given before are kept, the other node routes the
// new pods and their ADDs and Programmed succeed.
func TestKubeAPIServerOutage(t *testing.T) {
	const outage = 30 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startKubeCluster(t, false)
	n1, n2 := c.nodes[0], c.nodes[1]
	uidA, uidB := c.createPod(t, "pod-a", n1), c.createPod(t, "pod-b", n2)
	portA := c.waitPort(t, "pod-a", v1alpha1.ConditionAllocated, 30*time.Second)
	portB := c.waitPort(t, "pod-b", v1alpha1.ConditionAllocated, 30*time.Second)
	a := c.add(t, n1, "pod-a", uidA, portA)
	b := c.add(t, n2, "pod-b", uidB, portB)
	c.waitPort(t, "pod-a", v1alpha1.ConditionProgrammed, 30*time.Second)
	c.waitPort(t, "pod-b", v1alpha1.ConditionProgrammed, 30*time.Second)

	// The underlay neighbours resolved first: the fast path drops (and
	// counts) what it sends before it knows the peer node's MAC.
	ping(t, c.tn, a, b.ip)
	stream := startUDPStream(t, a, b, 5*time.Millisecond)
	// pod-d is created just before the stop: kube-manager may or may not
	// make its Port before the API server goes.
	uidD := c.createPod(t, "pod-d", n2)
	logBefore := [2]int{len(agentLog(t, n1)), len(agentLog(t, n2))}
	stopAt := time.Now()
	if err := c.k.env.StopAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	stopTook := time.Since(stopAt)
	c.cut(t)
	// The state as the API server left it (pod-d's Port, if made, was
	// programmed during the graceful stop, over 1 s): nothing changes it now.
	before := [2]*apiclient.State{dump(t, c.dp[0]), dump(t, c.dp[1])}

	// Both agents notice (log and metric), their dataplanes stay as they
	// were while the stream goes on, and kube-manager exits when its
	// Lease runs out and is started again, all within the outage.
	noticed := [2]time.Duration{}
	var kmExit time.Duration
	oldKM := c.km
	for time.Since(stopAt) < outage {
		for i, n := range c.nodes {
			if noticed[i] == 0 && strings.Contains(agentLog(t, n)[logBefore[i]:], kubeOutageLog) &&
				agentMetric(t, c.tn, n, "filament_agent_apiserver_up") == "0" &&
				agentMetric(t, c.tn, n, "filament_agent_apiserver_outages_total") == "1" {
				noticed[i] = time.Since(stopAt)
			}
			if s := dump(t, c.dp[i]); !before[i].Equal(s) {
				t.Fatalf("%s's dataplane changed %s into the outage:\nbefore %v\nafter  %v",
					n.name, time.Since(stopAt).Round(time.Millisecond), before[i], s)
			}
		}
		if kmExit == 0 && oldKM.exited() {
			kmExit = time.Since(stopAt)
			if code := oldKM.cmd.ProcessState.ExitCode(); code != 1 {
				t.Fatalf("kube-manager exited %d %s into the outage, want 1 (lost the Lease)", code, kmExit)
			}
			// Its Deployment's restart (kubelet's back-off left out).
			c.km = start(t, filepath.Join(t.TempDir(), "kube-manager-2.log"), c.kmArgs...)
		}
		stream.waitMore(t, 100) // 0.5 s of datagrams: forwarding goes on
	}
	for i, n := range c.nodes {
		if noticed[i] == 0 {
			t.Errorf("%s's agent did not log %q with filament_agent_apiserver_up 0 and outages_total 1 during the outage:\n%s",
				n.name, kubeOutageLog, tail(agentLog(t, n)[logBefore[i]:], 20))
		}
	}
	if kmExit == 0 {
		t.Fatalf("kube-manager still running %s into the outage: its Lease (4 s) should have run out", outage)
	}

	startAt := time.Now()
	if err := c.k.env.StartAPIServer(ctx); err != nil {
		t.Fatalf("%v\n%s", err, c.k.env.Logs(20))
	}
	c.restore(t)
	back := time.Now()
	outageTook, startTook := back.Sub(stopAt), back.Sub(startAt)
	uidC := c.createPod(t, "pod-c", n1)
	for _, n := range c.nodes {
		waitFor(t, n.name+"'s agent saying the API server is back", 10*time.Second, func() bool {
			return strings.Contains(agentLog(t, n), kubeBackLog) && agentMetric(t, c.tn, n, "filament_agent_apiserver_up") == "1"
		})
	}
	seen := time.Since(back)
	waitFor(t, "kube-manager (started again) leading", 20*time.Second, func() bool {
		return c.kmMetric(t, "filament_kube_manager_leader") == "1"
	})
	leading := time.Since(back)
	portC := c.waitPort(t, "pod-c", v1alpha1.ConditionAllocated, 20*time.Second)
	portD := c.waitPort(t, "pod-d", v1alpha1.ConditionAllocated, 20*time.Second)
	allocated := time.Since(back)

	// Continued where it stopped: the earlier Ports kept their addresses,
	// no address is held twice, and the IPAM (ConfigMaps, read by the new
	// process) counts exactly the four pods'.
	owner := map[string]string{}
	for _, pod := range []string{"pod-a", "pod-b", "pod-c", "pod-d"} {
		p := c.getPort(t, pod)
		for _, ip := range p.Spec.IPs {
			if o, dup := owner[ip]; dup {
				t.Errorf("%s given to %s and %s", ip, o, pod)
			}
			owner[ip] = pod
		}
	}
	if got := c.getPort(t, "pod-a").Spec.IPs; strings.Join(got, ",") != strings.Join(portA.Spec.IPs, ",") {
		t.Errorf("pod-a's Port %v after the outage, was %v", got, portA.Spec.IPs)
	}
	if got := c.getPort(t, "pod-b").Spec.IPs; strings.Join(got, ",") != strings.Join(portB.Spec.IPs, ",") {
		t.Errorf("pod-b's Port %v after the outage, was %v", got, portB.Spec.IPs)
	}
	usedV4 := `filament_kube_manager_ipam_used_addresses{network="default",subnet="` + kubePodSubnet + `"}`
	if v := c.kmMetric(t, usedV4); v != "4" {
		t.Errorf("kube-manager's IPAM after its restart: %s %q, want 4", usedV4, v)
	}

	// Each new pod's other node routes it; their ADDs get their Ports and
	// the agents write Programmed.
	cAddr, dAddr := netip.MustParseAddr(portC.Spec.IPs[0]), netip.MustParseAddr(portD.Spec.IPs[0])
	waitFor(t, "node2 routing pod-c and node1 routing pod-d", 10*time.Second, func() bool {
		return hostRoute(dump(t, c.dp[1]), cAddr) && hostRoute(dump(t, c.dp[0]), dAddr)
	})
	routed := time.Since(back)
	pc := c.add(t, n1, "pod-c", uidC, portC)
	pd := c.add(t, n2, "pod-d", uidD, portD)
	c.waitPort(t, "pod-c", v1alpha1.ConditionProgrammed, 30*time.Second)
	c.waitPort(t, "pod-d", v1alpha1.ConditionProgrammed, 30*time.Second)
	programmed := time.Since(back)
	stream.waitMore(t, 100)
	sent, got := stream.stop(t)
	t.Logf("kube-apiserver stopped (in %s) for %s, ready %s after its start; agents reported it after %s and %s; "+
		"kube-manager exited 1 after %s and was started again; UDP sent %d, received %d; "+
		"back: both agents reported it within %s, kube-manager led after %s, pod-c's and pod-d's Ports allocated after %s, "+
		"routed by the other node after %s, ADDed and Programmed after %s",
		stopTook.Round(time.Millisecond), outageTook.Round(time.Millisecond), startTook.Round(time.Millisecond),
		noticed[0].Round(time.Millisecond), noticed[1].Round(time.Millisecond), kmExit.Round(time.Millisecond),
		sent, got, seen.Round(time.Millisecond), leading.Round(time.Millisecond), allocated.Round(time.Millisecond),
		routed.Round(time.Millisecond), programmed.Round(time.Millisecond))
	if sent == 0 || got != sent {
		t.Errorf("UDP across the API server's outage: sent %d, received %d", sent, got)
	}
	ping(t, c.tn, pc, b.ip)
	ping(t, c.tn, pd, a.ip)
}

// What an agent logs when it loses the API server, and when it has it
// again (agent/kubesource).
const (
	kubeOutageLog = "API server unreachable"
	kubeBackLog   = "API server reachable again"
)

// agentMetric is a sample of node n's agent's /metrics, "" if absent.
func agentMetric(t *testing.T, tn *testnet.Net, n *node, series string) string {
	t.Helper()
	out, err := tn.Output(n.ns, "curl", "-sf", "http://127.0.0.1:9464/metrics")
	if err != nil {
		t.Fatalf("%s's metrics: %v", n.name, err)
	}
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			return v
		}
	}
	return ""
}

// exited tells whether the process has exited (its cmd.ProcessState set).
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}
