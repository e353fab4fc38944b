package manager

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/filament-net/filament/kubemanager/apis/v1alpha1"
)

// mkLabelledPod creates a scheduled pod with labels and waits for its Port.
func mkLabelledPod(t *testing.T, ns, name string, lbls map[string]string) (*corev1.Pod, *v1alpha1.Port) {
	t.Helper()
	p := podObj(ns, name, "node-a", false)
	p.Labels = lbls
	pod, err := kube.CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pod, waitPort(t, pod)
}

// hostPrefixes is a Port's addresses as /32 and /128 peers.
func hostPrefixes(p *v1alpha1.Port) []string {
	var out []string
	for _, ip := range p.Spec.IPs {
		a := netip.MustParseAddr(ip)
		out = append(out, netip.PrefixFrom(a, a.BitLen()).String())
	}
	return out
}

func peerCIDRs(r v1alpha1.PolicyRule) []string {
	var out []string
	for _, p := range r.Peers {
		out = append(out, p.CIDR)
	}
	return out
}

func backendIPs(s v1alpha1.ServiceRecordSpec) []string {
	var out []string
	for _, b := range s.Backends {
		out = append(out, b.IP)
	}
	return out
}

func targetPods(s v1alpha1.PolicyRecordSpec) []string {
	var out []string
	for _, t := range s.Targets {
		out = append(out, t.Pod)
	}
	return out
}

// A Service with an EndpointSlice becomes a ServiceRecord whose backends
// are its pods' Port addresses; a NetworkPolicy a PolicyRecord with the
// selected pods' addresses; pods coming, going and relabelled change them;
// a record edited by hand is written back; deleting the sources deletes
// the records.
func TestRecords(t *testing.T) {
	ctx := context.Background()
	mkNode(t, "node-a")
	mkNamespace(t, "t-rec", false)
	mkNamespace(t, "t-rec-front", false)
	front, err := kube.CoreV1().Namespaces().Get(ctx, "t-rec-front", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if front.Labels == nil {
		front.Labels = map[string]string{}
	}
	front.Labels["team"] = "front"
	if _, err := kube.CoreV1().Namespaces().Update(ctx, front, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r := startManager(t, "km", time.Minute)

	web0, port0 := mkLabelledPod(t, "t-rec", "web-0", map[string]string{"app": "web"})
	web1, port1 := mkLabelledPod(t, "t-rec", "web-1", map[string]string{"app": "web"})
	_, portF := mkLabelledPod(t, "t-rec", "front-0", map[string]string{"role": "front"})
	_, portC := mkLabelledPod(t, "t-rec-front", "client-0", map[string]string{"any": "thing"})
	mkLabelledPod(t, "t-rec", "other-0", map[string]string{"role": "other"})

	svc, err := kube.CoreV1().Services("t-rec").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// What the EndpointSlice controller would write (there is none in the
	// harness): the two pods, an address outside the overlay, and a pod
	// that is gone (its slice is behind).
	ready, notReady, name, portNum := true, false, "http", int32(8080)
	ref := func(p *corev1.Pod) *corev1.ObjectReference {
		return &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID}
	}
	if _, err := kube.DiscoveryV1().EndpointSlices("t-rec").Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{port1.Spec.IPs[0]}, TargetRef: ref(web1), Conditions: discoveryv1.EndpointConditions{Ready: &notReady}},
			{Addresses: []string{port0.Spec.IPs[0]}, TargetRef: ref(web0), Conditions: discoveryv1.EndpointConditions{Ready: &ready}},
			{Addresses: []string{"192.168.50.5"}},
			{Addresses: []string{"10.244.250.250"}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "t-rec", Name: "gone"}},
		},
		Ports: []discoveryv1.EndpointPort{{Name: &name, Port: &portNum}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	p443, p53 := intstr.FromInt32(443), intstr.FromInt32(53)
	np, err := kube.NetworkingV1().NetworkPolicies("t-rec").Create(ctx, &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "allow-front"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{
					{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "front"}}},
					{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "front"}}},
					{IPBlock: &networkingv1.IPBlock{CIDR: "192.168.0.0/16", Except: []string{"192.168.1.0/24"}}},
				},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &p443}},
			}},
			Egress: []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &p53}}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	getSvc := func() (*v1alpha1.ServiceRecord, error) { return crd.ServiceRecords.Get(ctx, "t-rec", "web") }
	getPol := func() (*v1alpha1.PolicyRecord, error) { return crd.PolicyRecords.Get(ctx, "t-rec", "allow-front") }

	// The Service: its pods' addresses with network, node and pod; the
	// outside address without; the gone pod's dropped.
	wantIPs := []string{port0.Spec.IPs[0], port1.Spec.IPs[0], "192.168.50.5"}
	if netip.MustParseAddr(wantIPs[1]).Less(netip.MustParseAddr(wantIPs[0])) {
		wantIPs[0], wantIPs[1] = wantIPs[1], wantIPs[0]
	}
	var sr *v1alpha1.ServiceRecord
	poll(t, 30*time.Second, "service record with 3 backends", func() (bool, string) {
		sr, err = getSvc()
		if err != nil {
			return false, err.Error()
		}
		return reflect.DeepEqual(backendIPs(sr.Spec), wantIPs), fmt.Sprintf("%+v", sr.Spec)
	})
	if sr.Spec.ServiceUID != string(svc.UID) || sr.Spec.Type != "ClusterIP" || !reflect.DeepEqual(sr.Spec.ClusterIPs, svc.Spec.ClusterIPs) ||
		!reflect.DeepEqual(sr.Spec.Ports, []v1alpha1.ServicePort{{Name: "http", Protocol: "TCP", Port: 80, TargetPort: "8080"}}) {
		t.Errorf("service record %+v (service cluster IPs %v)", sr.Spec, svc.Spec.ClusterIPs)
	}
	for _, b := range sr.Spec.Backends {
		wantPorts := []v1alpha1.BackendPort{{Name: "http", Protocol: "TCP", Port: 8080}}
		switch b.IP {
		case port0.Spec.IPs[0]:
			if b.Pod != "web-0" || b.Network != "default" || b.Node != "node-a" || !b.Ready || !reflect.DeepEqual(b.Ports, wantPorts) {
				t.Errorf("backend web-0: %+v", b)
			}
		case port1.Spec.IPs[0]:
			if b.Pod != "web-1" || b.Network != "default" || b.Ready {
				t.Errorf("backend web-1 (not ready): %+v", b)
			}
		default:
			if b.Pod != "" || b.Network != "" || b.Node != "" || !b.Ready {
				t.Errorf("backend outside the overlay: %+v", b)
			}
		}
	}
	if o := sr.OwnerReferences; len(o) != 1 || o[0].Kind != "Service" || o[0].UID != svc.UID || o[0].Controller == nil || !*o[0].Controller {
		t.Errorf("service record owners %+v", o)
	}

	// The policy: the selected pods' Ports, peers resolved.
	var pr *v1alpha1.PolicyRecord
	wantPeers := append(append(hostPrefixes(portF), hostPrefixes(portC)...), "192.168.0.0/16")
	poll(t, 30*time.Second, "policy record", func() (bool, string) {
		pr, err = getPol()
		if err != nil {
			return false, err.Error()
		}
		return len(pr.Spec.Targets) == 2 && len(pr.Spec.Ingress) == 1 && len(pr.Spec.Ingress[0].Peers) == len(wantPeers), fmt.Sprintf("%+v", pr.Spec)
	})
	if pr.Spec.PolicyUID != string(np.UID) || !reflect.DeepEqual(pr.Spec.Types, []string{"Ingress", "Egress"}) {
		t.Errorf("policy record %+v", pr.Spec)
	}
	wantTargets := []v1alpha1.PolicyTarget{
		{Pod: "web-0", Node: "node-a", Network: "default", IPs: port0.Spec.IPs},
		{Pod: "web-1", Node: "node-a", Network: "default", IPs: port1.Spec.IPs},
	}
	if !reflect.DeepEqual(pr.Spec.Targets, wantTargets) {
		t.Errorf("targets %+v, want %+v", pr.Spec.Targets, wantTargets)
	}
	got := map[string]bool{}
	for _, c := range peerCIDRs(pr.Spec.Ingress[0]) {
		got[c] = true
	}
	for _, c := range wantPeers {
		if !got[c] {
			t.Errorf("ingress peers %v: %s missing (other-0 must not be there)", peerCIDRs(pr.Spec.Ingress[0]), c)
		}
	}
	for _, p := range pr.Spec.Ingress[0].Peers {
		if p.CIDR == "192.168.0.0/16" && !reflect.DeepEqual(p.Except, []string{"192.168.1.0/24"}) {
			t.Errorf("ip block peer %+v", p)
		}
	}
	if !reflect.DeepEqual(pr.Spec.Ingress[0].Ports, []v1alpha1.PolicyPort{{Protocol: "TCP", Port: "443"}}) {
		t.Errorf("ingress ports %+v", pr.Spec.Ingress[0].Ports)
	}
	if len(pr.Spec.Egress) != 1 || !reflect.DeepEqual(peerCIDRs(pr.Spec.Egress[0]), []string{"0.0.0.0/0", "::/0"}) ||
		!reflect.DeepEqual(pr.Spec.Egress[0].Ports, []v1alpha1.PolicyPort{{Protocol: "UDP", Port: "53"}}) {
		t.Errorf("egress (any peer, UDP 53) %+v", pr.Spec.Egress)
	}
	// The gauge counts the records informer's cache, which sees the record
	// only after the API server has it: poll, do not read once.
	poll(t, 30*time.Second, "filament_kube_manager_records{kind=policy} >= 1", func() (bool, string) {
		v, ok := metricValue(t, r.m.records, "filament_kube_manager_records", map[string]string{"kind": "policy"})
		return ok && v >= 1, fmt.Sprintf("%v (present %v)", v, ok)
	})

	// Pods go and come, and change labels.
	deletePod(t, "t-rec", "web-1")
	poll(t, 30*time.Second, "web-1 gone from the service's backends", func() (bool, string) {
		sr, err = getSvc()
		if err != nil {
			return false, err.Error()
		}
		want := []string{port0.Spec.IPs[0], "192.168.50.5"}
		return reflect.DeepEqual(backendIPs(sr.Spec), want), fmt.Sprint(backendIPs(sr.Spec))
	})
	_, port2 := mkLabelledPod(t, "t-rec", "web-2", map[string]string{"app": "web"})
	poll(t, 30*time.Second, "targets web-0 and web-2", func() (bool, string) {
		pr, err = getPol()
		if err != nil {
			return false, err.Error()
		}
		return reflect.DeepEqual(targetPods(pr.Spec), []string{"web-0", "web-2"}), fmt.Sprint(targetPods(pr.Spec))
	})
	if !reflect.DeepEqual(pr.Spec.Targets[1].IPs, port2.Spec.IPs) {
		t.Errorf("web-2's target %+v, want its Port's %v", pr.Spec.Targets[1], port2.Spec.IPs)
	}
	f0, err := kube.CoreV1().Pods("t-rec").Get(ctx, "front-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f0.Labels = map[string]string{"role": "back"}
	if _, err := kube.CoreV1().Pods("t-rec").Update(ctx, f0, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, 30*time.Second, "front-0 relabelled: no longer a peer", func() (bool, string) {
		pr, err = getPol()
		if err != nil {
			return false, err.Error()
		}
		want := append(hostPrefixes(portC), "192.168.0.0/16")
		return len(pr.Spec.Ingress) == 1 && reflect.DeepEqual(setOf(peerCIDRs(pr.Spec.Ingress[0])), setOf(want)),
			fmt.Sprint(peerCIDRs(pr.Spec.Ingress[0]))
	})

	// A record changed by hand is written back.
	sr, err = getSvc()
	if err != nil {
		t.Fatal(err)
	}
	sr.Spec.Backends = nil
	if _, err := crd.ServiceRecords.Update(ctx, sr); err != nil {
		t.Fatal(err)
	}
	poll(t, 30*time.Second, "service record restored", func() (bool, string) {
		sr, err = getSvc()
		return err == nil && len(sr.Spec.Backends) == 2, fmt.Sprint(err, backendIPs(sr.Spec))
	})

	// The sources deleted: kube-manager deletes the records (the harness
	// has no garbage collector).
	if err := kube.NetworkingV1().NetworkPolicies("t-rec").Delete(ctx, "allow-front", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := kube.CoreV1().Services("t-rec").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, 30*time.Second, "records deleted", func() (bool, string) {
		_, errS := getSvc()
		_, errP := getPol()
		return apierrors.IsNotFound(errS) && apierrors.IsNotFound(errP), fmt.Sprint(errS, errP)
	})
}

func setOf(l []string) map[string]bool {
	out := map[string]bool{}
	for _, s := range l {
		out[s] = true
	}
	return out
}
