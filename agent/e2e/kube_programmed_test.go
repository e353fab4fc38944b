package e2e

import (
	"context"
	"encoding/json"
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
// pod, which reaches its gateway, and Programmed is True again. The Port
// recreated with another address: a repeated ADD of the attached pod fails
// (Programmed False, AddressChanged) rather than keep the old address; the
// pod's new sandbox gets the new one.
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

	// The Port recreated with another address: a repeated ADD of the
	// attached pod fails naming both (it used to keep the old one and say
	// nothing), the Port gets Programmed=False, AddressChanged, and the
	// pod's interface is left as it was.
	if err := k.crd.Ports.Delete(ctx, "default", "web-9", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	moved := netip.MustParseAddr("10.31.1.9")
	p = port("web-9", "node1", "uid-w9", moved)
	p.Spec.Network = "blue"
	if _, err := k.crd.Ports.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	var out []byte
	// Until the agent's cache has the new Port, ADD finds the old one (or
	// none): polled, each ADD a single 1 s attempt.
	waitFor(t, "a repeated ADD refused: the Port's address changed", 30*time.Second, func() bool {
		out, err = n1.kubeCNI("ADD", web9.cid, web9.netns, "web-9", "uid-w9", 1, 1)
		code, _ := cniErrorOf(out)
		return err != nil && code == 100
	})
	if _, msg := cniErrorOf(out); !strings.Contains(msg, "attachment exists with another address") ||
		!strings.Contains(err.Error(), "is attached with 10.31.1.5, its Port now gives 10.31.1.9") {
		t.Errorf("repeated ADD with the Port's address changed: %v, want both addresses named", err)
	}
	waitFor(t, "Programmed False, AddressChanged", 30*time.Second, func() bool {
		c := condition()
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == agentnode.ReasonAddressChanged &&
			strings.Contains(c.Message, "10.31.1.5") && strings.Contains(c.Message, "10.31.1.9")
	})
	t.Logf("condition: %+v", *condition())
	if got := tn.MustIn(web9.ns, "ip", "-o", "-4", "addr", "show", "eth0"); !strings.Contains(got, " 10.31.1.5/") {
		t.Errorf("pod eth0 after the refused ADD: %s, want its address kept", got)
	}
	ping(t, tn, web9, netip.MustParseAddr("10.31.0.1"))

	// The pod's new sandbox (DEL, then ADD): the Port's new address, and
	// Programmed True.
	if out, err := n1.kubeCNI("DEL", web9.cid, web9.netns, "web-9", "uid-w9", 1, 1); err != nil {
		t.Fatalf("DEL: %v %s", err, out)
	}
	if out, err = n1.kubeCNI("ADD", web9.cid, web9.netns, "web-9", "uid-w9", 2, 5); err != nil {
		t.Fatalf("ADD of the new sandbox: %v %s", err, out)
	}
	var res struct{ IPs []struct{ Address string } }
	if err := json.Unmarshal(out, &res); err != nil || len(res.IPs) != 1 || res.IPs[0].Address != "10.31.1.9/16" {
		t.Fatalf("ADD of the new sandbox gave %s (%v), want the Port's 10.31.1.9/16", out, err)
	}
	web9.ip = moved
	ping(t, tn, web9, netip.MustParseAddr("10.31.0.1"))
	waitFor(t, "Programmed True with the new address", 30*time.Second, func() bool {
		c := condition()
		return c != nil && c.Status == metav1.ConditionTrue && c.Reason == "Attached"
	})
}
