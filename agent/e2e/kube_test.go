package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/filament-net/filament/agent/filamentnode"
	"github.com/filament-net/filament/deploy/crds"
	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/internal/kubetest"
	"github.com/filament-net/filament/internal/testnet"
	"github.com/filament-net/filament/kubemanager/apis/v1alpha1"
	"github.com/filament-net/filament/kubemanager/crdclient"
)

// kubeAPI is a real etcd + kube-apiserver with Filament's CRDs, reachable
// from a node's netns at the same address as from the host (127.0.0.1:port,
// the serving certificate's): a unix socket served by the test forwards
// to it, and a tcp-to-unix helper in the netns (proxy) forwards to that.
// Killing the proxy makes the API server unreachable for that node only.
type kubeAPI struct {
	env        *kubetest.Env
	crd        *crdclient.Client
	addr, sock string
	kubeconfig string
}

func startKubeAPI(t *testing.T) *kubeAPI {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env, err := kubetest.Start(ctx, kubetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	if err := crds.Install(ctx, env.Config); err != nil {
		t.Fatal(err)
	}
	c, err := crdclient.New(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(env.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	k := &kubeAPI{env: env, crd: c, addr: u.Host, sock: filepath.Join(dir, "apiserver.sock"),
		kubeconfig: filepath.Join(dir, "kubeconfig")}
	ln, err := net.Listen("unix", k.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				s, err := net.Dial("tcp", k.addr)
				if err != nil {
					c.Close()
					return
				}
				splice(c, s)
			}()
		}
	}()
	writeKubeconfig(t, env.Config, k.kubeconfig)
	return k
}

func writeKubeconfig(t *testing.T, rc *rest.Config, path string) {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: rc.Host, CertificateAuthorityData: rc.CAData}
	kc.AuthInfos["test"] = &clientcmdapi.AuthInfo{Token: rc.BearerToken}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "test"}
	kc.CurrentContext = "test"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
}

// waitFilamentNode waits for the FilamentNode that n's agent publishes:
// its underlay address, every encapsulation, owned by its Node.
func (k *kubeAPI) waitFilamentNode(t *testing.T, n *node) {
	t.Helper()
	ctx := context.Background()
	node, err := kubernetes.NewForConfigOrDie(k.env.Config).CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := v1alpha1.FilamentNodeSpec{UnderlayIPv4: n.underlay, Encapsulations: filamentnode.Encapsulations}
	start := time.Now()
	var fn *v1alpha1.FilamentNode
	waitFor(t, n.name+"'s FilamentNode published by its agent", 30*time.Second, func() bool {
		fn, err = k.crd.FilamentNodes.Get(ctx, "", n.name)
		return err == nil && reflect.DeepEqual(fn.Spec, want) && len(fn.OwnerReferences) == 1 &&
			fn.OwnerReferences[0] == metav1.OwnerReference{APIVersion: "v1", Kind: "Node", Name: n.name, UID: node.UID}
	})
	t.Logf("%s's FilamentNode published (waited %s)", n.name, time.Since(start).Round(time.Millisecond))
}

// proxy starts the forwarder into ns (the node's way to the API server).
func (k *kubeAPI) proxy(t *testing.T, ns string) *helper {
	t.Helper()
	return runHelper(t, ns, "tcp-to-unix", k.addr, k.sock)
}

// port is a Port as kube-manager makes it (Allocated).
func port(name, node, uid string, ip netip.Addr) *v1alpha1.Port {
	b := ip.As4()
	return &v1alpha1.Port{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: v1alpha1.PortSpec{Pod: v1alpha1.PodRef{Namespace: "default", Name: name, UID: uid}, Node: node,
			Network: "red", Interface: "eth0", IPs: []string{ip.String()},
			MAC: fmt.Sprintf("02:fe:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3]), Mode: v1alpha1.ModeVeth},
	}
}

// kubeCNI runs filament-cni as kubelet does for pod default/name (uid),
// with the poll budget pollTimeout x pollRetries.
func (n *node) kubeCNI(command, cid, netns, name, uid string, pollTimeout, pollRetries int) ([]byte, error) {
	c := map[string]any{
		"cniVersion": "1.1.0", "name": "filament-net", "type": "filament-cni",
		"filament": map[string]any{"socket": n.cniSock, "poll-timeout": pollTimeout, "poll-retries": pollRetries,
			"log-file": filepath.Join(n.dir, "cni.log"), "log-level": "debug"},
	}
	conf, _ := json.Marshal(c)
	cmd := exec.Command(filepath.Join(binDir, "filament-cni"))
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND=" + command, "CNI_CONTAINERID=" + cid,
		"CNI_NETNS=" + netns, "CNI_IFNAME=eth0", "CNI_PATH=" + binDir,
		"CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=" + name + ";K8S_POD_UID=" + uid}
	cmd.Stdin = bytes.NewReader(conf)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %v: %s %s", command, cid, err, out.String(), errb.String())
	}
	return out.Bytes(), nil
}

// kubeAdd is ADD of pod name; it returns the result's address and MAC.
func (n *node) kubeAdd(t *testing.T, tn *testnet.Net, name, uid string) (pod, error) {
	t.Helper()
	p := kubePod(tn, name)
	out, err := n.kubeCNI("ADD", p.cid, p.netns, name, uid, 2, 5)
	if err != nil {
		return p, err
	}
	n.kubeAdded(t, &p, name, uid, out)
	return p, nil
}

// kubePod is pod name's netns and container id, before its ADD.
func kubePod(tn *testnet.Net, name string) pod {
	ns := tn.NS(name)
	return pod{ns: ns, netns: "/var/run/netns/" + ns, cid: "cid-" + ns}
}

// kubeAdded takes ADD's result (out) into p: address, MAC; DEL at the end.
func (n *node) kubeAdded(t *testing.T, p *pod, name, uid string, out []byte) {
	t.Helper()
	t.Cleanup(func() { _, _ = n.kubeCNI("DEL", p.cid, p.netns, name, uid, 2, 5) })
	var res struct {
		Interfaces []struct{ Name, Mac string }
		IPs        []struct{ Address, Gateway string }
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.IPs) != 1 || len(res.Interfaces) != 1 {
		t.Fatalf("ADD result %s: %v", out, err)
	}
	p.ip = netip.MustParsePrefix(res.IPs[0].Address).Addr()
	p.mac = res.Interfaces[0].Mac
	p.result = out
}

// TestKubernetesMode: an agent in Kubernetes mode against a real
// kube-apiserver. The network comes from a VirtualNetwork, the peer and
// its pod's /32 route from a FilamentNode and a Port of the other node;
// the agent publishes its own node's FilamentNode;
// ADD attaches with the pod's Port (address and MAC, even when the Port
// comes after ADD started), the pod pings its gateway, the Port gets
// Programmed; ADD of a pod with no Port fails after the poll budget. With
// the API server unreachable the dataplane keeps its state and the pod
// forwards; back, the agent resyncs (the deleted remote Port's route is
// swept).
func TestKubernetesMode(t *testing.T) {
	k := startKubeAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := k.crd.VirtualNetworks.Create(ctx, &v1alpha1.VirtualNetwork{
		ObjectMeta: metav1.ObjectMeta{Name: "red"},
		Spec: v1alpha1.VirtualNetworkSpec{Subnets: []v1alpha1.Subnet{{CIDR: "10.30.0.0/16", Gateway: "10.30.0.1"}},
			VNI: 300, Encapsulation: v1alpha1.EncapVXLAN},
	}); err != nil {
		t.Fatal(err)
	}
	// node1's agent publishes node1's FilamentNode, owned by its Node;
	// node2 has no agent here: its FilamentNode is the test's.
	if _, err := kubernetes.NewForConfigOrDie(k.env.Config).CoreV1().Nodes().Create(ctx,
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.crd.FilamentNodes.Create(ctx, &v1alpha1.FilamentNode{ObjectMeta: metav1.ObjectMeta{Name: "node2"},
		Spec: v1alpha1.FilamentNodeSpec{UnderlayIPv4: "192.168.100.2", Encapsulations: []string{v1alpha1.EncapVXLAN}}}); err != nil {
		t.Fatal(err)
	}
	remoteIP := netip.MustParseAddr("10.30.2.7")
	if _, err := k.crd.Ports.Create(ctx, port("remote-1", "node2", "uid-r1", remoteIP)); err != nil {
		t.Fatal(err)
	}
	web1IP := netip.MustParseAddr("10.30.1.5")
	if _, err := k.crd.Ports.Create(ctx, port("web-1", "node1", "uid-w1", web1IP)); err != nil {
		t.Fatal(err)
	}

	tn := testnet.New(t)
	ns1, ns2 := tn.NS("n1"), tn.NS("n2")
	tn.Veth(tn.Name("f1"), ns1, tn.Name("f2"), ns2)
	proxy := k.proxy(t, ns1)
	n1 := startNodeWith(t, tn, nodeOpts{idx: 1, ns: ns1, fabricIf: tn.Name("f1"), encap: "vxlan", kubeconfig: k.kubeconfig})
	c := dial(t, n1)
	k.waitFilamentNode(t, n1)

	// The remote pod: a /32 through a VXLAN tunnel to node2's underlay.
	st := dump(t, c)
	if !hasRoute(st, 1, remoteIP.String()+"/32") {
		t.Fatalf("no route to node2's pod %s in VRF 1: %v", remoteIP, st.Routes)
	}
	var tunnels []string
	for _, nh := range st.NextHops {
		if nh.Type == pb.NextHopType_NEXT_HOP_TYPE_TUNNEL {
			tunnels = append(tunnels, fmt.Sprintf("%s/%s/%d", nh.TunnelDst, nh.Encap, nh.Vni))
		}
	}
	if len(tunnels) != 1 || tunnels[0] != "192.168.100.2/ENCAP_VXLAN/300" {
		t.Errorf("tunnel next-hops %v, want one to 192.168.100.2, VXLAN VNI 300", tunnels)
	}

	// ADD: the Port's address and MAC; the pod reaches its gateway.
	web1, err := n1.kubeAdd(t, tn, "web-1", "uid-w1")
	if err != nil {
		t.Fatal(err)
	}
	if web1.ip != web1IP || web1.mac != "02:fe:0a:1e:01:05" {
		t.Fatalf("ADD gave %v %s, want the Port's %v 02:fe:0a:1e:01:05: %s", web1.ip, web1.mac, web1IP, web1.result)
	}
	if out := tn.MustIn(web1.ns, "ip", "-o", "link", "show", "eth0"); !strings.Contains(out, "02:fe:0a:1e:01:05") {
		t.Errorf("pod eth0 %s: want the Port's MAC", out)
	}
	ping(t, tn, web1, netip.MustParseAddr("10.30.0.1"))
	waitFor(t, "web-1's Port Programmed", 30*time.Second, func() bool {
		p, err := k.crd.Ports.Get(ctx, "default", "web-1")
		return err == nil && meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionProgrammed)
	})

	// A Port that comes while ADD waits for it: created only once the
	// agent shows the ADD waiting, and ADD gets it.
	web2IP := netip.MustParseAddr("10.30.1.6")
	web2 := kubePod(tn, "web-2")
	var out []byte
	added := make(chan error, 1)
	go func() {
		var err error
		out, err = n1.kubeCNI("ADD", web2.cid, web2.netns, "web-2", "uid-w2", 2, 5)
		added <- err
	}()
	start := time.Now()
	waitFor(t, "node1's agent to show the ADD waiting for its Port", 30*time.Second, func() bool {
		return agentMetric(t, tn, n1, "filament_agent_adds_waiting_for_port") == "1"
	})
	waited := time.Since(start)
	if _, err := k.crd.Ports.Create(ctx, port("web-2", "node1", "uid-w2", web2IP)); err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	if err := <-added; err != nil {
		t.Fatalf("ADD waiting for its Port: %v", err)
	}
	n1.kubeAdded(t, &web2, "web-2", "uid-w2", out)
	if web2.ip != web2IP {
		t.Fatalf("late Port: ADD gave %v, want %v", web2.ip, web2IP)
	}
	if v := agentMetric(t, tn, n1, "filament_agent_adds_waiting_for_port"); v != "0" {
		t.Errorf("filament_agent_adds_waiting_for_port %q after the ADD, want 0", v)
	}
	t.Logf("ADD shown waiting after %s; done %s after its Port was created",
		waited.Round(time.Millisecond), time.Since(created).Round(time.Millisecond))

	// A pod whose Port belongs to another uid (the pod was recreated) and
	// a pod with no Port: ADD fails after poll-retries attempts, within
	// poll-timeout x poll-retries (1 s x 2), saying why.
	for _, tc := range []struct{ name, uid string }{{"web-1", "uid-other"}, {"nobody", "uid-n"}} {
		ns := tn.NS("x" + tc.uid[4:])
		start := time.Now()
		out, err := n1.kubeCNI("ADD", "cid-"+ns, "/var/run/netns/"+ns, tc.name, tc.uid, 1, 2)
		took := time.Since(start)
		if err == nil {
			t.Fatalf("ADD of %s (%s) without a Port succeeded: %s", tc.name, tc.uid, out)
		}
		// Two attempts: the second starts when the first's 1 s slot ends.
		if !strings.Contains(err.Error(), "no Port for the pod yet") || !strings.Contains(err.Error(), "after 2 attempt(s)") ||
			took < time.Second || took > 4*time.Second {
			t.Errorf("ADD of %s (%s) without a Port: after %s: %v; want a no-Port error after 2 attempts within the 2 s budget",
				tc.name, tc.uid, took, err)
		}
	}

	// The API server unreachable: nothing changes in the dataplane and
	// the pod keeps forwarding; the remote Port deleted meanwhile has its
	// route swept once the agent sees the API server again.
	before := len(dump(t, c).Routes)
	_ = proxy.cmd.Process.Kill()
	<-proxy.done
	// Only once the agent knows it is cut off does "unchanged" say
	// anything: before, it might simply not have seen the delete yet.
	waitFor(t, "node1's agent to report the API server unreachable", 30*time.Second, func() bool {
		return strings.Contains(agentLog(t, n1), kubeOutageLog) && agentMetric(t, tn, n1, "filament_agent_apiserver_up") == "0"
	})
	if err := k.crd.Ports.Delete(ctx, "default", "remote-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ping(t, tn, web1, netip.MustParseAddr("10.30.0.1"))
	if st := dump(t, c); len(st.Routes) != before || !hasRoute(st, 1, remoteIP.String()+"/32") {
		t.Fatalf("API server away: routes %d -> %d, want unchanged", before, len(st.Routes))
	}
	k.proxy(t, ns1)
	start = time.Now()
	waitFor(t, "the deleted remote Port's route swept", 60*time.Second, func() bool {
		return !hasRoute(dump(t, c), 1, remoteIP.String()+"/32")
	})
	t.Logf("resync after the API server came back: %s", time.Since(start).Round(time.Millisecond))
	if st := dump(t, c); !hasRoute(st, 1, web1IP.String()+"/32") {
		t.Errorf("web-1's route gone after the resync: %v", st.Routes)
	}
	ping(t, tn, web1, netip.MustParseAddr("10.30.0.1"))
}
