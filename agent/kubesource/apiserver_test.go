package kubesource

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/filament-net/filament/agent/cniapi"
	"github.com/filament-net/filament/agent/config"
	"github.com/filament-net/filament/agent/node"
	"github.com/filament-net/filament/deploy/crds"
	"github.com/filament-net/filament/internal/kubetest"
	"github.com/filament-net/filament/kubemanager/apis/v1alpha1"
	"github.com/filament-net/filament/kubemanager/crdclient"
)

// One API server for the package, the CRDs installed.
var (
	env *kubetest.Env
	crd *crdclient.Client
)

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	var err error
	env, err = kubetest.Start(ctx, kubetest.Options{})
	if err == nil {
		err = crds.Install(ctx, env.Config)
	}
	if err == nil {
		crd, err = crdclient.New(env.Config)
	}
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubesource:", err)
		if env != nil {
			fmt.Fprint(os.Stderr, env.Logs(30))
			env.Stop()
		}
		os.Exit(1)
	}
	rc := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop:", err)
		rc = 1
	}
	os.Exit(rc)
}

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

func mkNamespace(t *testing.T, name string) {
	t.Helper()
	kc, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := kc.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// startSource runs a Source for nodeName, programming d, until the test ends.
func startSource(t *testing.T, nodeName string, d Desired) *Source {
	t.Helper()
	s, err := New(env.Config, nodeName, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// Sync's context runs the informers: the test's, not a shorter one.
	if err := s.Sync(ctx, d); err != nil {
		t.Fatal(err)
	}
	go s.Run(ctx, d)
	return s
}

// A real node (no dataplane: ADD fails before it is needed) with a real
// Source: ADD of a pod whose Port is on a network the node does not have
// sets Programmed=False, NetworkUnknown; once the VirtualNetwork exists the
// next ADD gets further and the reason follows (here the pod's netns is
// missing); a programmed ADD sets it True again.
func TestProgrammedFalse(t *testing.T) {
	ctx := context.Background()
	mkNamespace(t, "prog")
	n, err := node.New(&config.Config{Node: "n1", StateDir: t.TempDir(), Fabric: config.Fabric{MTU: 1500}}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	p := &v1alpha1.Port{
		ObjectMeta: metav1.ObjectMeta{Namespace: "prog", Name: "web-0-eth0"},
		Spec: v1alpha1.PortSpec{Pod: v1alpha1.PodRef{Namespace: "prog", Name: "web-0", UID: "uid-web-0"}, Node: "n1",
			Network: "ghost", Interface: "eth0", IPs: []string{"10.40.0.5"}, MAC: "02:fe:0a:28:00:05", Mode: v1alpha1.ModeVeth},
	}
	if _, err := crd.Ports.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	s := startSource(t, "n1", n)
	n.SetPortSource(s)
	req := &cniapi.Request{ContainerID: "cid-web-0", Netns: "/var/run/netns/filament-no-such-pod",
		IfName: "eth0", PodNamespace: "prog", PodName: "web-0", PodUID: "uid-web-0", TimeoutMillis: 2000}
	programmed := func(status metav1.ConditionStatus, reason, says string) {
		t.Helper()
		poll(t, 10*time.Second, "Programmed "+string(status)+" "+reason, func() (bool, string) {
			got, err := crd.Ports.Get(ctx, "prog", "web-0-eth0")
			if err != nil {
				return false, err.Error()
			}
			c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionProgrammed)
			return c != nil && c.Status == status && c.Reason == reason && strings.Contains(c.Message, says), fmt.Sprintf("%+v", c)
		})
	}
	if resp := n.Add(ctx, req); resp.Error == nil || resp.Error.Code != cniapi.CodeInvalidConfig {
		t.Fatalf("ADD on an unknown network: %+v, want an invalid config error", resp)
	}
	programmed(metav1.ConditionFalse, node.ReasonNetworkUnknown, `network "ghost" is not in the agent's configuration`)

	if _, err := crd.VirtualNetworks.Create(ctx, &v1alpha1.VirtualNetwork{ObjectMeta: metav1.ObjectMeta{Name: "ghost"},
		Spec: v1alpha1.VirtualNetworkSpec{Subnets: []v1alpha1.Subnet{{CIDR: "10.40.0.0/16"}}, VNI: 400, Encapsulation: v1alpha1.EncapVXLAN}}); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "ADD past the network check", func() (bool, string) {
		resp := n.Add(ctx, req)
		return resp.Error != nil && resp.Error.Code == cniapi.CodeInvalidEnvironment, fmt.Sprintf("%+v", resp.Error)
	})
	programmed(metav1.ConditionFalse, node.ReasonNetnsNotFound, "pod netns not found")

	s.Programmed(req, nil) // what a successful ADD reports (agent/e2e TestKubernetesMode does one)
	programmed(metav1.ConditionTrue, "Attached", "attached and programmed by the agent of node n1")
}

// The agent holds the ServiceRecords and PolicyRecords and counts them,
// and this node's pods that policies select.
func TestRecordsHeld(t *testing.T) {
	ctx := context.Background()
	mkNamespace(t, "held")
	s := startSource(t, "n1", nopDesired{})
	sr := &v1alpha1.ServiceRecord{ObjectMeta: metav1.ObjectMeta{Namespace: "held", Name: "web"},
		Spec: v1alpha1.ServiceRecordSpec{ServiceUID: "uid-svc", Type: "ClusterIP", ClusterIPs: []string{"10.96.0.10"},
			Backends: []v1alpha1.ServiceBackend{{IP: "10.244.0.5", Ready: true, Network: "default", Node: "n1", Pod: "web-0"}}}}
	pr := &v1alpha1.PolicyRecord{ObjectMeta: metav1.ObjectMeta{Namespace: "held", Name: "allow"},
		Spec: v1alpha1.PolicyRecordSpec{PolicyUID: "uid-np", Types: []string{"Ingress"}, Targets: []v1alpha1.PolicyTarget{
			{Pod: "web-0", Node: "n1", Network: "default", IPs: []string{"10.244.0.5"}},
			{Pod: "web-1", Node: "n2", Network: "default", IPs: []string{"10.244.0.6"}},
		}}}
	if _, err := crd.ServiceRecords.Create(ctx, sr); err != nil {
		t.Fatal(err)
	}
	if _, err := crd.PolicyRecords.Create(ctx, pr); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "records held", func() (bool, string) {
		r := s.Records()
		return len(r.Services) == 1 && len(r.Policies) == 1 && r.LocalTargets == 1, fmt.Sprintf("%+v", r)
	})
	want := `
# HELP filament_agent_kube_policy_local_targets This node's pod interfaces that PolicyRecords select (not enforced yet).
# TYPE filament_agent_kube_policy_local_targets gauge
filament_agent_kube_policy_local_targets 1
# HELP filament_agent_kube_records ServiceRecords and PolicyRecords the agent holds, by kind (service, policy); not enforced yet.
# TYPE filament_agent_kube_records gauge
filament_agent_kube_records{kind="policy"} 1
filament_agent_kube_records{kind="service"} 1
`
	if err := testutil.CollectAndCompare(s, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if err := crd.PolicyRecords.Delete(ctx, "held", "allow", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "policy record gone", func() (bool, string) {
		r := s.Records()
		return len(r.Policies) == 0 && r.LocalTargets == 0 && len(r.Services) == 1, fmt.Sprintf("%+v", r)
	})
}

type nopDesired struct{}

func (nopDesired) SetDesired(context.Context, []config.Network, []config.Peer) error { return nil }
