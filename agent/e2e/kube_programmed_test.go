package e2e

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentnode "github.com/filament-net/filament/agent/node"
	"github.com/filament-net/filament/internal/testnet"
	"github.com/filament-net/filament/kubemanager/apis/v1alpha1"
)

// TestKubernetesProgrammedFalse: a real agent and dataplane against a real
// kube-apiserver. ADD of a pod whose Port is on a network the node does not
// have fails, and the agent sets the Port's Programmed condition False
// (reason NetworkUnknown, the message saying which network); once the
// VirtualNetwork exists and the agent has programmed it, ADD attaches the
// pod, which reaches its gateway, and Programmed is True again.
func TestKubernetesProgrammedFalse(t *testing.T) {
	k := startKubeAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ip := netip.MustParseAddr("10.31.1.5")
	p := port("web-9", "node1", "uid-w9", ip)
	p.Spec.Network = "blue"
	if _, err := k.crd.Ports.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	tn := testnet.New(t)
	ns1, ns2 := tn.NS("n1"), tn.NS("n2")
	tn.Veth(tn.Name("f1"), ns1, tn.Name("f2"), ns2)
	k.proxy(t, ns1)
	n1 := startNodeWith(t, tn, nodeOpts{idx: 1, ns: ns1, fabricIf: tn.Name("f1"), encap: "vxlan", kubeconfig: k.kubeconfig})
	c := dial(t, n1)

	condition := func() *metav1.Condition {
		got, err := k.crd.Ports.Get(ctx, "default", "web-9")
		if err != nil {
			t.Fatal(err)
		}
		return meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionProgrammed)
	}
	// The network is checked before the pod's netns: none is needed.
	if out, err := n1.kubeCNI("ADD", "cid-web-9-first", "/var/run/netns/filament-none", "web-9", "uid-w9", 1, 1); err == nil ||
		!strings.Contains(err.Error(), "unknown network") {
		t.Fatalf("ADD on a network the node does not have: %v %s, want unknown network", err, out)
	}
	waitFor(t, "Programmed False, NetworkUnknown", 30*time.Second, func() bool {
		c := condition()
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == agentnode.ReasonNetworkUnknown &&
			strings.Contains(c.Message, `network "blue" is not in the agent's configuration`)
	})
	t.Logf("condition: %+v", *condition())

	if _, err := k.crd.VirtualNetworks.Create(ctx, &v1alpha1.VirtualNetwork{
		ObjectMeta: metav1.ObjectMeta{Name: "blue"},
		Spec: v1alpha1.VirtualNetworkSpec{Subnets: []v1alpha1.Subnet{{CIDR: "10.31.0.0/16", Gateway: "10.31.0.1"}},
			VNI: 301, Encapsulation: v1alpha1.EncapVXLAN},
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "VNI 301 programmed", 30*time.Second, func() bool {
		for _, v := range dump(t, c).VNIs {
			if v.Vni == 301 {
				return true
			}
		}
		return false
	})
	web9, err := n1.kubeAdd(t, tn, "web-9", "uid-w9")
	if err != nil {
		t.Fatal(err)
	}
	if web9.ip != ip {
		t.Fatalf("ADD gave %v, want the Port's %v", web9.ip, ip)
	}
	ping(t, tn, web9, netip.MustParseAddr("10.31.0.1"))
	waitFor(t, "Programmed True again", 30*time.Second, func() bool {
		c := condition()
		return c != nil && c.Status == metav1.ConditionTrue && c.Reason == "Attached"
	})
}
